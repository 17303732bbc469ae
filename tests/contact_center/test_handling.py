"""Handling, offers, races, strategies and callbacks through the real command path."""

from __future__ import annotations

from datetime import timedelta

import pytest

from consumers.router import Router
from domain.base import Actor, ConcurrencyConflict, Forbidden, InvalidCommand, InvalidTransition
from domain.contact_center import commands as cc
from tests.contact_center.harness import SUPERVISOR, Center


# ------------------------------------------------------------------ offers
def test_offer_timeout_returns_the_contact_to_its_old_place_and_pauses_the_agent(center: Center) -> None:
    center.queue("q", offer_timeout_seconds=10, max_missed_offers=2)
    center.login("A", ["q"])
    first = center.arrive("q")
    center.tick(1)
    second = center.arrive("q")
    center.route()
    assert center.offers() == {first: "A"}
    center.tick(11)  # A let it ring out: back to the queue, ahead of `second`, offered again
    assert center.offers() == {first: "A"}
    assert "offer_timed_out" in center.events_of(first)
    center.tick(11)  # second miss: A goes not ready
    assert center.agent_state("A") == "not_ready"
    assert center.router.view.agents["A"].reason == "missed_offers"
    center.login("B", ["q"])
    center.route()
    assert center.offers() == {first: "B"}  # still first in line
    assert second not in center.offers()


def test_decline_puts_the_contact_back_and_offers_it_elsewhere(center: Center) -> None:
    center.queue("q")
    center.login("A", ["q"])
    center.tick(1)
    center.login("B", ["q"])
    cid = center.arrive("q")
    center.route()
    assert center.offered_to(cid) == "A"
    center.as_agent("A", cc.Decline(contact_id=cid, agent_id="A"))
    center.route()
    assert center.offered_to(cid) == "B"


def test_one_contact_is_never_offered_to_two_agents(center: Center) -> None:
    center.queue("q")
    center.login("A", ["q"])
    center.login("B", ["q"])
    cid = center.arrive("q")
    center.run(cc.OfferContact(contact_id=cid, agent_id="A"), actor=SUPERVISOR)
    with pytest.raises(InvalidTransition):
        center.run(cc.OfferContact(contact_id=cid, agent_id="B"), actor=SUPERVISOR)
    offered = [e for e in center.envelopes() if e.type == "hotline.contact.offered.v1"]
    assert len(offered) == 1


def test_one_voice_agent_is_never_given_two_calls(center: Center) -> None:
    center.queue("q")
    center.login("A", ["q"])
    c1, c2 = center.arrive("q"), center.arrive("q")
    center.run(cc.OfferContact(contact_id=c1, agent_id="A"), actor=SUPERVISOR)
    with pytest.raises(InvalidTransition):
        center.run(cc.OfferContact(contact_id=c2, agent_id="A"), actor=SUPERVISOR)
    center.answer(c1, "A")
    with pytest.raises(InvalidTransition):
        center.run(cc.OfferContact(contact_id=c2, agent_id="A"), actor=SUPERVISOR)


def test_chats_up_to_capacity_and_voice_is_exclusive(center: Center) -> None:
    center.queue("chat", media="chat")
    center.queue("q")
    center.login("A", ["chat", "q"], capacity={"chat": 2})
    chats = []
    for _ in range(3):
        chats.append(center.arrive("chat", channel="chat"))
        center.tick(1)
    offers = center.offers()
    assert sorted(offers) == sorted(chats[:2]) and set(offers.values()) == {"A"}
    call = center.arrive("q")
    center.route()
    assert center.offered_to(call) is None  # busy with chats: no call
    for cid in chats[:2]:
        center.answer(cid, "A")
        center.end(cid, "A")
        center.wrap(cid, "A")
    center.route()
    # Capacity is back: the third chat (waiting longer than the call, same priority) comes first.
    assert center.offers() == {chats[2]: "A"}


