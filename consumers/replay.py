"""``hotline replay NAME``: rebuild one projection from the event store while the system runs.

1. Build: read the whole log (fast decoder, events the projection does not handle are
   skipped undecoded) into in-memory rows (the projection's pure handlers on dicts).
2. Load: bulk-load the rows into fresh tables ``rm_x__rebuild`` (PostgreSQL: COPY).
   Readers and the projection's feeders (in-process projector or Kafka consumers) carry
   on with the old tables meanwhile.
3. Switch, in one transaction: stop the feeders of this projection (advisory lock taken
   exclusively, and its position rows locked), apply the events committed since step 1
   to the new tables, swap the tables (rename on PostgreSQL; copy on SQLite), and set the
   projection's floor position (partition -1) to the log position reached. Readers see
   the old rows or the new ones, never a mix.
Feeders then continue: anything at or below the floor is skipped as already applied.
"""

from __future__ import annotations

import gc
import json
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import sqlalchemy as sa
from eventsourcing.persistence import Notification
from psycopg.rows import tuple_row
from sqlalchemy.engine import Connection

from consumers.fast_decode import decoder_for
from infra.eventstore import EventStore
from infra.read_store import WHOLE_LOG, ReadStore, SqlRows, lock_projections, make_engine, positions, write_position
from infra.settings import Settings
from projections.base import MemoryRows, Projection

SUFFIX = "__rebuild"

try:  # orjson serialises JSON columns several times faster
    from orjson import dumps as _dumps
except ImportError:  # pragma: no cover

    def _dumps(v: Any) -> bytes:  # type: ignore[misc]
        return json.dumps(v).encode()


def _pages(store: EventStore, after: int, stop: int | None, batch: int) -> Iterator[list[Any]]:
    """Pages of the log; the next page is fetched in a thread while this one is decoded."""
    fetch = _fast_select(store) or (lambda after, n, stop: list(store.notifications(after, n, stop)))
    with ThreadPoolExecutor(1) as pool:
        position = after
        pending = pool.submit(fetch, position, batch, stop)
        while True:
            page = pending.result()
            if not page:
                return
            position = page[-1].id
            pending = pool.submit(fetch, position, batch, stop)
            yield page


def _fast_select(store: EventStore) -> Callable[[int, int, int | None], list[Notification]] | None:
    """PostgreSQL: plain tuples from one dedicated connection (the library builds dict rows)."""
    if not store.is_postgres:
        return None
    recorder: Any = store.recorder
    table = f'"{recorder.datastore.schema}"."{recorder.events_table_name}"'
    sql = (
        f"SELECT notification_id, originator_id, originator_version, topic, state FROM {table} "
        "WHERE notification_id > %s AND notification_id <= %s ORDER BY notification_id LIMIT %s"
    )

    def fetch(after: int, limit: int, stop: int | None) -> list[Notification]:
        with recorder.datastore.get_connection() as conn:
            cur = conn.cursor(row_factory=tuple_row)
            cur.execute(sql, (after, stop if stop is not None else 2**62, limit))
            return [Notification(id=r[0], originator_id=r[1], originator_version=r[2], topic=r[3], state=bytes(r[4])) for r in cur]

    return fetch


class _Rows(MemoryRows):
    """MemoryRows with the primary-key column names looked up once per table."""

    def __init__(self, projection: Projection) -> None:
        super().__init__(projection)
        self.keys = {name: [c.name for c in t.primary_key.columns] for name, t in projection.tables.items()}

    def put(self, table: str, row: dict[str, Any]) -> None:
        self.data[table][tuple([row[k] for k in self.keys[table]])] = dict(row)


def build(store: EventStore, projection: Projection, until: int, batch: int = 20_000) -> tuple[MemoryRows, int, int]:
    """The projection's rows after every event up to ``until``; returns (rows, events read, applied)."""
    decoder = decoder_for(store)
    rows = _Rows(projection)
    wanted: dict[str, bool] = {}
    read = applied = 0
    for page in _pages(store, 0, until, batch):
        read += len(page)
        for n in page:
            handled = wanted.get(n.topic)
            if handled is None:
                known = decoder.type_of(n.topic)
                # Unknown topics go through the decoder, which falls back to the mapper.
                handled = wanted[n.topic] = known is None or projection.handles(known[0])
            if handled:
                projection.apply(decoder.envelope(n), rows)
                applied += 1
    return rows, read, applied


def rebuild_tables(projection: Projection) -> tuple[sa.MetaData, dict[str, sa.Table]]:
    """Copies of the projection's tables named ``<name>__rebuild`` (indexes renamed too)."""
    md = sa.MetaData()
    mapping: dict[str, sa.Table] = {}
    for name, table in projection.tables.items():
        copy = table.to_metadata(md, name=name + SUFFIX)
        for index in copy.indexes:
            if index.name and not str(index.name).endswith(SUFFIX):
                index.name = sa.sql.elements.conv(_rebuild_index_name(str(index.name), name))
        mapping[name] = copy
    return md, mapping


def _rebuild_index_name(index: str, table: str) -> str:
    return index.replace(table, table + SUFFIX) if table in index else index + SUFFIX


def _converter(column: sa.Column[Any], dialect: Any) -> Callable[[Any], Any] | None:
    """How a value is handed to COPY: JSON as text (what SQLAlchemy would store), the rest as is."""
    if isinstance(column.type, sa.JSON):
        none_as_null = column.type.none_as_null

        def to_json(v: Any) -> Any:
            if v is None and none_as_null:
                return None
            return _dumps(v).decode()

        return to_json
    if isinstance(column.type, sa.types.TypeDecorator):
        return column.type.bind_processor(dialect)
    return None


