"""Call recordings (issue 19, item 3): the queue's policy, metadata as events, search,
playback permissions and its audit, retention that spares supervised and disputed cases,
and erasure with the citizen's key; on SQLite and PostgreSQL.

The audio is a real WAV written by Python's ``wave`` module (an independent encoder), so
the type the store sniffs is checked against what the bytes are.
"""

from __future__ import annotations

import hashlib
import io
import uuid
import wave
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest

from api.app import create_app
from domain.base import Actor, FixedClock, InvalidCommand, InvalidTransition, NotFound
from domain.contact_center import commands as cc
from domain.privacy.aggregate import ERASED
from domain.recordings import commands as recc
from domain.recordings.aggregate import Recording, recording_uuid
from domain.recordings.policy import QueuePolicy, allows, in_sample, should_record
from domain.requests import commands as rc
from domain.requests.aggregate import request_id_for
from infra.privacy import erase_citizen
from infra.recordings import apply_recording_retention
from infra.runtime import Hotline
from projections import recordings as rm
from projections.base import MemoryRows
from telephony_adapter.recorder import Recorder
from tests.auth import SignedInClient, actor
from tests.read_log import ReadLog

SUP = Actor("sup1", "supervisor")
PBX = Actor("pbx", "system")
CTRL = Actor("ctrl", "control_office")
ROADS = Actor("roads", "department", departments=("transport",))
PHONE = "+390612345678"
ANNOUNCE = "sound:hotline/call-recorded"


def advance(h: Hotline, **delta: float) -> None:
    clock = h.clock
    assert isinstance(clock, FixedClock)
    clock.advance(**delta)


