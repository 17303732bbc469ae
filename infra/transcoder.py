"""The event store's transcoder: the library's JSON format, written by orjson.

The library's ``JSONTranscoder`` writes with the standard ``json`` encoder, which calls
back into Python for every UUID and datetime (every event has a timestamp); encoding was
a tenth of the write path's CPU. Here the few values JSON cannot hold are tagged first
(``{"_type_": "uuid_hex", "_data_": …}``, exactly as the library tags them) and orjson
writes the rest. Stored events read the same either way, so the two transcoders can
read each other's events; a unit test holds them to that.
"""

from __future__ import annotations

import functools
import threading
import uuid
from collections.abc import Callable
from datetime import datetime
from typing import Any

import orjson
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from eventsourcing.persistence import (
    JSONTranscoder,
    Mapper,
    StoredEvent,
    Transcoder,
    Transcoding,
    TranscodingNotRegisteredError,
)

from domain.base import InvalidCommand
from infra.citizen_keys import ERASED_KEY, CitizenKeys, Sealed

_PLAIN = frozenset({str, int, float, bool, type(None)})
_OPTIONS = orjson.OPT_NON_STR_KEYS | orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_PASSTHROUGH_DATACLASS


class UnstorableValue(InvalidCommand):
    """A value JSON cannot hold as stored (an integer beyond 64 bits, nesting deeper than
    254 levels): the command that carried it is refused (422), alone."""

    code = "unstorable_value"


class FastJSONTranscoder(JSONTranscoder):
    def encode(self, obj: Any) -> bytes:
        return self._written(lambda: self._tag(obj))

    def encode_with(self, state: dict[str, Any], given: dict[str, Any], extra: dict[str, Any]) -> bytes:
        """``encode`` of an event's state less its originator, with ``given`` values in
        place of its own (sealed personal data: JSON already, not walked again) and
        ``extra`` added (``class_version``)."""

        def tagged() -> dict[str, Any]:
            tag = self._tag
            out = {
                k: given[k] if k in given else (v if type(v) in _PLAIN else tag(v))
                for k, v in state.items()
                if k != "originator_id" and k != "originator_version"
            }
            out.update(extra)
            return out

        return self._written(tagged)

    def _written(self, tagged: Callable[[], Any]) -> bytes:
        """orjson's bytes of what ``tagged`` builds; a value JSON cannot hold is the command's fault."""
        try:
            return orjson.dumps(tagged(), default=self._refuse, option=_OPTIONS)
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


# ---------------------------------------------------------------------------- personal data
# Every ``personal`` field is encrypted per citizen (infra/citizen_keys.py) before the
# event is transcoded: the stored state holds ``{"_type_": "hotline_sealed", "_data_": …}``,
# which the fast decoder of the relay and the replay does not know, so such events are
# decoded here, through the mapper. AES-GCM's associated data binds the ciphertext to its
# stream, version and field: a ciphertext moved to another event, or changed by one bit,
# fails to decrypt and the read fails loudly (``MapperDeserialisationError``); only a
# destroyed key reads as erased.
SEALED = "hotline_sealed"
PERSONAL = "personal"
TEXT = "text"  # the one key of a sealed free-text field's plaintext


class _SealedTranscoding(Transcoding):
    type = Sealed
    name = SEALED

    def encode(self, obj: Sealed) -> dict[str, Any]:
        return obj.to_json()

    def decode(self, data: dict[str, Any]) -> Sealed:
        return Sealed.from_json(data)


def register_sealed(transcoder: JSONTranscoder) -> None:
    transcoder.register(_SealedTranscoding())


@functools.lru_cache(maxsize=1024)
def _topic(event_class: type) -> str:
    from eventsourcing.utils import get_topic

    return get_topic(event_class)


def associated_data(originator_id: Any, originator_version: int, field: str = PERSONAL) -> bytes:
    return f"hotline:{originator_id}:{originator_version}:{field}".encode()


@functools.lru_cache(maxsize=512)
def _stream_of(event_class: type) -> str | None:
    try:
        from domain.base import _owner_of

        return _owner_of(event_class).STREAM
    except (TypeError, AttributeError, KeyError):
        return None


