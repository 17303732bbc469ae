"""Projections: read models as pure functions of events.

A projection declares its tables (SQLAlchemy Core) and one handler per event type. A
handler sees an :class:`~domain.envelope.Envelope` and a :class:`Rows` view of its own
tables (get / put / delete by primary key); it performs no I/O and never looks at the
clock. How envelopes arrive (in-process after a commit, or from Kafka) and how rows are
stored (SQLite, PostgreSQL, a dict for tests and replays) is decided elsewhere.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from typing import Any, Protocol

import sqlalchemy as sa

from domain.base import event_type_name
from domain.envelope import Envelope

Key = tuple[Any, ...]


class UtcDateTime(sa.types.TypeDecorator[datetime]):
    """Timestamps stored in UTC and always read back timezone-aware (SQLite forgets)."""

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a read model")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Rows(Protocol):
    def get(self, table: str, *key: Any) -> dict[str, Any] | None: ...

    def read_ahead(self, table: str, keys: Iterable[tuple[Any, ...]]) -> None:
        """A hint: these rows will be read (``get``) soon. A store may read them in one
        query instead of one a key; it changes nothing else."""
        ...

    def put(self, table: str, row: dict[str, Any]) -> None:
        """Insert or replace the row with the row's primary key."""
        ...

    def delete(self, table: str, *key: Any) -> None: ...


Handler = Callable[[Envelope, Rows], None]
# What a change announces to live screens, besides the projection's name: keys such as
# "agent-7" (the read model's topic becomes "agent_desk:agent-7"). Read after the
# handler ran, so it may look at the rows it wrote.
Signal = Callable[[Envelope, Rows], Iterable[str]]


class Projection:
    """One read model: its tables and its event handlers."""

    def __init__(self, name: str, *, version: int = 1) -> None:
        self.name = name
        self.version = version
        self.metadata = sa.MetaData()
        self.handlers: dict[str, Handler] = {}
        self._signal: Signal | None = None

    def table(self, name: str, *columns: sa.Column[Any], **kw: Any) -> sa.Table:
        return sa.Table(f"rm_{name}", self.metadata, *columns, **kw)

    @property
    def tables(self) -> dict[str, sa.Table]:
        return dict(self.metadata.tables)

    def on(self, *event_classes: type) -> Callable[[Handler], Handler]:
        def register(fn: Handler) -> Handler:
            for cls in event_classes:
                name = event_type_name(cls)
                if name in self.handlers:
                    raise ValueError(f"{self.name}: {name} already handled by {self.handlers[name].__name__}")
                self.handlers[name] = fn
            return fn

        return register

    def signals(self, fn: Signal) -> Signal:
        """Registers what this read model's changes announce to live screens (the
        console's server push): ``fn(envelope, rows)`` names the keys that changed."""
        self._signal = fn
        return fn

    def topics(self, envelope: Envelope, rows: Rows) -> Iterable[str]:
        """The live topics an applied event touched: the read model's name, and its keys."""
        if envelope.type not in self.handlers:
            return ()
        if self._signal is None:
            return (self.name,)
        return (self.name, *(f"{self.name}:{key}" for key in self._signal(envelope, rows)))

    def handles(self, event_type: str) -> bool:
        return event_type in self.handlers

    def apply(self, envelope: Envelope, rows: Rows) -> None:
        handler = self.handlers.get(envelope.type)
        if handler is not None:
            handler(envelope, rows)

    def __repr__(self) -> str:
        return f"Projection({self.name!r})"


def primary_key(table: sa.Table, row: dict[str, Any]) -> Key:
    return tuple(row[c.name] for c in table.primary_key.columns)


class MemoryRows:
    """Rows in dicts: for tests, and for rebuilding a projection fast before bulk-loading it."""

    def __init__(self, projection: Projection) -> None:
        self.projection = projection
        self.data: dict[str, dict[Key, dict[str, Any]]] = {t: {} for t in projection.tables}

    def get(self, table: str, *key: Any) -> dict[str, Any] | None:
        row = self.data[table].get(tuple(key))
        return dict(row) if row is not None else None

    def read_ahead(self, table: str, keys: Iterable[tuple[Any, ...]]) -> None:
        pass  # already in memory

    def put(self, table: str, row: dict[str, Any]) -> None:
        self.data[table][primary_key(self.projection.tables[table], row)] = dict(row)

    def delete(self, table: str, *key: Any) -> None:
        self.data[table].pop(tuple(key), None)

    def apply_all(self, envelopes: Iterable[Envelope]) -> None:
        for env in envelopes:
            self.projection.apply(env, self)

    def rows(self, table: str) -> list[dict[str, Any]]:
        return [dict(r) for r in self.data[table].values()]
