"""Callbacks dialled through ARI: the agent's phone rings first, then the citizen is
dialled (``POST /channels`` originate on the trunk); answered, busy (Q.850 cause 17) and
unanswered (cause 19) become the callback's outcomes."""

from __future__ import annotations

from typing import Any

from domain.contact_center import commands as cc
from domain.recordings.commands import SetRecordingPolicy
from telephony_adapter.recorder import Recorder
from tests.telephony.ari_harness import Pbx, in_order, login, pbx, wait

__all__ = ["pbx"]
NUMBER = "+390655501234"


def schedule(pbx: Pbx, max_attempts: int = 2) -> str:
    now = pbx.hotline.clock.now()
    return str(pbx.run(cc.ScheduleCallback(queue_id="general", phone=NUMBER, due_at=now, max_attempts=max_attempts))["id"])


def test_a_callback_answered(pbx: Pbx) -> None:
    login(pbx, "A1", ["general"])
    pbx.adapter()
    cid = schedule(pbx)
    pbx.wait_status(cid, "connected")
    agent = pbx.agent_leg(cid, "A1")
    citizen = f"hl-callback.{cid}.1"
    wait(lambda: pbx.standin.bridges.get(f"hl-contact.{cid}", {}).get("channels") == [citizen, agent], what="citizen and agent bridged")
    dial = [r for r in pbx.standin.ops("channels.originate") if r.query["channelId"] == citizen]
    assert dial[0].query["endpoint"] == f"PJSIP/{NUMBER}@trunk" and dial[0].query["appArgs"] == f"callback,{cid}"
    assert pbx.events_of(cid) == ["arrived", "callback_scheduled", "offered", "callback_attempted", "callback_connected"]
    # While the citizen's phone rang, the agent heard music; it stopped when they were bridged.
    assert in_order(
        [f"{r.method} {r.path}" for r in pbx.standin.requests], [f"POST /channels/{agent}/moh", f"DELETE /channels/{agent}/moh"]
    )
    pbx.standin.hangup(citizen)
    pbx.wait_status(cid, "closed")
    assert pbx.event(cid, "ended")["ended_by"] == "citizen"
    wait(lambda: agent not in pbx.standin.channels, what="agent leg hung up")
    pbx.quiet()
    pbx.assert_valid()


def _recording_events(pbx: Pbx, name: str) -> list[Any]:
    return [e for e in pbx.hotline.store.iter_envelopes() if e.stream == "recording" and e.name == name]


def test_a_callback_answered_is_recorded_by_the_queues_policy(pbx: Pbx) -> None:
    """The citizen picks up a callback: as for an answered call, the queue's announcement is
    played to them before they are bridged with the agent, and the bridge is recorded."""
    announce = "sound:hotline/call-recorded"
    pbx.run(SetRecordingPolicy(queue_id="general", mode="all", announcement=announce))
    login(pbx, "A1", ["general"])
    pbx.adapter(recorder=Recorder(pbx.hotline.bus, pbx.hotline.attachments))
    cid = schedule(pbx)
    pbx.wait_status(cid, "connected")
    citizen = f"hl-callback.{cid}.1"
    wait(lambda: bool(pbx.standin.answered("bridges.record")), what="the callback's bridge recorded")
    [play] = [r for r in pbx.standin.ops("channels.play") if r.path == f"/channels/{citizen}/play"]
    assert play.query["media"] == announce and play.status == 201
    [record] = pbx.standin.ops("bridges.record")
    assert record.path == f"/bridges/hl-contact.{cid}/record" and record.status == 201
    assert in_order(pbx.ops(), ["channels.play", "bridges.addChannel", "bridges.record"])
    wait(lambda: bool(_recording_events(pbx, "started")), what="StartRecording")
    [started] = _recording_events(pbx, "started")
    assert (started.data["contact_id"], started.data["agent_id"], started.data["reason"]) == (cid, "A1", "policy")
    pbx.standin.hangup(citizen)
    pbx.wait_status(cid, "closed")
    wait(lambda: bool(_recording_events(pbx, "completed")), what="CompleteRecording")
    pbx.quiet()
    pbx.assert_valid()


def test_a_busy_callback_is_tried_again_later(pbx: Pbx) -> None:
    login(pbx, "A1", ["general"])
    pbx.standin.endpoint(NUMBER, "busy")
    pbx.adapter()
    cid = schedule(pbx)
    pbx.wait_events(cid, "callback_unanswered")
    assert pbx.event(cid, "callback_unanswered")["outcome"] == "busy"
    pbx.wait_status(cid, "scheduled")
    retry = [e for e in pbx.events_of(cid) if e == "callback_scheduled"]
    assert len(retry) == 2  # the first, and the retry
    wait(lambda: not any(c.startswith(f"hl-agent.{cid}") for c in pbx.standin.channels), what="agent leg hung up")
    hangups = [r.path for r in pbx.standin.ops("channels.hangup")]
    assert any(p.startswith(f"/channels/hl-agent.{cid}.A1.") for p in hangups)
    pbx.quiet()
    pbx.assert_valid()


def test_an_unanswered_last_attempt_gives_up(pbx: Pbx) -> None:
    login(pbx, "A1", ["general"])
    pbx.standin.endpoint(NUMBER, "no_answer")
    pbx.adapter()
    cid = schedule(pbx, max_attempts=1)
    pbx.wait_events(cid, "callback_gave_up")
    assert pbx.event(cid, "callback_unanswered")["outcome"] == "no_answer"
    assert pbx.events_of(cid)[-3:] == ["callback_attempted", "callback_unanswered", "callback_gave_up"]
    destroyed = [e for e in pbx.standin.sent if e["type"] == "ChannelDestroyed" and e["channel"]["id"] == f"hl-callback.{cid}.1"]
    assert [(e["cause"], e["cause_txt"]) for e in destroyed] == [(19, "User alerting, no answer")]
    wait(lambda: not any(c.startswith(f"hl-agent.{cid}") for c in pbx.standin.channels), what="agent leg hung up")
    pbx.quiet()
    pbx.assert_valid()
