"""``hotline replay NAME``: rebuild one projection from the event store.

The projection is rebuilt in memory from the whole log (pure handlers on dict rows),
then its tables are emptied and refilled, and its position set, in one transaction:
readers see either the old rows or the new ones, never a half-built table.
"""

from __future__ import annotations

import time
from typing import Any

import sqlalchemy as sa

from infra.eventstore import EventStore
from infra.read_store import WHOLE_LOG, ReadStore, _upsert, make_engine, positions, write_position
from infra.settings import Settings
from projections.base import MemoryRows, Projection


def rebuild(store: EventStore, read_store: ReadStore, projection: Projection, batch: int = 5000) -> dict[str, Any]:
    started = time.perf_counter()
    rows = MemoryRows(projection)
    position = 0
    events = 0
    for env in store.iter_envelopes(0, batch):
        projection.apply(env, rows)
        position = env.position
        events += 1
    with read_store.engine.begin() as conn:
        for t in reversed(projection.metadata.sorted_tables):
            conn.execute(sa.delete(t))
        for name, table in projection.tables.items():
            data = rows.rows(name)
            for i in range(0, len(data), 5000):
                _upsert(conn, table, data[i : i + 5000])
        conn.execute(sa.delete(positions).where(positions.c.name == projection.name))
        write_position(conn, projection.name, WHOLE_LOG, position)
    seconds = time.perf_counter() - started
    return {"events": events, "position": position, "seconds": seconds, "events_per_second": events / seconds if seconds else 0.0}


def replay_projection(settings: Settings, projection: Projection, console: Any = None) -> dict[str, Any]:
    store = EventStore(settings)
    read_store = ReadStore(make_engine(settings.read_store_url), [projection])
    read_store.create_tables()
    try:
        return rebuild(store, read_store, projection)
    finally:
        read_store.engine.dispose()
        store.close()
