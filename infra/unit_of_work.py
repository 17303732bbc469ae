"""The unit of work the service layer uses: aggregates loaded and added in one command."""

from __future__ import annotations

import uuid
from typing import Any, TypeVar

from eventsourcing.application import AggregateNotFoundError

from domain.base import HotlineAggregate, NotFound
from infra.eventstore import EventStore

A = TypeVar("A", bound=HotlineAggregate)


class EventStoreUnitOfWork:
    def __init__(self, store: EventStore) -> None:
        self.store = store
        self.seen: dict[uuid.UUID, HotlineAggregate] = {}

    def find(self, cls: type[A], id: uuid.UUID) -> A | None:
        if id in self.seen:
            agg = self.seen[id]
        else:
            try:
                agg = self.store.checkout(id)
            except AggregateNotFoundError:
                return None
            self.seen[id] = agg
        return agg if isinstance(agg, cls) else None

    def read(self, cls: type[A], id: uuid.UUID) -> A | None:
        """Reference data the command consults but never changes (catalogue, calendars,
        identity claims): shared and cached for a short time, never deep-copied."""
        if id in self.seen:
            agg: Any = self.seen[id]
        else:
            agg = self.store.reference(id)
        return agg if isinstance(agg, cls) else None

    def get(self, cls: type[A], id: uuid.UUID) -> A:
        agg = self.find(cls, id)
        if agg is None:
            raise NotFound(f"no {cls.STREAM.replace('_', ' ')} {id}")
        return agg

    def add(self, aggregate: HotlineAggregate) -> None:
        self.seen[aggregate.id] = aggregate

    def collect_events(self) -> list[Any]:
        events: list[Any] = []
        for agg in self.seen.values():
            events.extend(agg.collect_events())
        return events
