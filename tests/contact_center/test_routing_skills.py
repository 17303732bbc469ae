"""A contact that asked for a skill (a voice-menu option) goes only to agents of its queue
who have it; one that asked for none goes to anyone. The skill is dropped after the
queue's last relaxation step, by a transfer to a queue and by an overflow; a skill
nobody logged in has is the queue's "nobody serves" case; stored events without a
skill still load."""

from __future__ import annotations

import dataclasses

import pytest

from domain.base import InvalidCommand, InvalidTransition
from domain.contact_center import commands as cc
from domain.contact_center.contacts import Contact
from domain.envelope import envelope_of
from telephony_adapter.ari import AriAdapter
from tests.contact_center.harness import SUPERVISOR, Center
from tests.contact_center.routing_oracle import idle_matches


def _arrived(center: Center, cid: str) -> dict[str, object]:
    return next(e.data for e in center.envelopes() if e.aggregate_id == cid and e.name == "arrived")


def _no_idle_match(center: Center) -> None:
    assert idle_matches(center.router.view, center.clock.now().timestamp()) == []


def test_a_skill_contact_waits_for_a_skilled_agent_while_others_take_anyone(center: Center) -> None:
    center.queue("q", wrap_seconds=0)
    center.login("U", ["q"], skills={"general": 3}, languages=["it"])  # free, without the skill
    center.login("S", ["q"], skills={"tax": 2}, languages=["it"], ready=False)
    tax = center.arrive("q", skill="tax", language="it")
    center.route()
    assert center.offered_to(tax) is None  # U is free, but U has no tax skill
    assert _arrived(center, tax)["skill"] == "tax"
    _no_idle_match(center)
    center.tick(30)
    assert center.offered_to(tax) is None
    center.presence("S", "available")  # the skilled agent becomes free
    center.route()
    assert center.offered_to(tax) == "S"
    # Someone who asked for nothing goes to anyone: U, still free.
    plain = center.arrive("q", language="it")
    center.route()
    assert center.offered_to(plain) == "U"
    assert _arrived(center, plain)["skill"] is None
    _no_idle_match(center)


def test_an_unskilled_contact_goes_to_a_skilled_agent_too(center: Center) -> None:
    center.queue("q")
    center.login("S", ["q"], skills={"tax": 5})
    cid = center.arrive("q")
    center.route()
    assert center.offered_to(cid) == "S"


def test_the_first_skill_contact_finds_an_agent_already_free(center: Center) -> None:
    """The (queue, skill) pool is opened when a contact first asks for the skill: the
    agents who were free before must be found in it at once."""
    center.queue("q")
    center.login("A", ["q"], skills={"environment": 1})
    center.login("B", ["q"], skills={"tax": 1})
    center.route()
    first = center.arrive("q", skill="tax")
    center.route()
    assert center.offered_to(first) == "B"
    second = center.arrive("q", skill="environment")
    center.route()
    assert center.offered_to(second) == "A"


def test_the_skill_holds_until_the_last_relaxation_step(center: Center) -> None:
    center.queue("q", required_skills={"general": 2}, relaxation=[[20, 1], [60, 1]])
    center.login("U", ["q"], skills={"general": 3})
    cid = center.arrive("q", skill="tax")
    center.route()
    center.tick(30)  # the levels relaxed once: the skill still holds
    assert center.offered_to(cid) is None
    center.tick(29)
    assert center.offered_to(cid) is None
    center.tick(1)  # 60 s: the queue's last step; any agent of the queue may take it now
    assert center.offered_to(cid) == "U"


def test_the_skill_never_drops_in_a_queue_without_relaxation(center: Center) -> None:
    center.queue("other")
    center.queue("q", max_wait_seconds=300, overflow={"to": "queue", "queue_id": "other"})
    center.login("U", ["q", "other"])
    cid = center.arrive("q", skill="tax")
    center.route()
    center.tick(299)
    assert center.offered_to(cid) is None
    center.tick(1)  # overflows to "other" and loses the skill there: U takes it
    assert center.router.view.contacts[cid].queue_id == "other"
    assert center.offered_to(cid) == "U"


