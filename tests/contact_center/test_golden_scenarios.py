"""Golden scenarios modelled on Asterisk's app_queue tests (testsuite tests/apps/queues:
position by priority, penalty rules, wrapuptime, paused members, joinempty/overflow),
written as plain tests against the real command path and router."""

from __future__ import annotations

from tests.contact_center.harness import Center


def _busy(center: Center, agent_id: str, queue: str = "q") -> str:
    """Gives the agent a call so that it is busy."""
    cid = center.arrive(queue)
    center.route()
    assert center.offered_to(cid) == agent_id
    center.answer(cid, agent_id)
    return cid


def test_joining_position_by_priority(center: Center) -> None:
    # Asterisk queue_priority: a caller with higher priority joins ahead of the others.
    center.queue("q", wrap_seconds=0)
    center.login("A", ["q"])
    first = _busy(center, "A")
    low1 = center.arrive("q", priority=0)
    center.tick(1)
    high = center.arrive("q", priority=5)
    center.tick(1)
    low2 = center.arrive("q", priority=0)
    center.route()
    assert center.offers() == {}
    center.end(first, "A")
    center.route()
    assert center.offers() == {high: "A"}
    center.answer(high, "A")
    center.end(high, "A")
    center.route()
    assert center.offers() == {low1: "A"}  # then the earlier of the equal ones
    center.answer(low1, "A")
    center.end(low1, "A")
    center.route()
    assert center.offers() == {low2: "A"}


def test_priority_ageing_lets_old_low_priority_work_through(center: Center) -> None:
    center.queue("q", wrap_seconds=0, ageing_per_minute=1.0)
    center.login("A", ["q"])
    first = _busy(center, "A")
    old_low = center.arrive("q", priority=0)
    center.tick(600)  # ten minutes: +10
    new_high = center.arrive("q", priority=5)
    center.end(first, "A")
    center.route()
    assert center.offers() == {old_low: "A"}
    assert new_high not in center.offers()


def test_penalty_rules_relax_the_required_proficiency(center: Center) -> None:
    # Asterisk penalty rules / bullseye: after 30 s accept one level less, after 60 s two.
    center.queue("q", required_skills={"tax": 4}, relaxation=[[30, 1], [60, 2]], wrap_seconds=0)
    center.login("L3", ["q"], {"tax": 3})
    center.login("L2", ["q"], {"tax": 2})
    center.login("NONE", ["q"], {"other": 5})
    cid = center.arrive("q")
    center.route()
    assert center.offered_to(cid) is None  # nobody has tax 4
    center.tick(29)
    assert center.offered_to(cid) is None
    center.tick(2)  # 31 s: level 3 accepted
    assert center.offered_to(cid) == "L3"
    center.answer(cid, "L3")
    second = center.arrive("q")
    center.tick(59)
    assert center.offered_to(second) is None  # L2 only after 60 s
    center.tick(2)
    assert center.offered_to(second) == "L2"
    third = center.arrive("q")
    center.tick(3600)
    assert center.offered_to(third) is None  # a missing skill is never relaxed away


def test_best_proficiency_prefers_the_most_skilled_free_agent(center: Center) -> None:
    center.queue("q", required_skills={"tax": 2}, strategy="best_proficiency")
    center.login("low", ["q"], {"tax": 2})
    center.tick(5)
    center.login("high", ["q"], {"tax": 5})
    cid = center.arrive("q")
    center.route()
    assert center.offered_to(cid) == "high"


def test_wrap_up_time_is_respected(center: Center) -> None:
    # Asterisk wrapuptime: a member is not called again until its wrap-up is over.
    center.queue("q", wrap_seconds=30)
    center.login("A", ["q"])
    first = _busy(center, "A")
    center.tick(60)
    center.end(first, "A")
    center.route()
    assert center.agent_state("A") == "wrap_up"
    nxt = center.arrive("q")
    center.tick(10)
    assert center.offered_to(nxt) is None
    center.tick(19)
    assert center.offered_to(nxt) is None
    center.tick(2)  # 31 s after the end: wrap-up timed out, the next call is offered
    assert center.offered_to(nxt) == "A"
    events = center.envelopes()
    wrapped = [e for e in events if e.type == "hotline.contact.wrapped_up.v1" and e.aggregate_id == first]
    assert wrapped and wrapped[0].data["timed_out"] is True and 30.0 <= wrapped[0].data["wrap_seconds"] <= 31.0


