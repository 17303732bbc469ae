"""Erlang C: how many agents a queue needs to meet a service-level target.

The model (M/M/N, callers wait forever, first come first served):

* traffic intensity ``A = λ · AHT`` in erlangs (λ = arrivals per second);
* probability that a contact waits, ``P_w = C(N, A)``, Erlang's C formula;
* service level ``SL(T) = 1 − P_w · e^{−(N − A)·T / AHT}`` (share answered within T);
* average speed of answer ``ASA = P_w · AHT / (N − A)``;
* occupancy ``A / N``.

C is computed from Erlang B with the stable recurrence ``B(0) = 1``,
``B(k) = A·B(k−1) / (k + A·B(k−1))`` and ``C = N·B / (N − A·(1 − B))``, so there are no
factorials and no overflow at hundreds of agents. Shrinkage (breaks, training,
absence) turns the agents needed on the phones into agents to schedule:
``ceil(N / (1 − shrinkage))``.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

MAX_AGENTS = 100_000


def _check(calls: float, interval_seconds: float, aht_seconds: float) -> None:
    for name, value in (("contacts", calls), ("interval", interval_seconds), ("average handle time", aht_seconds)):
        if not math.isfinite(value):
            raise ValueError(f"the {name} must be a finite number, not {value}")
    if calls < 0:
        raise ValueError("the number of contacts cannot be negative")
    if interval_seconds <= 0:
        raise ValueError("the interval must be longer than 0 seconds")
    if aht_seconds <= 0:
        raise ValueError("the average handle time must be longer than 0 seconds")


def traffic_intensity(calls: float, interval_seconds: float, aht_seconds: float) -> float:
    """Offered load in erlangs: arrivals per second × handle time."""
    _check(calls, interval_seconds, aht_seconds)
    traffic = calls / interval_seconds * aht_seconds
    if not math.isfinite(traffic):  # a vanishing interval: no number of agents is an answer
        raise ValueError("the offered load is not a finite number of erlangs: check the contacts, interval and handle time")
    return traffic


def erlang_b(agents: int, traffic: float) -> float:
    """Blocking probability of an M/M/N/N system (the building block of C)."""
    if agents < 0:
        raise ValueError("agents cannot be negative")
    b = 1.0
    for k in range(1, agents + 1):
        b = traffic * b / (k + traffic * b)
    return b


def probability_of_waiting(agents: int, traffic: float) -> float:
    """Erlang C: the chance that a contact has to wait. 1 when the queue is unstable (N ≤ A)."""
    if traffic <= 0:
        return 0.0
    if agents <= traffic:
        return 1.0
    b = erlang_b(agents, traffic)
    return agents * b / (agents - traffic * (1 - b))


def service_level(agents: int, traffic: float, aht_seconds: float, target_seconds: float) -> float:
    """Share of contacts answered within ``target_seconds``."""
    if traffic <= 0:
        return 1.0
    if agents <= traffic:
        return 0.0
    pw = probability_of_waiting(agents, traffic)
    return 1.0 - pw * math.exp(-(agents - traffic) * target_seconds / aht_seconds)


def average_speed_of_answer(agents: int, traffic: float, aht_seconds: float) -> float:
    """Mean wait in seconds over all contacts (those answered at once count 0)."""
    if traffic <= 0:
        return 0.0
    if agents <= traffic:
        return math.inf
    return probability_of_waiting(agents, traffic) * aht_seconds / (agents - traffic)


def occupancy(agents: int, traffic: float) -> float:
    if agents <= 0:
        return 0.0 if traffic <= 0 else 1.0
    return min(1.0, traffic / agents)


@dataclass(frozen=True)
class Staffing:
    calls: float
    interval_seconds: float
    aht_seconds: float
    target_seconds: float
    traffic_erlangs: float
    agents: int  # on the phones
    scheduled_agents: int  # including shrinkage
    shrinkage: float
    probability_of_waiting: float
    service_level: float
    asa_seconds: float  # infinite when unstable
    occupancy: float
    # More work arrives than the agents can do (A ≥ N): the queue grows without end, every
    # contact waits, and no average wait exists.
    unstable: bool

    def as_dict(self) -> dict[str, Any]:
        """Plain JSON: an unstable queue's ASA is null (JSON has no infinity)."""
        out = asdict(self)
        if self.unstable:
            out["asa_seconds"] = None
        return out


