"""The event store's transcoder: the library's JSON format, written by orjson.

The library's ``JSONTranscoder`` writes with the standard ``json`` encoder, which calls
back into Python for every UUID and datetime (every event has a timestamp); encoding was
a tenth of the write path's CPU. Here the few values JSON cannot hold are tagged first
(``{"_type_": "uuid_hex", "_data_": …}``, exactly as the library tags them) and orjson
writes the rest. Stored events read the same either way, so the two transcoders can
read each other's events; a unit test holds them to that.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

import orjson
from eventsourcing.persistence import JSONTranscoder, TranscodingNotRegisteredError

from domain.base import InvalidCommand

_PLAIN = frozenset({str, int, float, bool, type(None)})
_OPTIONS = orjson.OPT_NON_STR_KEYS | orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_PASSTHROUGH_DATACLASS


class UnstorableValue(InvalidCommand):
    """A value JSON cannot hold as stored (an integer beyond 64 bits, nesting deeper than
    254 levels): the command that carried it is refused (422), alone."""

    code = "unstorable_value"


class FastJSONTranscoder(JSONTranscoder):
    def encode(self, obj: Any) -> bytes:
        try:
            return orjson.dumps(self._tag(obj), default=self._refuse, option=_OPTIONS)
        except TranscodingNotRegisteredError:
            raise  # a type the code forgot to register: a programming error, not the caller's
        except orjson.JSONEncodeError as exc:
            raise UnstorableValue(f"a value of this command cannot be stored: {exc}") from None
        except RecursionError:
            raise UnstorableValue("a value of this command is nested too deeply to be stored") from None

    def decode(self, data: bytes) -> Any:
        if b'"_type_"' not in data:  # nothing tagged: no hook needed
            return orjson.loads(data)
        return super().decode(data)

    def _tag(self, value: Any) -> Any:
        kind = type(value)
        if kind in _PLAIN:
            return value
        if kind is dict:  # plain values inline: most of an event is plain
            return {k: v if type(v) in _PLAIN else self._tag(v) for k, v in value.items()}
        if kind is list or kind is tuple:
            return [v if type(v) in _PLAIN else self._tag(v) for v in value]
        if kind is uuid.UUID:
            return {"_type_": "uuid_hex", "_data_": value.hex}
        if kind is datetime:
            return {"_type_": "datetime_iso", "_data_": value.isoformat()}
        transcoding = self.types.get(kind)
        if transcoding is not None:
            return {"_type_": transcoding.name, "_data_": self._tag(transcoding.encode(value))}
        if isinstance(value, (str, int, float)):  # enums and other subclasses, as json writes them
            return value
        return self._refuse(value)

    @staticmethod
    def _refuse(value: Any) -> Any:
        raise TranscodingNotRegisteredError(
            f"Object of type {type(value)} is not serializable. Please define and register a custom transcoding for this type."
        )
