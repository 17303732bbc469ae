"""The IVR engine's ports over the real hotline (``IvrPorts`` of ``engine.py``).

* ``status_of``: the request-status read model (``projections/request_status.py``), by
  reference; only the status and the deadline leave it (no personal data is read out).
* ``is_open``: the flow's calendar in the calendars context (``domain/calendars``: the
  ``JurisdictionCalendar`` the flow names, e.g. ``hotline``, read as reference data,
  cached); a flow without a calendar is always open.
* ``leave_message``: the recording's bytes (fetched by the ARI side from
  ``GET /recordings/stored/{name}/file``: the ``recordings`` function given) are stored
  first (``infra/attachments.py``, content-addressed, the type read from the content:
  audio only), then a request is registered on the voice-message channel through the
  command bus, then the recording is attached to it (``AttachFile``, source
  ``voicemail``): bytes first, events second, as for every channel. Both commands carry
  idempotency keys derived from the recording's name, so a retried message registers
  nothing twice.

A port never raises for a refusal it can explain: it answers None (the flow then says
the message could not be taken) and logs why, with ids only.
"""

from __future__ import annotations

import io
import logging
import math
import wave
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from domain.attachments import commands as ac
from domain.base import Actor, DomainError
from domain.calendars.aggregate import JurisdictionCalendar, calendar_id
from domain.contact_center import commands as cc
from domain.ivr.aggregate import IvrFlow, flow_uuid
from domain.requests import commands as rc
from domain.requests.aggregate import CHANNELS
from infra.attachments import AttachmentStore
from infra.runtime import Hotline
from projections import ivr as ivr_rm
from projections import request_status
from telephony_adapter.ivr.engine import Flow, IvrSession, StatusInfo

log = logging.getLogger("hotline.ivr")

IVR_ACTOR = Actor("ivr", "system", "IVR (voice menus)")
# The seed's voice-message channel. Until the requests context lists it among its
# channels (domain/requests/aggregate.py CHANNELS), a voicemail is a phone request whose
# attachment's source is "voicemail".
VOICE_MESSAGE_CHANNEL = "voicemail" if "voicemail" in CHANNELS else "phone"
# What a recording may be (sniffed from the bytes): Asterisk records wav, wav16, ogg/opus.
VOICEMAIL_TYPES = ("audio/x-wav", "audio/wav", "audio/ogg", "audio/opus", "audio/mpeg", "audio/x-flac")

Recordings = Callable[[str], bytes]