def test_two_routers_racing_never_double_assign(center: Center) -> None:
    center.queue("q")
    for i in range(5):
        center.login(f"A{i}", ["q"])
    contacts = []
    for _ in range(8):
        contacts.append(center.arrive("q"))
        center.clock.advance(seconds=1)
    other = Router(center.store, center.bus, name="second")
    # Both views decide before either writes: they choose the same pairs.
    other.catch_up()
    center.router.catch_up()
    d1 = center.router.view.decide(center.clock.now())
    d2 = other.view.decide(center.clock.now())
    assert d1 and {(d.contact_id, d.agent_id) for d in d1} == {(d.contact_id, d.agent_id) for d in d2}
    r1 = center.run(cc.OfferContacts(decisions=[(d.contact_id, d.agent_id) for d in d1]))
    r2 = center.run(cc.OfferContacts(decisions=[(d.contact_id, d.agent_id) for d in d2]))
    assert len(r1["offered"]) == 5 and r2["offered"] == [] and len(r2["skipped"]) == 5
    offered = [e for e in center.envelopes() if e.type == "hotline.contact.offered.v1"]
    assert len(offered) == 5 and len({e.aggregate_id for e in offered}) == 5
    assert len({e.data["agent_id"] for e in offered}) == 5
    assert set(contacts[:5]) == {e.aggregate_id for e in offered}


def test_stale_write_conflicts_and_writes_nothing(center: Center) -> None:
    """Two writers loaded the same contact: the second commit conflicts (the bus reruns
    the handler on fresh state, which then refuses)."""
    center.queue("q", grab=True)
    center.login("A", ["q"])
    center.login("B", ["q"])
    cid = center.arrive("q")
    center.as_agent("A", cc.Grab(contact_id=cid, agent_id="A"))
    before = len(center.envelopes())
    with pytest.raises(InvalidTransition):
        center.as_agent("B", cc.Grab(contact_id=cid, agent_id="B"))
    assert len(center.envelopes()) == before
    with pytest.raises(ConcurrencyConflict):
        center.run(cc.End(contact_id=cid, agent_id="A", expected_version=1), actor=SUPERVISOR)


def test_grab_mode_ring_all(center: Center) -> None:
    center.queue("g", grab=True, strategy="ring_all")
    center.login("A", ["g"])
    center.login("B", ["g"])
    cid = center.arrive("g")
    center.route()
    assert center.offers() == {}  # ring-all: nobody is reserved, everyone may grab
    res = center.as_agent("B", cc.Grab(contact_id=cid, agent_id="B"))
    assert res["status"] == "connected" and res["agent_id"] == "B"
    with pytest.raises(InvalidTransition):
        center.as_agent("A", cc.Grab(contact_id=cid, agent_id="A"))


def test_grab_refused_on_a_queue_without_grab_mode(center: Center) -> None:
    center.queue("q")
    center.login("A", ["q"], ready=False)
    cid = center.arrive("q")
    center.presence("A", "available")
    with pytest.raises(InvalidTransition):
        center.as_agent("A", cc.Grab(contact_id=cid, agent_id="A"))


def test_round_robin_and_fewest_contacts(center: Center) -> None:
    center.queue("rr", strategy="round_robin", wrap_seconds=0)
    center.queue("few", strategy="fewest_contacts", wrap_seconds=0)
    for a in ("A", "B", "C"):
        center.login(a, ["rr", "few"])
    seen = []
    for _ in range(6):
        cid = center.arrive("rr")
        center.route()
        agent = center.offered_to(cid)
        assert agent is not None
        seen.append(agent)
        center.answer(cid, agent)
        center.end(cid, agent)
    assert seen[:3] == sorted(seen[:3], key=seen[:3].index) and set(seen[:3]) == {"A", "B", "C"}
    assert seen[3:] == seen[:3]  # the same rotation again
    # fewest contacts today: give B two more; then C and A (fewest) come before B
    for _ in range(2):
        cid = center.arrive("few")
        center.run(cc.OfferContact(contact_id=cid, agent_id="B"), actor=SUPERVISOR)
        center.answer(cid, "B")
        center.end(cid, "B")
    cid = center.arrive("few")
    center.route()
    assert center.offered_to(cid) in ("A", "C")


def test_language_is_respected(center: Center) -> None:
    center.queue("q")
    center.login("it_only", ["q"], languages=["it"])
    center.tick(1)
    center.login("zh", ["q"], languages=["zh", "en"])
    cid = center.arrive("q", language="zh")
    center.route()
    assert center.offered_to(cid) == "zh"


