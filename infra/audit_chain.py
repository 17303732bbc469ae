"""Tamper evidence for the event store: two hash chains and checkpoints.

Every stored event carries, in three columns of the events table written in the same
statement as the event itself (``infra/sqlite_recorder.py``, ``infra/pg_recorder.py``):

- ``chain_stream``: SHA-256 over the stream's previous ``chain_stream`` and the row as
  stored: originator id (16 bytes), version (8 bytes, big-endian), the topic (length and
  UTF-8) and the state bytes exactly as stored. Personal fields are ciphertext there, so an
  erasure (a destroyed key) changes nothing the chain covers.
- ``chain_global``: SHA-256 over the previous event's ``chain_global`` in commit order,
  this event's position (8 bytes) and its ``chain_stream``.
- ``chain_prev``: the position of that previous event. PostgreSQL's positions have gaps
  (rolled-back transactions take sequence numbers), so each event names its predecessor:
  a deleted event is named by its successor, an inserted one is named by nobody.

A one-row table, ``audit_chain_head``, holds the last position and global hash; the
writer chains from it (never from "the last row", which a deletion would move back), so
a deleted or appended tail is caught too. Only the writer's transaction updates it.

Checkpoints (the head's position and global hash) are appended to
``<data_dir>/audit-checkpoints.jsonl`` and logged every ``audit_checkpoint_every`` events
and on demand; an operator copies them out, and ``verify(..., checkpoints=FILE)`` catches a
rewrite of the whole chain against them.

A store written before the chain existed gets the columns on start; its old rows stay
unchained and the chain starts (genesis: zero hash, ``chain_prev`` 0) at the first event
written after. ``verify`` counts the old rows and reports any unchained row after the start.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import sqlite3
import struct
import threading
import time
import uuid
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    from infra.eventstore import EventStore
    from infra.settings import Settings

log = logging.getLogger("hotline.audit")

GENESIS = bytes(32)  # the "previous hash" of a stream's first event and of the chain's first
HEAD_TABLE = "audit_chain_head"
CHECKPOINTS_FILE = "audit-checkpoints.jsonl"

_sha256 = hashlib.sha256


def stream_hash(previous: bytes | None, originator_id: bytes, version: int, topic: str, state: bytes) -> bytes:
    """The link of one event in its stream. ``originator_id``: the UUID's 16 bytes."""
    topic_bytes = topic.encode()
    return _sha256(
        b"".join(
            (
                previous or GENESIS,
                originator_id,
                version.to_bytes(8, "big", signed=True),
                len(topic_bytes).to_bytes(4, "big"),
                topic_bytes,
                state,
            )
        )
    ).digest()


def global_hash(previous: bytes, position: int, stream: bytes) -> bytes:
    """The link of one event in the global (commit) order."""
    return _sha256(previous + position.to_bytes(8, "big", signed=True) + stream).digest()


# ---------------------------------------------------------------------------- the report

What = Literal["changed", "deleted", "swapped", "inserted", "reordered", "rewritten", "checkpoint"]


@dataclass
class Break:
    """One broken link. ``position``: the global position where it shows (for a deleted
    event, the position it had, when its successor names it)."""

    position: int
    what: What
    detail: str
    stream: str | None = None  # originator id
    version: int | None = None
    topic: str | None = None
    _state: bytes | None = field(default=None, repr=False)
    _previous: bytes | None = field(default=None, repr=False)
    _stored: bytes | None = field(default=None, repr=False)

    def as_dict(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if not k.startswith("_")}


@dataclass
class VerifyReport:
    ok: bool
    events_checked: int  # chained events whose links were checked
    unchained_before_start: int  # events written before the chain existed (not covered)
    head_position: int  # the last chained position seen
    head_hash: str  # its global hash (hex)
    checkpoints_checked: int
    seconds: float
    breaks: list[Break]  # in position order, at most ``max_breaks``

    @property
    def first_break(self) -> Break | None:
        return self.breaks[0] if self.breaks else None

    @property
    def events_per_second(self) -> float:
        return self.events_checked / self.seconds if self.seconds > 0 else 0.0

    def as_dict(self) -> dict[str, Any]:
        first = self.first_break
        return {
            "ok": self.ok,
            "events_checked": self.events_checked,
            "unchained_before_start": self.unchained_before_start,
            "head_position": self.head_position,
            "head_hash": self.head_hash,
            "checkpoints_checked": self.checkpoints_checked,
            "seconds": round(self.seconds, 3),
            "events_per_second": round(self.events_per_second),
            "first_break": first.as_dict() if first else None,
            "breaks": [b.as_dict() for b in self.breaks],
        }