def test_a_skill_nobody_logged_in_has_is_the_nobody_serves_case(center: Center) -> None:
    center.queue("q", join_when_empty=False, overflow={"to": "voicemail"})
    center.login("U", ["q"], skills={"general": 1})
    cid = center.arrive("q", skill="tax")
    center.route()
    assert "overflowed" in center.events_of(cid)
    served = center.arrive("q", skill="general")
    center.route()
    assert center.offered_to(served) == "U"


def test_a_transfer_to_a_queue_drops_the_skill(center: Center) -> None:
    center.queue("q", wrap_seconds=0)
    center.queue("back", wrap_seconds=0)
    center.login("S", ["q"], skills={"tax": 3})
    center.login("U", ["back"])
    cid = center.arrive("q", skill="tax")
    center.route()
    center.answer(cid, "S")
    center.as_agent("S", cc.Transfer(contact_id=cid, agent_id="S", to_queue_id="back"))
    center.route()
    assert center.offered_to(cid) == "U"  # U has no tax skill: the skill stayed behind


def test_a_callback_keeps_the_skill(center: Center) -> None:
    center.queue("q")
    center.login("U", ["q"])
    result = center.run(cc.ScheduleCallback(queue_id="q", phone="+390612345678", due_at=center.clock.now(), skill="tax"))
    center.route()
    assert _arrived(center, result["id"])["skill"] == "tax"
    assert center.offered_to(result["id"]) is None
    center.login("S", ["q"], skills={"tax": 1})
    center.route()
    assert center.offered_to(result["id"]) == "S"


@pytest.mark.parametrize("skill", ["", " tax", "tax money", "_tax", "x" * 65])
def test_a_skill_that_is_no_skill_name_is_refused(center: Center, skill: str) -> None:
    center.queue("q")
    with pytest.raises((InvalidCommand, ValueError)):  # pydantic's length bound, else the domain's
        center.arrive("q", skill=skill)


def test_skill_names_of_any_script_are_accepted(center: Center) -> None:
    center.queue("q")
    center.login("Z", ["q"], skills={"税务": 2})
    cid = center.arrive("q", skill="税务")
    center.route()
    assert center.offered_to(cid) == "Z"


def test_the_pbx_dialplan_can_name_the_skill(center: Center) -> None:
    center.queue("general")
    ari = AriAdapter(center.bus)
    event = {
        "type": "StasisStart",
        "application": "hotline",
        "args": ["general", "it", "2", "tax"],
        "channel": {"id": "1700.9", "name": "PJSIP/trunk-1700.9", "state": "Ring", "caller": {"name": "", "number": "+390655501234"}},
    }
    result = ari.handle(event)
    assert result is not None
    data = _arrived(center, result["id"])
    assert (data["queue_id"], data["language"], data["priority"], data["skill"]) == ("general", "it", 2, "tax")


def test_an_arrival_stored_before_skills_loads_without_one(center: Center) -> None:
    center.queue("q")
    center.arrive("q", skill="tax")
    mapper = center.store.mapper
    [stored] = [n for n in center.store.notifications(0, 100) if n.topic.endswith("Contact.Arrived")]
    state = mapper.transcoder.decode(stored.state)
    assert state.pop("skill") == "tax"
    old = dataclasses.replace(stored, state=mapper.transcoder.encode(state))
    event = mapper.to_domain_event(old)
    assert isinstance(event, Contact.Arrived) and event.skill is None
    contact = event.mutate(None)
    assert isinstance(contact, Contact) and contact.skill is None and contact.queue_id == "q"
    assert envelope_of(event, 1).data["skill"] is None


# ---------------------------------------------------------------------------- offers and grabs
# The router never chooses an unskilled agent; the aggregates refuse it all the same, for a
# supervisor's assignment, an agent's own pick and a router deciding on a stale view.


