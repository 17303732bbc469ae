"""Leader election for processes of which one may be active at a time (the ACD router,
the Kafka relay).

PostgreSQL: the leader holds a session-level advisory lock on its own connection;
standbys try to take it every second or so. The server releases the lock as soon as the
leader's connection dies (the process killed, the network gone), so a standby's next try
succeeds. Each kind of process contends for its own key.

SQLite (embedded, one machine): an exclusive ``flock`` on a file beside the store, which
the kernel releases when the holding process dies.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import logging
import os
from pathlib import Path
from typing import Any, Protocol

log = logging.getLogger("hotline.leadership")

LOCK_KEY = 0x486F746C696E65  # "Hotline": the advisory lock every router contends for


def named_lock_key(name: str) -> int:
    """A positive 63-bit advisory-lock key for the contenders called ``name`` (``relay:kafka``):
    far from the projections' 31-bit keys, and positive so ``pg_locks`` shows it as written."""
    return int.from_bytes(hashlib.blake2b(f"hotline-leader:{name}".encode(), digest_size=8).digest(), "big") >> 1


class Leadership(Protocol):
    def acquire(self) -> bool: ...

    def still_leader(self) -> bool: ...

    def release(self) -> None: ...


class AlwaysLeader:
    """Embedded mode: one process, one router."""

    def acquire(self) -> bool:
        return True

    def still_leader(self) -> bool:
        return True

    def release(self) -> None:
        pass


class AdvisoryLockLeadership:
    """Leader election on PostgreSQL: ``pg_try_advisory_lock`` held by one connection.

    The lock lives as long as the session: if the leader process dies or its connection
    breaks, PostgreSQL releases it and the next standby's attempt succeeds. ``conn`` is the
    lock-holding session while leading: a statement that succeeds on it proves the lock is
    still held (the relay writes its bookkeeping there, which fences a leader that lost it)."""

    def __init__(self, dsn: str, key: int = LOCK_KEY, **connect: Any) -> None:
        self.dsn = dsn
        self.key = key
        self.connect = {"autocommit": True, "connect_timeout": 5, **connect}
        self.conn: Any = None

    def acquire(self) -> bool:
        import psycopg

        try:
            if self.conn is None or self.conn.closed:
                self.conn = psycopg.connect(self.dsn, **self.connect)
            row = self.conn.execute("SELECT pg_try_advisory_lock(%s)", (self.key,)).fetchone()
            return bool(row and row[0])
        except Exception as exc:
            log.warning("leader election: %s", exc)
            self._drop()
            return False

    def still_leader(self) -> bool:
        try:
            if self.conn is None or self.conn.closed:
                return False
            row = self.conn.execute(
                "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND pid = pg_backend_pid()"
                " AND classid = %s AND objid = %s AND granted",
                (self.key >> 32, self.key & 0xFFFFFFFF),
            ).fetchone()
            return bool(row and row[0])
        except Exception:
            self._drop()
            return False

    def release(self) -> None:
        try:
            if self.conn is not None and not self.conn.closed:
                self.conn.execute("SELECT pg_advisory_unlock(%s)", (self.key,))
        except Exception:
            pass
        self._drop()

    def _drop(self) -> None:
        try:
            if self.conn is not None:
                self.conn.close()
        except Exception:
            pass
        self.conn = None


class FileLockLeadership:
    """Leader election on one machine: an exclusive, non-blocking ``flock`` on ``path``.
    The lock belongs to the open file: closed (or the process gone), it is free."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.fd: int | None = None

    def acquire(self) -> bool:
        if self.fd is not None:
            return True
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            return False
        self.fd = fd
        return True

    def still_leader(self) -> bool:
        return self.fd is not None

    def release(self) -> None:
        if self.fd is not None:
            with contextlib.suppress(OSError):
                fcntl.flock(self.fd, fcntl.LOCK_UN)
            os.close(self.fd)
            self.fd = None


def leadership_for(database_url: str | None, key: int = LOCK_KEY, lock_file: Path | None = None) -> Leadership:
    """The advisory lock ``key`` with PostgreSQL; else a file lock when ``lock_file`` is
    given, else the one embedded process leads."""
    if database_url:
        return AdvisoryLockLeadership(database_url, key)
    if lock_file is not None:
        return FileLockLeadership(lock_file)
    return AlwaysLeader()