def silence_wav(seconds: float, rate: int = 8000) -> bytes:
    """A WAV file of ``seconds`` of silence (8 kHz, 16-bit mono, as Asterisk's ``wav``):
    what ``hotline ivr try`` records when the caller is a keyboard."""
    frames = max(1, int(rate * max(0.0, min(seconds, 600.0)))) if math.isfinite(seconds) else rate
    out = io.BytesIO()
    with wave.open(out, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(b"\x00\x00" * frames)
    return out.getvalue()


@dataclass
class HotlinePorts:
    """The ports of one call (or of many: nothing here is per call but ``contact_id``)."""

    hotline: Hotline
    recordings: Recordings
    calendar: str | None = None  # the flow's "calendar": a jurisdiction of the calendars context
    contact_id: str | None = None  # the call's contact, named on the request it registers
    flow: str = "IVR"  # "flow main, version 3": which menu the message was left in, on the request
    actor: Actor = IVR_ACTOR
    _voicemail: AttachmentStore | None = field(default=None, repr=False)

    @classmethod
    def for_flow(cls, hotline: Hotline, flow: Flow, recordings: Recordings, contact_id: str | None = None) -> HotlinePorts:
        named = f"flow {flow.flow_id}, version {flow.version}" if flow.version else f"flow {flow.flow_id}, unpublished"
        return cls(hotline, recordings, flow.document.get("calendar"), contact_id, flow=named)

    # ------------------------------------------------------------------ status
    def status_of(self, reference: str) -> StatusInfo | None:
        if not reference.isdigit():
            return None
        with self.hotline.read_store.engine.connect() as conn:
            row = request_status.by_reference(conn, reference)
        if row is None:
            return None
        return StatusInfo(reference=row["reference"], status=row["status"], due_at=row["due_at"] if row["status"] != "closed" else None)

    # ------------------------------------------------------------------ hours
    def is_open(self, now: datetime) -> bool:
        if not self.calendar:
            return True
        found = self.hotline.store.reference(calendar_id(self.calendar))
        if not isinstance(found, JurisdictionCalendar):
            raise LookupError(f"the flow's calendar {self.calendar!r} is not defined (POST /calendars/{self.calendar})")
        return bool(found.calendar.is_working_time(now))

    # ------------------------------------------------------------------ messages
    @property
    def voicemail_store(self) -> AttachmentStore:
        """The attachment store's blobs, taking audio (photos and documents elsewhere)."""
        if self._voicemail is None:
            base = self.hotline.attachments
            self._voicemail = AttachmentStore(base.blobs, base.max_bytes, VOICEMAIL_TYPES)
        return self._voicemail

    def leave_message(self, caller: str, language: str, recording_name: str, duration_s: float, now: datetime) -> str | None:
        audio = self.recordings(recording_name)
        try:
            blob = self.voicemail_store.put(audio, f"{recording_name}.wav")
        except DomainError as exc:
            log.warning("ivr: recording %s refused: %s", recording_name, exc.message)
            return None
        register = rc.RegisterRequest(
            kind="information",  # an operator listens and classifies it
            channel=VOICE_MESSAGE_CHANNEL,  # type: ignore[arg-type]
            description=f"Voice message left in the IVR ({self.flow}; {round(duration_s)} s, language {language}): recording attached.",
            contact=rc.Contact(phone=caller) if caller else None,
            language=language,  # type: ignore[arg-type]
            reply_channel="phone" if caller else None,
            contact_id=self.contact_id,
        )
        bus = self.hotline.bus
        try:
            request = bus.execute(register, self.actor, idempotency_key=f"ivr-voicemail:{recording_name}", idempotency_scope="ivr").result
        except DomainError as exc:
            # e.g. the intake policy wants a name and the number is nobody's on record.
            log.warning("ivr: message %s not registered (%s): %s", recording_name, exc.code, exc.message)
            return None
        reference = str(request["reference"])
        attach = ac.AttachFile(
            request_ref=reference,
            sha256=blob.sha256,
            content_type=blob.content_type,
            size=blob.size,
            filename=blob.filename,
            source="voicemail",
        )
        try:
            bus.execute(attach, self.actor, idempotency_key=f"ivr-voicemail-file:{recording_name}", idempotency_scope="ivr")
        except DomainError as exc:
            # The request is there and the bytes are stored: the same call again attaches them.
            log.error("ivr: recording %s not attached to request %s (%s): %s", recording_name, reference, exc.code, exc.message)
        return reference


# ---------------------------------------------------------------------- flows
_CHECKED: dict[tuple[str, int, str], Flow] = {}


def current_flow(hotline: Hotline, flow_id: str, flow_version: int | None = None) -> Flow:
    """A published flow (its current version, or the one asked for), from the read model;
    from the event store when the read model has not got it yet."""
    with hotline.read_store.engine.connect() as conn:
        row = ivr_rm.version(conn, flow_id, flow_version)
    if row is not None:
        key = (row["flow_id"], row["flow_version"], row["sha256"])
        found = _CHECKED.get(key)
        if found is None:  # checked once per version, not once per call
            found = _CHECKED[key] = Flow.of(row["document"], row["flow_version"])
            while len(_CHECKED) > 256:
                _CHECKED.pop(next(iter(_CHECKED)), None)
        return found
    stored = hotline.store.reference(flow_uuid(flow_id))
    if isinstance(stored, IvrFlow) and stored.document is not None and flow_version in (None, stored.current):
        return Flow.of(stored.document, stored.current)
    raise LookupError(f"no published IVR flow {flow_id}" + (f" version {flow_version}" if flow_version else ""))


def session_record_command(contact_id: str, session: IvrSession) -> cc.RecordIvrSession:
    """What the auditor keeps of a call's IVR session, on its contact: the flow and
    version the caller met, the language, how it ended (the ARI adapter issues it when
    the session is done)."""
    record: dict[str, Any] = session.record()
    return cc.RecordIvrSession(
        contact_id=contact_id,
        flow_id=record["flow_id"],
        flow_version=record["flow_version"],
        flow_sha256=record["flow_sha256"],
        language=record["language"],
        outcome=record["outcome"] or "unfinished",
        steps=record["steps"],
        request_reference=record["message_reference"],
    )
