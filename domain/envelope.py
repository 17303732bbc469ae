"""The published form of an event: what projections, Kafka and integrators see.

Projections consume :class:`Envelope`, never the stored Python objects, so the same
projection code runs in-process (embedded mode) and behind a Kafka consumer
(distributed mode), where the envelope arrives as a CloudEvents 1.0 JSON document.
"""

from __future__ import annotations

import builtins
import uuid
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from enum import Enum
from typing import Any

from domain.base import _owner_of, event_payload, event_type_name, stream_topic

CLOUDEVENTS_SOURCE = "urn:hotline:event-store"

# The version of the published envelope (the CloudEvents attributes around ``data``), carried
# by the ``hotlineenvelope`` extension attribute. 1 (no attribute): ``sequence`` an integer and
# ``hotlinemeta`` an object. 2: every attribute a flat scalar of the CloudEvents type system,
# ``sequence`` a zero-padded string (the sequence extension). ``data`` is versioned apart, by
# each type's ``….v<n>`` suffix: this change left every ``data`` as it was.
ENVELOPE_VERSION = 2
# Digits of ``sequence``: wide enough for any unsigned 64-bit position (PostgreSQL's bigint
# needs 19), so string order is numeric order for every position the store can hand out.
SEQUENCE_WIDTH = 20
# ``meta`` key -> its CloudEvents extension attribute (lowercase a-z0-9, at most 20 characters).
META_ATTRIBUTES: dict[str, str] = {
    "actor_id": "hotlineactor",
    "actor_role": "hotlinerole",
    "actor_name": "hotlineactorname",
    "correlation_id": "correlationid",
    "causation_id": "causationid",
}


def sequence_of(position: int) -> str:
    """The ``sequence`` attribute of a global position: ``00000000000000001234``."""
    return f"{position:0{SEQUENCE_WIDTH}d}"


def to_jsonable(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, dict):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [to_jsonable(v) for v in value]
    return value


@dataclass(frozen=True)
class Envelope:
    type: str  # hotline.request.registered.v1
    stream: str  # request
    aggregate_id: str
    version: int  # the aggregate's version after this event
    position: int  # global position in the event store (notification id)
    time: datetime  # business time (injected clock)
    data: dict[str, Any]  # JSON-able event fields
    meta: dict[str, Any]  # actor, correlation, causation

    @property
    def topic(self) -> str:
        return f"hotline.{self.stream}s"

    @property
    def event_class(self) -> builtins.type:
        """The event's class (``ServiceRequest.Registered``): dispatch on this, never on
        pieces of ``type``. ``KeyError`` for a type the domain does not know."""
        return _events().event_class(self.type)

    @property
    def citizen_text_fields(self) -> tuple[str, ...]:
        """The fields of free text the citizen wrote (``CITIZEN_TEXT`` on the event class)."""
        try:
            return tuple(getattr(self.event_class, "CITIZEN_TEXT", ()))
        except KeyError:
            return ()

    @property
    def name(self) -> str:
        """The event's short name (``registered``), derived from its class by the function
        that builds type names. ``KeyError`` for a type the domain does not know."""
        return _events().name_of(self.type)

    @property
    def event_id(self) -> str:
        # Unique and stable per event: the same event redelivered has the same id.
        return f"{self.aggregate_id}/{self.version}"

    def to_cloudevent(self, *, mask_personal: bool = False, mask_citizen_text: bool = False) -> dict[str, Any]:
        """``mask_personal``: the ``personal`` values as ``***`` (what integrators get);
        ``mask_citizen_text``: the free text the citizen wrote too (the fields the event
        class lists in ``CITIZEN_TEXT``), where the jurisdiction treats it as personal."""
        data = dict(self.data)
        if mask_personal and "personal" in data and data["personal"] is not None:
            data["personal"] = {k: "***" for k in data["personal"]}
        if mask_citizen_text:
            for name in self.citizen_text_fields:
                if data.get(name) is not None:
                    data[name] = "***"
        ce: dict[str, Any] = {
            "specversion": "1.0",
            "id": self.event_id,
            "source": CLOUDEVENTS_SOURCE,
            "type": self.type,
            "subject": self.aggregate_id,
            "time": self.time.isoformat(),
            "datacontenttype": "application/json",
            "hotlineenvelope": ENVELOPE_VERSION,
            "sequence": sequence_of(self.position),
            "aggregateversion": self.version,
        }
        meta = self.meta
        for key, attribute in META_ATTRIBUTES.items():
            value = meta.get(key)
            if value is not None:  # an unset attribute is absent, never null
                ce[attribute] = str(value)
        ce["data"] = data
        return ce

    @classmethod
    def from_cloudevent(cls, ce: dict[str, Any]) -> Envelope:
        """Reads envelope version 2 and version 1 alike (``int`` takes the padded string and
        the old integer; the old ``hotlinemeta`` object is used where present), so a consumer
        upgraded first reads the messages already on the topics."""
        type_ = ce["type"]
        known = _events().stream_and_name(type_)
        return cls(
            type=type_,
            # A type this version does not know (a newer producer's) has no stream here:
            # no projection handles it either.
            stream=known[0] if known is not None else "",
            aggregate_id=ce["subject"],
            version=int(ce["aggregateversion"]),
            position=int(ce["sequence"]),
            time=datetime.fromisoformat(ce["time"]),
            data=ce.get("data") or {},
            meta=ce.get("hotlinemeta") or {key: ce[attribute] for key, attribute in META_ATTRIBUTES.items() if attribute in ce},
        )


_registry: Any = None


def _events() -> Any:
    # domain.events imports every aggregate, and some aggregates' packages import this
    # module: imported on first use.
    global _registry
    if _registry is None:
        import domain.events

        _registry = domain.events
    return _registry


def envelope_of(event: Any, position: int) -> Envelope:
    owner = _owner_of(type(event))
    return Envelope(
        type=event_type_name(type(event)),
        stream=owner.STREAM,
        aggregate_id=str(event.originator_id),
        version=event.originator_version,
        position=position,
        time=event.timestamp,
        data=to_jsonable(event_payload(event)),
        meta=dict(event.meta),
    )


__all__ = ["ENVELOPE_VERSION", "META_ATTRIBUTES", "SEQUENCE_WIDTH", "Envelope", "envelope_of", "sequence_of", "stream_topic", "to_jsonable"]
