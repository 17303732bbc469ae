"""Contacts the PBX does not carry are left to the agent's desk: the ARI adapter rings no
phone for a chat, nor for a voice contact made through the API (no channel in Stasis),
and so never answers or ends them. Staff ids that are not dialable (``x@trunk``) never
reach a dial string."""

from __future__ import annotations

import logging

import pytest

from domain.base import Actor, event_type_name
from domain.contact_center import commands as cc
from domain.contact_center.contacts import Contact
from telephony_adapter.ari import Leg, actions_for, dialable
from tests.telephony.ari_harness import Pbx, login, pbx, wait

__all__ = ["pbx"]


def test_a_chat_offered_to_an_agent_rings_no_phone(pbx: Pbx) -> None:
    pbx.run(cc.DefineQueue(queue_id="chat", media="chat", wrap_seconds=0, offer_timeout_seconds=60))
    login(pbx, "agent-late-5", ["chat"])
    pbx.adapter()
    cid = pbx.run(cc.ContactArrives(channel="chat", queue_id="chat", external_id="chat:s-1"))["id"]
    pbx.wait_status(cid, "offered")
    pbx.quiet(0.4)  # the adapter follows the log every 0.05 s
    assert not pbx.standin.ops("channels.originate")
    assert pbx.events_of(cid) == ["arrived", "queued", "offered"]  # not answered, not ended by the adapter
    # The agent answers on the desk; ending it is theirs too.
    pbx.run(cc.Answer(contact_id=cid, agent_id="agent-late-5"), Actor("agent-late-5", "agent"))
    pbx.quiet(0.3)
    assert pbx.status(cid) == "connected" and pbx.events_of(cid)[-1] == "answered"
    assert [op for op in pbx.ops() if op not in ("channels.list", "bridges.list")] == []
    pbx.assert_valid()


def test_a_voice_contact_made_through_the_api_rings_no_phone(pbx: Pbx) -> None:
    login(pbx, "A1", ["general"])
    pbx.adapter()
    cid = pbx.run(cc.ContactArrives(channel="phone", queue_id="general", phone="+390655501234"))["id"]
    pbx.wait_status(cid, "offered")
    pbx.quiet(0.4)
    assert not pbx.standin.ops("channels.originate")
    assert pbx.events_of(cid) == ["arrived", "queued", "offered"]
    pbx.assert_valid()


def test_a_call_in_stasis_still_rings_the_agent(pbx: Pbx) -> None:
    login(pbx, "A1", ["general"])
    pbx.adapter()
    caller = pbx.standin.call("+390655501234", "general")
    cid = pbx.contact_of(caller)
    pbx.wait_status(cid, "connected")
    wait(lambda: bool(pbx.standin.ops("channels.originate")), what="the agent rung")
    pbx.assert_valid()


def _type(cls: type) -> str:
    return event_type_name(cls)


def test_offered_without_a_caller_leg_is_not_the_pbxs() -> None:
    offered = {"agent_id": "A1", "queue_id": "chat", "kind": "route"}
    assert actions_for(_type(Contact.Offered), "c1", offered, {}) == []
    assert actions_for(_type(Contact.Ended), "c1", {"agent_id": "A1"}, {}) == []
    # A voice callback the adapter dials: the agent's phone rings first.
    [ring] = actions_for(_type(Contact.Offered), "c1", offered, {}, callback=True)
    assert ring["params"]["endpoint"] == "PJSIP/A1"
    [ring] = actions_for(_type(Contact.Offered), "c1", offered, {"ch-1": Leg(contact_id="c1")})
    assert ring["params"]["appArgs"] == "agent,c1,A1"


@pytest.mark.parametrize(
    "staff_id",
    ["00393331234567@trunk", "a/b", "A1,x", "A 1", "A1\n", "A1\x00", "", "-x", "a" * 65, "ｏｐ", "x&PJSIP/y"],
)
def test_undialable_staff_ids_are_refused(staff_id: str, caplog: pytest.LogCaptureFixture) -> None:
    assert not dialable(staff_id)
    legs = {"caller-1": Leg(contact_id="c1"), "agent-1": Leg(contact_id="c1", agent_id="A1", kind="agent")}
    with caplog.at_level(logging.WARNING, logger="hotline.telephony"):
        joined = actions_for(_type(Contact.SupervisorJoined), "c1", {"supervisor_id": staff_id, "mode": "monitor"}, legs)
        offered = actions_for(_type(Contact.Offered), "c1", {"agent_id": staff_id, "queue_id": "general", "kind": "route"}, legs)
        connected = actions_for(_type(Contact.CallbackConnected), "c1", {"agent_id": staff_id}, {"cb": Leg("c1", kind="callback")})
    assert joined == offered == connected == []
    assert sum("not a dialable staff id" in r.getMessage() for r in caplog.records) == 3
    left = actions_for(_type(Contact.SupervisorLeft), "c1", {"supervisor_id": staff_id}, legs)
    assert left == []  # no bridge of theirs exists: no request with their id in its path


@pytest.mark.parametrize("staff_id", ["A1", "sup1", "op-anna", "mario.rossi", "agent_7"])
def test_staff_ids_are_dialled(staff_id: str) -> None:
    assert dialable(staff_id)
    legs = {"caller-1": Leg(contact_id="c1"), "agent-1": Leg(contact_id="c1", agent_id="A1", kind="agent")}
    snoop, ring = actions_for(_type(Contact.SupervisorJoined), "c1", {"supervisor_id": staff_id, "mode": "whisper"}, legs)
    assert snoop["path"] == "/channels/agent-1/snoop" and ring["params"]["endpoint"] == f"PJSIP/{staff_id}"
