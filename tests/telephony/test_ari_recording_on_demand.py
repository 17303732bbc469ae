"""Recording on the agent's demand through the ARI adapter, against the Asterisk stand-in:
the agent on an answered call asks (``RecordCall``, the ``recording_demanded`` event on the
contact); the adapter plays the queue's announcement to the call's bridge and records it
(``POST /bridges/{id}/play``, ``POST /bridges/{id}/record``, both checked against
Asterisk's model by the stand-in), and the finished file becomes a completed Recording
with reason ``agent_demand`` and the agent's id. A demand on a call recorded already is
left alone; one made before the call is bridged waits for the bridge."""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from domain.base import Actor, InvalidTransition
from domain.contact_center import commands as cc
from domain.recordings.aggregate import Recording, recording_uuid
from domain.recordings.commands import RecordCall, SetRecordingPolicy
from telephony_adapter.process import TelephonyProcess
from telephony_adapter.recorder import Recorder
from tests.telephony.ari_harness import Pbx, in_order, login, pbx, start_pbx, wait

__all__ = ["pbx"]

ANNOUNCE = "sound:hotline/call-recorded"
A1 = Actor("A1", "agent")


def recorder_adapter(pbx: Pbx) -> TelephonyProcess:
    return pbx.adapter(recorder=Recorder(pbx.hotline.bus, pbx.hotline.attachments))


def recording_events(pbx: Pbx, name: str) -> list[Any]:
    return [e for e in pbx.hotline.store.iter_envelopes() if e.stream == "recording" and e.name == name]


def call_with_recorder(pbx: Pbx) -> tuple[TelephonyProcess, str, str]:
    """Agent A1 signed in to general, the adapter with a recorder, and a call to general:
    the adapter, the caller's channel and the contact's id."""
    login(pbx, "A1", ["general"])
    adapter = recorder_adapter(pbx)
    caller = pbx.standin.call("+390655501234", "general")
    return adapter, caller, pbx.contact_of(caller)


def bridged(pbx: Pbx, contact_id: str) -> bool:
    return len(pbx.standin.bridges.get(f"hl-contact.{contact_id}", {}).get("channels", [])) == 2


def test_an_agent_asks_to_record_an_answered_call(pbx: Pbx) -> None:
    pbx.run(SetRecordingPolicy(queue_id="general", mode="on_demand", announcement=ANNOUNCE))
    adapter, caller, cid = call_with_recorder(pbx)
    pbx.wait_status(cid, "connected")
    wait(lambda: bridged(pbx, cid), what="caller and agent bridged")
    pbx.quiet()
    assert not pbx.standin.ops("bridges.record", "bridges.play", "channels.play")  # on demand: nothing yet
    # The agent asks from the desk.
    pbx.run(RecordCall(contact_id=cid), A1)
    # StartRecording follows the PBX's answer to the record request (then its status is set).
    wait(lambda: bool(recording_events(pbx, "started")), what="the bridge recorded, StartRecording")
    [play] = pbx.standin.ops("bridges.play")
    [record] = pbx.standin.ops("bridges.record")
    assert play.path == f"/bridges/hl-contact.{cid}/play" and play.query["media"] == ANNOUNCE and play.status == 201
    assert record.path == f"/bridges/hl-contact.{cid}/record" and record.status == 201
    assert record.query["format"] == "wav"
    name = record.query["name"]
    assert in_order(pbx.ops(), ["bridges.addChannel", "bridges.play", "bridges.record"])  # told first
    assert pbx.standin.live[name]["target_uri"] == f"bridge:hl-contact.{cid}"
    [started] = recording_events(pbx, "started")
    assert started.aggregate_id == str(recording_uuid(name))
    assert (started.data["reason"], started.data["agent_id"], started.data["contact_id"]) == ("agent_demand", "A1", cid)
    assert started.data["announcement"] == ANNOUNCE
    demanded = pbx.event(cid, "recording_demanded")
    assert (demanded["agent_id"], demanded["requested_by"]) == ("A1", "A1")
    # Asked again: refused, and nothing more on the PBX.
    with pytest.raises(InvalidTransition) as again:
        pbx.run(RecordCall(contact_id=cid), A1)
    assert again.value.code == "already_recording"
    # The call ends: the recording's file is fetched and the recording completed.
    pbx.standin.hangup(caller)
    wait(lambda: bool(recording_events(pbx, "completed")), what="CompleteRecording")
    audio = pbx.standin.stored[name]
    recording: Recording = pbx.hotline.store.checkout(uuid.UUID(started.aggregate_id))
    assert (recording.status, recording.reason, recording.agent_id, recording.contact_id) == ("completed", "agent_demand", "A1", cid)
    assert recording.sha256 == hashlib.sha256(audio).hexdigest() and recording.size_bytes == len(audio)
    assert recording.location == f"attachments:{recording.sha256}"
    assert pbx.hotline.attachments.get(recording.sha256) == audio
    assert [r.path for r in pbx.standin.ops("recordings.getStoredFile")] == [f"/recordings/stored/{name}/file"]
    pbx.quiet()
    assert len(pbx.standin.ops("bridges.record")) == 1 and adapter.stats.demands == 1 and adapter.stats.demands_ignored == 0
    pbx.assert_valid()