def key_subject(event_class: type, state: dict[str, Any], originator_id: Any, keys: CitizenKeys) -> str:
    """Whose key encrypts this event's personal data (see infra/citizen_keys.py)."""
    stream = _stream_of(event_class)
    if stream == "citizen":
        return str(originator_id)
    citizen = state.get("citizen_id")
    if citizen:
        return str(citizen)
    if stream == "notification" and state.get("request_id"):
        owner = keys.owner(str(state["request_id"]))
        if owner != str(state["request_id"]):
            return owner
    personal = state.get(PERSONAL) or {}
    identifier = _identifier(personal, state.get("channel"))
    if identifier is not None:
        from domain.citizens.aggregate import identity_id

        return keys.owner(str(identity_id(identifier)))
    return keys.owner(str(originator_id))  # a request's later events: its citizen's, if known here


def _identifier(personal: dict[str, Any], channel: Any) -> str | None:
    from domain.citizens.aggregate import email_key
    from domain.privacy.aggregate import ERASED

    personal = {k: v for k, v in personal.items() if v != ERASED}  # an erased address identifies nobody
    phone = personal.get("phone") or (personal.get("to") if channel in ("sms", "voicemail", "fax") else None)
    email = personal.get("email") or (personal.get("to") if channel == "email" else None)
    if isinstance(phone, str) and phone:
        return f"phone:{phone}"
    if isinstance(email, str) and email:
        return f"email:{email_key(email)}"
    return None


@functools.lru_cache(maxsize=1024)
def citizen_text(event_class: type) -> tuple[str, ...]:
    """The fields of free text the citizen wrote (``CITIZEN_TEXT`` on the event class):
    sealed like ``personal`` when the jurisdiction's policy says so."""
    return tuple(getattr(event_class, "CITIZEN_TEXT", ()))


def key_links(state: dict[str, Any], originator_id: Any) -> list[tuple[str, str]]:
    """What an event says about ownership: a stream or identity claim naming its citizen."""
    citizen = state.get("citizen_id")
    if citizen and str(citizen) != str(originator_id):
        return [(str(originator_id), str(citizen))]
    return []


