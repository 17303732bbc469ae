"""Keys per citizen, apart from the events, for crypto-shredding (issue 13).

The event store encrypts every ``personal`` field with AES-GCM under a key of the
citizen it belongs to (``infra/transcoder.py``); the keys live in ``citizen_keys``, a
table of the store's own database (the SQLite file or the PostgreSQL database), never
beside the events. Destroying a citizen's keys erases their personal data everywhere it
is read from the store: the events stay and replay, their ``personal`` values read as
``[erased]``.

* **Subjects.** A key belongs to a *subject*: the citizen's id when the event names the
  citizen (``citizen_id``, or the citizen's own stream); for a caller not known yet, the
  id their phone number or email is claimed under (``domain.citizens.aggregate.identity_id``);
  for a notification, whoever its request's key belongs to. ``citizen_key_links`` records
  which streams and identities belong to which citizen (from the events themselves:
  a request names its citizen, an identity claim names its citizen), so an erasure covers
  the caller's earlier calls and the messages sent to them.
* **Durable with the events.** A committed event never names a key that was not stored.
  On PostgreSQL the keys (and links) a batch needs are *staged* (:meth:`CitizenKeys.prepare`
  with ``stage=True``) and written by the event store's append function in the events' own
  transaction (``infra/pg_recorder.py``): no round trip of their own. A subject the
  process has no key for gets a fresh one without asking the table (a subject may hold
  several keys; an erasure destroys them all), so the write path never reads keys. Staged
  keys are the writing thread's own until its transaction commits; if it fails they are
  dropped. On SQLite, and for saves outside a batch, keys are written in their own
  committed transaction just before the events.
* **Caches.** Keys are cached in memory. An erasure (here or in another process: API
  nodes, Kafka consumers, the relay) appends to ``citizen_key_erasures``; every process
  checks its highest id at most once a second before using a cached key, and drops its
  caches (and the event store's aggregate caches) when it moved.
* **Erasure.** The key material is deleted (the row stays as a tombstone, so a key that
  is gone reads as erased, while a key id nobody ever stored, or a changed ciphertext,
  fails loudly).
"""

from __future__ import annotations

import base64
import contextlib
import logging
import ssl
import threading
import time
from binascii import b2a_base64
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

log = logging.getLogger("hotline.privacy")

RECHECK_SECONDS = 1.0


class KeyMissing(RuntimeError):
    """A ciphertext names a key the key table never held: the store and its key table do
    not belong together (or a row was removed by hand). Never read as an erasure."""


