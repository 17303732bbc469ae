"""Routing benchmark: decision latency and assignments per second.

1. Decision latency (the router's in-memory matching, no I/O): 1,000 logged-in agents,
   20 skills (one queue per skill, each agent in 3 queues, 2 of 4 languages), 10,000
   waiting contacts. One agent at a time becomes free; we time ``decide`` until the
   decision for it is made. Then the reverse: contacts arriving while agents are free.
2. End to end: the same population on a real store (PostgreSQL by default); agents come
   back from a break all at once and the router writes the offers through the
   CommandBus (``offer_contacts`` batches, optimistic concurrency on every Contact and
   Agent; two events per assignment). Assignments/s = offers persisted per second of
   routing. Each round also reports the CPU seconds of this process (router and group
   committer threads, not the database server), and the router's time by phase: on a
   shared machine the wall clock varies with the neighbours' load, the CPU much less.

Run:  python tests/bench/bench_routing.py [--store postgres|sqlite|memory] [--agents 1000] [--contacts 10000]
  or: python -m pytest tests/bench/bench_routing.py -s   (smaller sizes, PostgreSQL if up)
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import random
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from domain.contact_center.routing import Decision, RoutingView  # noqa: E402
from domain.contact_center.rules import QueueRules  # noqa: E402
from domain.envelope import Envelope  # noqa: E402

T0 = datetime(2025, 3, 3, 8, 0, tzinfo=UTC)
SKILLS = [f"skill{i:02d}" for i in range(20)]
LANGS = ["it", "en", "zh", "ar"]


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


# ---------------------------------------------------------------------- 1. in memory
class Feed:
    def __init__(self) -> None:
        self.position = 0

    def env(self, type_: str, stream: str, aggregate_id: str, at: datetime, **data: Any) -> Envelope:
        self.position += 1
        return Envelope(f"hotline.{stream}.{type_}.v1", stream, aggregate_id, 1, self.position, at, data, {})


def population(rng: random.Random, agents: int) -> list[dict[str, Any]]:
    people = []
    for i in range(agents):
        queues = rng.sample(SKILLS, 3)
        people.append(
            {
                "agent_id": f"a{i:05d}",
                "queues": queues,
                "skills": {s: rng.randint(2, 5) for s in queues},
                "languages": rng.sample(LANGS, 2),
            }
        )
    return people


def staffed_view(
    people: list[dict[str, Any]], rules: Callable[[str], QueueRules], *, available: bool, seconds_apart: float = 0.0
) -> tuple[RoutingView, Feed, datetime]:
    """A routing view with one queue per skill (``rules(skill)``) and ``people`` logged in,
    all available or all on a break; returns it, its feed and the last login's time."""
    view, feed = RoutingView(), Feed()
    for skill in SKILLS:
        view.apply(feed.env("defined", "queue", skill, T0, queue_id=skill, names={}, config=rules(skill).as_config()))
    at = T0
    presence = "available" if available else "not_ready"
    for i, p in enumerate(people):
        at = T0 + timedelta(seconds=i * seconds_apart)
        view.apply(
            feed.env(
                "logged_in",
                "agent",
                p["agent_id"],
                at,
                agent_id=p["agent_id"],
                skills=p["skills"],
                languages=p["languages"],
                queues=p["queues"],
                departments=[],
                capacity={"voice": 1},
            )
        )
        view.apply(
            feed.env(
                "state_changed",
                "agent",
                p["agent_id"],
                at,
                agent_id=p["agent_id"],
                state=presence,
                presence=presence,
                reason=None if available else "break",
            )
        )
    return view, feed, at


def assign(view: RoutingView, feed: Feed, d: Decision, at: datetime) -> None:
    """Applies a routing decision as the router's offer would: contact offered, agent reserved."""
    view.apply(feed.env("offered", "contact", d.contact_id, at, agent_id=d.agent_id, queue_id=d.queue_id, kind="route"))
    view.apply(
        feed.env("reserved", "agent", d.agent_id, at, agent_id=d.agent_id, contact_id=d.contact_id, queue_id=d.queue_id, media="voice")
    )
    view.settle([d])


