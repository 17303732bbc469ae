"""Callbacks nobody can take: the general queue's virtual-hold callback that waited 40 hours.

QA's wallboard: queue General "Waiting 1, longest wait 2d, callbacks scheduled 0", with six
agents available. The caller (language zh) had chosen "waste" in the voice menu, waited the
queue's 300 s and overflowed to a callback; no agent on duty spoke zh *and* had the skill,
the queue never relaxed it, and a callback had no maximum age: the router never attempted
it and nothing ever ended it.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from consumers.router import Router
from domain.base import InvalidTransition
from domain.contact_center import commands as cc
from domain.contact_center.rules import queue_rules
from infra.read_store import ReadStore, make_engine
from projections import wallboard
from telephony_adapter.simulator import SimConfig
from tests.contact_center.harness import SUPERVISOR, Center

HOUR = 3600.0
# The general queue as the demo had it before: menu skills, overflow to a callback, no relaxation.
STUCK_GENERAL: dict[str, Any] = {
    "required_skills": {"general": 1},
    "wrap_seconds": 30,
    "max_wait_seconds": 300,
    "overflow": {"to": "callback"},
}


def demo_general() -> dict[str, Any]:
    """The general queue's settings as the demo (``SimConfig.default_day``) defines it."""
    spec = next(q for q in SimConfig.default_day().queues if q.queue_id == "general")
    return {k: v for k, v in spec.config.items() if k != "names"}


def six_agents(center: Center, queue: str = "general") -> None:
    """Six agents on duty, one of them speaking zh; nobody has the skill "waste"."""
    for i, langs in enumerate((["it"], ["it", "en"], ["it", "zh"], ["it", "en", "ar"], ["it"], ["it", "en"])):
        center.login(f"a{i}", [queue], {"general": 2, "roads": 1}, languages=langs)


def waste_caller_in_zh(center: Center) -> str:
    return center.arrive("general", language="zh", skill="waste", phone="+390612345678")


def gave_up(center: Center, cid: str) -> dict[str, Any]:
    (event,) = [e for e in center.envelopes() if e.aggregate_id == cid and e.name == "callback_gave_up"]
    return dict(event.data)


def test_the_stuck_state_reproduced_then_given_up_at_the_maximum_age(center: Center) -> None:
    center.queue("general", **STUCK_GENERAL)
    six_agents(center)
    cid = waste_caller_in_zh(center)
    center.route()
    assert center.offered_to(cid) is None  # nobody speaks zh and knows "waste"
    center.tick(300)
    assert center.events_of(cid)[-1] == "overflowed"
    view = center.router.view.contacts[cid]
    assert view.virtual and view.status == "queued"
    for _ in range(23):  # an hour at a time: six agents free, never an offer
        center.tick(HOUR)
        assert center.offered_to(cid) is None
        assert "callback_attempted" not in center.events_of(cid)
    assert cid in center.router.view.contacts  # what QA saw: waiting, for ever
    center.tick(HOUR)  # a day after the call: the queue's maximum age (default)
    assert center.events_of(cid)[-1] == "callback_gave_up"
    assert gave_up(center, cid) == {"attempts": 0, "reason": "max_age"}
    assert cid not in center.router.view.contacts
    assert center.terminal_counts()[cid] == 1


def test_the_demo_queue_relaxes_the_menu_skill_and_the_zh_agent_takes_the_call(center: Center) -> None:
    center.queue("general", **demo_general())
    six_agents(center)
    cid = waste_caller_in_zh(center)
    center.route()
    assert center.offered_to(cid) is None
    center.tick(119)
    assert center.offered_to(cid) is None  # two minutes for an agent with the skill
    center.tick(1)
    assert center.offered_to(cid) == "a2"  # then any agent of the queue who speaks zh


def test_a_virtual_hold_callback_is_attempted_when_an_agent_who_can_take_it_signs_in(center: Center) -> None:
    center.queue("general", **demo_general())
    center.login("it-only", ["general"], {"general": 3}, languages=["it"])
    cid = waste_caller_in_zh(center)
    center.tick(300)
    assert center.events_of(cid)[-1] == "overflowed"  # nobody speaks zh: a callback instead
    center.tick(8 * HOUR)
    assert center.offered_to(cid) is None
    center.login("zh", ["general"], {"general": 1}, languages=["zh"])  # the next shift
    center.route()
    assert center.offered_to(cid) == "zh"
    assert center.answer(cid, "zh")["how"] == "dialing"
    assert center.events_of(cid)[-1] == "callback_attempted"


