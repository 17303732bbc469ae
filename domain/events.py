"""Every event class of the domain, by its public type name.

An aggregate registers itself by being defined (``HotlineAggregate.__init_subclass__``
keeps every aggregate class of ``domain`` that names its ``STREAM``); the bounded
contexts that import them are listed in ``infra/wiring.py``, which every process loads
before it reads events. The events' public type names are derived from the classes here,
once (:func:`domain.base.event_type_name`). Whatever needs to go from a published type
name back to its class (:attr:`Envelope.event_class <domain.envelope.Envelope.event_class>`,
the Kafka contract, analytics) asks here, so no one parses type names.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping

# Defines the idempotency record (internal, but its events are in the log too): no
# bounded context imports it.
import domain.idempotency  # noqa: F401
from domain.base import HotlineAggregate, event_classes, event_name, event_type_name


def aggregates() -> tuple[type[HotlineAggregate], ...]:
    """Every aggregate class defined so far, by stream."""
    return tuple(sorted(HotlineAggregate.DEFINED, key=lambda a: a.STREAM))


def published_aggregates() -> tuple[type[HotlineAggregate], ...]:
    """The aggregates whose events go to Kafka and analytics (not internal bookkeeping)."""
    return tuple(a for a in aggregates() if a.PUBLISHED)


def events_of(aggregate: type[HotlineAggregate]) -> list[type]:
    """Every event class an aggregate publishes, its own creation event included."""
    return sorted(event_classes(aggregate), key=event_type_name)


class _Registry(Mapping[str, type]):
    """Public type name → event class, rebuilt when an aggregate class is defined."""

    def __init__(self) -> None:
        self._seen = -1
        self._classes: dict[str, type] = {}
        self._names: dict[str, tuple[str, str]] = {}

    def _current(self) -> None:
        if self._seen == len(HotlineAggregate.DEFINED):
            return
        classes: dict[str, type] = {}
        names: dict[str, tuple[str, str]] = {}
        for aggregate in aggregates():
            for cls in events_of(aggregate):
                type_name = event_type_name(cls)
                if type_name in classes:
                    raise RuntimeError(f"{type_name} names both {classes[type_name]} and {cls}")
                classes[type_name] = cls
                names[type_name] = (aggregate.STREAM, event_name(cls))
        self._classes, self._names, self._seen = classes, names, len(HotlineAggregate.DEFINED)

    def __getitem__(self, type_name: str) -> type:
        self._current()
        return self._classes[type_name]

    def __iter__(self) -> Iterator[str]:
        self._current()
        return iter(self._classes)

    def __len__(self) -> int:
        self._current()
        return len(self._classes)

    def names(self) -> dict[str, tuple[str, str]]:
        self._current()
        return self._names


EVENT_CLASSES = _Registry()


def event_class(type_name: str) -> type:
    """The event class published as ``type_name`` (``KeyError`` if the domain has none)."""
    return EVENT_CLASSES[type_name]


def stream_and_name(type_name: str) -> tuple[str, str] | None:
    """(stream, short name) of a published type, e.g. ``("request", "registered")``; None
    for a type this version of the domain does not know (a newer producer's)."""
    return EVENT_CLASSES.names().get(type_name)


def name_of(type_name: str) -> str:
    """The short name of a published type: ``registered`` for ``hotline.request.registered.v1``
    (``KeyError`` for a type the domain does not know)."""
    return EVENT_CLASSES.names()[type_name][1]


def stream_of(type_name: str) -> str:
    """The stream of a published type: ``request`` for ``hotline.request.registered.v1``
    (``KeyError`` for a type the domain does not know)."""
    return EVENT_CLASSES.names()[type_name][0]


def aggregate_streams() -> dict[str, type[HotlineAggregate]]:
    """Every aggregate class by its stream."""
    return {a.STREAM: a for a in aggregates()}


__all__ = ["EVENT_CLASSES", "aggregate_streams", "aggregates", "event_class", "events_of", "name_of", "stream_and_name", "stream_of"]