def _bulk_load(conn: Connection, table: sa.Table, rows: list[dict[str, Any]]) -> None:
    if not rows:
        return
    dialect = conn.dialect
    columns = list(table.columns)
    if dialect.name != "postgresql":
        for i in range(0, len(rows), 10_000):
            conn.execute(sa.insert(table), [{c.name: r.get(c.name) for c in columns} for r in rows[i : i + 10_000]])
        return
    # COPY (psycopg formats the rows in C): much faster than INSERTs.
    names = [c.name for c in columns]
    convert = [(i, f) for i, c in enumerate(columns) if (f := _converter(c, dialect)) is not None]
    raw = conn.connection.driver_connection
    assert raw is not None
    quoted = ", ".join(f'"{n}"' for n in names)
    with raw.cursor() as cur, cur.copy(f'COPY "{table.name}" ({quoted}) FROM STDIN') as copy:
        for r in rows:
            values = [r.get(n) for n in names]
            for i, f in convert:
                values[i] = f(values[i])
            copy.write_row(values)


def _swap_postgres(conn: Connection, projection: Projection) -> None:
    for name in projection.tables:
        old = name + "__old"
        conn.exec_driver_sql(f'ALTER TABLE "{name}" RENAME TO "{old}"')
        conn.exec_driver_sql(f'ALTER TABLE "{name}{SUFFIX}" RENAME TO "{name}"')
        conn.exec_driver_sql(f'DROP TABLE "{old}"')
        # Index and constraint names of the new table lose the suffix (renaming a
        # constraint's index renames the constraint).
        indexes = conn.exec_driver_sql(
            "SELECT c.relname FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid WHERE i.indrelid = %(t)s::regclass",
            {"t": f'"{name}"'},
        ).scalars()
        for index in list(indexes):
            if SUFFIX in index:
                conn.exec_driver_sql(f'ALTER INDEX "{index}" RENAME TO "{index.replace(SUFFIX, "")}"')


def _swap_sqlite(conn: Connection, projection: Projection, mapping: dict[str, sa.Table]) -> None:
    for name, table in projection.tables.items():
        conn.execute(sa.delete(table))
        columns = ", ".join(f'"{c.name}"' for c in table.columns)
        conn.exec_driver_sql(f'INSERT INTO "{name}" ({columns}) SELECT {columns} FROM "{mapping[name].name}"')
        conn.exec_driver_sql(f'DROP TABLE "{mapping[name].name}"')


def rebuild(store: EventStore, read_store: ReadStore, projection: Projection, batch: int = 20_000) -> dict[str, Any]:
    started = time.perf_counter()
    target = store.max_position()
    # Millions of small dicts make the cyclic GC rescan them again and again: pause it.
    gc_was_enabled = gc.isenabled()
    gc.disable()
    try:
        rows, read, applied = build(store, projection, target, batch)
    finally:
        if gc_was_enabled:
            gc.enable()
    built = time.perf_counter()

    md, mapping = rebuild_tables(projection)
    engine = read_store.engine
    with engine.begin() as conn:
        for t in reversed(md.sorted_tables):
            conn.exec_driver_sql(f'DROP TABLE IF EXISTS "{t.name}"')
    # Secondary indexes are built after the load: one sort instead of a million inserts.
    later = {name: list(t.indexes) for name, t in mapping.items()}
    for t in mapping.values():
        t.indexes.clear()
    md.create_all(engine)
    with engine.begin() as conn:
        for name, table in mapping.items():
            _bulk_load(conn, table, rows.rows(name))
            for index in later[name]:
                table.indexes.add(index)
                index.create(conn)
    loaded = time.perf_counter()
    del rows

    # The switch: feeders of this projection wait on the lock for its duration.
    with engine.begin() as conn:
        if conn.dialect.name == "sqlite":
            conn.exec_driver_sql("DELETE FROM projection_positions WHERE 0")  # take the write lock now
        lock_projections(conn, [projection.name], exclusive=True)
        conn.execute(
            sa.select(positions.c.position).where(positions.c.name == projection.name).with_for_update()
            if conn.dialect.name == "postgresql"
            else sa.select(positions.c.position).where(positions.c.name == projection.name)
        ).all()
        head = store.max_position()
        caught_up = 0
        if head > target:
            sql_rows = SqlRows(conn, mapping)
            decoder = decoder_for(store)
            for page in _pages(store, target, head, batch):
                for n in page:
                    projection.apply(decoder.envelope(n), sql_rows)
                    caught_up += 1
            sql_rows.flush()
        if conn.dialect.name == "postgresql":
            _swap_postgres(conn, projection)
        else:
            _swap_sqlite(conn, projection, mapping)
        # The floor: every event up to ``head`` is in the new tables, whatever partition it came from.
        current = conn.execute(
            sa.select(positions.c.position).where(positions.c.name == projection.name, positions.c.partition == WHOLE_LOG)
        ).scalar()
        write_position(conn, projection.name, WHOLE_LOG, max(head, int(current or 0)))
    done = time.perf_counter()
    seconds = done - started
    return {
        "events": read,
        "applied": applied,
        "caught_up": caught_up,
        "position": head,
        "seconds": seconds,
        "build_seconds": built - started,
        "load_seconds": loaded - built,
        "switch_seconds": done - loaded,
        "events_per_second": read / seconds if seconds else 0.0,
    }


def replay_projection(settings: Settings, projection: Projection, console: Any = None) -> dict[str, Any]:
    store = EventStore(settings)
    read_store = ReadStore(make_engine(settings.read_store_url), [projection])
    read_store.create_tables()
    try:
        return rebuild(store, read_store, projection)
    finally:
        read_store.engine.dispose()
        store.close()