def test_a_retried_callback_nobody_can_take_is_given_up_with_the_attempts_made(center: Center) -> None:
    center.queue("out", wrap_seconds=0, callback_max_age_seconds=2 * 3600)
    center.login("A", ["out"], {"survey": 1}, languages=["it"])
    res = center.run(
        cc.ScheduleCallback(
            queue_id="out", phone="+390611111", due_at=center.clock.now(), language="it", max_attempts=3, retry_seconds=600
        ),
        actor=SUPERVISOR,
    )
    cid = res["id"]
    center.route()
    center.answer(cid, "A")
    center.run(cc.CallbackOutcome(contact_id=cid, outcome="no_answer"))
    center.as_agent("A", cc.LogoutAgent(agent_id="A"))  # nobody left to make attempt 2
    center.tick(600 + 2 * 3600 - 1)  # the retry is due after 600 s; its age counts from then
    assert "callback_gave_up" not in center.events_of(cid)
    center.tick(1)
    assert gave_up(center, cid) == {"attempts": 1, "reason": "max_age"}


def test_a_callback_that_can_be_taken_now_is_offered_not_given_up(center: Center) -> None:
    center.queue("general", **{**STUCK_GENERAL, "callback_max_age_seconds": 600})
    cid = waste_caller_in_zh(center)
    center.clock.advance(seconds=300)
    center.route()
    assert center.events_of(cid)[-1] == "overflowed"
    # The router was down past the maximum age; an agent who can take it is there when it is back.
    center.clock.advance(seconds=3600)
    center.login("zh", ["general"], {"general": 1, "waste": 1}, languages=["zh"])
    router = Router(center.store, center.bus)  # a new leader rebuilds its view from the events
    router.rebuild()
    router.run_until_idle()
    assert router.view.contacts[cid].offered_to == "zh"
    assert "callback_gave_up" not in center.events_of(cid)


def test_no_maximum_age_keeps_the_callback(center: Center) -> None:
    center.queue("general", **{**STUCK_GENERAL, "callback_max_age_seconds": None})
    six_agents(center)
    cid = waste_caller_in_zh(center)
    center.tick(300)
    center.tick(30 * 24 * HOUR)
    assert cid in center.router.view.contacts and "callback_gave_up" not in center.events_of(cid)


def test_the_domain_refuses_to_give_up_too_early_or_what_is_no_callback(center: Center) -> None:
    center.queue("general", **STUCK_GENERAL)
    six_agents(center)
    caller = center.arrive("general", language="it")
    with pytest.raises(InvalidTransition):
        center.run(cc.GiveUpCallback(contact_id=caller), actor=SUPERVISOR)  # a caller on the line
    cid = waste_caller_in_zh(center)
    center.tick(300)
    with pytest.raises(InvalidTransition) as refused:
        center.run(cc.GiveUpCallback(contact_id=cid), actor=SUPERVISOR)
    assert refused.value.code == "not_expired"


def test_queues_defined_before_keep_a_maximum_age() -> None:
    assert queue_rules("general", STUCK_GENERAL).callback_max_age_seconds == 24 * 3600


def test_the_wallboard_shows_the_virtual_hold_as_a_callback_not_a_waiting_call(center: Center, tmp_path: Path) -> None:
    center.queue("general", **STUCK_GENERAL)
    six_agents(center)
    cid = waste_caller_in_zh(center)
    center.tick(250)
    caller = center.arrive("general", language="ar")  # on the line, waiting: nobody speaks ar
    center.tick(50)
    assert center.events_of(cid)[-1] == "overflowed"
    rs = ReadStore(make_engine(f"sqlite:///{tmp_path / 'rm.sqlite'}"), [wallboard.projection])
    rs.create_tables()
    rs.apply(center.envelopes())
    with rs.engine.connect() as conn:
        (q,) = wallboard.wallboard(conn, center.clock.now())["queues"]
        assert (q["waiting"], q["longest_wait_seconds"], q["callbacks_scheduled"]) == (1, 50.0, 1)
        listed = wallboard.waiting_contacts(conn, center.clock.now(), "general")
        # The callback keeps its place in line (virtual hold), marked as such.
        assert [(r["contact_id"], r["virtual"]) for r in listed] == [(cid, True), (caller, False)]
    center.run(cc.Abandon(contact_id=caller))
    center.tick(24 * HOUR)
    rs.apply(center.envelopes())
    with rs.engine.connect() as conn:
        (q,) = wallboard.wallboard(conn, center.clock.now())["queues"]
        assert (q["waiting"], q["longest_wait_seconds"], q["callbacks_scheduled"]) == (0, 0.0, 0)  # given up: off the board


def test_the_max_age_setting_is_validated(center: Center) -> None:
    from domain.base import InvalidCommand

    with pytest.raises((InvalidCommand, ValueError)):
        center.queue("bad", callback_max_age_seconds=0)
    assert center.queue("ok", callback_max_age_seconds=7200)["config"]["callback_max_age_seconds"] == 7200
    assert timedelta(seconds=queue_rules("ok", {}).callback_max_age_seconds or 0) == timedelta(days=1)
