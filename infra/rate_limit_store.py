"""A ``limits`` storage in PostgreSQL, so every API process counts against one limit.

Fixed window: one row per key in ``rate_limit_counters``, bumped by a single
``INSERT ... ON CONFLICT DO UPDATE`` that also restarts an expired window, so concurrent
processes never lose or double a hit. Moving window: one row per acquisition in
``rate_limit_entries``; an acquirer counts and inserts under a transaction-scoped advisory
lock on the key, so concurrent acquirers cannot together exceed the limit. The sliding
window counter (two fixed-window counters, weighted) takes the same lock.

Times are ``time.time()`` of the calling process (as in the library's own storages): the
API hosts' clocks are assumed to be in sync. The tables are UNLOGGED: a counter is worth
less than the WAL flush per request it would cost, and after a crash the limits just start
afresh. Expired rows are pruned, a batch at a time, every ``prune_interval`` seconds.
"""

from __future__ import annotations

import threading
import time
from contextlib import AbstractContextManager
from math import floor
from typing import Any

import sqlalchemy as sa
from limits.storage import MovingWindowSupport, SlidingWindowCounterSupport, Storage
from limits.storage.base import TimestampedSlidingWindow
from sqlalchemy.engine import Connection, Engine

SCHEME = "hotline+postgresql"
# Two-key advisory locks (space, hashtext(key)) live apart from the one-bigint keys the
# rest of Hotline takes (router leadership, schema creation), so a key's hash can never
# collide with a lock held for minutes by someone else.
_LOCK_SPACE = 0x524C494D  # "RLIM"
_SCHEMA_LOCK = 0  # objid, in that space, of the lock the table creators take turns under
_PRUNE_BATCH = 5000

_DDL = [
    "CREATE UNLOGGED TABLE IF NOT EXISTS rate_limit_counters ("
    " key text PRIMARY KEY, count bigint NOT NULL, expires_at double precision NOT NULL)",
    "CREATE INDEX IF NOT EXISTS rate_limit_counters_expires_at ON rate_limit_counters (expires_at)",
    "CREATE UNLOGGED TABLE IF NOT EXISTS rate_limit_entries ("
    " key text NOT NULL, at double precision NOT NULL, amount integer NOT NULL, expires_at double precision NOT NULL)",
    "CREATE INDEX IF NOT EXISTS rate_limit_entries_key_at ON rate_limit_entries (key, at)",
    "CREATE INDEX IF NOT EXISTS rate_limit_entries_expires_at ON rate_limit_entries (expires_at)",
]
_SCHEMA_LOCK_SQL = sa.text(f"SELECT pg_advisory_xact_lock({_LOCK_SPACE}, {_SCHEMA_LOCK})")
_KEY_LOCK = sa.text(f"SELECT pg_advisory_xact_lock({_LOCK_SPACE}, hashtext(:key))")

# An expired window restarts at this hit: the count and the expiry are replaced together.
_INCR = sa.text(
    "INSERT INTO rate_limit_counters AS c (key, count, expires_at) VALUES (:key, :amount, :expires_at)"
    " ON CONFLICT (key) DO UPDATE SET"
    " count = CASE WHEN c.expires_at <= :now THEN excluded.count ELSE c.count + excluded.count END,"
    " expires_at = CASE WHEN c.expires_at <= :now THEN excluded.expires_at ELSE c.expires_at END"
    " RETURNING count"
)
_GET = sa.text("SELECT count, expires_at FROM rate_limit_counters WHERE key = :key AND expires_at > :now")
_GET_TWO = sa.text("SELECT key, count FROM rate_limit_counters WHERE key IN (:a, :b) AND expires_at > :now")
_WINDOW = sa.text("SELECT min(at), coalesce(sum(amount), 0) FROM rate_limit_entries WHERE key = :key AND at > :since")
_PRUNE_KEY = sa.text("DELETE FROM rate_limit_entries WHERE key = :key AND at <= :since")
_ADD_ENTRY = sa.text("INSERT INTO rate_limit_entries (key, at, amount, expires_at) VALUES (:key, :at, :amount, :expires_at)")
_CLEAR_COUNTERS = sa.text("DELETE FROM rate_limit_counters WHERE key IN (:a, :b)")
_CLEAR_ENTRIES = sa.text("DELETE FROM rate_limit_entries WHERE key = :key")
_RESET = sa.text(
    "WITH c AS (DELETE FROM rate_limit_counters RETURNING key), e AS (DELETE FROM rate_limit_entries RETURNING key)"
    " SELECT count(DISTINCT key) FROM (SELECT key FROM c UNION ALL SELECT key FROM e) AS gone"
)
# SKIP LOCKED: pruning never waits for (or deadlocks with) a hit; a row it skips goes next time.
_PRUNE_COUNTERS = sa.text(
    "DELETE FROM rate_limit_counters WHERE key IN (SELECT key FROM rate_limit_counters"
    " WHERE expires_at <= :now LIMIT :batch FOR UPDATE SKIP LOCKED)"
)
_PRUNE_ENTRIES = sa.text(
    "DELETE FROM rate_limit_entries WHERE ctid = ANY(ARRAY(SELECT ctid FROM rate_limit_entries"
    " WHERE expires_at <= :now LIMIT :batch FOR UPDATE SKIP LOCKED))"
)