@dataclass(frozen=True)
class Checkpoint:
    position: int
    global_hash: str  # hex
    at: str  # ISO time it was taken
    reason: str = "periodic"

    def line(self) -> str:
        return json.dumps(asdict(self), separators=(",", ":"))


# ---------------------------------------------------------------------------- reading rows


@dataclass(frozen=True)
class _Source:
    """Where and what a pass reads: picklable, so that a worker process can open it."""

    postgres: bool
    target: str  # SQLite: the file; PostgreSQL: a conninfo string
    schema: str
    table: str
    bound: int  # the last position of the snapshot the coordinator took
    snapshot: str | None = None  # PostgreSQL: the coordinator's exported snapshot

    def qualified(self) -> str:
        return f'"{self.schema}"."{self.table}"' if self.postgres else self.table


def _source(store: EventStore) -> _Source:
    recorder: Any = store.recorder
    if not hasattr(recorder, "datastore"):
        raise ValueError("the audit chain needs an SQLite or PostgreSQL event store")
    if _is_postgres(store):
        from psycopg.conninfo import make_conninfo

        kwargs = {k: v for k, v in recorder.datastore.pool.kwargs.items() if k != "row_factory" and v not in (None, "")}
        return _Source(True, make_conninfo(**kwargs), recorder.datastore.schema, recorder.events_table_name, 0)
    return _Source(False, str(recorder.datastore.pool.db_name), "", recorder.events_table_name, 0)


def _is_postgres(store: EventStore) -> bool:
    return bool(getattr(store, "is_postgres", False))


@contextmanager
def _connect(source: _Source) -> Iterator[Any]:
    """A read-only connection in one snapshot: the coordinator's (PostgreSQL: imported;
    SQLite: its own, bounded by ``source.bound``)."""
    if source.postgres:
        import psycopg

        with psycopg.connect(source.target, autocommit=True) as conn:
            conn.execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
            if source.snapshot:
                conn.execute(f"SET TRANSACTION SNAPSHOT '{source.snapshot}'")
            yield conn
            conn.execute("ROLLBACK")
        return
    lite = sqlite3.connect(f"file:{source.target}?mode=ro", uri=True, isolation_level=None)
    try:
        lite.execute("BEGIN")  # one read snapshot (WAL) from the first SELECT on
        yield lite
    finally:
        lite.close()


def _pages(conn: Any, source: _Source, columns: str, where: str = "", page: int = 20_000) -> Iterator[list[tuple[Any, ...]]]:
    """Rows up to ``source.bound`` in position order, ``page`` at a time."""
    pos = "notification_id" if source.postgres else "rowid"
    mark = "%s" if source.postgres else "?"
    sql = f"SELECT {pos}, {columns} FROM {source.qualified()} WHERE {pos} > {mark} AND {pos} <= {mark} {where} ORDER BY {pos} LIMIT {mark}"
    after = 0
    if source.postgres:
        cur = conn.cursor(binary=True)
        while True:
            cur.execute(sql, (after, source.bound, page))
            rows = cur.fetchall()
            if not rows:
                return
            yield rows
            after = rows[-1][0]
    while True:
        rows = conn.execute(sql, (after, source.bound, page)).fetchall()
        if not rows:
            return
        yield rows
        after = rows[-1][0]


def _read_head_and_bound(conn: Any, source: _Source) -> tuple[tuple[int, bytes] | None, int]:
    head_table = f'"{source.schema}"."{HEAD_TABLE}"' if source.postgres else HEAD_TABLE
    pos = "notification_id" if source.postgres else "rowid"
    head = conn.execute(f"SELECT position, hash FROM {head_table} WHERE id = 1").fetchone()
    bound = conn.execute(f"SELECT MAX({pos}) FROM {source.qualified()}").fetchone()[0] or 0
    return ((int(head[0]), bytes(head[1])) if head else None), int(bound)


def read_head(store: EventStore) -> tuple[int, bytes] | None:
    """The writer's chain head (position, global hash), or None before the first chained event."""
    source = _source(store)
    with _connect(source) as conn:
        return _read_head_and_bound(conn, source)[0]


