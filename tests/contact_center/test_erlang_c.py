"""Queueing sanity against theory: one queue, Poisson arrivals, exponential handling, no
abandons, simulated through the real command path and router, compared with Erlang C.

Reference point: 100 calls per 30 minutes, AHT 180 s, 14 agents, 20 s target →
P(wait) 0.1741, service level 0.888, ASA 7.84 s.

Tolerances (stated): P(wait) ± 0.05, service level ± 0.04, ASA ± 3.0 s, over 16 simulated
hours (≈ 3,200 calls) with a fixed seed. The standard error of the mean of correlated
waits over that many calls is roughly 1 s for ASA and 0.012 for the service level, so
the tolerances are about three standard errors.
"""

from __future__ import annotations

import math

import pytest

from telephony_adapter.simulator import QueueSpec, SimConfig, Simulator
from tests.contact_center.harness import START, Center


def erlang_c_wait_probability(calls_per_hour: float, aht: float, agents: int) -> float:
    """Erlang C, written out here (not imported) so the test checks the simulation against
    an independent computation."""
    a = calls_per_hour * aht / 3600.0  # offered load in Erlangs
    poisson_terms = [a**k / math.factorial(k) for k in range(agents)]
    top = a**agents / math.factorial(agents) * agents / (agents - a)
    return top / (sum(poisson_terms) + top)


def test_erlang_c_reference_values() -> None:
    pw = erlang_c_wait_probability(200, 180, 14)
    assert round(pw, 4) == 0.1741
    sl = 1 - pw * math.exp(-(14 - 10) * 20 / 180)
    asa = pw * 180 / (14 - 10)
    assert round(sl, 3) == 0.888 and round(asa, 2) == 7.84


@pytest.mark.slow
def test_simulated_single_queue_matches_erlang_c() -> None:
    center = Center()
    try:
        config = SimConfig(
            start=START,
            hours=16,
            agents=14,
            seed=20250303,
            handle="exponential",
            ring_seconds=0.0,
            miss_rate=0.0,
            acw_seconds=None,
            breaks=False,
            queues=[
                QueueSpec(
                    "erlang",
                    200,
                    180,
                    patience_seconds=None,
                    flat=True,
                    languages={"it": 1.0},
                    config={"wrap_seconds": 0, "sl_seconds": 20},
                )
            ],
            agent_languages=[["it"]],
        )
        report = Simulator(center.store, center.bus, center.clock, config, router=center.router).run()
    finally:
        center.close()
    q = report.queues["erlang"]
    pw = erlang_c_wait_probability(200, 180, 14)
    sl = 1 - pw * math.exp(-(14 - 10) * 20 / 180)
    asa = pw * 180 / (14 - 10)
    assert q["abandoned"] == 0 and q["answered"] > 3000
    assert abs(q["p_wait"] - pw) <= 0.05, (q, pw)
    assert abs(q["service_level"] - sl) <= 0.04, (q, sl)
    assert abs(q["asa_seconds"] - asa) <= 3.0, (q, asa)
