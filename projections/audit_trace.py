"""The auditor's index of the log: every published event's global position by its
correlation id, its aggregate and its time.

A case trace (``GET /audit/trace/{correlation_id}``) asks "which events share this
correlation?", and a read model "as of T" asks "how far had the log gone at T?"; the
event store answers neither without reading the whole log. One narrow row per event,
keyed by its position, so the rows never depend on the order of different aggregates'
events. The event bodies stay in the event store: the trace reads them from there.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from domain.base import HotlineAggregate, event_type_name
from domain.envelope import Envelope
from projections.base import Handler, Projection, Rows, UtcDateTime


class _EveryPublishedEvent(dict[str, Handler]):
    """The projection's handlers: one handler for every published event class, the
    aggregates defined after this module was imported included (the table is learnt on
    first use, and again whenever another aggregate class is defined)."""

    def __init__(self, handler: Handler) -> None:
        super().__init__()
        self._handler = handler
        self._seen = -1

    def _current(self) -> None:
        if self._seen == len(HotlineAggregate.DEFINED):
            return
        from domain.events import events_of, published_aggregates

        self.clear()
        for aggregate in published_aggregates():
            for cls in events_of(aggregate):
                super().__setitem__(event_type_name(cls), self._handler)
        self._seen = len(HotlineAggregate.DEFINED)

    def get(self, key: str, default: Any = None) -> Any:
        self._current()
        return super().get(key, default)

    def __getitem__(self, key: str) -> Handler:
        self._current()
        return super().__getitem__(key)

    def __contains__(self, key: object) -> bool:
        self._current()
        return super().__contains__(key)

    def __iter__(self) -> Iterator[str]:
        self._current()
        return super().__iter__()

    def __len__(self) -> int:
        self._current()
        return super().__len__()

    def keys(self) -> Any:
        self._current()
        return super().keys()

    def items(self) -> Any:
        self._current()
        return super().items()

    def values(self) -> Any:
        self._current()
        return super().values()


projection = Projection("audit_trace")
TRACE = projection.table(
    "audit_trace",
    sa.Column("position", sa.BigInteger, primary_key=True, autoincrement=False),
    sa.Column("correlation_id", sa.String(64), index=True),
    sa.Column("stream", sa.String(40)),
    sa.Column("aggregate_id", sa.String(36), index=True),
    sa.Column("version", sa.Integer),
    sa.Column("at", UtcDateTime, index=True),
)
T = TRACE.name


def indexed(env: Envelope, rows: Rows) -> None:
    rows.put(
        T,
        {
            "position": env.position,
            "correlation_id": env.meta.get("correlation_id"),
            "stream": env.stream,
            "aggregate_id": env.aggregate_id,
            "version": env.version,
            "at": env.time,
        },
    )


projection.handlers = _EveryPublishedEvent(indexed)


# ------------------------------------------------------------------------ queries
def by_correlation(conn: Connection, correlation_ids: Iterable[str]) -> list[dict[str, Any]]:
    """Every indexed event carrying one of these correlation ids, in global order."""
    wanted = sorted(set(correlation_ids))
    found: list[dict[str, Any]] = []
    for i in range(0, len(wanted), 500):
        q = sa.select(TRACE).where(TRACE.c.correlation_id.in_(wanted[i : i + 500]))
        found.extend(dict(r) for r in conn.execute(q).mappings())
    return sorted(found, key=lambda r: r["position"])


def by_aggregate(conn: Connection, aggregate_ids: Iterable[str]) -> list[dict[str, Any]]:
    """Every indexed event of these aggregates, in global order."""
    wanted = sorted(set(aggregate_ids))
    found: list[dict[str, Any]] = []
    for i in range(0, len(wanted), 500):
        q = sa.select(TRACE).where(TRACE.c.aggregate_id.in_(wanted[i : i + 500]))
        found.extend(dict(r) for r in conn.execute(q).mappings())
    return sorted(found, key=lambda r: r["position"])


def position_at(conn: Connection, moment: datetime) -> int | None:
    """How far the log had gone at ``moment``: the position just before the first event
    stamped later (events are committed no earlier than their time, so nothing after it
    can have been there yet). None when no event is later than ``moment``: the whole
    indexed log."""
    first_later = conn.execute(sa.select(sa.func.min(TRACE.c.position)).where(TRACE.c.at > moment)).scalar()
    return None if first_later is None else int(first_later) - 1


def indexed_position(conn: Connection) -> int:
    return int(conn.execute(sa.select(sa.func.max(TRACE.c.position))).scalar() or 0)