def wav(seconds: float = 0.5, tone: int = 3) -> bytes:
    out = io.BytesIO()
    with wave.open(out, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(8000)
        w.writeframes(bytes((i * tone) % 256 for i in range(int(16000 * seconds))))
    return out.getvalue()


# ---------------------------------------------------------------------- the policy, pure
def test_policy_all_none_sample_and_on_demand() -> None:
    ids = [str(uuid.UUID(int=n)) for n in range(4000)]
    everything = QueuePolicy("all", 0, ANNOUNCE)
    nothing = QueuePolicy("none")
    sample = QueuePolicy("sample", 25, ANNOUNCE)
    demand = QueuePolicy("on_demand", 0, ANNOUNCE)
    assert all(should_record(everything, i, False) for i in ids)
    assert not any(should_record(nothing, i, agent_demand) for i in ids for agent_demand in (False, True))
    assert not should_record(None, ids[0], False)  # a queue without a policy records nothing
    sampled = [i for i in ids if should_record(sample, i, False)]
    assert 0.22 < len(sampled) / len(ids) < 0.28
    assert sampled == [i for i in ids if should_record(sample, i, False)]  # deterministic by contact id
    assert all(in_sample(i, 25) for i in sampled) and all(in_sample(i, 50) for i in sampled)  # a larger sample contains it
    assert not any(should_record(demand, i, False) for i in ids) and all(should_record(demand, i, True) for i in ids)
    assert allows(demand, ids[0], "agent_demand") and not allows(demand, ids[0], "policy")
    assert allows(nothing, ids[0], "voicemail") and not allows(nothing, ids[0], "agent_demand")
    assert allows(sample, sampled[0], "sample") and not allows(sample, next(i for i in ids if i not in sampled), "sample")


# ---------------------------------------------------------------------- through the bus
def setup(h: Hotline, mode: str = "all", **policy: Any) -> Recorder:
    h.bus.execute(cc.DefineQueue(queue_id="general", wrap_seconds=0), SUP)
    for agent in ("op1", "op2"):
        h.bus.execute(cc.LoginAgent(agent_id=agent, queues=["general"]), Actor(agent, "agent"))
    body: dict[str, Any] = {"queue_id": "general", "mode": mode, **policy}
    if mode != "none":
        body.setdefault("announcement", ANNOUNCE)
    h.bus.execute(recc.SetRecordingPolicy(**body), SUP)
    return Recorder(h.bus, h.attachments)


def call(h: Hotline, agent: str, phone: str | None = PHONE, channel: str | None = None) -> str:
    """A call answered by ``agent``: its contact id."""
    arrived = h.bus.execute(cc.ContactArrives(channel="phone", queue_id="general", phone=phone, external_id=channel), PBX).result
    h.bus.execute(cc.OfferContact(contact_id=arrived["id"], agent_id=agent), PBX)
    h.bus.execute(cc.Answer(contact_id=arrived["id"], agent_id=agent), Actor(agent, "agent"))
    return str(arrived["id"])


def record(h: Hotline, recorder: Recorder, contact_id: str, agent: str, name: str, audio: bytes, reason: str = "policy") -> str:
    recorder.started(name, contact_id, agent, None, reason, h.clock.now())  # type: ignore[arg-type]
    advance(h, seconds=30)
    recorder.finished(name, audio, 30.0)
    return str(recording_uuid(name))


def register(h: Hotline, phone: str = PHONE) -> str:
    contact = rc.Contact(name="Mario Rossi", phone=phone)
    reg = h.bus.execute(
        rc.RegisterRequest(
            kind="action", subtype="complaint", channel="phone", description="Pothole", contact=contact, problem_code="pothole"
        ),
        Actor("op1", "agent"),
    )
    ref = str(reg.result["reference"])
    h.bus.execute(rc.Dispatch(ref=ref), Actor("op1", "agent"))
    return ref


def link(h: Hotline, contact_id: str, ref: str, agent: str = "op1") -> None:
    h.bus.execute(cc.LinkRequest(contact_id=contact_id, request_id=str(request_id_for(ref))), Actor(agent, "agent"))


def test_recording_metadata_is_events_and_the_audio_is_stored_once(hotline: Hotline) -> None:
    h = hotline
    recorder = setup(h)
    ref = register(h)  # the caller is a known citizen: the recording names them
    contact_id = call(h, "op1", channel="1700.1")
    link(h, contact_id, ref)
    audio = wav()
    assert recorder.decide("general", "1700.1") == "policy" and recorder.announcement("general") == ANNOUNCE
    rid = record(h, recorder, "1700.1", "op1", "rec-1700.1", audio)
    started, completed = [e for e in h.store.iter_envelopes() if e.stream == "recording"]
    citizen_id = str(h.store.read_reference(request_id_for(ref)).citizen_id)
    assert started.name == "started" and started.aggregate_id == rid
    d = started.data
    assert (d["contact_id"], d["agent_id"], d["queue_id"], d["reason"], d["announcement"]) == (
        contact_id,
        "op1",
        "general",
        "policy",
        ANNOUNCE,
    )
    assert d["citizen_id"] == citizen_id and d["request_ids"] == [str(request_id_for(ref))] and d["personal"] == {"phone": PHONE}
    c = completed.data
    assert c["sha256"] == hashlib.sha256(audio).hexdigest() and c["size_bytes"] == len(audio) and c["duration_s"] == 30.0
    assert c["location"] == f"attachments:{c['sha256']}" and c["content_type"].startswith("audio/")
    assert h.attachments.get(c["sha256"]) == audio
    # The caller's number is sealed with the citizen's key in the store, not written in clear.
    raw = b"".join(s.state for s in h.store.recorder.select_events(uuid.UUID(rid)))
    assert PHONE.encode() not in raw and b"hotline_sealed" in raw
    # A re-delivered RecordingFinished changes nothing; another file is refused.
    assert recorder.finished("rec-1700.1", audio, 30.0)["duplicate"] is True
    with pytest.raises(InvalidTransition):
        recorder.finished("rec-1700.1", wav(tone=5), 30.0)
    with pytest.raises(InvalidCommand):  # not audio
        recorder.finished("rec-1700.1", b"%PDF-1.4 not a call", 1.0)


def test_the_queue_policy_decides_what_may_be_recorded(sqlite_hotline: Hotline) -> None:
    h = sqlite_hotline
    recorder = setup(h, "none")
    contact_id = call(h, "op1")
    now = h.clock.now()
    for reason in ("policy", "sample", "agent_demand"):
        with pytest.raises(InvalidTransition) as refused:
            recorder.started(f"r-{reason}", contact_id, "op1", None, reason, now)  # type: ignore[arg-type]
        assert refused.value.code == "recording_not_allowed"
    assert recorder.started("r-vm", contact_id, None, None, "voicemail", now)["reason"] == "voicemail"
    h.bus.execute(recc.SetRecordingPolicy(queue_id="general", mode="on_demand", announcement=ANNOUNCE), SUP)
    with pytest.raises(InvalidTransition):
        recorder.started("r-policy", contact_id, "op1", None, "policy", now)
    assert recorder.started("r-demand", contact_id, "op1", None, "agent_demand", now)["reason"] == "agent_demand"
    h.bus.execute(recc.SetRecordingPolicy(queue_id="general", mode="sample", sample_percent=50, announcement=ANNOUNCE), SUP)
    for n in range(12):
        cid = call(h, "op2")
        decided = recorder.decide("general", cid)
        if decided == "sample":
            assert recorder.started(f"s-{n}", cid, "op2", None, "sample", now)["reason"] == "sample"
        else:
            with pytest.raises(InvalidTransition):
                recorder.started(f"s-{n}", cid, "op2", None, "sample", now)
        h.bus.execute(cc.End(contact_id=cid, ended_by="citizen"), PBX)
    with pytest.raises(NotFound):  # a policy is for a queue that exists
        h.bus.execute(recc.SetRecordingPolicy(queue_id="no-such-queue", mode="all", announcement=ANNOUNCE), SUP)
    # The policy's own rules: a sample needs its share, recording needs its announcement.
    for bad in ({"mode": "sample", "announcement": ANNOUNCE}, {"mode": "all"}, {"mode": "none", "announcement": ANNOUNCE}):
        with pytest.raises(InvalidCommand):
            h.bus.execute(recc.SetRecordingPolicy(queue_id="general", **bad), SUP)  # type: ignore[arg-type]


# ---------------------------------------------------------------------- HTTP: search, playback
@pytest.fixture
def client(hotline: Hotline) -> Iterator[SignedInClient]:
    with SignedInClient(create_app(hotline=hotline)) as c:
        yield c


def day_of_recordings(h: Hotline) -> dict[str, Any]:
    """Four recordings: op1 on a transport case, op1 unlinked, op2 from another caller,
    op2 the next day on the second queue."""
    recorder = setup(h)
    h.bus.execute(cc.DefineQueue(queue_id="second", wrap_seconds=0), SUP)
    h.bus.execute(recc.SetRecordingPolicy(queue_id="second", mode="all", announcement=ANNOUNCE), SUP)
    ref = register(h)
    c1 = call(h, "op1")
    link(h, c1, ref)
    r1 = record(h, recorder, c1, "op1", "r1", wav(tone=1))
    h.bus.execute(cc.End(contact_id=c1, ended_by="citizen"), PBX)
    c2 = call(h, "op1", phone="+390698765432")
    r2 = record(h, recorder, c2, "op1", "r2", wav(tone=2))
    h.bus.execute(cc.End(contact_id=c2, ended_by="citizen"), PBX)
    c3 = call(h, "op2", phone="+390611112222")
    r3 = record(h, recorder, c3, "op2", "r3", wav(tone=3))
    h.bus.execute(cc.End(contact_id=c3, ended_by="citizen"), PBX)
    advance(h, days=1)
    h.bus.execute(cc.MoveAgent(agent_id="op2", queues=["general", "second"]), SUP)
    arrived = h.bus.execute(cc.ContactArrives(channel="phone", queue_id="second", phone="+390633334444"), PBX).result
    h.bus.execute(cc.OfferContact(contact_id=arrived["id"], agent_id="op2"), PBX)
    h.bus.execute(cc.Answer(contact_id=arrived["id"], agent_id="op2"), Actor("op2", "agent"))
    r4 = record(h, recorder, str(arrived["id"]), "op2", "r4", wav(tone=4))
    citizen = str(h.store.read_reference(request_id_for(ref)).citizen_id)
    return {"ref": ref, "citizen": citizen, "r1": r1, "r2": r2, "r3": r3, "r4": r4, "c1": c1}


def ids(response: Any) -> list[str]:
    assert response.status_code == 200, response.text
    return sorted(i["id"] for i in response.json()["items"])


def test_search_by_date_agent_queue_citizen_request_paginated(hotline: Hotline, client: SignedInClient) -> None:
    day = day_of_recordings(hotline)
    r1, r2, r3, r4 = day["r1"], day["r2"], day["r3"], day["r4"]
    sup = actor("sup1", "supervisor")
    assert ids(client.get("/recordings", headers=sup)) == sorted([r1, r2, r3, r4])
    tomorrow = (hotline.clock.now() - timedelta(hours=1)).isoformat()
    assert ids(client.get("/recordings", params={"since": tomorrow}, headers=sup)) == [r4]
    assert ids(client.get("/recordings", params={"until": tomorrow}, headers=sup)) == sorted([r1, r2, r3])
    assert ids(client.get("/recordings", params={"agent_id": "op2"}, headers=sup)) == sorted([r3, r4])
    assert ids(client.get("/recordings", params={"queue_id": "second"}, headers=sup)) == [r4]
    assert ids(client.get("/recordings", params={"citizen_id": day["citizen"]}, headers=sup)) == [r1]
    assert ids(client.get("/recordings", params={"request": day["ref"]}, headers=sup)) == [r1]
    page1 = client.get("/recordings", params={"limit": 3}, headers=sup).json()
    page2 = client.get("/recordings", params={"limit": 3, "offset": 3}, headers=sup).json()
    assert page1["total"] == page2["total"] == 4 and len(page1["items"]) == 3 and len(page2["items"]) == 1
    assert {i["id"] for i in page1["items"]} | {i["id"] for i in page2["items"]} == {r1, r2, r3, r4}
    # newest first, with the metadata the issue names
    first = page1["items"][0]
    assert first["id"] == r4 and first["duration_s"] == 30.0 and first["sha256"] and first["size_bytes"] > 0
    assert client.get("/recordings", params={"limit": 0}, headers=sup).status_code == 422
    assert client.get("/recordings", params={"since": "2026-11-16T09:00:00"}, headers=sup).status_code == 422  # no zone
    # Scopes on the list: an agent sees their own calls, a department its cases' recordings.
    assert ids(client.get("/recordings", headers=actor("op1", "agent"))) == sorted([r1, r2])
    assert client.get("/recordings", params={"agent_id": "op2"}, headers=actor("op1", "agent")).status_code == 403
    assert ids(client.get("/recordings", headers=actor("roads", "department", ["transport"]))) == [r1]
    assert ids(client.get("/recordings", headers=actor("parks", "department", ["environment"]))) == []
    assert client.get("/recordings", headers=actor("sara", "analyst")).status_code == 403
    # Metadata of one recording, by the same rule.
    assert client.get(f"/recordings/{r1}", headers=actor("roads", "department", ["transport"])).json()["request_ids"]
    assert client.get(f"/recordings/{r3}", headers=actor("op1", "agent")).status_code == 403


def test_playback_permissions_and_every_playback_audited(
    hotline: Hotline, client: SignedInClient, caplog: pytest.LogCaptureFixture
) -> None:
    log = ReadLog(caplog, hotline.settings)
    day = day_of_recordings(hotline)
    r1, r3 = day["r1"], day["r3"]
    allowed = {
        "op1 own call": (actor("op1", "agent"), r1),
        "supervisor": (actor("sup1", "supervisor"), r3),
        "auditor": (actor("omar", "auditor"), r3),
        "control office": (actor("ctrl", "control_office"), r3),
        "department, its case": (actor("roads", "department", ["transport"]), r1),
    }
    refused = {
        "op1 another's call": (actor("op1", "agent"), r3),
        "department, not its case": (actor("roads", "department", ["transport"]), r3),
        "department, another's case": (actor("parks", "department", ["environment"]), r1),
        "analyst": (actor("sara", "analyst"), r1),
        "citizen": (actor(f"citizen:{day['citizen']}", "citizen", citizen=day["citizen"]), r1),
    }
    for who, (headers, rid) in refused.items():
        r = client.post(f"/recordings/{rid}/playback", json={"purpose": "quality review"}, headers=headers)
        assert r.status_code == 403, (who, r.text)
        assert r.json()["error"]["code"] == "forbidden"
    for who, (headers, rid) in allowed.items():
        log.new_lines()  # what came before this playback
        r = client.post(f"/recordings/{rid}/playback", json={"purpose": f"review by {who}"}, headers=headers)
        assert r.status_code == 200, (who, r.text)
        link = r.json()
        audio = client.get(link["url"], headers=headers)
        logs = log.new_lines()
        assert audio.status_code == 200 and audio.headers["content-type"].startswith("audio/")
        assert audio.content == hotline.attachments.get(hashlib.sha256(audio.content).hexdigest())
        reads = [entry for entry in logs if entry.get("event") == "personal data read"]
        assert [e["what"] for e in reads] == ["recording playback", "recording audio"], reads
        assert all(e["actor_id"] == headers["X-Actor-Id"] and e["subject"] == rid for e in reads)
    # The audit in the event store: one grant per playback, with who and why.
    grants = [e for e in hotline.store.iter_envelopes() if e.stream == "recording" and e.name == "playback_granted"]
    assert len(grants) == len(allowed)
    assert {(g.meta["actor_id"], g.data["purpose"]) for g in grants} == {
        (h["X-Actor-Id"], f"review by {w}") for w, (h, _) in allowed.items()
    }
    assert all("token" not in str(g.data).replace("token_sha256", "") for g in grants)
    # A link is the grantee's only, and short-lived.
    link = client.post(f"/recordings/{r3}/playback", json={}, headers=actor("sup1", "supervisor")).json()
    assert client.get(link["url"], headers=actor("omar", "auditor")).status_code == 403
    assert client.get(link["url"].split("?")[0] + "?token=" + "x" * 43, headers=actor("sup1", "supervisor")).status_code == 403
    advance(hotline, seconds=hotline.settings.recordings_link_seconds + 1)
    assert client.get(link["url"], headers=actor("sup1", "supervisor")).status_code == 403
    with hotline.read_store.engine.connect() as conn:
        row = rm.get(conn, r3)
    assert row is not None and row["plays"] == 4


# ---------------------------------------------------------------------- retention and erasure
def test_retention_deletes_old_audio_but_keeps_supervised_and_disputed_cases(hotline: Hotline) -> None:
    h = hotline
    recorder = setup(h)
    supervised, disputed, plain = register(h, "+390611110001"), register(h, "+390611110002"), register(h, "+390611110003")
    made: dict[str, tuple[str, bytes]] = {}
    for n, (ref, phone) in enumerate(((supervised, "+390611110001"), (disputed, "+390611110002"), (plain, "+390611110003"))):
        cid = call(h, "op1", phone=phone)
        link(h, cid, ref)
        audio = wav(tone=10 + n)
        made[ref] = (record(h, recorder, cid, "op1", f"keep-{n}", audio), audio)
        h.bus.execute(cc.End(contact_id=cid, ended_by="citizen"), PBX)
    unlinked = call(h, "op2", phone="+390611110004")
    made["none"] = (record(h, recorder, unlinked, "op2", "unlinked", wav(tone=20)), wav(tone=20))
    h.bus.execute(rc.Supervise(ref=supervised, reason="overdue complaint"), CTRL)
    h.bus.execute(rc.ReturnToDispatcher(ref=disputed, reason="not our road"), ROADS)
    assert apply_recording_retention(h)["deleted"] == []  # nothing is 90 days old yet
    advance(h, days=91)
    outcome = apply_recording_retention(h)
    assert sorted(outcome["deleted"]) == sorted([made[plain][0], made["none"][0]])
    kept = {k["id"]: k["why"] for k in outcome["kept"]}
    assert "supervised" in kept[made[supervised][0]] and "disputed" in kept[made[disputed][0]]
    for ref, (rid, audio) in made.items():
        gone = ref in (plain, "none")
        assert h.attachments.exists(hashlib.sha256(audio).hexdigest()) is not gone, ref
        assert h.store.read_reference(uuid.UUID(rid)).status == ("deleted" if gone else "completed")
    with h.read_store.engine.connect() as conn:
        remaining = {r["id"] for r in rm.search(conn)[0]}
    assert remaining == {made[supervised][0], made[disputed][0]}
    assert apply_recording_retention(h)["deleted"] == []  # idempotent


def test_erasure_deletes_the_audio_and_blanks_the_metadata(hotline: Hotline, client: SignedInClient) -> None:
    h = hotline
    recorder = setup(h)
    ref = register(h)
    cid = call(h, "op1")
    link(h, cid, ref)
    audio = wav(tone=7)
    rid = record(h, recorder, cid, "op1", "to-erase", audio)
    citizen_id = str(h.store.read_reference(request_id_for(ref)).citizen_id)
    sha = hashlib.sha256(audio).hexdigest()
    assert h.attachments.exists(sha)
    erase_citizen(h, citizen_id, "the citizen asked to be forgotten", Actor("admin", "administrator"))
    assert not h.attachments.exists(sha)
    recording = h.store.read_reference(uuid.UUID(rid))
    assert isinstance(recording, Recording) and recording.personal == {"phone": ERASED}
    with h.read_store.engine.connect() as conn:
        row = rm.get(conn, rid)
    assert row is not None and row["phone"] == ERASED and row["audio_erased"] is True and row["location"] is None
    shown = client.get(f"/recordings/{rid}", headers=actor("sup1", "supervisor")).json()
    assert shown["phone"] == ERASED and shown["playback_url"] is None
    r = client.post(f"/recordings/{rid}/playback", json={}, headers=actor("sup1", "supervisor"))
    assert r.status_code == 409 and r.json()["error"]["code"] == "recording_erased"


def test_the_read_model_is_the_same_whichever_aggregate_is_seen_first(sqlite_hotline: Hotline) -> None:
    """A request linked to the call after its recording started: the contact's and the
    recording's events may reach the projection in either order (Kafka orders per aggregate)."""
    h = sqlite_hotline
    recorder = setup(h)
    ref = register(h)
    cid = call(h, "op1")
    rid = record(h, recorder, cid, "op1", "late-link", wav())
    link(h, cid, ref)
    envelopes = [e for e in h.store.iter_envelopes() if rm.projection.handles(e.type)]
    linked = next(e for e in envelopes if e.name == "request_linked")
    recording_first = [e for e in envelopes if e is not linked] + [linked]
    contact_first = [linked] + [e for e in envelopes if e is not linked]
    results = []
    for order in (envelopes, recording_first, contact_first):
        rows = MemoryRows(rm.projection)
        rows.apply_all(order)
        results.append({t: sorted(map(str, rows.rows(t))) for t in rm.projection.tables})
    assert results[0] == results[1] == results[2]
    [row] = results[0][rm.RECORDINGS.name]
    assert rid in row and str(request_id_for(ref)) in row
