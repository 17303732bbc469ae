"""Erlang C against the textbook example and against first principles."""

from __future__ import annotations

import math

import pytest

from analytics import erlang


def test_textbook_example_100_calls_per_half_hour() -> None:
    s = erlang.evaluate(calls=100, interval_seconds=1800, aht_seconds=180, agents=14, target_seconds=20)
    assert s.traffic_erlangs == pytest.approx(10.0)
    assert round(s.probability_of_waiting, 4) == 0.1741
    assert round(s.service_level, 3) == 0.888
    assert round(s.asa_seconds, 2) == 7.84
    assert round(s.occupancy, 3) == 0.714


def _erlang_c_factorial(n: int, a: float) -> float:
    # The formula as printed in the books, to check the recurrence.
    top = a**n / math.factorial(n) * n / (n - a)
    return top / (sum(a**k / math.factorial(k) for k in range(n)) + top)


@pytest.mark.parametrize(("n", "a"), [(2, 1.0), (5, 3.7), (14, 10.0), (30, 25.5), (60, 52.0)])
def test_recurrence_equals_factorial_formula(n: int, a: float) -> None:
    assert erlang.probability_of_waiting(n, a) == pytest.approx(_erlang_c_factorial(n, a), rel=1e-9)


def test_agents_needed_is_the_smallest_that_meets_the_target() -> None:
    s = erlang.agents_needed(100, 1800, 180, target_service_level=0.8, target_seconds=20)
    assert s.service_level >= 0.8
    fewer = erlang.evaluate(100, 1800, 180, s.agents - 1, target_seconds=20)
    assert fewer.service_level < 0.8
    assert s.agents == 14


def test_shrinkage_raises_scheduled_agents() -> None:
    s = erlang.agents_needed(100, 1800, 180, target_service_level=0.8, target_seconds=20, shrinkage=0.3)
    assert s.agents == 14
    assert s.scheduled_agents == math.ceil(14 / 0.7)  # 20


def test_max_occupancy_and_asa_constraints() -> None:
    s = erlang.agents_needed(100, 1800, 180, 0.8, 20, max_occupancy=0.6)
    assert s.agents == math.ceil(10 / 0.6)
    s2 = erlang.agents_needed(100, 1800, 180, 0.8, 20, max_asa_seconds=2.0)
    assert s2.asa_seconds <= 2.0 and erlang.evaluate(100, 1800, 180, s2.agents - 1).asa_seconds > 2.0


def test_unstable_queue_and_no_traffic() -> None:
    assert erlang.probability_of_waiting(10, 10.0) == 1.0
    assert erlang.service_level(9, 10.0, 180, 20) == 0.0
    assert erlang.average_speed_of_answer(10, 10.0, 180) == math.inf
    none = erlang.agents_needed(0, 1800, 180)
    assert none.agents == 0 and none.service_level == 1.0


def test_large_centre_does_not_overflow() -> None:
    s = erlang.agents_needed(10_000, 1800, 300, 0.9, 20)
    assert s.traffic_erlangs == pytest.approx(10_000 / 1800 * 300)
    assert s.agents > s.traffic_erlangs and s.service_level >= 0.9


@pytest.mark.parametrize("bad", [dict(aht_seconds=0), dict(interval_seconds=0), dict(calls=-1)])
def test_bad_inputs_are_refused(bad: dict[str, float]) -> None:
    args = dict(calls=100.0, interval_seconds=1800.0, aht_seconds=180.0) | bad
    with pytest.raises(ValueError):
        erlang.agents_needed(args["calls"], args["interval_seconds"], args["aht_seconds"])