def test_a_demand_on_a_call_recorded_already_is_left_alone(pbx: Pbx) -> None:
    pbx.run(SetRecordingPolicy(queue_id="general", mode="all", announcement=ANNOUNCE))
    adapter, caller, cid = call_with_recorder(pbx)
    pbx.wait_status(cid, "connected")
    wait(lambda: len(recording_events(pbx, "started")) == 1, what="the policy's recording")
    # The queue's policy changes during the call: the domain sees no recording to refuse
    # the demand for, but the PBX is recording the call already.
    pbx.run(SetRecordingPolicy(queue_id="general", mode="on_demand", announcement=ANNOUNCE))
    pbx.run(RecordCall(contact_id=cid), A1)
    wait(lambda: adapter.stats.demands == 1, what="the demand seen by the adapter")
    pbx.quiet()
    assert adapter.stats.demands_ignored == 1
    assert len(pbx.standin.ops("bridges.record")) == 1 and not pbx.standin.ops("bridges.play")
    assert [e.data["reason"] for e in recording_events(pbx, "started")] == ["policy"]
    pbx.standin.hangup(caller)
    wait(lambda: len(recording_events(pbx, "completed")) == 1, what="the policy's recording completed")
    pbx.quiet()
    pbx.assert_valid()


@pytest.fixture
def slow_phones(tmp_path: Path) -> Iterator[Pbx]:
    """Agents' phones ring for a while: the desk can take the call first."""
    p = start_pbx(tmp_path, ring_seconds=1.5)
    try:
        yield p
    finally:
        p.close()


def test_a_demand_before_the_call_is_bridged_waits_for_the_bridge(slow_phones: Pbx) -> None:
    pbx = slow_phones
    pbx.run(SetRecordingPolicy(queue_id="general", mode="on_demand", announcement=ANNOUNCE))
    adapter, caller, cid = call_with_recorder(pbx)
    pbx.wait_status(cid, "offered")
    wait(lambda: bool(pbx.standin.ops("channels.originate")), what="the agent's phone rings")
    # The agent takes the call on the desk and asks at once, while the phone still rings.
    pbx.run(cc.Answer(contact_id=cid, agent_id="A1"), A1)
    pbx.run(RecordCall(contact_id=cid), A1)
    wait(lambda: adapter.stats.demands == 1, what="the demand seen by the adapter")
    assert not bridged(pbx, cid) and not pbx.standin.ops("bridges.record")
    # The phone is picked up: bridged, then told, then recorded.
    wait(lambda: bool(pbx.standin.ops("bridges.record")), timeout=6, what="the bridge recorded")
    assert in_order(pbx.ops(), ["bridges.create", "bridges.addChannel", "bridges.play", "bridges.record"])
    wait(lambda: bool(recording_events(pbx, "started")), what="StartRecording")
    assert recording_events(pbx, "started")[0].data["reason"] == "agent_demand"
    pbx.standin.hangup(caller)
    wait(lambda: bool(recording_events(pbx, "completed")), what="CompleteRecording")
    pbx.quiet()
    assert len(pbx.standin.ops("bridges.record")) == 1 and adapter.stats.demands_ignored == 0
    pbx.assert_valid()
