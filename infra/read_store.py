"""Where read models live: SQLite (embedded) or PostgreSQL (distributed), via SQLAlchemy.

Rows a projection changes are written in the same transaction as the position it has
applied (``projection_positions``), so an event delivered twice changes nothing: the
second delivery is at or below the recorded position and is skipped.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection, Engine

from domain.envelope import Envelope
from projections.base import Key, Projection, UtcDateTime

tracking_md = sa.MetaData()
positions = sa.Table(
    "projection_positions",
    tracking_md,
    sa.Column("name", sa.String(100), primary_key=True),
    # Partition of the event feed (-1: the whole store, in order; >= 0: a Kafka partition).
    sa.Column("partition", sa.Integer, primary_key=True),
    sa.Column("position", sa.BigInteger, nullable=False),
    sa.Column("updated_at", UtcDateTime, nullable=False),
)
schemas = sa.Table(
    "projection_schemas",
    tracking_md,
    sa.Column("name", sa.String(100), primary_key=True),
    sa.Column("fingerprint", sa.String(64), nullable=False),
)
WHOLE_LOG = -1
READ_AHEAD_CHUNK = 500  # keys a read-ahead names in one IN list
_DELETED = object()
_PK_NAMES: dict[str, list[str]] = {}  # table name -> primary-key column names (SqlRows.put)
_GETS: dict[sa.Table, tuple[Any, list[str]]] = {}  # table -> (SELECT by primary key, its parameter names)


SQLITE_POOL = 40  # anyio's default worker threads, which run the API's sync endpoints


# Connections the read store's pool opens beyond its size at a burst (infra/pg_connections.py counts them).
PG_READ_OVERFLOW = 10


def make_engine(url: str, pool_size: int = 10) -> Engine:
    if url.startswith("sqlite"):
        # Connections kept for the API's worker threads (40): with SQLAlchemy's default 5,
        # every request beyond five at once opened a connection (and set its pragmas) and
        # closed it after, a twentieth of the server's CPU under a contact center's load.
        engine = sa.create_engine(
            url, connect_args={"check_same_thread": False, "timeout": 30}, pool_size=max(pool_size, SQLITE_POOL), max_overflow=SQLITE_POOL
        )

        @sa.event.listens_for(engine, "connect")
        def _pragmas(dbapi_conn: Any, _: Any) -> None:
            cur = dbapi_conn.cursor()
            # WAL: readers (API queries, analysts) never block the projection writer.
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.close()

        return engine
    return sa.create_engine(url, pool_size=pool_size, max_overflow=PG_READ_OVERFLOW, pool_pre_ping=True)


class SqlRows:
    """The :class:`~projections.base.Rows` of one transaction, with a write-back cache."""

    def __init__(self, conn: Connection, tables: dict[str, sa.Table]) -> None:
        self.conn = conn
        self.tables = tables
        self.cache: dict[tuple[str, Key], Any] = {}
        self.dirty: dict[tuple[str, Key], Any] = {}

    def get(self, table: str, *key: Any) -> dict[str, Any] | None:
        ck = (table, tuple(key))
        if ck in self.cache:
            row = self.cache[ck]
            return None if row is _DELETED or row is None else dict(row)
        t = self.tables[table]
        lookup = _GETS.get(t)
        if lookup is None:
            # Built once per table: building the statement per call cost 3x the query.
            names = [f"k_{c.name}" for c in t.primary_key.columns]
            stmt = sa.select(t).where(sa.and_(*[c == sa.bindparam(n) for c, n in zip(t.primary_key.columns, names, strict=True)]))
            lookup = _GETS[t] = (stmt, names)
        stmt, names = lookup
        found = self.conn.execute(stmt, dict(zip(names, key, strict=True))).mappings().first()
        self.cache[ck] = dict(found) if found is not None else None
        return dict(found) if found is not None else None

    def read_ahead(self, table: str, keys: Iterable[tuple[Any, ...]]) -> None:
        """Reads the keys not in the cache yet in one query per shared key prefix (the
        primary key's columns but the last, equal; the last IN a list): a projection that
        touches fifty terms of one language reads them in one statement, not fifty."""
        missing = [tuple(k) for k in keys if (table, tuple(k)) not in self.cache]
        if not missing:
            return
        t = self.tables[table]
        pk = list(t.primary_key.columns)
        groups: dict[tuple[Any, ...], list[Any]] = {}
        for key in missing:
            groups.setdefault(key[:-1], []).append(key[-1])
        for prefix, lasts in groups.items():
            for start in range(0, len(lasts), READ_AHEAD_CHUNK):
                chunk = lasts[start : start + READ_AHEAD_CHUNK]
                where = [c == v for c, v in zip(pk[:-1], prefix, strict=True)] + [pk[-1].in_(chunk)]
                for found in self.conn.execute(sa.select(t).where(*where)).mappings():
                    row = dict(found)
                    self.cache[(table, tuple(row[c.name] for c in pk))] = row
                for last in chunk:
                    self.cache.setdefault((table, (*prefix, last)), None)  # known absent

    def put(self, table: str, row: dict[str, Any]) -> None:
        names = _PK_NAMES.get(table)
        if names is None:
            names = _PK_NAMES[table] = [c.name for c in self.tables[table].primary_key.columns]
        ck = (table, tuple([row[n] for n in names]))
        # One copy serves both: ``get`` hands out copies, so nobody mutates it.
        self.cache[ck] = self.dirty[ck] = dict(row)

    def delete(self, table: str, *key: Any) -> None:
        ck = (table, tuple(key))
        self.cache[ck] = _DELETED
        self.dirty[ck] = _DELETED

    def flush(self) -> None:
        by_table: dict[str, tuple[list[Key], list[dict[str, Any]]]] = {}
        for (table, key), row in self.dirty.items():
            deletes, upserts = by_table.setdefault(table, ([], []))
            if row is _DELETED:
                deletes.append(key)
            else:
                upserts.append(row)
        for table, (deletes, upserts) in by_table.items():
            t = self.tables[table]
            pk = list(t.primary_key.columns)
            if deletes:
                stmt = sa.delete(t).where(sa.and_(*[c == sa.bindparam(f"k_{c.name}") for c in pk]))
                self.conn.execute(stmt, [{f"k_{c.name}": k[i] for i, c in enumerate(pk)} for k in deletes])
            if upserts:
                _upsert(self.conn, t, upserts)
        self.dirty.clear()


_UPSERTS: dict[tuple[str, str], Any] = {}


def _upsert(conn: Connection, table: sa.Table, rows: list[dict[str, Any]]) -> None:
    dialect = conn.dialect.name
    key = (dialect, table.name)
    stmt = _UPSERTS.get(key)
    if stmt is None:
        # Built once per table: constructing ON CONFLICT statements is costly in SQLAlchemy.
        insert: Any = postgresql.insert if dialect == "postgresql" else sqlite.insert
        stmt = insert(table)
        pk = [c.name for c in table.primary_key.columns]
        update = {c.name: stmt.excluded[c.name] for c in table.columns if c.name not in pk}
        stmt = stmt.on_conflict_do_update(index_elements=pk, set_=update) if update else stmt.on_conflict_do_nothing(index_elements=pk)
        _UPSERTS[key] = stmt
    # Every row of one executemany must name the same columns.
    columns = [c.name for c in table.columns]
    conn.execute(stmt, [{c: r.get(c) for c in columns} for r in rows])


# The advisory lock every process takes around its DDL (CREATE TABLE / INDEX IF NOT EXISTS
# from several processes at once races in PostgreSQL's catalog).
DDL_LOCK = 727274


def lock_ddl(conn: Connection) -> None:
    """Serialises this transaction's DDL with every other process's (PostgreSQL; SQLite
    has one writer anyway)."""
    if conn.dialect.name == "postgresql":
        conn.exec_driver_sql(f"SELECT pg_advisory_xact_lock({DDL_LOCK})")


def projection_lock_key(name: str) -> int:
    """Advisory-lock key of a projection: consumers take it shared, a replay's switch exclusive."""
    return zlib.crc32(f"hotline-projection:{name}".encode()) & 0x7FFFFFFF


def lock_projections(conn: Connection, names: Sequence[str], *, exclusive: bool = False) -> None:
    if conn.dialect.name != "postgresql":
        return  # SQLite: one writer at a time anyway
    # (PostgreSQL consumers take the exclusive form in apply_feeds: see there why.)
    fn = "pg_advisory_xact_lock" if exclusive else "pg_advisory_xact_lock_shared"
    # One statement (one round trip); the select list is evaluated left to right, so the
    # locks are still taken in one fixed order.
    keys = [projection_lock_key(name) for name in sorted(names)]
    if keys:
        conn.exec_driver_sql("SELECT " + ", ".join(f"{fn}({k})" for k in keys))


class ReadStore:
    def __init__(self, engine: Engine, projections: Sequence[Projection]) -> None:
        self.engine = engine
        self.projections = list(projections)
        self.tables: dict[str, sa.Table] = {}
        # Called with the live topics each applied batch touched, after it commits
        # (the console's server push: api/console/live.py).
        self.listeners: list[Callable[[set[str]], None]] = []
        for p in self.projections:
            self.tables.update(p.tables)

    def create_tables(self) -> None:
        """Creates missing tables. A projection whose table definitions changed since its
        rows were written is dropped and rebuilt from the events (it is only a cache).

        Several processes start at once (API workers beside running consumers): the DDL is
        serialised by :func:`lock_ddl`, and an index added to an existing table since is
        created alone, in a transaction of its own. CREATE INDEX locks its table against
        writes until commit, even with IF NOT EXISTS and the index there, so creating every
        index in one transaction locked table after table while a consumer's batch held
        others: PostgreSQL found a deadlock and the API worker failed to start."""
        with self.engine.begin() as conn:
            lock_ddl(conn)
            tracking_md.create_all(conn)
            known = {name: fp for name, fp in conn.execute(sa.select(schemas.c.name, schemas.c.fingerprint))}
            # A projection whose tables are dropped is locked first, as a consumer or a replay
            # locks it before its position rows and tables (one order on every side: no
            # deadlock against a batch in flight).
            changed = [p.name for p in self.projections if known.get(p.name) not in (None, schema_fingerprint(p))]
            lock_projections(conn, changed, exclusive=True)
            for p in self.projections:
                fingerprint = schema_fingerprint(p)
                if known.get(p.name) not in (None, fingerprint):
                    p.metadata.drop_all(conn)
                    conn.execute(sa.delete(positions).where(positions.c.name == p.name))
                p.metadata.create_all(conn)
                if known.get(p.name) != fingerprint:
                    _upsert(conn, schemas, [{"name": p.name, "fingerprint": fingerprint}])
        # create_all skips the tables that exist: an index added to one since is created
        # here (an index changes no row, so the rows need no rebuild).
        for index in self._missing_indexes():
            with self.engine.begin() as conn:
                lock_ddl(conn)
                conn.execute(sa.schema.CreateIndex(index, if_not_exists=True))

    def _missing_indexes(self) -> list[sa.Index]:
        # From the catalog: SQLAlchemy's reflection skips expression indexes (with a warning).
        catalog = (
            "SELECT tablename, indexname FROM pg_indexes WHERE schemaname = current_schema()"
            if self.engine.dialect.name == "postgresql"
            else "SELECT tbl_name, name FROM sqlite_master WHERE type = 'index'"
        )
        with self.engine.connect() as conn:
            present = {(str(table), str(name)) for table, name in conn.exec_driver_sql(catalog)}
        return [
            index
            for p in self.projections
            for table in p.metadata.tables.values()
            for index in table.indexes
            if (table.name, index.name) not in present
        ]

    def position(self, name: str, partition: int = WHOLE_LOG) -> int:
        with self.engine.connect() as conn:
            return read_position(conn, name, partition)

    def positions(self) -> dict[str, int]:
        """Each projection's position: every event at or below it is applied.

        Fed in order (embedded, in-process): its one row. Fed from Kafka: rows per feed, and
        the minimum over them is wrong (a partition that never had an event stays at 0, a
        quiet one at its last event); the relay's routes say what each feed still owes
        (``consumers.kafka_contract.projection_frontiers``)."""
        with self.engine.connect() as conn:
            lowest, top = sa.func.min(positions.c.position), sa.func.max(positions.c.partition)
            rows = conn.execute(sa.select(positions.c.name, lowest, top).group_by(positions.c.name)).all()
            if any(top != WHOLE_LOG for _, _, top in rows):
                from consumers.kafka_contract import projection_frontiers

                try:
                    return projection_frontiers(conn, [p.name for p in self.projections])
                except sa.exc.ProgrammingError:  # the relay has not created its tables yet
                    conn.rollback()
            return {name: pos for name, pos, _ in rows}

    def applied_position(self) -> int:
        """The position every projection has applied (the slowest one's)."""
        known = self.positions()
        return min((known.get(p.name, 0) for p in self.projections), default=0)

    def apply(self, envelopes: Iterable[Envelope], *, partition: int = WHOLE_LOG, only: Sequence[Projection] | None = None) -> int:
        """Applies envelopes (in order) to every projection that has not seen them yet.

        Returns how many (projection, event) pairs changed something."""
        projections = list(only) if only is not None else self.projections
        envelopes = list(envelopes)
        if not envelopes:
            return 0
        applied = 0
        with self.engine.begin() as conn:
            rows = SqlRows(conn, self.tables)
            starts = read_positions(conn, [p.name for p in projections], partition, for_update=True)
            moved: list[dict[str, Any]] = []
            now = datetime.now(UTC)
            topics: set[str] | None = set() if self.listeners else None
            for p in projections:
                start = starts.get(p.name, 0)
                last = start
                for env in envelopes:
                    if env.position <= last:
                        continue  # already applied: redelivery changes nothing
                    p.apply(env, rows)
                    if topics is not None:
                        topics.update(p.topics(env, rows))
                    last = env.position
                    applied += 1
                if last != start:
                    moved.append({"name": p.name, "partition": partition, "position": last, "updated_at": now})
            rows.flush()
            if moved:
                _upsert(conn, positions, moved)
        if topics:
            for listener in self.listeners:
                listener(topics)
        return applied

    def reset(self, projection: Projection) -> None:
        """Empties a projection's tables and forgets its position, in one transaction."""
        with self.engine.begin() as conn:
            for t in reversed(projection.metadata.sorted_tables):
                conn.execute(sa.delete(t))
            conn.execute(sa.delete(positions).where(positions.c.name == projection.name))


def schema_fingerprint(projection: Projection) -> str:
    import hashlib

    parts = []
    for table in sorted(projection.metadata.tables.values(), key=lambda t: t.name):
        parts.append(table.name)
        parts.extend(f"{c.name}:{c.type!r}:{c.primary_key}" for c in table.columns)
    if projection.version != 1:  # what the rows hold changed, not their shape: rebuilt all the same
        parts.append(f"version={projection.version}")
    return hashlib.sha256("|".join(parts).encode()).hexdigest()


def read_position(conn: Connection, name: str, partition: int = WHOLE_LOG, *, for_update: bool = False) -> int:
    stmt = sa.select(positions.c.position).where(positions.c.name == name, positions.c.partition == partition)
    if for_update and conn.dialect.name == "postgresql":
        stmt = stmt.with_for_update()
    value = conn.execute(stmt).scalar()
    return int(value) if value is not None else 0


def read_positions(conn: Connection, names: list[str], partition: int = WHOLE_LOG, *, for_update: bool = False) -> dict[str, int]:
    stmt = sa.select(positions.c.name, positions.c.position).where(positions.c.name.in_(names), positions.c.partition == partition)
    if for_update and conn.dialect.name == "postgresql":
        stmt = stmt.with_for_update()
    return {name: int(pos) for name, pos in conn.execute(stmt)}


def write_position(conn: Connection, name: str, partition: int, position: int) -> None:
    _upsert(
        conn,
        positions,
        [{"name": name, "partition": partition, "position": position, "updated_at": datetime.now(UTC)}],
    )