# ------------------------------------------------------------------ handling
def test_hold_resume_and_talk_times(center: Center) -> None:
    center.queue("q", wrap_seconds=0)
    center.login("A", ["q"])
    cid = center.arrive("q")
    center.tick(12)
    center.answer(cid, "A")
    center.tick(30)
    center.as_agent("A", cc.Hold(contact_id=cid, agent_id="A"))
    center.tick(20)
    center.as_agent("A", cc.Resume(contact_id=cid, agent_id="A"))
    center.tick(10)
    center.end(cid, "A")
    ev = {e.name: e.data for e in center.envelopes() if e.aggregate_id == cid}
    assert ev["answered"]["wait_seconds"] == 12.0
    assert ev["ended"]["talk_seconds"] == 40.0 and ev["ended"]["hold_seconds"] == 20.0
    assert ev["wrapped_up"]["timed_out"] is True  # no wrap-up configured: closed at once


def test_cold_transfer_to_a_queue(center: Center) -> None:
    center.queue("q")
    center.queue("tax")
    center.login("A", ["q"])
    center.login("T", ["tax"])
    cid = center.connected("A")
    center.as_agent("A", cc.Transfer(contact_id=cid, agent_id="A", to_queue_id="tax"))
    center.route()
    assert center.offered_to(cid) == "T"
    assert center.agent_state("A") == "wrap_up"
    center.answer(cid, "T")
    center.route()
    assert center.router.view.contacts[cid].agent_id == "T"


def test_warm_transfer_to_an_expert_seat(center: Center) -> None:
    center.queue("q")
    center.queue("experts")
    center.login("A", ["q"])
    center.login("X", ["experts"])
    cid = center.connected("A")
    center.as_agent("A", cc.Transfer(contact_id=cid, agent_id="A", to_agent_id="X", mode="warm", expert=True))
    center.route()
    assert center.agent_state("X") == "reserved" and center.agent_state("A") == "on_contact"
    center.answer(cid, "X")  # the expert joins the conversation
    res = center.as_agent("A", cc.CompleteTransfer(contact_id=cid, agent_id="A"))
    assert res["agent_id"] == "X"
    center.route()
    assert center.agent_state("A") == "wrap_up" and center.agent_state("X") == "on_contact"
    center.end(cid, "X")
    kinds = center.events_of(cid)
    assert kinds.count("transferred") == 1 and "participant_joined" in kinds and "participant_left" in kinds


def test_cold_transfer_to_an_agent_who_does_not_answer_goes_back_to_the_queue(center: Center) -> None:
    center.queue("q", offer_timeout_seconds=5)
    center.login("A", ["q"])
    center.login("X", ["other"] if False else [])
    cid = center.connected("A")
    center.as_agent("A", cc.Transfer(contact_id=cid, agent_id="A", to_agent_id="X"))
    center.route()
    assert center.offered_to(cid) == "X"
    center.tick(6)
    assert "offer_timed_out" in center.events_of(cid)
    assert center.router.view.contacts[cid].status in ("queued", "offered")


def test_conference_and_end_sends_everyone_to_wrap_up(center: Center) -> None:
    center.queue("q", wrap_seconds=20)
    center.login("A", ["q"])
    center.login("B", [])
    cid = center.connected("A")
    center.as_agent("A", cc.Invite(contact_id=cid, agent_id="A", invitee_id="B"))
    center.answer(cid, "B")
    center.end(cid, "A")
    center.route()
    assert center.agent_state("A") == "wrap_up" and center.agent_state("B") == "wrap_up"
    center.tick(21)
    assert center.agent_state("A") == "available" and center.agent_state("B") == "available"
    assert center.terminal_counts()[cid] == 1


def test_supervisor_monitor_whisper_barge_and_take_over(center: Center) -> None:
    center.queue("q", wrap_seconds=10)
    center.login("A", ["q"])
    cid = center.connected("A")
    for mode in ("monitor", "whisper", "barge"):
        center.run(cc.Supervise(contact_id=cid, supervisor_id="sup1", mode=mode), actor=SUPERVISOR)
    with pytest.raises(Forbidden):  # an agent may not supervise
        center.run(cc.Supervise(contact_id=cid, supervisor_id="A", mode="monitor"), actor=Actor("A", "agent"))
    center.run(cc.Supervise(contact_id=cid, supervisor_id="sup1", mode="take_over"), actor=SUPERVISOR)
    center.route()
    assert center.agent_state("A") == "wrap_up"
    center.run(cc.End(contact_id=cid, ended_by="supervisor"), actor=SUPERVISOR)
    kinds = center.events_of(cid)
    assert kinds.count("supervisor_joined") == 3 and "taken_over" in kinds and kinds[-1] == "wrapped_up"