def _offered_in_store(center: Center, cid: str) -> str | None:
    """The agent of the contact's last offer, as stored (a supervisor's offer is not the
    router's: its view learns of it only when it runs)."""
    offers = [e.data["agent_id"] for e in center.envelopes() if e.aggregate_id == cid and e.name == "offered"]
    return offers[-1] if offers else None


def test_an_offer_to_an_agent_without_the_asked_skill_is_refused(center: Center) -> None:
    center.queue("q")
    center.login("U", ["q"], skills={"general": 3})
    cid = center.arrive("q", skill="tax")
    with pytest.raises(InvalidTransition) as refused:
        center.run(cc.OfferContact(contact_id=cid, agent_id="U"), actor=SUPERVISOR)
    assert refused.value.code == "unskilled"
    assert "tax" in refused.value.message
    assert center.offered_to(cid) is None
    plain = center.arrive("q")  # U was not reserved by the refused offer
    center.run(cc.OfferContact(contact_id=plain, agent_id="U"), actor=SUPERVISOR)
    assert _offered_in_store(center, plain) == "U"
    center.login("S", ["q"], skills={"tax": 1})
    center.run(cc.OfferContact(contact_id=cid, agent_id="S"), actor=SUPERVISOR)
    assert _offered_in_store(center, cid) == "S"


def test_a_queue_skill_missing_altogether_refuses_an_offer(center: Center) -> None:
    center.queue("q", required_skills={"general": 2}, relaxation=[[20, 1]])
    center.login("U", ["q"], skills={"tax": 5})
    cid = center.arrive("q")
    center.tick(60)  # relaxation lowers the level, it never waives the skill
    with pytest.raises(InvalidTransition) as refused:
        center.run(cc.OfferContact(contact_id=cid, agent_id="U"), actor=SUPERVISOR)
    assert refused.value.code == "unskilled"


def test_the_routers_stale_decision_for_an_unskilled_agent_is_skipped(center: Center) -> None:
    center.queue("q")
    center.login("U", ["q"])
    center.login("S", ["q"], skills={"tax": 2})
    tax = center.arrive("q", skill="tax")
    plain = center.arrive("q")
    out = center.run(cc.OfferContacts(decisions=[(tax, "U"), (plain, "S")]))
    assert out["offered"] == [(plain, "S")]
    assert [(s["contact_id"], s["agent_id"]) for s in out["skipped"]] == [(tax, "U")]
    assert "tax" in out["skipped"][0]["why"]


def test_a_grab_needs_the_asked_skill_until_the_queue_drops_it(center: Center) -> None:
    center.queue("q", strategy="ring_all", grab=True, relaxation=[[30, 1]])  # agents pick; the router offers nothing
    center.login("U", ["q"])
    cid = center.arrive("q", skill="tax")
    with pytest.raises(InvalidTransition) as refused:
        center.as_agent("U", cc.Grab(contact_id=cid, agent_id="U"))
    assert refused.value.code == "unskilled"
    center.tick(31)  # past the last relaxation step: any agent of the queue
    assert center.as_agent("U", cc.Grab(contact_id=cid, agent_id="U"))["how"] == "answered"


def test_an_overflow_to_a_queue_leaves_the_skill_behind_in_the_aggregate(center: Center) -> None:
    center.queue("other")
    center.queue("q", max_wait_seconds=60, overflow={"to": "queue", "queue_id": "other"})
    center.login("U", ["other"])
    center.presence("U", "not_ready", "break")
    cid = center.arrive("q", skill="tax")
    center.tick(61)
    assert "overflowed" in center.events_of(cid)
    center.presence("U", "available")
    center.run(cc.OfferContact(contact_id=cid, agent_id="U"), actor=SUPERVISOR)  # a supervisor's pick, no tax skill
    assert _offered_in_store(center, cid) == "U"