def bench_decisions(agents: int = 1000, contacts: int = 10_000, rounds: int = 2000, seed: int = 7) -> dict[str, Any]:
    rng = random.Random(seed)
    people = population(rng, agents)
    view, feed, at = staffed_view(
        people,
        lambda skill: QueueRules(skill, required_skills={skill: 2}, relaxation=[[60, 1]], ageing_per_minute=0.5),
        available=False,
    )
    for i in range(contacts):
        at = T0 + timedelta(seconds=i * 0.1)
        cid = str(uuid.UUID(int=i + 1))
        view.apply(
            feed.env(
                "arrived",
                "contact",
                cid,
                at,
                queue_id=rng.choice(SKILLS),
                media="voice",
                language=rng.choice(LANGS),
                priority=rng.choice([0, 0, 0, 1, 2]),
                direction="inbound",
                channel="phone",
            )
        )
        view.apply(
            feed.env(
                "queued",
                "contact",
                cid,
                at,
                queue_id=view.contacts[cid].queue_id,
                priority=view.contacts[cid].priority,
                since=at.isoformat(),
                reason="arrival",
            )
        )
    view.decide(at)  # nobody is free yet
    now = at + timedelta(seconds=30)
    latencies: list[float] = []
    made = 0
    order = [p["agent_id"] for p in people]
    for r in range(min(rounds, agents)):
        agent_id = order[r]
        view.apply(
            feed.env("state_changed", "agent", agent_id, now, agent_id=agent_id, state="available", presence="available", reason=None)
        )
        started = time.perf_counter()
        decisions = view.decide(now, limit=1)
        latencies.append(time.perf_counter() - started)
        for d in decisions:
            made += 1
            assign(view, feed, d, now)
    agent_free = {
        "decisions": made,
        "p50_ms": percentile(latencies, 50) * 1000,
        "p99_ms": percentile(latencies, 99) * 1000,
        "max_ms": max(latencies) * 1000,
        "decisions_per_s": made / sum(latencies),
    }
    # Reverse: agents free, contacts arriving one at a time.
    strategies = ["longest_idle", "best_proficiency", "round_robin", "fewest_contacts"]
    view2, feed2, at = staffed_view(
        people,
        lambda skill: QueueRules(skill, required_skills={skill: 2}, strategy=rng.choice(strategies)),
        available=True,
        seconds_apart=1,
    )
    view2.decide(at)
    lat2: list[float] = []
    for i in range(min(rounds, agents // 2)):
        now2 = at + timedelta(seconds=i)
        cid = str(uuid.UUID(int=10**9 + i))
        q = rng.choice(SKILLS)
        view2.apply(
            feed2.env(
                "arrived",
                "contact",
                cid,
                now2,
                queue_id=q,
                media="voice",
                language=rng.choice(LANGS),
                priority=0,
                direction="inbound",
                channel="phone",
            )
        )
        view2.apply(feed2.env("queued", "contact", cid, now2, queue_id=q, priority=0, since=now2.isoformat(), reason="arrival"))
        started = time.perf_counter()
        decisions = view2.decide(now2, limit=1)
        lat2.append(time.perf_counter() - started)
        for d in decisions:
            assign(view2, feed2, d, now2)
    contact_arrives = {"p50_ms": percentile(lat2, 50) * 1000, "p99_ms": percentile(lat2, 99) * 1000, "max_ms": max(lat2) * 1000}
    return {"agents": agents, "contacts_waiting": contacts, "agent_becomes_free": agent_free, "contact_arrives": contact_arrives}


# ---------------------------------------------------------------------- 2. end to end
def bench_end_to_end(
    store: str = "postgres", agents: int = 1000, contacts: int = 10_000, rounds: int = 3, batch: int = 200, seed: int = 7
) -> dict[str, Any]:
    from consumers.router import Router, enable_aggregate_cache
    from domain.base import Actor, DomainError, FixedClock
    from domain.contact_center import commands as cc
    from infra.runtime import Hotline
    from infra.settings import Settings

    rng = random.Random(seed)
    tmp = Path(tempfile.mkdtemp(prefix="bench_routing_"))
    url: str | None = None
    if store == "postgres":
        from tests.conftest import create_pg_database

        url = create_pg_database("t_cc_bench")
    settings = Settings(data_dir=tmp, database_url=url, inprocess_projections=False)
    clock = FixedClock(T0)
    if store == "memory":
        from tests.contact_center.harness import Center

        center = Center(clock=clock)
        bus, es = center.bus, center.store
        closer: Any = center.close
    else:
        hotline = Hotline.start(settings, clock=clock)
        enable_aggregate_cache(hotline.store)
        bus, es, closer = hotline.bus, hotline.store, hotline.close
    sup, pbx = Actor("bench", "supervisor"), Actor("pbx", "system")
    timings: dict[str, Any] = {"store": store, "agents": agents, "contacts_waiting": contacts, "batch": batch}
    try:
        for skill in SKILLS:
            bus.execute(cc.DefineQueue(queue_id=skill, required_skills={skill: 2}, offer_timeout_seconds=3600), sup)
        people = population(rng, agents)

        def parallel(fn: Any, items: list[Any]) -> float:
            started = time.perf_counter()
            with ThreadPoolExecutor(16) as pool:  # concurrent commands: the group committer batches them
                list(pool.map(fn, items))
            return time.perf_counter() - started

        timings["login_s"] = parallel(
            lambda p: bus.execute(
                cc.LoginAgent(agent_id=p["agent_id"], queues=p["queues"], skills=p["skills"], languages=p["languages"], ready=False),
                Actor(p["agent_id"], "agent"),
            ),
            people,
        )
        timings["arrivals_s"] = parallel(
            lambda i: bus.execute(
                cc.ContactArrives(channel="phone", queue_id=rng.choice(SKILLS), language=rng.choice(LANGS), priority=rng.choice([0, 0, 1])),
                pbx,
            ),
            list(range(contacts)),
        )
        clock.advance(seconds=30)
        router = Router(es, bus, batch=batch, freeze_heap=True)  # as `hotline router` runs it
        started = time.perf_counter()
        router.rebuild()
        timings["router_rebuild_s"] = time.perf_counter() - started
        timings["events_read_at_rebuild"] = router.view.position
        per_round = []
        for _ in range(rounds):
            parallel(
                lambda p: bus.execute(cc.SetPresence(agent_id=p["agent_id"], presence="available"), Actor(p["agent_id"], "agent")),
                people,
            )
            router.catch_up()
            before = router.stats.offered
            started, cpu_started = time.perf_counter(), time.process_time()
            router.run_until_idle()
            elapsed = time.perf_counter() - started
            cpu = time.process_time() - cpu_started  # this process (router + committer threads), not the server
            made = router.stats.offered - before
            per_round.append(
                {"offers": made, "seconds": round(elapsed, 3), "assignments_per_s": round(made / elapsed, 1), "cpu_s": round(cpu, 3)}
            )
            # The agents decline (untimed): their contacts go back to their places.
            offered = [(cid, c.offered_to) for cid, c in router.view.contacts.items() if c.offered_to]

            def decline(item: tuple[str, str]) -> None:
                with contextlib.suppress(DomainError):
                    bus.execute(cc.Decline(contact_id=item[0], agent_id=item[1]), Actor(item[1], "agent"))

            parallel(decline, offered)
            parallel(
                lambda p: bus.execute(
                    cc.SetPresence(agent_id=p["agent_id"], presence="not_ready", reason="break"), Actor(p["agent_id"], "agent")
                ),
                people,
            )
            clock.advance(seconds=5)
        timings["rounds"] = per_round
        timings["assignments_per_s"] = round(sum(r["offers"] for r in per_round) / sum(r["seconds"] for r in per_round), 1)
        timings["decide_ms_per_batch_p50"] = round(percentile(router.stats.decide_seconds, 50) * 1000, 2)
        timings["skipped"] = router.stats.skipped
        timings["phases_s"] = {k: round(v, 3) for k, v in router.stats.phases.items()}
    finally:
        gc.unfreeze()  # the router froze the heap after its rebuild (as `hotline router` does)
        closer()
        if url:
            from tests.conftest import drop_pg_database

            drop_pg_database(url)
    return timings


def print_report(decisions: dict[str, Any], e2e: dict[str, Any] | None) -> None:
    f = decisions["agent_becomes_free"]
    print(f"decision latency, {decisions['agents']} agents, 20 skills, {decisions['contacts_waiting']} waiting contacts:")
    print(
        f"  agent becomes free: p50 {f['p50_ms']:.3f} ms  p99 {f['p99_ms']:.3f} ms  max {f['max_ms']:.3f} ms  "
        f"({f['decisions_per_s']:.0f} decisions/s, {f['decisions']} decisions)"
    )
    c = decisions["contact_arrives"]
    print(f"  contact arrives:    p50 {c['p50_ms']:.3f} ms  p99 {c['p99_ms']:.3f} ms  max {c['max_ms']:.3f} ms")
    if e2e:
        print(
            f"end to end on {e2e['store']}: {e2e['assignments_per_s']} assignments/s "
            f"(offers persisted, batches of {e2e['batch']}); rounds {e2e['rounds']}"
        )
        print(
            f"  set-up: {e2e['agents']} logins {e2e['login_s']:.1f} s, "
            f"{e2e['contacts_waiting']} arrivals {e2e['arrivals_s']:.1f} s; "
            f"router rebuild from {e2e['events_read_at_rebuild']} events {e2e['router_rebuild_s']:.2f} s; "
            f"skipped {e2e['skipped']}"
        )
        print(f"  router time by phase (s, all rounds): {e2e['phases_s']}")


def test_bench_routing() -> None:
    """pytest entry point (tests/bench is not part of the default run): smaller sizes."""
    import socket

    decisions = bench_decisions(agents=1000, contacts=10_000, rounds=1000)
    assert decisions["agent_becomes_free"]["decisions"] > 900
    try:
        socket.create_connection(("127.0.0.1", 55432), timeout=1).close()
        store = "postgres"
    except OSError:
        store = "sqlite"
    e2e = bench_end_to_end(store=store, agents=300, contacts=2000, rounds=2)
    print_report(decisions, e2e)
    assert e2e["rounds"][0]["offers"] > 250


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--store", choices=["postgres", "sqlite", "memory", "none"], default="postgres")
    parser.add_argument("--agents", type=int, default=1000)
    parser.add_argument("--contacts", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--batch", type=int, default=200)
    args = parser.parse_args()
    decisions = bench_decisions(agents=args.agents, contacts=args.contacts, rounds=args.agents)
    e2e = None if args.store == "none" else bench_end_to_end(args.store, args.agents, args.contacts, args.rounds, args.batch)
    print_report(decisions, e2e)


if __name__ == "__main__":
    main()