def test_supervisor_forces_state_and_moves_agents(center: Center) -> None:
    center.queue("q")
    center.queue("r")
    center.login("A", ["q"])
    center.run(cc.SetPresence(agent_id="A", presence="not_ready", reason="meeting"), actor=SUPERVISOR)
    forced = [e for e in center.envelopes() if e.type == "hotline.agent.state_changed.v1"][-1]
    assert forced.data["forced_by"] == "sup1" and forced.data["reason"] == "meeting"
    center.run(cc.MoveAgent(agent_id="A", queues=["r"]), actor=SUPERVISOR)
    center.presence("A", "available")
    cid = center.arrive("r")
    center.route()
    assert center.offered_to(cid) == "A"
    with pytest.raises(Forbidden):  # agents act only for themselves
        center.as_agent("B", cc.SetPresence(agent_id="A", presence="not_ready"))


def test_abandon_while_offered_withdraws_the_offer(center: Center) -> None:
    center.queue("q")
    center.login("A", ["q"])
    cid = center.arrive("q")
    center.route()
    center.tick(4)
    center.run(cc.Abandon(contact_id=cid))
    center.route()
    assert center.agent_state("A") == "available"
    ab = next(e for e in center.envelopes() if e.type == "hotline.contact.abandoned.v1")
    assert ab.data["wait_seconds"] == 4.0 and ab.data["offered_to"] == "A"


def test_link_request_and_idempotent_arrival(center: Center) -> None:
    center.queue("q")
    center.login("A", ["q"])
    cid = center.arrive("q", external_id="pbx-1")
    again = center.arrive("q", external_id="pbx-1")
    assert again == cid
    center.route()
    center.answer(cid, "A")
    rid, ref = center.register_request("A")
    center.run(cc.LinkRequest(contact_id=cid, request_id=ref))  # by reference, or by id
    center.run(cc.LinkRequest(contact_id=cid, request_id=rid))
    assert center.events_of(cid).count("request_linked") == 1


def test_scheduled_callback_with_retries(center: Center) -> None:
    center.queue("out", wrap_seconds=0)
    center.login("A", ["out"])
    due = center.clock.now() + timedelta(minutes=30)
    _, ref = center.register_request("A")
    res = center.run(
        cc.ScheduleCallback(
            queue_id="out", phone="+390611111", due_at=due, reason="survey", request_id=ref, max_attempts=2, retry_seconds=600
        ),
        actor=SUPERVISOR,
    )
    cid = res["id"]
    center.route()
    assert center.offered_to(cid) is None  # not due yet
    center.tick(30 * 60)
    assert center.offered_to(cid) == "A"
    center.answer(cid, "A")
    center.run(cc.CallbackOutcome(contact_id=cid, outcome="no_answer"))
    center.route()
    assert center.agent_state("A") == "available"
    center.tick(599)
    assert center.offered_to(cid) is None
    center.tick(2)
    assert center.offered_to(cid) == "A"
    center.answer(cid, "A")
    center.run(cc.CallbackOutcome(contact_id=cid, outcome="busy"))
    kinds = center.events_of(cid)
    assert kinds[-1] == "callback_gave_up" and kinds.count("callback_attempted") == 2
    assert center.terminal_counts()[cid] == 1


def test_queue_settings_are_validated(center: Center) -> None:
    with pytest.raises(InvalidCommand):
        center.queue("bad", required_skills={"x": 9})
    with pytest.raises(InvalidCommand):
        center.queue("bad", strategy="ring_all")  # ring-all needs grab mode
    with pytest.raises(InvalidCommand):
        center.queue("bad", relaxation=[[60, 1], [30, 2]])
    center.queue("chat", media="chat")
    with pytest.raises(InvalidCommand):
        center.arrive("chat", channel="phone")
