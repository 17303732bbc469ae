"""The auditor's views of the event log, as pure functions over stored events.

An aggregate "as of" a version is the fold of its first ``version`` events, the same
fold the repository performs when a command loads it; "as of" a time is the version
its last event at or before that time produced (an aggregate's events never go back in
time: ``HotlineAggregate._record``). The caller loads the events (``infra``/``api``);
nothing here reads a store or a clock.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from domain.base import InvalidCommand, _owner_of, event_name, event_payload, event_type_name
from domain.contact_center.contacts import contact_uuid_for
from domain.envelope import to_jsonable

PERSONAL = "personal"  # the one event field holding a citizen's personal data (domain/base.py)
MASK = "***"


# The 'as of' times the views can work with: Python's datetimes end at the years 1 and
# 9999, and the views add to the time asked (a read model's "due within" window, up to 30
# days; a local time zone's offset), so the ends are kept at a distance.
EARLIEST = datetime(1, 1, 2, tzinfo=UTC)
LATEST = datetime(9999, 11, 30, tzinfo=UTC)
# A version is stored as a 64-bit integer: a longer number names no version.
MAX_VERSION = 2**63 - 1


def is_version(text: str) -> bool:
    """Whether ``text`` is a version number: ASCII digits only (``str.isdigit`` also takes
    ``²`` and other digits ``int`` refuses)."""
    return text.isascii() and text.isdigit()


def in_range(moment: datetime, text: str) -> datetime:
    """``moment`` (aware) in UTC, or InvalidCommand when it lies outside what the views can
    work with (``EARLIEST`` to ``LATEST``)."""
    try:
        utc = moment.astimezone(UTC)
    except OverflowError:  # e.g. 9999-12-31T23:59:59-12:00 is in the year 10000 in UTC
        utc = None
    if utc is None or not EARLIEST <= utc <= LATEST:
        raise InvalidCommand(
            f"the 'as of' time {text} is out of range: give a time between {EARLIEST.date()} and {LATEST.date()} (UTC)",
            field="as_of",
            value=text,
        )
    return moment


@dataclass(frozen=True)
class AsOf:
    """What the auditor asked for: a version of the aggregate, or a moment."""

    version: int | None = None
    moment: datetime | None = None

    @classmethod
    def parse(cls, value: str | None) -> AsOf | None:
        """``12`` (a version) or an ISO 8601 time with its offset (``2026-11-20T09:00:00+01:00``)."""
        if value is None or not value.strip():
            return None
        text = value.strip()
        if is_version(text):
            version = int(text)
            if version < 1:
                raise InvalidCommand("an 'as of' version starts at 1", field="as_of")
            if version > MAX_VERSION:
                raise InvalidCommand(f"an 'as of' version is at most {MAX_VERSION}", field="as_of")
            return cls(version=version)
        try:
            moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
        except ValueError:
            raise InvalidCommand("'as_of' is neither a version number nor an ISO 8601 time", field="as_of", value=text) from None
        if moment.tzinfo is None:
            raise InvalidCommand("an 'as of' time needs its offset (2026-11-20T09:00:00+01:00)", field="as_of", value=text)
        return cls(moment=in_range(moment, text))


def version_at(events: Sequence[Any], moment: datetime) -> int | None:
    """The aggregate's version at ``moment``: the version of its last event at or before
    it (None when the aggregate did not exist yet)."""
    found: int | None = None
    for event in events:
        if event.timestamp > moment:
            break
        found = event.originator_version
    return found


def resolve(events: Sequence[Any], as_of: AsOf) -> int | None:
    """The version ``as_of`` names, or None when the aggregate did not exist then. A
    version beyond the last one is refused (it never existed)."""
    if as_of.moment is not None:
        return version_at(events, as_of.moment)
    assert as_of.version is not None
    last = events[-1].originator_version if events else 0
    if as_of.version > last:
        raise InvalidCommand(f"the aggregate has {last} versions, not {as_of.version}", field="as_of", last_version=last)
    return as_of.version


def rebuild(events: Iterable[Any], version: int | None = None) -> Any:
    """The aggregate after its events up to ``version`` (all when None): each event's
    ``mutate``, in order, as the library's repository does. None if there are none."""
    aggregate: Any = None
    for event in events:
        if version is not None and event.originator_version > version:
            break
        aggregate = event.mutate(aggregate)
    return aggregate


def public_state(aggregate: Any) -> dict[str, Any]:
    """The aggregate's public attributes as JSON (its id, version and times first; no
    library bookkeeping, no private memos)."""
    state: dict[str, Any] = {
        "id": str(aggregate.id),
        "version": aggregate.version,
        "created_on": aggregate.created_on.isoformat(),
        "modified_on": aggregate.modified_on.isoformat(),
    }
    for name, value in vars(aggregate).items():
        if not name.startswith("_"):
            state[name] = to_jsonable(value)
    return state


def mask_personal(data: dict[str, Any]) -> dict[str, Any]:
    """The same data with the citizen's personal fields replaced by a mark."""
    value = data.get(PERSONAL)
    if isinstance(value, dict):
        return {**data, PERSONAL: {k: MASK for k in value}}
    return data


def holds_personal(data: dict[str, Any]) -> bool:
    value = data.get(PERSONAL)
    return bool(value) and isinstance(value, dict) and any(v not in (None, "") for v in value.values())


def step(event: Any, *, position: int | None = None, personal: bool = True) -> dict[str, Any]:
    """One step of a history: what happened, who (actor and role), when, within which
    correlation and caused by what, with the event's own data (personal data masked
    unless ``personal``)."""
    meta = event.meta or {}
    data = to_jsonable(event_payload(event))
    if not personal:
        data = mask_personal(data)
    entry: dict[str, Any] = {
        "stream": _owner_of(type(event)).STREAM,
        "id": str(event.originator_id),
        "version": event.originator_version,
        "type": event_type_name(type(event)),
        "name": event_name(type(event)),
        "at": event.timestamp.isoformat(),
        "actor_id": meta.get("actor_id"),
        "actor_role": meta.get("actor_role"),
        "actor_name": meta.get("actor_name"),
        "correlation_id": meta.get("correlation_id"),
        "causation_id": meta.get("causation_id"),
        "data": data,
    }
    if position is not None:
        entry["position"] = position
    return entry


def linked_ids(events: Iterable[Any]) -> set[uuid.UUID]:
    """The other aggregates a case's events name (the contact it came in on, its work
    orders, the requests a contact or work order serves): a case trace follows these."""
    found: set[uuid.UUID] = set()
    for event in events:
        for key in ("contact_id", "work_order_id", "request_id"):
            value = getattr(event, key, None)
            if value:
                try:
                    found.add(uuid.UUID(str(value)))
                except ValueError:
                    if key == "contact_id":  # a PBX channel id names its contact too
                        found.add(contact_uuid_for(str(value)))
    return found
