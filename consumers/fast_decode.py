"""Stored events straight to :class:`~domain.envelope.Envelope`, without building the
Python event objects.

The relay and a replay read every event of the store; going through the library's mapper
(JSON -> typed values -> event object -> JSON-able values again) costs about 80 µs an
event here. The stored JSON already is nearly the published form: only the library's
transcoded values (``{"_type_": "datetime_iso" | "uuid_hex" | "decimal_str", "_data_": …}``)
need turning into their JSON form. Anything else unusual falls back to the mapper, and a
unit test checks both paths give equal envelopes.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

from eventsourcing.persistence import Notification
from eventsourcing.utils import resolve_topic

from domain.base import _owner_of, event_type_name
from domain.envelope import Envelope
from infra.transcoder import PERSONAL, SEALED, TEXT

try:  # orjson parses about twice as fast; the standard library is the fallback
    from orjson import loads as _loads
except ImportError:  # pragma: no cover
    _loads = json.loads  # type: ignore[assignment]

_SKIP = ("timestamp", "originator_topic", "meta")
_TRANSCODED = b'"_type_"'


class _Unknown(Exception):
    pass


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        kind = value.get("_type_")
        if kind is not None and "_data_" in value and len(value) == 2:
            data = value["_data_"]
            if kind == "datetime_iso" or kind == "decimal_str":
                return data
            if kind == "uuid_hex":
                return str(uuid.UUID(data))
            raise _Unknown(kind)
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def _masked(field: str, sealed: dict[str, Any]) -> Any:
    """A sealed field as the relay publishes it (``Envelope.to_cloudevent`` masking), read
    from its field names alone: ``personal`` with each of its fields ``***``, a sealed free
    text ``***`` (None stays None)."""
    given, empty = sealed.get("f") or [], sealed.get("z") or []
    if field == PERSONAL:
        return dict.fromkeys([*given, *empty], "***")
    return "***" if TEXT in given else None


class FastDecoder:
    """Decodes notifications of one store; caches what it learns per stored topic.

    ``masked``: sealed fields (per-citizen encryption) come out masked as the relay
    publishes them, without fetching the citizen's key or decrypting; otherwise an event
    holding one goes through the mapper, which opens it."""

    def __init__(
        self, fallback: Callable[[Notification], Envelope], compressed_or_encrypted: bool = False, *, masked: bool = False
    ) -> None:
        self.fallback = fallback
        self.disabled = compressed_or_encrypted
        self.masked = masked
        self.types: dict[str, tuple[str, str] | None] = {}

    def type_of(self, topic: str) -> tuple[str, str] | None:
        """(public type name, stream) of a stored topic, or None if it is not a domain event."""
        if topic not in self.types:
            try:
                cls = resolve_topic(topic)
                self.types[topic] = (event_type_name(cls), _owner_of(cls).STREAM)
            except Exception:
                self.types[topic] = None
        return self.types[topic]

    def envelope(self, n: Notification) -> Envelope:
        known = None if self.disabled else self.type_of(n.topic)
        if known is None:
            return self.fallback(n)
        try:
            state = _loads(n.state)
            stamp = state["timestamp"]
            time = datetime.fromisoformat(stamp["_data_"] if isinstance(stamp, dict) else stamp)
            meta = state.get("meta") or {}
            if n.state.count(_TRANSCODED) > 1:
                meta = _plain(meta)
                data = {k: self._value(k, v) if type(v) in (dict, list) else v for k, v in state.items() if k not in _SKIP}
            else:
                data = {k: v for k, v in state.items() if k not in _SKIP}
        except (_Unknown, KeyError, TypeError, ValueError):
            return self.fallback(n)
        return Envelope(
            type=known[0],
            stream=known[1],
            aggregate_id=str(n.originator_id),
            version=n.originator_version,
            position=n.id,
            time=time,
            data=data,
            meta=meta,
        )

    def _value(self, field: str, value: Any) -> Any:
        if self.masked and type(value) is dict and value.get("_type_") == SEALED and len(value) == 2:
            return _masked(field, value["_data_"])
        return _plain(value)

    def envelopes(self, notifications: Sequence[Notification]) -> list[Envelope]:
        return [self.envelope(n) for n in notifications]


def decoder_for(store: Any, *, masked: bool = False) -> FastDecoder:
    """``masked``: for a reader that publishes personal data masked (the relay)."""
    mapper = store.mapper
    return FastDecoder(store.to_envelope, compressed_or_encrypted=bool(mapper.cipher or mapper.compressor), masked=masked)
