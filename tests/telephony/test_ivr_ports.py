"""The IVR on the real hotline (SQLite and PostgreSQL): a status lookup reads the request's
real status; out of the staffed hours (the calendars context) a message left becomes a
request on the voice-message channel with the recording attached, bytes stored before
the events; the call's contact records which flow and version the caller met."""

from __future__ import annotations

from datetime import UTC, datetime

from domain.base import Actor
from domain.contact_center import commands as cc
from domain.contact_center.contacts import Contact, contact_uuid_for
from domain.requests import commands as rc
from infra.runtime import Hotline
from projections import attachments, request_status
from telephony_adapter.ivr.actions import Hangup, IvrAction, Play, Record
from telephony_adapter.ivr.demo import publish_demo_flows
from telephony_adapter.ivr.engine import IvrSession
from telephony_adapter.ivr.ports import IVR_ACTOR, VOICE_MESSAGE_CHANNEL, HotlinePorts, current_flow, session_record_command, silence_wav

AGENT = Actor("op-anna", "agent")
MARIO = "+39 06 1234 5678"
SUNDAY_NIGHT = datetime(2026, 11, 22, 21, 30, tzinfo=UTC)  # 22:30 in Rome, a Sunday: unstaffed


def played(actions: list[IvrAction]) -> tuple[str, ...]:
    return tuple(m for a in actions if isinstance(a, Play) for m in a.media)


def keys(s: IvrSession, digits: str, now: datetime) -> list[IvrAction]:
    out: list[IvrAction] = []
    for d in digits:
        out += s.on_digit(d, now)
    return out


def register(hotline: Hotline) -> str:
    body = rc.RegisterRequest(
        kind="action",
        subtype="complaint",
        channel="phone",
        description="Streetlight out at the bus stop",
        contact=rc.Contact(name="Mario Rossi", phone=MARIO),
        problem_code="streetlight-out",
    )
    return str(hotline.bus.execute(body, AGENT).result["reference"])


def test_status_lookup_of_a_real_request_and_an_unknown_reference(hotline: Hotline) -> None:
    publish_demo_flows(hotline)
    reference = register(hotline)
    flow = current_flow(hotline, "main")
    assert flow.version == 1
    now = hotline.clock.now()  # Monday 10:00 in Rome: staffed
    ports = HotlinePorts.for_flow(hotline, flow, recordings=lambda name: b"")
    assert ports.is_open(now) and not ports.is_open(SUNDAY_NIGHT)
    s = IvrSession(flow, MARIO, "1234501", now, ports)
    s.start(now)
    keys(s, "21", now)  # English, the status of a request
    out = keys(s, reference, now)
    assert played(out) == (
        "sound:hotline/en/request",
        f"digits:{reference}",
        "sound:hotline/en/status-registered",
        "sound:hotline/en/main-menu",
    )
    keys(s, "1", now)
    unknown = "999999999999" if reference != "999999999999" else "999999999998"
    out = keys(s, unknown, now)
    assert played(out) == ("sound:hotline/en/reference-unknown", "sound:hotline/en/enter-reference")
    assert ports.status_of(reference) is not None and ports.status_of(unknown) is None and ports.status_of("12; drop") is None