def _global_hash_at(store: EventStore, position: int) -> bytes | None:
    source = _source(store)
    pos = "notification_id" if source.postgres else "rowid"
    with _connect(source) as conn:
        row = conn.execute(
            f"SELECT chain_global FROM {source.qualified()} WHERE {pos} = {'%s' if source.postgres else '?'}", (position,)
        ).fetchone()
    return bytes(row[0]) if row and row[0] is not None else None


# ---------------------------------------------------------------------------- verify


class CheckpointFileError(ValueError):
    """A checkpoint file that cannot be read as one (missing, unreadable, a line that is no
    checkpoint): nothing to compare the chain with, which is not a broken link."""

    def __init__(self, path: Path | str, line: int | None, problem: str) -> None:
        self.path, self.line, self.problem = Path(path), line, problem
        super().__init__(f"{path}{f' line {line}' if line else ''}: {problem}")


_HEX_DIGEST = re.compile(r"[0-9a-fA-F]{64}")


def read_checkpoints(path: Path | str) -> list[Checkpoint]:
    """The checkpoints of a file, one JSON object a line as :meth:`Checkpoint.line` writes
    them (blank lines skipped); anything else raises :class:`CheckpointFileError`."""
    try:
        data = Path(path).read_bytes()
    except FileNotFoundError:
        raise CheckpointFileError(path, None, "no such file") from None
    except IsADirectoryError:
        raise CheckpointFileError(path, None, "is a directory, not a checkpoint file") from None
    except OSError as exc:
        raise CheckpointFileError(path, None, f"cannot be read ({exc.strerror or exc})") from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise CheckpointFileError(path, data[: exc.start].count(b"\n") + 1, "not UTF-8 text") from None
    return [_checkpoint(path, number, line) for number, line in enumerate(text.splitlines(), 1) if line.strip()]


def _checkpoint(path: Path | str, number: int, line: str) -> Checkpoint:
    def bad(problem: str) -> CheckpointFileError:
        return CheckpointFileError(path, number, problem)

    try:
        d = json.loads(line)
    except json.JSONDecodeError as exc:
        raise bad(f"not JSON ({exc.msg} at column {exc.colno})") from None
    except (ValueError, RecursionError) as exc:  # a number of 5,000 digits, [[[… nested too deep
        raise bad(f"not JSON ({exc})") from None
    if not isinstance(d, dict):
        raise bad('not a checkpoint: expected {"position": N, "global_hash": "<64 hex digits>", ...}')
    for key in ("position", "global_hash"):
        if key not in d:
            raise bad(f'no "{key}" (a checkpoint has "position" and "global_hash"; this line has {_shown(sorted(d))})')
    position = d["position"]
    # bool is an int; a float or "5.7" would be cut to another position without a word.
    if isinstance(position, str) and position.isascii() and position.isdigit():
        position = int(position)
    if not isinstance(position, int) or isinstance(position, bool) or position < 1:
        raise bad(f"position {_shown(d['position'])} is not a whole number from 1")
    digest = d["global_hash"]
    if not isinstance(digest, str) or not _HEX_DIGEST.fullmatch(digest):
        raise bad(f"global_hash {_shown(digest)} is not a SHA-256 in hex (64 digits)")
    return Checkpoint(position, digest.lower(), str(d.get("at", "")), str(d.get("reason", "")))


