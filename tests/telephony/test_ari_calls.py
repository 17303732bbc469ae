"""Calls through the ARI adapter process against the Asterisk stand-in, over real sockets:
answered, abandoned, transferred to an expert seat, put on hold. Each checks the ARI
requests the adapter made (all valid operations of Asterisk's model) and the events it
wrote."""

from __future__ import annotations

from domain.base import Actor
from domain.contact_center import commands as cc
from tests.telephony.ari_harness import MARIO_ON_THE_WIRE, Pbx, in_order, login, pbx, wait

__all__ = ["pbx"]


def test_a_call_answered_by_an_agent(pbx: Pbx) -> None:
    mario = pbx.known_citizen()
    login(pbx, "A1", ["general"])
    pbx.adapter()
    caller = pbx.standin.call(MARIO_ON_THE_WIRE, "general", "it")
    cid = pbx.contact_of(caller)
    pbx.wait_status(cid, "connected")
    agent = pbx.agent_leg(cid, "A1")
    wait(lambda: pbx.standin.bridges.get(f"hl-contact.{cid}", {}).get("channels") == [caller, agent], what="caller and agent bridged")
    # The citizen is recognised by the number the network gave.
    arrived = pbx.event(cid, "arrived")
    assert arrived["citizen_id"] == mario and arrived["personal"] == {"phone": "+390612345678"} and arrived["language"] == "it"
    originate = next(r for r in pbx.standin.ops("channels.originate"))
    assert originate.query["endpoint"] == "PJSIP/A1" and originate.query["appArgs"] == f"agent,{cid},A1"
    assert originate.query["app"] == "hotline" and originate.query["channelId"] == agent

    pbx.standin.hangup(caller)
    pbx.wait_status(cid, "closed")
    wait(lambda: agent not in pbx.standin.channels and not pbx.standin.bridges, what="agent leg and bridge gone")
    assert pbx.events_of(cid) == ["arrived", "queued", "offered", "answered", "ended", "wrapped_up"]
    assert pbx.event(cid, "ended")["ended_by"] == "citizen"
    assert in_order(
        pbx.ops(),
        [
            "channels.answer",
            "channels.startMoh",
            "channels.originate",
            "bridges.create",
            "bridges.addChannel",
            "channels.hangup",
            "bridges.destroy",
        ],
    ), pbx.ops()
    assert [r.path for r in pbx.standin.ops("channels.stopMoh")] == [f"/channels/{caller}/moh"]
    pbx.quiet()
    pbx.assert_valid()


def test_a_caller_who_hangs_up_in_the_queue_abandons(pbx: Pbx) -> None:
    login(pbx, "A1", ["general"], ready=False)  # nobody free
    pbx.adapter()
    caller = pbx.standin.call("+390655501234", "general")
    cid = pbx.contact_of(caller)
    pbx.wait_status(cid, "queued")
    wait(lambda: len(pbx.standin.answered("channels.startMoh")) == 1, what="music on hold")
    assert pbx.standin.channels[caller].model["state"] == "Up" and pbx.standin.channels[caller].moh
    pbx.standin.hangup(caller)
    pbx.wait_status(cid, "abandoned")
    pbx.quiet()
    assert pbx.events_of(cid) == ["arrived", "queued", "abandoned"]
    # The resync on connecting, then the call (the last one: 404, the caller is gone already).
    assert pbx.ops() == ["channels.list", "bridges.list", "channels.answer", "channels.startMoh", "channels.hangup"]
    assert pbx.standin.requests[-1].status == 404
    assert not pbx.standin.ops("channels.originate")
    pbx.assert_valid()


def test_a_transfer_to_an_expert_seat(pbx: Pbx) -> None:
    login(pbx, "A1", ["general"])
    login(pbx, "E1", ["experts"])
    pbx.adapter()
    caller = pbx.standin.call("+390655501234", "general", "it")
    cid = pbx.contact_of(caller)
    pbx.wait_status(cid, "connected")
    first = pbx.agent_leg(cid, "A1")
    wait(lambda: pbx.standin.channels[caller].bridge is not None, what="bridged to A1")
    # The agent transfers from the desk (the console's command).
    pbx.run(cc.Transfer(contact_id=cid, agent_id="A1", to_agent_id="E1", expert=True), Actor("A1", "agent"))
    wait(lambda: pbx.contact(cid).agent_id == "E1", what="E1 answered")
    expert = pbx.agent_leg(cid, "E1")
    wait(lambda: pbx.standin.bridges.get(f"hl-contact.{cid}", {}).get("channels") == [caller, expert], what="caller with the expert")
    assert first not in pbx.standin.channels  # the first agent's leg was hung up
    transferred = pbx.event(cid, "transferred")
    assert transferred["expert"] is True and transferred["to_agent_id"] == "E1"
    assert pbx.events_of(cid)[:7] == ["arrived", "queued", "offered", "answered", "transferred", "offered", "answered"]
    ops = pbx.ops()
    assert ops.count("channels.originate") == 2 and ops.count("bridges.create") == 2
    assert in_order(ops, ["bridges.addChannel", "bridges.destroy", "channels.hangup", "channels.startMoh", "channels.originate"])
    # The expert hangs up: the call ends, by the agent side.
    pbx.standin.hangup(expert)
    pbx.wait_status(cid, "closed")
    assert pbx.event(cid, "ended")["ended_by"] == "agent"
    wait(lambda: caller not in pbx.standin.channels, what="caller hung up by the adapter")
    pbx.quiet()
    pbx.assert_valid()


def test_hold_from_the_phone_and_from_the_desk(pbx: Pbx) -> None:
    login(pbx, "A1", ["general"])
    pbx.adapter()
    caller = pbx.standin.call("+390655501234", "general")
    cid = pbx.contact_of(caller)
    pbx.wait_status(cid, "connected")
    agent = pbx.agent_leg(cid, "A1")
    wait(lambda: pbx.standin.channels[caller].bridge is not None, what="bridged")
    # The agent's phone: its hold button.
    pbx.standin.press_hold(agent)
    wait(lambda: pbx.contact(cid).held_since is not None, what="held")
    wait(lambda: pbx.standin.channels[caller].moh, what="music to the caller")
    pbx.standin.press_hold(agent, held=False)
    wait(lambda: pbx.contact(cid).held_since is None, what="resumed")
    wait(lambda: not pbx.standin.channels[caller].moh, what="music stopped")
    # The desk's hold button: the same on the PBX.
    pbx.run(cc.Hold(contact_id=cid, agent_id="A1"), Actor("A1", "agent"))
    wait(lambda: pbx.standin.channels[caller].moh, what="music to the caller (desk)")
    pbx.run(cc.Resume(contact_id=cid, agent_id="A1"), Actor("A1", "agent"))
    wait(lambda: not pbx.standin.channels[caller].moh, what="music stopped (desk)")
    assert pbx.events_of(cid)[4:] == ["held", "resumed", "held", "resumed"]
    mutes = [(r.method, r.query) for r in pbx.standin.ops("channels.mute", "channels.unmute")]
    assert mutes == [("POST", {"direction": "in"}), ("DELETE", {"direction": "in"})] * 2
    pbx.standin.hangup(agent)  # the agent hangs up
    pbx.wait_status(cid, "closed")
    assert pbx.event(cid, "ended")["ended_by"] == "agent"
    pbx.quiet()
    pbx.assert_valid()