def test_a_message_left_out_of_hours_becomes_a_request_with_the_recording(hotline: Hotline) -> None:
    publish_demo_flows(hotline)
    register(hotline)  # Mario is on record with his name: his number is enough to register
    hotline.clock.current = SUNDAY_NIGHT  # type: ignore[attr-defined]
    flow = current_flow(hotline, "main")
    audio = silence_wav(12.5)
    fetched: list[str] = []

    def recordings(name: str) -> bytes:
        fetched.append(name)
        return audio

    ports = HotlinePorts.for_flow(hotline, flow, recordings)
    s = IvrSession(flow, MARIO, "12345", SUNDAY_NIGHT, ports)
    s.start(SUNDAY_NIGHT)
    out = keys(s, "12", SUNDAY_NIGHT)  # Italian; closed: 2, leave a message
    assert played(out)[0] == "sound:hotline/it/closed-now"
    record = out[-1]
    assert isinstance(record, Record)
    done = s.on_recording_finished(record.name, 12.5, SUNDAY_NIGHT)
    assert fetched == [record.name] and done[-1] == Hangup()
    reference = s.message_reference
    assert reference and played(done) == ("sound:hotline/it/message-saved", f"digits:{reference}", "sound:hotline/it/goodbye")
    with hotline.read_store.engine.connect() as conn:
        row = request_status.by_reference(conn, reference)
        assert row is not None
        assert row["channel"] == VOICE_MESSAGE_CHANNEL and row["language"] == "it" and row["status"] == "registered"
        assert "(flow main, version 1; 12 s, language it)" in row["description"]  # the menu it was left in, for the audit
        files = attachments.of_request(conn, row["id"])
    assert len(files) == 1
    file = files[0]
    assert file["source"] == "voicemail" and file["content_type"] == "audio/x-wav" and file["size"] == len(audio)
    assert file["attached_by"] == IVR_ACTOR.id and file["filename"] == f"{record.name}.wav"
    assert hotline.attachments.get(file["sha256"]) == audio  # the bytes, stored under their hash
    # The same recording reported twice (a redelivered event) registers nothing twice.
    again = IvrSession(flow, MARIO, "12345", SUNDAY_NIGHT, ports, session_id=s.session_id)
    assert again.ports.leave_message(MARIO, "it", record.name, 12.5, SUNDAY_NIGHT) == reference


def test_a_message_from_a_number_nobody_knows_is_registered_with_the_number_alone(hotline: Hotline) -> None:
    # Nobody could ask a voice message's caller for a name: the number the network gave is
    # enough (domain/requests/intake.py CALLER_ID_ONLY); the agent calling back completes it.
    publish_demo_flows(hotline)
    hotline.clock.current = SUNDAY_NIGHT  # type: ignore[attr-defined]
    flow = current_flow(hotline, "main")
    s = IvrSession(flow, "+39 333 000 1111", "12345", SUNDAY_NIGHT, HotlinePorts.for_flow(hotline, flow, lambda name: silence_wav(3)))
    s.start(SUNDAY_NIGHT)
    record = keys(s, "12", SUNDAY_NIGHT)[-1]
    assert isinstance(record, Record)
    out = s.on_recording_finished(record.name, 3, SUNDAY_NIGHT)
    assert "sound:hotline/it/message-failed" not in played(out) and s.message_reference is not None
    with hotline.read_store.engine.connect() as conn:
        row = request_status.by_reference(conn, s.message_reference)
    assert row is not None and row["channel"] == "voicemail"
    # Without a number (withheld), nothing can be registered: the caller is told.
    s = IvrSession(flow, "", "12345", SUNDAY_NIGHT, HotlinePorts.for_flow(hotline, flow, lambda name: silence_wav(3)))
    s.start(SUNDAY_NIGHT)
    record = keys(s, "12", SUNDAY_NIGHT)[-1]
    if isinstance(record, Record):  # a flow may refuse to record for a withheld number at all
        out = s.on_recording_finished(record.name, 3, SUNDAY_NIGHT)
        assert "sound:hotline/it/message-failed" in played(out) and s.message_reference is None


def test_the_contact_records_the_flow_and_version_met(hotline: Hotline) -> None:
    publish_demo_flows(hotline)
    sup = Actor("sup-li", "supervisor")
    hotline.bus.execute(cc.DefineQueue(queue_id="general", media="voice"), sup)
    now = hotline.clock.now()
    flow = current_flow(hotline, "main")
    s = IvrSession(flow, MARIO, "12345", now, HotlinePorts.for_flow(hotline, flow, lambda name: b""))
    s.start(now)
    handover = keys(s, "1211", now)[-1]  # Italian, a person, general questions, wait in line
    assert s.done and s.record()["outcome"] == "handover"
    arrived = hotline.bus.execute(
        cc.ContactArrives(channel="phone", queue_id="general", language="it", phone=MARIO, external_id="chan-7"), IVR_ACTOR
    )
    assert arrived.result["status"] == "queued" and handover is not None
    hotline.bus.execute(session_record_command("chan-7", s), IVR_ACTOR)
    events = list(hotline.store.events.get(contact_uuid_for("chan-7")))
    met = [e for e in events if isinstance(e, Contact.IvrSessionRecorded)]
    assert len(met) == 1
    assert (met[0].flow_id, met[0].flow_version, met[0].flow_sha256, met[0].language, met[0].outcome) == (
        "main",
        1,
        flow.sha256,
        "it",
        "handover",
    )
    assert met[0].steps == s.steps