def _shown(value: Any) -> str:
    """A value quoted in a one-line message, cut short."""
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def verify(
    store: EventStore,
    *,
    checkpoints: Path | str | Iterable[Checkpoint] | None = None,
    workers: int | None = None,
    max_breaks: int = 100,
) -> VerifyReport:
    """Checks every stream chain, the global chain, the head and the checkpoints (a file
    of them or a list; None: the store's own file; a file that cannot be read raises
    :class:`CheckpointFileError` before anything is checked); reports the broken links in position
    order, the first of them first. Each link is checked against the stored hash of its
    predecessor, so one changed event breaks its own links only and is named exactly.

    Two passes over one snapshot: the global chain (small columns) here, the stream chains
    (every stored byte) in ``workers`` processes, each taking a share of the streams
    (default: SQLite, one per CPU for a large store; otherwise the stream pass runs here)."""
    started = time.perf_counter()
    if checkpoints is None:
        own = default_checkpoint_file(store)
        marks = read_checkpoints(own) if own is not None and own.exists() else []
    elif isinstance(checkpoints, str | Path):
        marks = read_checkpoints(checkpoints)
    else:
        marks = list(checkpoints)
    source = _source(store)
    with _connect(source) as conn:
        if source.postgres:
            snapshot = conn.execute("SELECT pg_export_snapshot()").fetchone()[0]
        head, bound = _read_head_and_bound(conn, source)
        source = replace(source, bound=bound, snapshot=snapshot if source.postgres else None)
        if workers is None:
            # SQLite: a large store's stream chains over one process per CPU (measured 1.5x on
            # two cores). PostgreSQL: one, as its server scans the table once per worker on
            # the same CPUs (measured slower with two); ``workers`` overrides.
            workers = min(os.cpu_count() or 1, 4) if bound > 200_000 and not source.postgres else 1
        if workers > 1:
            import multiprocessing
            from concurrent.futures import ProcessPoolExecutor

            with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("fork")) as pool:
                futures = [pool.submit(_stream_pass, source, part, workers, max_breaks) for part in range(workers)]
                glob = _global_pass(conn, source, head, marks, max_breaks)
                stream_breaks = [b for f in futures for b in f.result()]
        else:
            glob = _global_pass(conn, source, head, marks, max_breaks)
            stream_breaks = _stream_pass(source, 0, 1, max_breaks, conn)
    breaks = sorted(glob.breaks + stream_breaks, key=lambda b: b.position)[:max_breaks]
    _classify_swaps(breaks)
    return VerifyReport(
        ok=not breaks,
        events_checked=glob.checked,
        unchained_before_start=glob.unchained_before,
        head_position=glob.last_position,
        head_hash=glob.last_global.hex(),
        checkpoints_checked=len(marks),
        seconds=time.perf_counter() - started,
        breaks=breaks,
    )


@dataclass
class _GlobalResult:
    checked: int = 0
    unchained_before: int = 0
    last_position: int = 0
    last_global: bytes = GENESIS
    breaks: list[Break] = field(default_factory=list)


def _global_pass(conn: Any, source: _Source, head: tuple[int, bytes] | None, marks: list[Checkpoint], max_breaks: int) -> _GlobalResult:
    """The global chain: each event names its predecessor (``chain_prev``) and hashes onto
    its stored global hash; then the head, then the checkpoints."""
    out = _GlobalResult()
    breaks = out.breaks
    wanted = {c.position for c in marks}
    seen_at: dict[int, bytes | None] = {}
    head_position = head[0] if head is not None else 0
    first_after_head: int | None = None
    started = False
    last_position, last_global = 0, GENESIS
    unchained_before = unchained_after = total = 0
    sha = _sha256
    pack = struct.Struct(">q").pack

    def add(b: Break) -> None:
        if len(breaks) < max_breaks:
            breaks.append(b)

    # Only the links: which event a break is at is looked up afterwards (_name_events).
    for page in _pages(conn, source, "chain_stream, chain_global, chain_prev"):
        total += len(page)
        for position, s_hash, g_hash, prev_pos in page:
            if wanted and position in wanted:
                seen_at[position] = g_hash
            if prev_pos is None or s_hash is None or g_hash is None:
                if started:
                    unchained_after += 1
                    add(Break(position, "inserted", "an event without chain links after the chain began"))
                else:
                    unchained_before += 1
                continue
            started = True
            if prev_pos == last_position:
                if sha(last_global + pack(position) + s_hash).digest() != g_hash:
                    add(Break(position, "rewritten", "the global link does not match: the event's hashes were rewritten"))
            elif prev_pos > last_position:
                add(Break(prev_pos, "deleted", f"position {position} names {prev_pos} as its predecessor, which is missing"))
            elif prev_pos == 0:
                add(Break(position, "inserted", "a second genesis: the event claims to start the chain"))
            else:
                add(Break(last_position, "inserted", f"position {last_position} is not in the chain: {position} names {prev_pos}"))
            last_position, last_global = position, g_hash
        if first_after_head is None and page[-1][0] > head_position:  # only the page the head is in
            first_after_head = next((row[0] for row in page if row[0] > head_position and row[3] is not None), None)
    last_global = bytes(last_global)
    if head is not None:
        if head_position > last_position:
            add(
                Break(head_position, "deleted", f"the chain head names position {head_position}; the last chained event is {last_position}")
            )
        elif head_position < last_position:
            add(
                Break(
                    first_after_head or last_position, "inserted", f"events after the chain head ({head_position}), up to {last_position}"
                )
            )
        elif head[1] != last_global:
            add(Break(head_position, "rewritten", "the chain head's hash differs from the last event's"))
    elif started:
        add(Break(last_position, "rewritten", "chained events but no chain head"))
    for mark in marks:
        if mark.position not in seen_at:
            add(Break(mark.position, "checkpoint", f"checkpoint of {mark.at}: position {mark.position} is missing"))
        elif (got := seen_at[mark.position]) is None or bytes(got).hex() != mark.global_hash:
            add(
                Break(
                    mark.position,
                    "checkpoint",
                    f"checkpoint of {mark.at}: the global hash at {mark.position} differs (the chain was rewritten)",
                )
            )
    _name_events(conn, source, breaks)
    out.checked = total - unchained_before - unchained_after
    out.unchained_before, out.last_position, out.last_global = unchained_before, last_position, last_global
    return out


