"""Attachments' bytes: photos and documents of requests and work orders, content-addressed.

``AttachmentStore.put(data, filename)`` checks the bytes (size, and the type sniffed
from the content with the ``filetype`` library, never from the name or a client's
Content-Type), stores them under their SHA-256 and answers a :class:`Blob`; the command
that records the attachment (``domain/attachments`` ``AttachFile``) is issued after, so
the blob is always there before an event refers to it. The same bytes are stored once.

Where the bytes live:

* embedded mode: ``<data dir>/attachments/ab/cdef…`` (or ``HOTLINE_ATTACHMENTS_DIR``),
  written to a temporary file in the same folder, flushed, then renamed onto its hash:
  a crash leaves at worst a stray ``.tmp-*`` file, never a half blob under a hash;
* with PostgreSQL: PostgreSQL large objects, one per blob, indexed by hash in
  ``attachment_blobs``. Chosen over a shared directory because the API processes of a
  distributed deployment then need no shared file system, a blob commits in a
  transaction (the large object and its index row together, or neither), and the
  database's backup (``pg_dump`` includes large objects) holds the blobs with the
  events that refer to them. ``HOTLINE_ATTACHMENTS_DIR`` picks a directory instead.

Erasure (the audit issue): blobs are never encrypted here; each attachment's event keeps
the citizen id so a citizen's blobs can be found and ``delete``d when their key goes.
"""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import filetype

from domain.attachments.aggregate import TooLarge
from domain.base import InvalidCommand, NotFound
from infra.settings import Settings

CHUNK = 256 * 1024
SHA256 = re.compile(r"[0-9a-f]{64}")

# The defaults of HOTLINE_ATTACHMENTS_ALLOWED_TYPES: photos from phones and documents.
DEFAULT_ALLOWED = ("image/jpeg", "image/png", "image/webp", "image/heic", "application/pdf", "text/plain")

# Markup a browser would render or run. Plain text that carries it is refused as what it
# is (HTML, SVG, XML): served back it could script the hotline's origin elsewhere.
_MARKUP = re.compile(
    rb"<\s*(?:!doctype\s+html|html|head|body|script|iframe|frame|frameset|object|embed|style|meta|link|base|form|img|svg|math|"
    rb"title|div|a|b|p|br|h1|table|font|\?xml|!--)[\s/>]",
    re.IGNORECASE,
)
# C0 controls other than tab, line feed, form feed and carriage return: binary, not text.
_CONTROL = re.compile(rb"[\x00-\x08\x0b\x0e-\x1f\x7f]")


@dataclass(frozen=True)
class Blob:
    sha256: str
    content_type: str
    size: int
    filename: str | None


def sniff(data: bytes) -> str:
    """The media type of ``data`` from its content: a known binary signature, else
    ``text/plain`` for UTF-8 text without markup, ``text/html`` / ``image/svg+xml`` for
    markup, ``application/octet-stream`` for anything else."""
    kind = filetype.guess(data[:8192])
    if kind is not None:
        return str(kind.mime)
    body = data[3:] if data.startswith(b"\xef\xbb\xbf") else data
    if _CONTROL.search(body):
        return "application/octet-stream"
    try:
        body.decode("utf-8")
    except UnicodeDecodeError:
        return "application/octet-stream"
    if re.search(rb"<\s*svg[\s/>]", body, re.IGNORECASE):
        return "image/svg+xml"
    if _MARKUP.search(body):
        return "text/html"
    return "text/plain"


def clean_filename(filename: str | None) -> str | None:
    """The name as given, reduced to a last path component without control characters."""
    if not filename:
        return None
    name = re.sub(r"[\x00-\x1f\x7f]", "", filename.replace("\\", "/").rsplit("/", 1)[-1]).strip()
    return name[:255] or None