def evaluate(
    calls: float,
    interval_seconds: float,
    aht_seconds: float,
    agents: int,
    target_seconds: float = 20.0,
    shrinkage: float = 0.0,
) -> Staffing:
    """The figures for a given number of agents."""
    _check(calls, interval_seconds, aht_seconds)
    if not 0 <= shrinkage < 1:
        raise ValueError("shrinkage must be at least 0 and below 1")
    if not 0 <= agents <= MAX_AGENTS:
        raise ValueError(f"the number of agents must be between 0 and {MAX_AGENTS}, not {agents}")
    if not (math.isfinite(target_seconds) and target_seconds >= 0):
        raise ValueError("the service-level threshold must be a finite number of seconds, at least 0")
    a = traffic_intensity(calls, interval_seconds, aht_seconds)
    return Staffing(
        calls=calls,
        interval_seconds=interval_seconds,
        aht_seconds=aht_seconds,
        target_seconds=target_seconds,
        traffic_erlangs=a,
        agents=agents,
        scheduled_agents=math.ceil(agents / (1 - shrinkage) - 1e-9) if agents else 0,
        shrinkage=shrinkage,
        probability_of_waiting=probability_of_waiting(agents, a),
        service_level=service_level(agents, a, aht_seconds, target_seconds),
        asa_seconds=average_speed_of_answer(agents, a, aht_seconds),
        occupancy=occupancy(agents, a),
        unstable=a > 0 and agents <= a,
    )


def agents_needed(
    calls: float,
    interval_seconds: float,
    aht_seconds: float,
    target_service_level: float = 0.8,
    target_seconds: float = 20.0,
    shrinkage: float = 0.0,
    max_occupancy: float | None = None,
    max_asa_seconds: float | None = None,
) -> Staffing:
    """The fewest agents that meet the service-level target (and, if given, a maximum
    occupancy and a maximum ASA); ``scheduled_agents`` adds shrinkage."""
    _check(calls, interval_seconds, aht_seconds)
    if not 0 < target_service_level < 1:
        raise ValueError("the service-level target must be between 0 and 1 (e.g. 0.8)")
    if max_occupancy is not None and not 0 < max_occupancy <= 1:
        raise ValueError("the maximum occupancy must be above 0 and at most 1")
    a = traffic_intensity(calls, interval_seconds, aht_seconds)
    if a == 0:
        return evaluate(calls, interval_seconds, aht_seconds, 0, target_seconds, shrinkage)
    n = max(1, math.floor(a) + 1)  # fewer than A agents can never keep up
    if max_occupancy is not None:
        n = max(n, math.ceil(a / max_occupancy - 1e-9))

    def meets(agents: int) -> bool:
        return service_level(agents, a, aht_seconds, target_seconds) >= target_service_level and (
            max_asa_seconds is None or average_speed_of_answer(agents, a, aht_seconds) <= max_asa_seconds
        )

    # Service level rises and ASA falls with every agent added beyond A, so the fewest that
    # meet the target are found by galloping up from n and then bisecting: O(log N)
    # evaluations of O(N) each, where one more agent at a time took seconds near MAX_AGENTS.
    if n > MAX_AGENTS:
        raise ValueError(f"more than {MAX_AGENTS} agents would be needed: check the inputs")
    if meets(n):
        return evaluate(calls, interval_seconds, aht_seconds, n, target_seconds, shrinkage)
    low, step = n, 1  # invariant: ``low`` does not meet the target
    while True:
        high = min(low + step, MAX_AGENTS)
        if meets(high):
            break
        if high == MAX_AGENTS:
            raise ValueError(f"more than {MAX_AGENTS} agents would be needed: check the inputs")
        low, step = high, step * 2
    while high - low > 1:
        middle = (low + high) // 2
        if meets(middle):
            high = middle
        else:
            low = middle
    return evaluate(calls, interval_seconds, aht_seconds, high, target_seconds, shrinkage)