def test_agent_ends_wrap_up_early_with_a_disposition(center: Center) -> None:
    center.queue("q", wrap_seconds=120)
    center.login("A", ["q"])
    first = _busy(center, "A")
    center.end(first, "A")
    center.tick(5)
    center.wrap(first, "A", "information_given")
    nxt = center.arrive("q")
    center.route()
    assert center.offered_to(nxt) == "A"
    wrapped = [e for e in center.envelopes() if e.type == "hotline.contact.wrapped_up.v1"]
    assert wrapped[0].data["disposition"] == "information_given" and wrapped[0].data["wrap_seconds"] == 5.0


def test_paused_agents_are_skipped(center: Center) -> None:
    # Asterisk paused members: the longest idle agent is on break, the next one is rung.
    center.queue("q", strategy="longest_idle")
    center.login("idle_longest", ["q"])
    center.tick(60)
    center.login("other", ["q"])
    center.presence("idle_longest", "not_ready", "break")
    cid = center.arrive("q")
    center.route()
    assert center.offered_to(cid) == "other"


def test_longest_idle_agent_gets_the_call(center: Center) -> None:
    center.queue("q", strategy="longest_idle")
    center.login("first", ["q"])
    center.tick(10)
    center.login("second", ["q"])
    cid = center.arrive("q")
    center.route()
    assert center.offered_to(cid) == "first"


def test_all_agents_busy_overflow_to_another_queue(center: Center) -> None:
    # joinempty / timeout: with max wait 0 and every agent busy, the caller overflows.
    center.queue("backup", wrap_seconds=0)
    center.queue("q", max_wait_seconds=0, overflow={"to": "queue", "queue_id": "backup"}, wrap_seconds=0)
    center.login("A", ["q"])
    center.login("B", ["backup"])
    _busy(center, "A")
    cid = center.arrive("q")
    center.route()
    assert center.offered_to(cid) == "B"
    assert "overflowed" in center.events_of(cid)


def test_max_wait_overflow_to_voicemail_is_terminal(center: Center) -> None:
    center.queue("q", max_wait_seconds=120, overflow={"to": "voicemail"})
    center.login("A", ["q"])
    _busy(center, "A")
    cid = center.arrive("q")
    center.tick(119)
    assert "overflowed" not in center.events_of(cid)
    center.tick(2)
    assert center.events_of(cid)[-1] == "overflowed"
    assert center.terminal_counts()[cid] == 1


def test_overflow_to_callback_keeps_the_callers_place(center: Center) -> None:
    center.queue("q", max_wait_seconds=60, overflow={"to": "callback"}, wrap_seconds=0)
    center.login("A", ["q"])
    busy = _busy(center, "A")
    early = center.arrive("q")  # will choose the callback after 60 s
    center.tick(61)
    assert center.events_of(early)[-1] == "overflowed"
    later = center.arrive("q")  # a caller still on the line, who came after
    center.tick(5)
    center.end(busy, "A")
    center.route()
    assert center.offers() == {early: "A"}  # the callback kept its place ahead of `later`
    result = center.answer(early, "A")
    assert result["how"] == "dialing"
    from domain.contact_center import commands as cc

    center.run(cc.CallbackOutcome(contact_id=early, outcome="answered"))
    kinds = center.events_of(early)
    assert kinds[-2:] == ["callback_attempted", "callback_connected"]
    assert center.offered_to(later) is None


def test_closed_queue_sends_callers_to_overflow(center: Center) -> None:
    center.queue("q", opening_hours={"mon": [["10:00", "18:00"]]}, timezone="UTC")  # it is 09:00
    cid = center.arrive("q")
    kinds = center.events_of(cid)
    assert kinds[-1] == "overflowed"
    assert next(e for e in center.envelopes() if e.type.endswith("overflowed.v1")).data["reason"] == "closed"


def test_no_agent_logged_in_and_join_when_empty_off(center: Center) -> None:
    center.queue("q", join_when_empty=False, overflow={"to": "voicemail"})
    cid = center.arrive("q")
    center.route()
    assert center.events_of(cid)[-1] == "overflowed"
