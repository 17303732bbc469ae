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
        self.case: str | None = None  # the correlation id of the case the command acts on

    def continue_case(self, aggregate: HotlineAggregate) -> None:
        """The command acts on this aggregate's case (first come, first kept)."""
        if self.case is None and aggregate.CASE:
            self.case = getattr(aggregate, "correlation_id", None)

    def _loaded(self, aggregate: HotlineAggregate) -> None:
        self.seen[aggregate.id] = aggregate
        self.continue_case(aggregate)

    def find(self, cls: type[A], id: uuid.UUID) -> A | None:
        if id in self.seen:
            agg = self.seen[id]
        else:
            try:
                agg = self.store.checkout(id)
            except AggregateNotFoundError:
                return None
            self._loaded(agg)
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
            raise NotFound(f"no {_SAID.get(cls.STREAM, cls.STREAM.replace('_', ' '))} {id}")
        return agg

    def add(self, aggregate: HotlineAggregate) -> None:
        self.seen[aggregate.id] = aggregate

    def collect_events(self, correlation_given: bool = True) -> list[Any]:
        """The command's new events. Unless the caller gave the correlation id, each case
        aggregate's events carry its own case's id, and everything else (a new work order,
        the agent answering the call) the id of the case the command acted on."""
        events: list[Any] = []
        for agg in self.seen.values():
            pending: list[Any] = list(agg.collect_events())
            if not correlation_given and pending:
                created = pending[0].originator_version == 1
                own = None if created or not agg.CASE else getattr(agg, "correlation_id", None)
                case = own or self.case
                if case is not None:
                    for event in pending:
                        event.meta["correlation_id"] = case
                    if created:
                        agg.correlation_id = case  # type: ignore[attr-defined]
            events.extend(pending)
        return events


# Streams whose names are not the words people use ("no workorder …" read oddly).
_SAID = {"workorder": "work order"}