@dataclass(frozen=True)
class Sealed:
    """An encrypted ``personal`` field as stored: key id, nonce, ciphertext (with its
    tag), and the field names (``given``: those with a value; ``empty``: those None),
    so an erased field keeps its shape."""

    key_id: str
    nonce: bytes
    ciphertext: bytes
    given: tuple[str, ...]
    empty: tuple[str, ...]

    def to_json(self) -> dict[str, Any]:
        return {
            "k": self.key_id,
            "n": base64.b64encode(self.nonce).decode(),
            "c": base64.b64encode(self.ciphertext).decode(),
            "f": list(self.given),
            "z": list(self.empty),
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Sealed:
        return cls(
            key_id=str(data["k"]),
            nonce=base64.b64decode(data["n"]),
            ciphertext=base64.b64decode(data["c"]),
            given=tuple(data.get("f") or ()),
            empty=tuple(data.get("z") or ()),
        )


def random_bytes(n: int) -> bytes:
    """Random bytes from OpenSSL's generator (a CSPRNG, reseeded after a fork), for nonces
    and new keys. Not ``os.urandom``: it lets go of the GIL for its system call, and the
    group committer, which seals every event of a batch, then queued behind every other
    thread to get it back (3.9 ms a call beside 8 busy threads, against 8 µs here; a
    third of the batch's time with 32 clients)."""
    return ssl.RAND_bytes(n)


def _new_key() -> tuple[str, bytes]:
    """A key id (128 random bits in hex) and 256 bits of key material."""
    return random_bytes(16).hex(), random_bytes(32)


ERASED_KEY = b""  # the cache's mark for a key that was destroyed


class CitizenKeys:
    """The key table of one event store, with its caches."""

    def __init__(self, datastore: Any, *, postgres: bool, dsn: str | None = None) -> None:
        self.datastore = datastore
        self.postgres = postgres
        self.dsn = dsn
        self._writers: Any = None  # PostgreSQL: autocommit connections for the write path
        self._writer_lock = threading.Lock()
        self._p = "%s" if postgres else "?"
        self._lock = threading.Lock()
        self._keys: dict[str, bytes] = {}  # key id -> key material (ERASED_KEY: destroyed)
        self._ciphers: dict[str, AESGCM] = {}  # key id -> its cipher (the write path's)
        self._active: dict[str, str] = {}  # subject -> key id to encrypt with
        self._links: dict[str, str] = {}  # subject (stream or identity) -> citizen
        self._stored_links: dict[str, str] = {}  # the links known to be in the table
        self._erasure_mark = 0
        self._checked_at = 0.0
        self.on_erasure: list[Callable[[], None]] = []  # called when another process erased
        # Keys and links staged for the calling thread's next append (see "Durable with the
        # events"); set up by the PostgreSQL recorder, which writes them (``append_keys``).
        self.append_keys = False
        self._staged = threading.local()
        self._create_tables()
        self._erasure_mark = self._current_mark()
        self._checked_at = time.monotonic()

    # ------------------------------------------------------------------ tables
    def _create_tables(self) -> None:
        blob = "BYTEA" if self.postgres else "BLOB"
        serial = "BIGSERIAL PRIMARY KEY" if self.postgres else "INTEGER PRIMARY KEY AUTOINCREMENT"
        statements = (
            f"CREATE TABLE IF NOT EXISTS citizen_keys (key_id TEXT PRIMARY KEY, subject_id TEXT NOT NULL, "
            f"key_material {blob}, created_at TEXT NOT NULL, erased_at TEXT)",
            "CREATE INDEX IF NOT EXISTS citizen_keys_subject ON citizen_keys (subject_id)",
            "CREATE TABLE IF NOT EXISTS citizen_key_links (subject_id TEXT PRIMARY KEY, citizen_id TEXT NOT NULL)",
            "CREATE INDEX IF NOT EXISTS citizen_key_links_citizen ON citizen_key_links (citizen_id)",
            f"CREATE TABLE IF NOT EXISTS citizen_key_erasures (id {serial}, subject_id TEXT NOT NULL, erased_at TEXT NOT NULL)",
        )
        if self._tables_exist():
            # CREATE INDEX IF NOT EXISTS still takes its table's SHARE lock: a process starting
            # while others write keys would deadlock with them (two tables locked in turn).
            return
        for attempt in range(5):
            try:
                with self._tx() as curs:
                    for sql in statements:
                        curs.execute(sql)
                return
            except Exception:  # two processes creating the tables at once (PostgreSQL's catalog race)
                if attempt == 4:
                    raise
                time.sleep(0.05 * (attempt + 1))

    _OBJECTS = ("citizen_keys", "citizen_keys_subject", "citizen_key_links", "citizen_key_links_citizen", "citizen_key_erasures")

    def _tables_exist(self) -> bool:
        if self.postgres:
            rows = self._rows("SELECT " + ", ".join(f"to_regclass('{name}') IS NOT NULL" for name in self._OBJECTS))
            return bool(rows) and all(rows[0])
        marks = ", ".join("?" for _ in self._OBJECTS)
        rows = self._rows(f"SELECT COUNT(*) FROM sqlite_master WHERE name IN ({marks})", self._OBJECTS)
        return bool(rows) and int(rows[0][0]) == len(self._OBJECTS)

    @contextlib.contextmanager
    def _tx(self) -> Iterator[Any]:
        with self.datastore.transaction(commit=True) as curs:
            yield curs

    def _rows(self, sql: str, params: Iterable[Any] = ()) -> list[tuple[Any, ...]]:
        with self.datastore.transaction(commit=False) as curs:
            curs.execute(sql, tuple(params))
            return [_tuple(r) for r in curs.fetchall()]

    def _current_mark(self) -> int:
        rows = self._rows("SELECT COALESCE(MAX(id), 0) FROM citizen_key_erasures")
        return int(rows[0][0]) if rows else 0

    # ------------------------------------------------------------------ caches
    def recheck(self, force: bool = False) -> None:
        """Drops every cache if any process erased a key since the last check (at most
        once a second unless forced)."""
        now = time.monotonic()
        if not force and now - self._checked_at < RECHECK_SECONDS:
            return
        self._checked_at = now
        mark = self._current_mark()
        if mark != self._erasure_mark:
            with self._lock:
                self._erasure_mark = mark
                self._forget()
            for hook in self.on_erasure:
                hook()

    def _forget(self) -> None:
        """Every cache, links included: an erasure releases the citizen's identity claims,
        and a link remembered from before would key a new caller with the erased one."""
        self._keys.clear()
        self._ciphers.clear()
        self._active.clear()
        self._links.clear()
        self._stored_links.clear()

    def relink(self, links: Iterable[tuple[str, str]]) -> None:
        """Moves subjects to another citizen (a released identity claim claimed again by a
        new citizen): the one kind of link that changes, so the one written over."""
        links = [(s, c) for s, c in dict(links).items() if s != c]
        if not links:
            return
        p = self._p
        with self._tx() as curs:
            curs.executemany(
                f"INSERT INTO citizen_key_links (subject_id, citizen_id) VALUES ({p}, {p}) "
                "ON CONFLICT (subject_id) DO UPDATE SET citizen_id = excluded.citizen_id",
                links,
            )
        with self._lock:
            self._links.update(links)
            self._stored_links.update(links)

    def owner(self, subject: str) -> str:
        """The citizen a stream or identity belongs to, as far as the links say (itself if none)."""
        seen = {subject}
        while (nxt := self._links.get(subject)) is not None and nxt not in seen:
            seen.add(nxt)
            subject = nxt
        return subject

    # ------------------------------------------------------------------ write path
    def remember(self, links: Iterable[tuple[str, str]]) -> list[tuple[str, str]]:
        """Takes links into the cache at once (a subject that became a citizen's takes the
        citizen's key); returns those not yet stored, for :meth:`prepare` to store."""
        given = [(s, c) for s, c in dict(links).items() if s != c]
        self._links.update(given)
        return [(s, c) for s, c in given if self._stored_links.get(s) != c]

    def prepare(self, subjects: Iterable[str], links: Iterable[tuple[str, str]], *, stage: bool = False) -> None:
        """Makes sure every subject has a key and every link is stored: staged for this
        thread's next append (``stage``, when the recorder writes them), else in one
        committed transaction (nothing to do when all are cached)."""
        self.recheck()
        staged = self._staging()
        if stage and self.append_keys:
            staged.clear()  # left by a save that failed before its append: never stored
        new_links = self.remember(links)
        wanted = [s for s in dict.fromkeys(self.owner(s) for s in subjects) if s not in self._active and s not in staged.active]
        if not wanted and not new_links:
            return
        if stage and self.append_keys:
            for subject in wanted:
                key_id, material = _new_key()
                staged.keys.append((key_id, subject, material))
                staged.active[subject] = key_id
                staged.material[key_id] = material
            staged.links.extend(new_links)
            return
        if self.postgres and self.dsn:
            found, created = self._prepare_pg(wanted, new_links)
        else:
            found, created = self._prepare_tx(wanted, new_links)
        with self._lock:
            for subject, (key_id, material) in {**found, **created}.items():
                self._keys[key_id] = material
                self._active[subject] = key_id
            self._stored_links.update(new_links)

    _PG_PREPARE = (
        "WITH existing AS (SELECT key_id, subject_id, key_material FROM citizen_keys "
        "  WHERE subject_id = ANY(%(wanted)s::text[]) AND key_material IS NOT NULL), "
        "put_links AS (INSERT INTO citizen_key_links (subject_id, citizen_id) "
        "  SELECT * FROM unnest(%(link_subjects)s::text[], %(link_citizens)s::text[]) ON CONFLICT (subject_id) DO NOTHING), "
        "put_keys AS (INSERT INTO citizen_keys (key_id, subject_id, key_material, created_at) "
        "  SELECT n.k, n.s, n.m, %(stamp)s FROM unnest(%(key_ids)s::text[], %(wanted)s::text[], %(materials)s::bytea[]) AS n(k, s, m) "
        "  WHERE NOT EXISTS (SELECT 1 FROM existing e WHERE e.subject_id = n.s)) "
        "SELECT key_id, subject_id, key_material FROM existing"
    )

    def _prepare_pg(
        self, wanted: list[str], links: list[tuple[str, str]]
    ) -> tuple[dict[str, tuple[str, bytes]], dict[str, tuple[str, bytes]]]:
        """One statement, one round trip, on an autocommit connection whose commits do not
        wait for their own flush (``synchronous_commit=off``): the events' transaction, which
        starts after it and waits for its flush, makes these rows durable no later than the
        events that need them (the log is written in order). The group committer runs this
        for each batch, so round trips here are paid by every command."""
        fresh = {s: _new_key() for s in wanted}
        params = {
            "wanted": wanted,
            "key_ids": [fresh[s][0] for s in wanted],
            "materials": [fresh[s][1] for s in wanted],
            "link_subjects": [s for s, _ in links],
            "link_citizens": [c for _, c in links],
            "stamp": datetime.now(UTC).isoformat(),
        }
        if self._writers is None:
            from psycopg_pool import ConnectionPool

            with self._writer_lock:
                if self._writers is None:
                    self._writers = ConnectionPool(
                        str(self.dsn),
                        min_size=1,
                        max_size=8,
                        kwargs={"autocommit": True, "options": "-c synchronous_commit=off"},
                        check=ConnectionPool.check_connection,
                        open=True,
                        name="citizen-keys",
                    )
        with self._writers.connection() as conn:
            rows = conn.execute(self._PG_PREPARE, params, prepare=True).fetchall()
        found = {subject: (key_id, bytes(material)) for key_id, subject, material in rows}
        return found, {s: fresh[s] for s in wanted if s not in found}

    def _prepare_tx(
        self, wanted: list[str], new_links: list[tuple[str, str]]
    ) -> tuple[dict[str, tuple[str, bytes]], dict[str, tuple[str, bytes]]]:
        p = self._p
        found: dict[str, tuple[str, bytes]] = {}
        created: dict[str, tuple[str, bytes]] = {}
        # One transaction, committed without waiting for its own flush (PostgreSQL's
        # synchronous_commit off, SQLite's WAL): the log is written in order, so the
        # events' transaction, which starts after this one committed and waits for its
        # flush, makes these rows durable no later than the events that need them. A key
        # without events (the batch then failed) is harmless.
        with self._tx() as curs:
            if self.postgres:
                curs.execute("SET LOCAL synchronous_commit = off")
            if wanted:
                marks = ", ".join([p] * len(wanted))
                curs.execute(
                    f"SELECT key_id, subject_id, key_material FROM citizen_keys WHERE subject_id IN ({marks}) AND key_material IS NOT NULL",
                    tuple(wanted),
                )
                for key_id, subject, material in map(_tuple, curs.fetchall()):
                    found.setdefault(subject, (key_id, bytes(material)))
            created = {s: _new_key() for s in wanted if s not in found}
            stamp = datetime.now(UTC).isoformat()
            if created:
                curs.executemany(
                    f"INSERT INTO citizen_keys (key_id, subject_id, key_material, created_at) VALUES ({p}, {p}, {p}, {p})",
                    [(key_id, subject, material, stamp) for subject, (key_id, material) in created.items()],
                )
            if new_links:
                conflict = "ON CONFLICT (subject_id) DO NOTHING" if self.postgres else "ON CONFLICT DO NOTHING"
                curs.executemany(f"INSERT INTO citizen_key_links (subject_id, citizen_id) VALUES ({p}, {p}) {conflict}", new_links)
        return found, created

    # ------------------------------------------------------------------ staging (PostgreSQL)
    def _staging(self) -> _Staged:
        staged: _Staged | None = getattr(self._staged, "value", None)
        if staged is None:
            staged = self._staged.value = _Staged()
        return staged

    def take_staged(self) -> _Staged | None:
        """The keys and links this thread staged, for the append that writes them with its
        events (None: nothing staged). Until :meth:`committed` they stay this thread's."""
        staged: _Staged | None = getattr(self._staged, "value", None)
        if staged is None or not (staged.keys or staged.links):
            return None
        self._staged.value = None
        return staged

    def committed(self, staged: _Staged) -> None:
        """The append that carried ``staged`` committed: its keys are every thread's now."""
        with self._lock:
            for key_id, subject, material in staged.keys:
                self._keys[key_id] = material
                self._active.setdefault(subject, key_id)
            self._stored_links.update(staged.links)

    def _key_for(self, owner: str) -> tuple[str, bytes]:
        staged: _Staged | None = getattr(self._staged, "value", None)
        if staged is not None and (key_id := staged.active.get(owner)) is not None:
            return key_id, staged.material[key_id]
        key_id = self._active.get(owner)
        if key_id is None:  # not prepared (a save outside the committer): stored now, durably
            self.prepare([owner], ())
            key_id = self._active[owner]
        return key_id, self._keys[key_id]

    def seal(self, subject: str, personal: dict[str, Any], aad: bytes, dumps: Callable[[Any], bytes]) -> Sealed:
        key_id, material = self._key_for(self.owner(subject))
        nonce = random_bytes(12)
        ciphertext = AESGCM(material).encrypt(nonce, dumps(personal), aad)
        given = tuple(k for k, v in personal.items() if v is not None)
        empty = tuple(k for k, v in personal.items() if v is None)
        return Sealed(key_id, nonce, ciphertext, given, empty)

    def seal_json(self, subject: str, personal: dict[str, Any], aad: bytes, dumps: Callable[[Any], bytes]) -> dict[str, Any]:
        """:meth:`seal`, already in its stored (JSON) form: the write path's."""
        key_id, material = self._key_for(self.owner(subject))
        cipher = self._ciphers.get(key_id)
        if cipher is None:
            cipher = self._ciphers[key_id] = AESGCM(material)
        nonce = random_bytes(12)
        given: list[str] = []
        empty: list[str] = []
        for k, v in personal.items():
            (empty if v is None else given).append(k)
        return {
            "k": key_id,
            "n": b2a_base64(nonce, newline=False).decode(),
            "c": b2a_base64(cipher.encrypt(nonce, dumps(personal), aad), newline=False).decode(),
            "f": given,
            "z": empty,
        }

    def stored_link(self, subject: str, citizen: str) -> bool | None:
        """True if this link is in the table (or staged with this thread's append); False if not (yet)."""
        if self._stored_links.get(subject) == citizen:
            return True
        staged: _Staged | None = getattr(self._staged, "value", None)
        return staged is not None and (subject, citizen) in staged.links

    # ------------------------------------------------------------------ read path
    def material(self, key_id: str) -> bytes:
        """The key (``ERASED_KEY`` once destroyed); :class:`KeyMissing` if never stored."""
        self.recheck()
        cached = self._keys.get(key_id)
        if cached is not None:
            return cached
        rows = self._rows(f"SELECT key_material FROM citizen_keys WHERE key_id = {self._p}", (key_id,))
        if not rows:
            raise KeyMissing(f"no key {key_id} in citizen_keys: this ciphertext does not belong to this store")
        material = ERASED_KEY if rows[0][0] is None else bytes(rows[0][0])
        with self._lock:
            self._keys[key_id] = material
        return material

    def preload(self, key_ids: Iterable[str]) -> None:
        """Fetches the keys among these not cached yet in one query (a reader about to
        decrypt a batch of events: the Kafka consumers completing personal data)."""
        self.recheck()
        missing = sorted({k for k in key_ids if k not in self._keys})
        for start in range(0, len(missing), 500):
            chunk = missing[start : start + 500]
            marks = ", ".join([self._p] * len(chunk))
            rows = self._rows(f"SELECT key_id, key_material FROM citizen_keys WHERE key_id IN ({marks})", chunk)
            with self._lock:
                for key_id, material in rows:
                    self._keys[str(key_id)] = ERASED_KEY if material is None else bytes(material)

    # ------------------------------------------------------------------ erasure
    def scope(self, citizen_id: str) -> list[str]:
        """Every subject that belongs to the citizen: the citizen, the streams and identities
        linked to them, and what is linked to those (a caller's calls before they were known)."""
        found = [citizen_id]
        frontier = [citizen_id]
        while frontier:
            marks = ", ".join([self._p] * len(frontier))
            rows = self._rows(f"SELECT subject_id FROM citizen_key_links WHERE citizen_id IN ({marks})", frontier)
            frontier = [r[0] for r in rows if r[0] not in found]
            found.extend(frontier)
        return found

    def destroy(self, subjects: Iterable[str]) -> int:
        """Deletes the key material of every key of these subjects (idempotent); returns
        how many keys were destroyed now. Other processes see it within a second."""
        subjects = list(dict.fromkeys(subjects))
        if not subjects:
            return 0
        p = self._p
        stamp = datetime.now(UTC).isoformat()
        marks = ", ".join([p] * len(subjects))
        with self._tx() as curs:
            curs.execute(f"SELECT COUNT(*) AS live FROM citizen_keys WHERE subject_id IN ({marks}) AND key_material IS NOT NULL", subjects)
            destroyed = int(_tuple(curs.fetchone())[0])
            curs.execute(
                f"UPDATE citizen_keys SET key_material = NULL, erased_at = {p} WHERE subject_id IN ({marks}) AND key_material IS NOT NULL",
                (stamp, *subjects),
            )
            for subject in subjects:
                curs.execute(f"INSERT INTO citizen_key_erasures (subject_id, erased_at) VALUES ({p}, {p})", (subject, stamp))
        with self._lock:
            self._forget()
        self.recheck(force=True)
        log.info("citizen keys destroyed", extra={"subjects": len(subjects), "keys": destroyed})
        return destroyed

    def live(self, subjects: Iterable[str]) -> bool:
        """Whether any of these subjects still has a key (something left to erase)."""
        subjects = list(dict.fromkeys(subjects))
        marks = ", ".join([self._p] * len(subjects))
        rows = self._rows(f"SELECT COUNT(*) FROM citizen_keys WHERE subject_id IN ({marks}) AND key_material IS NOT NULL", subjects)
        return bool(rows and rows[0][0])

    def close(self) -> None:
        with self._writer_lock:
            if self._writers is not None:
                self._writers.close()
                self._writers = None

    def counts(self) -> dict[str, int]:
        rows = self._rows("SELECT COUNT(*) AS total, COUNT(key_material) AS live FROM citizen_keys")
        total, live = rows[0]
        return {"keys": int(total), "live": int(live), "erased": int(total) - int(live)}


@dataclass
class _Staged:
    """One thread's keys and links waiting for the append that writes them."""

    keys: list[tuple[str, str, bytes]] = field(default_factory=list)  # (key id, subject, material)
    links: list[tuple[str, str]] = field(default_factory=list)  # (subject, citizen)
    active: dict[str, str] = field(default_factory=dict)  # subject -> staged key id
    material: dict[str, bytes] = field(default_factory=dict)  # staged key id -> material

    def clear(self) -> None:
        self.keys.clear()
        self.links.clear()
        self.active.clear()
        self.material.clear()


def _tuple(row: Any) -> tuple[Any, ...]:
    if isinstance(row, dict):
        return tuple(row.values())
    return tuple(row)
