"""The Asterisk ARI adapter with plain dict events (as ARI's WebSocket delivers them)."""

from __future__ import annotations

from telephony_adapter.ari import AriAdapter, actions_for
from tests.contact_center.harness import Center


def _stasis_start(channel_id: str, *args: str, number: str = "+390655501234") -> dict[str, object]:
    return {
        "type": "StasisStart",
        "application": "hotline",
        "args": list(args),
        "channel": {
            "id": channel_id,
            "name": f"PJSIP/trunk-{channel_id}",
            "state": "Ring",
            "caller": {"name": "", "number": number},
        },
    }


def _event(kind: str, channel_id: str, **extra: object) -> dict[str, object]:
    return {"type": kind, "channel": {"id": channel_id, **extra}}


def test_a_call_through_the_pbx(center: Center) -> None:
    center.queue("general", wrap_seconds=0)
    center.login("A1", ["general"], languages=["it"])
    ari = AriAdapter(center.bus)
    result = ari.handle(_stasis_start("1700.1", "general", "it"))
    assert result is not None
    contact_id = result["id"]
    again = ari.handle(_stasis_start("1700.1", "general", "it"))  # re-delivered
    assert again is not None and again["id"] == contact_id and again.get("duplicate")
    center.route()
    assert center.offered_to(contact_id) == "A1"
    # The adapter would now originate to the agent:
    offered = next(e for e in center.envelopes() if e.type == "hotline.contact.offered.v1")
    [originate] = actions_for(offered.type, contact_id, offered.data, ari.legs)
    assert originate["params"]["appArgs"] == f"agent,{contact_id},A1"
    ari.handle(_stasis_start("1700.2", "agent", contact_id, "A1"))
    ari.handle(_event("ChannelStateChange", "1700.2", state="Up"))
    center.tick(30)
    ari.handle(_event("ChannelHold", "1700.2"))
    center.tick(10)
    ari.handle(_event("ChannelUnhold", "1700.2"))
    center.tick(5)
    ari.handle(_event("ChannelHangupRequest", "1700.1"))  # the citizen hangs up
    kinds = center.events_of(contact_id)
    assert kinds == ["arrived", "queued", "offered", "answered", "held", "resumed", "ended", "wrapped_up"]
    ended = next(e for e in center.envelopes() if e.type == "hotline.contact.ended.v1")
    assert ended.data["ended_by"] == "citizen" and ended.data["talk_seconds"] == 35.0 and ended.data["hold_seconds"] == 10.0
    arrived = next(e for e in center.envelopes() if e.type == "hotline.contact.arrived.v1")
    assert arrived.data["personal"] == {"phone": "+390655501234"} and arrived.data["language"] == "it"


def test_caller_hangs_up_while_waiting_is_an_abandon(center: Center) -> None:
    center.queue("general")
    ari = AriAdapter(center.bus)
    result = ari.handle(_stasis_start("9.1", "general"))
    assert result is not None
    center.tick(12)
    ari.handle(_event("StasisEnd", "9.1"))
    ab = [e for e in center.envelopes() if e.type == "hotline.contact.abandoned.v1"]
    assert len(ab) == 1 and ab[0].data["wait_seconds"] == 12.0
    assert ari.handle(_event("ChannelHangupRequest", "9.1")) is None  # nothing twice


def test_callback_leg_outcomes(center: Center) -> None:
    from datetime import timedelta

    from domain.contact_center import commands as cc
    from tests.contact_center.harness import SUPERVISOR

    center.queue("out", wrap_seconds=0)
    center.login("A1", ["out"])
    cid = center.run(
        cc.ScheduleCallback(queue_id="out", phone="+390612345678", due_at=center.clock.now() + timedelta(seconds=1)), actor=SUPERVISOR
    )["id"]
    center.tick(2)
    center.answer(cid, "A1")
    attempted = next(e for e in center.envelopes() if e.type == "hotline.contact.callback_attempted.v1")
    [dial] = actions_for(attempted.type, cid, attempted.data)
    assert dial["params"]["appArgs"] == f"callback,{cid}"
    ari = AriAdapter(center.bus)
    ari.handle(_stasis_start("cb.1", "callback", cid))
    ari.handle({"type": "ChannelDestroyed", "cause": 17, "channel": {"id": "cb.1", "state": "Ringing"}})
    assert center.events_of(cid)[-2:] == ["callback_unanswered", "callback_scheduled"]
    unanswered = next(e for e in center.envelopes() if e.type == "hotline.contact.callback_unanswered.v1")
    assert unanswered.data["outcome"] == "busy"


def test_unknown_events_are_ignored(center: Center) -> None:
    ari = AriAdapter(center.bus)
    assert ari.handle({"type": "ChannelVarset", "channel": {"id": "x"}}) is None
    assert ari.handle(_event("ChannelStateChange", "unknown", state="Up")) is None