def _name_events(conn: Any, source: _Source, breaks: list[Break]) -> None:
    """The stream, version and topic of the events the breaks are at (those still there)."""
    pos = "notification_id" if source.postgres else "rowid"
    mark = "%s" if source.postgres else "?"
    sql = f"SELECT originator_id, originator_version, topic FROM {source.qualified()} WHERE {pos} = {mark}"
    for b in breaks:
        if b.stream is None:
            row = conn.execute(sql, (b.position,)).fetchone()
            if row is not None:
                b.stream, b.version, b.topic = _oid_text(row[0]), row[1], row[2]


def _stream_pass(source: _Source, part: int, parts: int, max_breaks: int, conn: Any = None) -> list[Break]:
    """Every stream link of the streams of share ``part`` (of ``parts``), against the
    stored hash of the stream's previous event; in a worker process, or here with ``conn``."""
    if conn is None:
        with _connect(source) as own:
            return _stream_pass(source, part, parts, max_breaks, own)
    where = ""
    if parts > 1:  # a share of the streams, chosen by the database (rows of other shares never reach Python)
        where = (
            f"AND get_byte(uuid_send(originator_id), 15) %% {parts} = {part}"
            if source.postgres
            else f"AND unicode(substr(originator_id, 32, 1)) % {parts} = {part}"
        )
    breaks: list[Break] = []
    streams: dict[Any, tuple[int, bytes | None]] = {}  # stream → (last version, its stored hash); ~150 bytes a stream
    topic_parts: dict[str, bytes] = {}  # topic → its length and bytes, as hashed (few topics)
    get = streams.get
    sha = _sha256
    join = b"".join
    pack = struct.Struct(">q").pack
    zero = GENESIS
    fromhex = None if source.postgres else bytes.fromhex

    def add(b: Break) -> None:
        if len(breaks) < max_breaks:
            breaks.append(b)

    # PostgreSQL hands the id over as its 16 bytes; SQLite stores 32 hex digits.
    columns = ("uuid_send(originator_id)" if source.postgres else "originator_id") + ", originator_version, topic, state, chain_stream"
    for page in _pages(conn, source, columns, where):
        for position, key, version, topic, state, s_hash in page:
            if s_hash is None:  # unchained: the global pass reports it; a successor chains to the genesis
                streams[key] = (version, None)
                continue
            oid = fromhex(key) if fromhex is not None else key
            part_bytes = topic_parts.get(topic)
            if part_bytes is None:
                encoded = topic.encode()
                part_bytes = topic_parts[topic] = len(encoded).to_bytes(4, "big") + encoded
            before = get(key)
            if before is not None and version == before[0] + 1:
                previous: bytes | None = before[1] or zero
            elif before is None and version == 1:
                previous = zero
            else:
                previous = _odd_version(add, before, position, oid, version, topic, state, s_hash)
            if previous is not None and sha(join((previous, oid, pack(version), part_bytes, state))).digest() != s_hash:
                add(
                    Break(
                        position,
                        "changed",
                        "the stored event does not match its stream hash",
                        _oid_text(oid),
                        version,
                        topic,
                        bytes(state),
                        previous,
                        bytes(s_hash),
                    )
                )
            streams[key] = (version, s_hash)
    return breaks


def _odd_version(
    add: Any, before: tuple[int, bytes | None] | None, position: int, oid: bytes, version: int, topic: str, state: bytes, s_hash: bytes
) -> bytes | None:
    """A stream event that does not follow the version seen last: reports why. The writer
    chains a stream's first event to the genesis; a later one, to its predecessor."""
    if before is None:
        if _link(GENESIS, oid, version, topic.encode(), state) != s_hash:
            add(Break(position, "deleted", f"versions before {version} are missing", _oid_text(oid), version - 1, topic))
        return None
    last_version = before[0]
    if version > last_version:
        add(Break(position, "deleted", f"versions {last_version + 1}..{version - 1} are missing", _oid_text(oid), last_version + 1, topic))
    else:
        add(Break(position, "reordered", f"version {version} comes after version {last_version}", _oid_text(oid), version, topic))
    return None