class Blobs(Protocol):
    """Where the bytes are kept, by hash."""

    def exists(self, sha256: str) -> bool: ...

    def write(self, sha256: str, data: bytes) -> bool:
        """Stores the bytes unless they are there; True when written now."""
        ...

    def chunks(self, sha256: str, start: int = 0) -> Iterator[bytes]:
        """The bytes from offset ``start`` on (a media player's range: no reading from 0)."""
        ...

    def delete(self, sha256: str) -> bool: ...


class DirectoryBlobs:
    """``root/ab/cdef…``: the first two hex digits fan the files out over 256 folders."""

    def __init__(self, root: Path) -> None:
        self.root = root
        root.mkdir(parents=True, exist_ok=True)

    def path(self, sha256: str) -> Path:
        return self.root / sha256[:2] / sha256[2:]

    def exists(self, sha256: str) -> bool:
        return self.path(sha256).is_file()

    def write(self, sha256: str, data: bytes) -> bool:
        target = self.path(sha256)
        if target.is_file():
            return False
        target.parent.mkdir(exist_ok=True)
        # Same folder as the target, so the rename is atomic (one file system).
        fd, tmp = tempfile.mkstemp(prefix=".tmp-", dir=target.parent)
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, target)  # two writers of the same bytes: the last rename wins, same content
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        _fsync_dir(target.parent)
        return True

    def chunks(self, sha256: str, start: int = 0) -> Iterator[bytes]:
        try:
            f = self.path(sha256).open("rb")
        except FileNotFoundError:
            raise NotFound(f"no attachment content {sha256}") from None
        with f:
            f.seek(start)
            while chunk := f.read(CHUNK):
                yield chunk

    def delete(self, sha256: str) -> bool:
        try:
            self.path(sha256).unlink()
            return True
        except FileNotFoundError:
            return False


def _fsync_dir(folder: Path) -> None:
    # The rename is durable once the folder's entry is (POSIX); best effort elsewhere.
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


class LargeObjectBlobs:
    """PostgreSQL large objects, indexed by hash in ``attachment_blobs`` (see the module)."""

    TABLE = "attachment_blobs"

    def __init__(self, engine: Any) -> None:
        from sqlalchemy import text

        self.engine = engine
        with engine.begin() as conn:
            conn.execute(
                text(
                    f"CREATE TABLE IF NOT EXISTS {self.TABLE} ("
                    "sha256 text PRIMARY KEY, loid oid NOT NULL, size bigint NOT NULL, "
                    "stored_at timestamptz NOT NULL DEFAULT now())"
                )
            )

    def exists(self, sha256: str) -> bool:
        from sqlalchemy import text

        with self.engine.connect() as conn:
            return conn.execute(text(f"SELECT 1 FROM {self.TABLE} WHERE sha256 = :h"), {"h": sha256}).first() is not None

    def write(self, sha256: str, data: bytes) -> bool:
        from sqlalchemy import text

        with self.engine.connect() as conn, conn.begin() as tx:
            # The large object and its index row commit together. Two writers of the same
            # bytes: the second's insert conflicts, and its rollback drops its large object.
            row = conn.execute(
                text(
                    f"INSERT INTO {self.TABLE} (sha256, loid, size) VALUES (:h, lo_from_bytea(0, :d), :n) "
                    "ON CONFLICT (sha256) DO NOTHING RETURNING loid"
                ),
                {"h": sha256, "d": data, "n": len(data)},
            ).first()
            if row is None:
                tx.rollback()
                return False
        return True

    def _oid_and_size(self, sha256: str) -> tuple[int, int]:
        from sqlalchemy import text

        with self.engine.connect() as conn:
            row = conn.execute(text(f"SELECT loid, size FROM {self.TABLE} WHERE sha256 = :h"), {"h": sha256}).first()
        if row is None:
            raise NotFound(f"no attachment content {sha256}")
        return int(row[0]), int(row[1])

    def chunks(self, sha256: str, start: int = 0) -> Iterator[bytes]:
        from sqlalchemy import text

        loid, size = self._oid_and_size(sha256)
        for offset in range(start, size, CHUNK):  # one short read each: no connection held between chunks
            with self.engine.connect() as conn:
                yield bytes(conn.execute(text("SELECT lo_get(:o, :at, :n)"), {"o": loid, "at": offset, "n": CHUNK}).scalar_one())

    def delete(self, sha256: str) -> bool:
        from sqlalchemy import text

        with self.engine.begin() as conn:
            row = conn.execute(text(f"DELETE FROM {self.TABLE} WHERE sha256 = :h RETURNING loid"), {"h": sha256}).first()
            if row is None:
                return False
            conn.execute(text("SELECT lo_unlink(:o)"), {"o": row[0]})
        return True