def engine_for(uri: str) -> Engine:
    """An engine for a ``hotline+postgresql://`` (or plain ``postgresql://``) URI, on psycopg 3."""
    for prefix in (f"{SCHEME}://", "postgresql+psycopg://", "postgresql://", "postgres://"):
        if uri.startswith(prefix):
            return sa.create_engine("postgresql+psycopg://" + uri[len(prefix) :], pool_pre_ping=True)
    raise ValueError(f"not a PostgreSQL URI: {uri!r}")


class PostgresStorage(Storage, MovingWindowSupport, SlidingWindowCounterSupport, TimestampedSlidingWindow):
    """Rate-limit counters shared by every process using the same PostgreSQL database.

    ``PostgresStorage(engine)`` with the read store's SQLAlchemy engine; or, through the
    library's registry, ``storage_from_string("hotline+postgresql://user@host:port/db")``.
    """

    STORAGE_SCHEME = [SCHEME]

    def __init__(
        self,
        engine: Engine | str,
        wrap_exceptions: bool = False,
        prune_interval: float = 60.0,
        **options: Any,
    ) -> None:
        # storage_from_string passes the URI where the engine goes.
        self.engine = engine_for(engine) if isinstance(engine, str) else engine
        self.prune_interval = prune_interval
        self._schema_ready = False
        self._schema_lock = threading.Lock()
        self._next_prune = time.time() + prune_interval
        super().__init__(None, wrap_exceptions=wrap_exceptions)

    @property
    def base_exceptions(self) -> type[Exception] | tuple[type[Exception], ...]:
        return sa.exc.SQLAlchemyError

    # ------------------------------------------------------------------ plumbing ---

    def _begin(self) -> AbstractContextManager[Connection]:
        """A transaction, the tables made first (once per instance)."""
        if not self._schema_ready:
            with self._schema_lock:
                if not self._schema_ready:
                    with self.engine.begin() as conn:
                        # CREATE ... IF NOT EXISTS still races on the catalog: creators take turns.
                        conn.execute(_SCHEMA_LOCK_SQL)
                        for ddl in _DDL:
                            conn.execute(sa.text(ddl))
                    self._schema_ready = True
        return self.engine.begin()

    def _maybe_prune(self, now: float) -> None:
        # A check-then-set race only means two threads prune once each: harmless.
        if now < self._next_prune:
            return
        self._next_prune = now + self.prune_interval
        with self.engine.begin() as conn:
            conn.execute(_PRUNE_COUNTERS, {"now": now, "batch": _PRUNE_BATCH})
            conn.execute(_PRUNE_ENTRIES, {"now": now, "batch": _PRUNE_BATCH})

    @staticmethod
    def _incr(conn: Connection, key: str, expiry: float, amount: int, now: float) -> int:
        row = conn.execute(_INCR, {"key": key, "amount": amount, "expires_at": now + expiry, "now": now}).one()
        return int(row[0])

    # ------------------------------------------------------------- fixed window ---

    def incr(self, key: str, expiry: float, amount: int = 1) -> int:
        now = time.time()
        with self._begin() as conn:
            count = self._incr(conn, key, expiry, amount, now)
        self._maybe_prune(now)
        return count

    def get(self, key: str) -> int:
        with self._begin() as conn:
            row = conn.execute(_GET, {"key": key, "now": time.time()}).first()
        return int(row[0]) if row else 0

    def get_expiry(self, key: str) -> float:
        now = time.time()
        with self._begin() as conn:
            row = conn.execute(_GET, {"key": key, "now": now}).first()
        # No live window: it would start (and so reset) now, as MemoryStorage answers.
        return float(row[1]) if row else now

    # ------------------------------------------------------------ moving window ---

    def acquire_entry(self, key: str, limit: int, expiry: int, amount: int = 1) -> bool:
        if amount > limit:
            return False
        with self._begin() as conn:
            conn.execute(_KEY_LOCK, {"key": key})
            # Read the clock once the lock is held, so entries are stamped in lock order.
            now = time.time()
            since = now - expiry
            conn.execute(_PRUNE_KEY, {"key": key, "since": since})
            used = int(conn.execute(_WINDOW, {"key": key, "since": since}).one()[1])
            if used + amount > limit:
                return False
            conn.execute(_ADD_ENTRY, {"key": key, "at": now, "amount": amount, "expires_at": now + expiry})
        self._maybe_prune(now)
        return True

    def get_moving_window(self, key: str, limit: int, expiry: int) -> tuple[float, int]:
        now = time.time()
        with self._begin() as conn:
            oldest, used = conn.execute(_WINDOW, {"key": key, "since": now - expiry}).one()
        return (float(oldest) if oldest is not None else now), int(used)

    # --------------------------------------------------- sliding window counter ---

    def _sliding_window(self, conn: Connection, key: str, expiry: int, now: float) -> tuple[int, float, int, float]:
        previous_key, current_key = self.sliding_window_keys(key, expiry, now)
        counts = {k: int(c) for k, c in conn.execute(_GET_TWO, {"a": previous_key, "b": current_key, "now": now})}
        previous_count, current_count = counts.get(previous_key, 0), counts.get(current_key, 0)
        # The windows' remaining lives, computed as MemoryStorage does (from the clock, not the rows).
        previous_ttl = 0.0 if previous_count == 0 else (1 - (((now - expiry) / expiry) % 1)) * expiry
        current_ttl = (1 - ((now / expiry) % 1)) * expiry + expiry
        return previous_count, previous_ttl, current_count, current_ttl

    def acquire_sliding_window_entry(self, key: str, limit: int, expiry: int, amount: int = 1) -> bool:
        if amount > limit:
            return False
        with self._begin() as conn:
            conn.execute(_KEY_LOCK, {"key": key})
            now = time.time()
            previous_count, previous_ttl, current_count, _ = self._sliding_window(conn, key, expiry, now)
            if floor(previous_count * previous_ttl / expiry + current_count) + amount > limit:
                return False
            # The current window's counter outlives it by one window: it is the next one's "previous".
            self._incr(conn, self.sliding_window_keys(key, expiry, now)[1], 2 * expiry, amount, now)
        self._maybe_prune(now)
        return True

    def get_sliding_window(self, key: str, expiry: int) -> tuple[int, float, int, float]:
        with self._begin() as conn:
            return self._sliding_window(conn, key, expiry, time.time())

    def clear_sliding_window(self, key: str, expiry: int) -> None:
        previous_key, current_key = self.sliding_window_keys(key, expiry, time.time())
        with self._begin() as conn:
            conn.execute(_KEY_LOCK, {"key": key})
            conn.execute(_CLEAR_COUNTERS, {"a": previous_key, "b": current_key})

    # -------------------------------------------------------------- maintenance ---

    def check(self) -> bool:
        try:
            with self.engine.connect() as conn:
                conn.execute(sa.text("SELECT 1"))
            return True
        except sa.exc.SQLAlchemyError:
            return False

    def clear(self, key: str) -> None:
        with self._begin() as conn:
            # Under the key's lock, so a concurrent acquirer sees all of the window or none.
            conn.execute(_KEY_LOCK, {"key": key})
            conn.execute(_CLEAR_COUNTERS, {"a": key, "b": key})
            conn.execute(_CLEAR_ENTRIES, {"key": key})

    def reset(self) -> int | None:
        """Clears every limit in the database (every process's); returns how many keys."""
        with self._begin() as conn:
            return int(conn.execute(_RESET).scalar_one())