def _link(previous: bytes, oid: bytes, version: int, topic_bytes: bytes, state: bytes) -> bytes:
    return _sha256(
        b"".join((previous, oid, version.to_bytes(8, "big", signed=True), len(topic_bytes).to_bytes(4, "big"), topic_bytes, state))
    ).digest()


def _oid_text(oid: Any) -> str:
    if isinstance(oid, str):  # SQLite: 32 hex digits
        return str(uuid.UUID(oid))
    if isinstance(oid, uuid.UUID):
        return str(oid)
    return str(uuid.UUID(bytes=bytes(oid)))


def _classify_swaps(breaks: list[Break]) -> None:
    """Two changed events whose states, exchanged, match both their hashes were swapped."""
    changed = [b for b in breaks if b.what == "changed" and b._state is not None]
    for i, a in enumerate(changed):
        for b in changed[i + 1 :]:
            if a.what != "changed" or b.what != "changed":
                continue
            assert a._state is not None and b._state is not None and a._previous is not None and b._previous is not None
            a_oid, b_oid = uuid.UUID(a.stream or "").bytes, uuid.UUID(b.stream or "").bytes
            a_fit = _link(a._previous, a_oid, a.version or 0, (a.topic or "").encode(), b._state) == a._stored
            b_fit = _link(b._previous, b_oid, b.version or 0, (b.topic or "").encode(), a._state) == b._stored
            if a_fit and b_fit:
                for x, y in ((a, b), (b, a)):
                    x.what = "swapped"
                    x.detail = f"its stored state is the one of position {y.position} (stream {y.stream} version {y.version})"


# ---------------------------------------------------------------------------- checkpoints


def default_checkpoint_file(store: EventStore) -> Path | None:
    return getattr(store, "audit_checkpoint_file", None)


def checkpoint_file(settings: Settings) -> Path:
    return settings.audit_checkpoint_file or settings.data_dir / CHECKPOINTS_FILE


_file_lock = threading.Lock()


def write_checkpoint(
    store: EventStore, path: Path | str | None = None, *, reason: str = "on demand", position: int | None = None
) -> Checkpoint | None:
    """Appends the chain head (or the chained event at ``position``) to the checkpoint
    file (the store's own file by default) and logs it; None before the first chained event."""
    if position is None:
        head = read_head(store)
        if head is None:
            return None
        position, digest = head
    else:
        found = _global_hash_at(store, position)
        if found is None:
            return None
        digest = found
    mark = Checkpoint(position, digest.hex(), datetime.now(UTC).isoformat(timespec="seconds"), reason)
    target = Path(path) if path is not None else default_checkpoint_file(store)
    if target is not None:
        target.parent.mkdir(parents=True, exist_ok=True)
        with _file_lock, target.open("a", encoding="utf-8") as f:
            f.write(mark.line() + "\n")
            f.flush()
    # In the text too: the log formatter (infra/logging.py) does not render ``extra`` fields.
    log.info(
        "audit chain checkpoint: position %s, global hash %s (%s)",
        mark.position,
        mark.global_hash,
        reason,
        extra={"position": mark.position, "global_hash": mark.global_hash, "reason": reason},
    )
    return mark


class Checkpointer:
    """Writes a checkpoint whenever a commit's positions cross a multiple of ``every``.
    Positions are global, so across processes the batch that crosses is the one that writes."""

    def __init__(self, store: EventStore, every: int) -> None:
        self.store = store
        # Off for a store whose recorder does not chain (unchained, in-memory).
        self.every = every if getattr(store.recorder, "chained", False) else 0

    def after_commit(self, recordings: Sequence[Any]) -> None:
        """``recordings``: what the store just committed (the library's ``Recording``s)."""
        if self.every <= 0 or not recordings:
            return
        first, last = recordings[0].notification.id, recordings[-1].notification.id
        if last // self.every > (first - 1) // self.every:
            try:
                write_checkpoint(self.store, reason="periodic", position=last)
            except Exception:  # a checkpoint must never fail a commit that is already durable
                log.exception("audit chain checkpoint failed")
