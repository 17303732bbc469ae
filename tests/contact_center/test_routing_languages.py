"""A caller's language: only agents who speak it take them, unless the queue relaxes it
(``language_relax_seconds``): after that long waiting, any agent of the queue may take
them; a speaker who frees up first still comes first. A queue that does not relax keeps
the language however long the wait (overflow and maximum wait still apply)."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from domain.base import InvalidCommand
from domain.contact_center import commands as cc
from domain.contact_center.rules import QueueRules, queue_rules
from tests.contact_center.harness import Center
from tests.contact_center.routing_oracle import idle_matches


def _no_idle_match(center: Center) -> None:
    assert idle_matches(center.router.view, center.clock.now().timestamp()) == []


def _an_arabic_caller_for_an_italian_agent(center: Center, **queue: Any) -> str:
    """Queue ``q`` (its settings ``queue``), agent IT free, speaking Italian only, and a caller
    speaking Arabic: their contact id."""
    center.queue("q", wrap_seconds=0, **queue)
    center.login("IT", ["q"], languages=["it"])
    return center.arrive("q", language="ar")


def test_the_language_is_relaxed_after_the_queues_wait(center: Center) -> None:
    arabic = _an_arabic_caller_for_an_italian_agent(center, language_relax_seconds=45)
    center.route()
    assert center.offered_to(arabic) is None  # nobody on duty speaks Arabic: it waits
    _no_idle_match(center)
    center.tick(30)
    assert center.offered_to(arabic) is None  # not yet
    center.tick(20)  # 50 s: past the queue's 45 s, the timer relaxed it by itself
    assert center.offered_to(arabic) == "IT"
    _no_idle_match(center)


def test_a_speaker_who_frees_up_before_the_relaxation_takes_the_caller(center: Center) -> None:
    center.queue("q", wrap_seconds=0, language_relax_seconds=60)
    center.login("IT", ["q"], languages=["it"])
    center.login("AR", ["q"], languages=["ar", "it"], ready=False)
    arabic = center.arrive("q", language="ar")
    center.tick(20)
    center.presence("AR", "available")
    center.route()
    assert center.offered_to(arabic) == "AR"


def test_a_queue_without_relaxation_keeps_the_language(center: Center) -> None:
    arabic = _an_arabic_caller_for_an_italian_agent(center)
    center.tick(3600)
    assert center.offered_to(arabic) is None
    _no_idle_match(center)


def test_no_agent_who_speaks_it_is_no_reason_to_refuse_a_caller_the_queue_will_relax_for(center: Center) -> None:
    """A queue that does not take callers nobody could serve (``join_when_empty`` false)
    still takes one whose language it will relax: in time, anyone may serve them."""
    center.queue("strict", wrap_seconds=0, join_when_empty=False, overflow={"to": "voicemail"})
    center.queue("relaxed", wrap_seconds=0, join_when_empty=False, overflow={"to": "voicemail"}, language_relax_seconds=30)
    center.login("IT", ["strict", "relaxed"], languages=["it"], ready=False)
    refused = center.arrive("strict", language="ar")
    kept = center.arrive("relaxed", language="ar")
    center.route()
    assert center.events_of(refused)[-1] == "overflowed"
    assert "overflowed" not in center.events_of(kept)


def test_the_setting_is_checked() -> None:
    assert queue_rules("q", {"language_relax_seconds": 0}).language_dropped(0.0)
    assert not queue_rules("q", {}).language_dropped(10**9)
    with pytest.raises(InvalidCommand):
        QueueRules.parse("q", {"language_relax_seconds": -1})
    with pytest.raises(ValidationError):
        cc.DefineQueue(queue_id="q", language_relax_seconds=-5)


def test_after_the_relaxation_a_speaker_still_comes_first(center: Center) -> None:
    """Both free in the same routing step (a shift starts): the one who speaks it."""
    center.queue("q", wrap_seconds=0, language_relax_seconds=30)  # longest idle first
    center.login("IT", ["q"], languages=["it"], ready=False)
    center.login("AR", ["q"], languages=["ar"], ready=False)
    arabic = center.arrive("q", language="ar")
    center.clock.advance(seconds=40)
    center.presence("IT", "available")  # idle longer: the queue's strategy alone would pick IT
    center.clock.advance(seconds=1)
    center.presence("AR", "available")
    center.route()
    assert center.offered_to(arabic) == "AR"


def test_a_change_of_the_queues_setting_applies_to_callers_already_waiting(center: Center) -> None:
    arabic = _an_arabic_caller_for_an_italian_agent(center)
    center.tick(10)
    center.queue("q", language_relax_seconds=30)  # added while they wait
    center.tick(15)
    assert center.offered_to(arabic) is None  # 25 s
    center.tick(10)
    assert center.offered_to(arabic) == "IT"  # 35 s: no need for another event to move them
    _no_idle_match(center)
    # Shortened: a caller waiting for a long relaxation gets the short one.
    center.queue("r", wrap_seconds=0, language_relax_seconds=600)
    center.login("IT2", ["r"], languages=["it"])
    chinese = center.arrive("r", language="zh")
    center.tick(5)
    center.queue("r", language_relax_seconds=20)
    center.tick(20)
    assert center.offered_to(chinese) == "IT2"


def test_a_relaxation_after_the_maximum_wait_is_none_for_join_when_empty(center: Center) -> None:
    """Who would overflow before the language is relaxed is nobody's to serve: refused at once."""
    center.queue(
        "late", wrap_seconds=0, join_when_empty=False, max_wait_seconds=60, language_relax_seconds=600, overflow={"to": "voicemail"}
    )
    center.login("IT", ["late"], languages=["it"], ready=False)
    refused = center.arrive("late", language="ar")
    center.route()
    assert center.events_of(refused)[-1] == "overflowed"
