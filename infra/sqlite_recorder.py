"""The SQLite application recorder with the audit chain (``infra/audit_chain.py``).

The library's table, plus three columns (``chain_stream``, ``chain_global``,
``chain_prev``) and the one-row ``audit_chain_head`` table, all written in the insert's
own transaction. The transaction starts with ``BEGIN IMMEDIATE``: the head is read and
moved under the database's write lock, so two processes on one file (``hotline serve``
and a CLI command) cannot both chain from the same head. Positions (rowids) are given
explicitly, as SQLite would (the largest + 1), because each event's global hash covers
its own position.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any
from uuid import UUID

from eventsourcing.persistence import StoredEvent
from eventsourcing.sqlite import SQLiteApplicationRecorder, SQLiteCursor, SQLiteTransaction

from infra.audit_chain import GENESIS, HEAD_TABLE, global_hash, stream_hash

CHAIN_COLUMNS = (("chain_stream", "BLOB"), ("chain_global", "BLOB"), ("chain_prev", "INTEGER"))


class _Immediate(SQLiteTransaction):
    """The library's transaction (its error mapping, commit and rollback), begun IMMEDIATE."""

    def __enter__(self) -> SQLiteCursor:
        cursor = self.connection.cursor()
        cursor.execute("BEGIN IMMEDIATE")
        return cursor


class HotlineSQLiteRecorder(SQLiteApplicationRecorder):
    chained = True

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        table = self.events_table_name
        self.insert_chained = (
            f"INSERT INTO {table} (rowid, originator_id, originator_version, topic, state, chain_stream, chain_global, chain_prev) "
            "VALUES (?,?,?,?,?,?,?,?)"
        )
        self.insert_plain = f"INSERT INTO {table} (originator_id, originator_version, topic, state) VALUES (?,?,?,?)"
        self.select_previous = f"SELECT chain_stream FROM {table} WHERE originator_id = ? AND originator_version = ?"

    def _create_table(self, c: SQLiteCursor) -> None:
        super()._create_table(c)
        # An existing store gets the columns; its old rows stay unchained (see audit_chain).
        c.execute(f"PRAGMA table_info({self.events_table_name})")
        have = {row[1] for row in c.fetchall()}
        for name, kind in CHAIN_COLUMNS:
            if name not in have:
                c.execute(f"ALTER TABLE {self.events_table_name} ADD COLUMN {name} {kind}")
        c.execute(
            f"CREATE TABLE IF NOT EXISTS {HEAD_TABLE} "
            "(id INTEGER PRIMARY KEY CHECK (id = 1), position INTEGER NOT NULL, hash BLOB NOT NULL)"
        )

    def insert_events(self, stored_events: Sequence[StoredEvent], **kwargs: Any) -> Sequence[int] | None:
        if not stored_events:
            return []
        with self.datastore.get_connection(commit=True) as conn, _Immediate(conn, commit=True) as c:
            return self._insert_events(c, stored_events, **kwargs)

    def _insert_events(self, c: SQLiteCursor, stored_events: Sequence[StoredEvent], **_: Any) -> Sequence[int] | None:
        if not self.chained:
            return self._insert_unchained(c, stored_events)
        c.execute(f"SELECT position, hash FROM {HEAD_TABLE} WHERE id = 1")
        head = c.fetchone()
        head_position, head_hash = (head[0], head[1]) if head else (0, GENESIS)
        c.execute(f"SELECT MAX(rowid) FROM {self.events_table_name}")
        position = c.fetchone()[0] or 0
        in_batch: dict[tuple[str, int], bytes] = {}
        rows = []
        positions = []
        for s in stored_events:
            oid = s.originator_id if isinstance(s.originator_id, UUID) else UUID(str(s.originator_id))
            key = oid.hex
            version = s.originator_version
            previous = in_batch.get((key, version - 1))
            if previous is None and version > 1:
                c.execute(self.select_previous, (key, version - 1))
                found = c.fetchone()
                previous = found[0] if found else None  # absent or unchained: the stream's genesis
            s_hash = stream_hash(previous, oid.bytes, version, s.topic, s.state)
            in_batch[(key, version)] = s_hash
            position += 1
            g_hash = global_hash(head_hash, position, s_hash)
            rows.append((position, key, version, s.topic, s.state, s_hash, g_hash, head_position))
            positions.append(position)
            head_position, head_hash = position, g_hash
        # A version somebody else wrote first: the transaction maps it to the library's
        # IntegrityError and rolls back, head included.
        c.executemany(self.insert_chained, rows)
        c.execute(f"INSERT OR REPLACE INTO {HEAD_TABLE} (id, position, hash) VALUES (1, ?, ?)", (head_position, head_hash))
        return positions

    def _insert_unchained(self, c: SQLiteCursor, stored_events: Sequence[StoredEvent]) -> Sequence[int]:
        out = []
        for s in stored_events:
            oid = s.originator_id.hex if isinstance(s.originator_id, UUID) else s.originator_id
            c.execute(self.insert_plain, (oid, s.originator_version, s.topic, s.state))
            out.append(c.lastrowid)
        return out


class UnchainedSQLiteRecorder(HotlineSQLiteRecorder):
    """Events without chain links (``HOTLINE_AUDIT_CHAIN=false``): for measuring what the
    chain costs. ``verify`` reports such events once a chain has begun."""

    chained = False