class SealingMapper(Mapper[Any]):
    """The library's mapper, encrypting ``personal`` fields on the way in and decrypting
    them on the way out (erased: every given value reads as ``[erased]``)."""

    def __init__(self, transcoder: Transcoder, keys: CitizenKeys, *, encrypt: bool = True, encrypt_text: bool = True, **kw: Any) -> None:
        super().__init__(transcoder, **kw)
        self.keys = keys
        self.encrypt = encrypt
        # The citizen's own words too (Settings.encrypt_citizen_text, the jurisdiction's policy).
        self.encrypt_text = encrypt_text
        # What ``prepare`` worked out for each event of the calling thread's batch (its key's
        # subject, its sealed texts), so that ``to_stored_event`` does not work it out again.
        self._plans = threading.local()

    def _personal(self, state: dict[str, Any]) -> dict[str, Any] | None:
        """The event's personal data to seal (None: encryption off, or nothing given)."""
        personal = state.get(PERSONAL)
        return personal if self.encrypt and isinstance(personal, dict) and personal else None

    def _text_fields(self, event_class: type, state: dict[str, Any]) -> list[str]:
        if not (self.encrypt and self.encrypt_text):
            return []
        return [f for f in citizen_text(event_class) if isinstance(state.get(f), str) and state[f]]

    def prepare(self, events: list[Any]) -> None:
        """Stores the keys and links a batch of events needs, in one transaction, before
        the batch's own transaction (the group committer calls this through ``save``)."""
        from domain.citizens.aggregate import CitizenIdentity

        links: list[tuple[str, str]] = []
        relinks: list[tuple[str, str]] = []
        to_seal: list[tuple[Any, dict[str, Any], list[str]]] = []
        for event in events:
            state = vars(event)
            if state.get("citizen_id"):
                found = key_links(state, event.originator_id)
                links += found
                if isinstance(event, (CitizenIdentity.Reclaimed, CitizenIdentity.Separated)):
                    relinks += found
            texts = self._text_fields(type(event), state)
            if self._personal(state) or texts:
                to_seal.append((event, state, texts))
        self.keys.remember(links)  # in memory first: the subjects below follow them
        subjects: list[str] = []
        owned: list[tuple[str, str]] = []
        plans: dict[int, tuple[Any, str, list[str]]] = {}
        for event, state, texts in to_seal:
            subject = key_subject(type(event), state, event.originator_id, self.keys)
            subjects.append(subject)
            plans[id(event)] = (event, subject, texts)
            stream = str(event.originator_id)
            if subject != stream:
                # The stream is the subject's too (a message sent to the citizen, a call
                # from their number): an erasure of the citizen names it.
                owned.append((stream, subject))
        self._plans.value = plans
        if subjects or links:
            self.keys.prepare(subjects, links + owned, stage=True)  # with the batch's events, or one round trip before them
        if relinks:  # a released claim claimed again, or separated to another (rare): its link is written over
            self.keys.relink(relinks)

    def to_stored_event(self, domain_event: Any) -> StoredEvent:
        state = vars(domain_event)
        keys = self.keys
        originator_id = domain_event.originator_id
        plan = getattr(self._plans, "value", {}).get(id(domain_event))
        if plan is not None and plan[0] is domain_event:  # prepared with its batch
            subject, texts = plan[1], plan[2]
        else:
            texts = self._text_fields(type(domain_event), state)
            if not self._personal(state) and not texts:
                return super().to_stored_event(domain_event)
            links = key_links(state, originator_id)
            if links and keys.stored_link(*links[0]) is False:  # not prepared with a batch
                keys.prepare((), links)
            subject = key_subject(type(domain_event), state, originator_id, keys)
            stream = str(originator_id)
            if subject != stream and keys.stored_link(stream, subject) is False:
                keys.prepare((), [(stream, subject)])
        personal = self._personal(state)
        version = domain_event.originator_version
        # The library's mapping (eventsourcing 9.5 Mapper.to_stored_event), with the sealed
        # values in place of the clear ones; the event object itself is not changed (the
        # aggregate and the cache hold it).
        sealed: dict[str, Any] = {}
        oid = str(originator_id)  # once: a UUID's str is slow
        if personal:
            value = keys.seal_json(subject, personal, associated_data(oid, version), self._dumps)
            sealed[PERSONAL] = {"_type_": SEALED, "_data_": value}
        for name in texts:  # one value, under the same key, bound to its own field
            value = keys.seal_json(subject, {TEXT: state[name]}, associated_data(oid, version, name), self._dumps)
            sealed[name] = {"_type_": SEALED, "_data_": value}
        class_version = getattr(type(domain_event), "class_version", 1)
        extra = {"class_version": class_version} if class_version > 1 else {}
        if isinstance(self.transcoder, FastJSONTranscoder):
            stored_state = self.transcoder.encode_with(state, sealed, extra)
        else:
            event_state = {k: v for k, v in state.items() if k not in ("originator_id", "originator_version")}
            stored_state = self.transcoder.encode({**event_state, **sealed, **extra})
        if self.compressor:
            stored_state = self.compressor.compress(stored_state)
        if self.cipher:
            stored_state = self.cipher.encrypt(stored_state)
        topic = _topic(type(domain_event))  # type: ignore[arg-type]
        return StoredEvent(originator_id=originator_id, originator_version=version, topic=topic, state=stored_state)

    def to_domain_event(self, stored_event: StoredEvent) -> Any:
        event = super().to_domain_event(stored_event)
        state = event.__dict__
        for name, value in list(state.items()):
            if isinstance(value, Sealed):
                opened = self.open(value, stored_event.originator_id, stored_event.originator_version, name)
                state[name] = opened if name == PERSONAL else opened.get(TEXT)
        return event

    def open(self, sealed: Sealed, originator_id: Any, originator_version: int, field: str = PERSONAL) -> dict[str, Any]:
        material = self.keys.material(sealed.key_id)
        if material == ERASED_KEY:
            from domain.privacy.aggregate import ERASED

            shape: dict[str, Any] = {k: ERASED for k in sealed.given}
            shape.update({k: None for k in sealed.empty})
            return shape
        try:
            plain = AESGCM(material).decrypt(sealed.nonce, sealed.ciphertext, associated_data(originator_id, originator_version, field))
        except InvalidTag:
            raise TamperedPersonalData(
                f"the personal data of {originator_id} v{originator_version} does not decrypt: changed or moved ciphertext"
            ) from None
        value: dict[str, Any] = orjson.loads(plain)
        return value

    @staticmethod
    def _dumps(value: Any) -> bytes:
        return orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS)


class TamperedPersonalData(RuntimeError):
    """A sealed personal field failed its authentication: never read as erased."""