class AttachmentStore:
    """Checks and keeps attachments' bytes; ``hotline.attachments``."""

    def __init__(self, blobs: Blobs, max_bytes: int, allowed_types: tuple[str, ...] | list[str] = DEFAULT_ALLOWED) -> None:
        self.blobs = blobs
        self.max_bytes = max_bytes
        self.allowed_types = tuple(allowed_types)

    @classmethod
    def for_settings(cls, settings: Settings, engine: Any = None) -> AttachmentStore:
        blobs: Blobs
        if settings.attachments_dir is not None:
            blobs = DirectoryBlobs(settings.attachments_dir)
        elif settings.database_url and engine is not None:
            blobs = LargeObjectBlobs(engine)
        else:
            blobs = DirectoryBlobs(settings.data_dir / "attachments")
        return cls(blobs, settings.attachments_max_bytes, settings.attachments_allowed_types)

    def check(self, data: bytes, filename: str | None = None) -> Blob:
        """What ``put`` would store, or :class:`InvalidCommand` (``TooLarge`` for size)."""
        if len(data) > self.max_bytes:
            raise too_large(len(data), self.max_bytes)
        if not data:
            raise InvalidCommand("the attachment is empty", field="file", code="attachment_empty")
        content_type = sniff(data)
        if content_type not in self.allowed_types:
            raise InvalidCommand(
                f"attachments of type {content_type} are not accepted (the type is read from the content, not the name)",
                field="file",
                code="attachment_type",
                detected_type=content_type,
                allowed_types=list(self.allowed_types),
            )
        return Blob(hashlib.sha256(data).hexdigest(), content_type, len(data), clean_filename(filename))

    def put(self, data: bytes, filename: str | None = None) -> Blob:
        blob = self.check(data, filename)
        self.blobs.write(blob.sha256, data)
        return blob

    def get(self, sha256: str) -> bytes:
        data = b"".join(self.open(sha256))
        if hashlib.sha256(data).hexdigest() != sha256:
            raise RuntimeError(f"attachment content {sha256} is damaged: its bytes no longer hash to their name")
        return data

    def open(self, sha256: str, start: int = 0) -> Iterator[bytes]:
        """The bytes in chunks, for streaming, from offset ``start`` on."""
        if not SHA256.fullmatch(sha256):
            raise NotFound(f"no attachment content {sha256}")
        return self.blobs.chunks(sha256, start)

    def exists(self, sha256: str) -> bool:
        return bool(SHA256.fullmatch(sha256)) and self.blobs.exists(sha256)

    def delete(self, sha256: str) -> bool:
        """Removes the bytes (erasure); the events that named them stay."""
        return bool(SHA256.fullmatch(sha256)) and self.blobs.delete(sha256)


def too_large(size: int | None, limit: int) -> TooLarge:
    """The refusal of an attachment over ``limit`` bytes (``size`` when it is known)."""
    said = f"{size} bytes" if size is not None else "the upload"
    details: dict[str, Any] = {"field": "file", "max_bytes": limit}
    if size is not None:
        details["size"] = size
    return TooLarge(f"the attachment is too large: {said}, the limit is {limit} bytes", **details)
