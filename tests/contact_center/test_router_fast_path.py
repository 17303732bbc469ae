"""The router's fast path keeps its guarantees.

The router keeps the Contact and Agent aggregates it writes to (fed from the log it reads
anyway), takes its own events into its view without decoding them back, and a
reservation is one agent event that carries the state it leads to. These tests check that
what it keeps equals what the store holds, that a stale kept aggregate can never win
(the commit conflicts and the decision is re-checked on fresh state), that its view
after the fast read-back equals a view rebuilt from the log, and that the read models
still see every change of an agent's state.
"""

from __future__ import annotations

import itertools
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from consumers.router import Router, own_envelope
from domain.base import aggregate_state
from domain.contact_center import commands as cc
from domain.contact_center.agents import agent_uuid
from domain.contact_center.routing import AgentView, RoutingView
from domain.contact_center.rules import QueueRules
from domain.envelope import Envelope, envelope_of
from infra.read_store import ReadStore, make_engine
from projections import agent_desk, wallboard
from tests.contact_center.harness import Center
from tests.contact_center.routing_oracle import idle_matches, indexed


def _busy_day(center: Center) -> list[str]:
    """Arrivals (some asking for a skill), offers, declines, answers, transfers, wrap-ups,
    presence changes."""
    center.queue("q", wrap_seconds=5, offer_timeout_seconds=10)
    center.queue("chat", media="chat")
    for a in ("A", "B", "C"):
        center.login(a, ["q", "chat"], capacity={"chat": 2}, skills={"tax": 2} if a == "B" else {})
    contacts = [center.arrive("q") for _ in range(4)] + [center.arrive("chat", channel="chat") for _ in range(3)]
    contacts += [center.arrive("q", skill="tax"), center.arrive("chat", channel="chat", skill="tax")]
    center.route()
    offers = center.offers()
    first, agent = sorted(offers.items())[0]
    center.as_agent(agent, cc.Decline(contact_id=first, agent_id=agent))
    center.route()
    for cid, a in sorted(center.offers().items()):
        center.answer(cid, a)
    center.tick(12)  # offers of the declined one time out or get answered
    live = [cid for cid, c in center.router.view.contacts.items() if c.status == "connected" and c.media == "voice"]
    if live:
        holder = center.router.view.contacts[live[0]].agent_id
        assert holder is not None
        center.as_agent(holder, cc.Transfer(contact_id=live[0], agent_id=holder, to_queue_id="q"))
    center.presence("C", "not_ready", "break")
    center.route()
    for cid in live[1:]:
        holder = center.router.view.contacts[cid].agent_id
        if holder:
            center.end(cid, holder)
    center.tick(6)
    center.presence("C", "available")
    center.route()
    return contacts


def _kept_matches_store(router: Router, center: Center) -> int:
    checked = 0
    for aggregate_id, kept in router.loader.cache.items():
        stored: Any = center.store.repository.get(aggregate_id)
        mine = aggregate_state(kept)
        theirs = aggregate_state(stored)
        assert mine == theirs, f"kept {type(kept).__name__} {aggregate_id} differs from the store"
        checked += 1
    return checked


def _view_state(view: RoutingView, now: float) -> dict[str, Any]:
    return {
        "contacts": {
            cid: (c.status, c.queue_id, c.offered_to, c.offer_kind, c.agent_id, c.virtual, c.since, c.skill)
            for cid, c in view.contacts.items()
        },
        "agents": {
            aid: (a.presence, a.state, dict(a.offers), dict(a.active), dict(a.wrapping), a.idle_since) for aid, a in view.agents.items()
        },
        "position": view.position,
        "skill_pools": {q: sorted(skills) for q, skills in view.skill_pools.items()},
        "indexed": indexed(view, now),  # where every waiting contact and free agent is found
    }


def test_own_envelopes_equal_the_published_ones(center: Center) -> None:
    _busy_day(center)
    notifications = center.store.notifications(0, 100_000)
    assert len(notifications) > 60
    kinds = set()
    for n in notifications:
        event = center.store.mapper.to_domain_event(n)
        assert own_envelope(event, n.id) == envelope_of(event, n.id)
        kinds.add(type(event).__qualname__)
    assert {"Contact.Offered", "Agent.Reserved", "Contact.Transferred", "Agent.ContactFinished"} <= kinds


def test_kept_aggregates_equal_the_store_and_the_view_equals_a_rebuild(center: Center) -> None:
    _busy_day(center)
    center.router.catch_up()
    assert _kept_matches_store(center.router, center) >= 3 + 5  # agents and live contacts
    assert center.router._own == {}
    assert center.router.view.position == center.store.max_position()
    now = center.clock.now().timestamp()
    assert idle_matches(center.router.view, now) == []  # nobody free beside a contact they could take
    fresh = Router(center.store, center.bus, name="restarted")
    fresh.rebuild()
    assert _view_state(fresh.view, now) == _view_state(center.router.view, now)
    assert _kept_matches_store(fresh, center) == len(center.router.loader.cache)


def test_a_reservation_is_one_agent_event_carrying_the_state(center: Center, tmp_path: Path) -> None:
    center.queue("q")
    center.login("A", ["q"])
    before = center.store.max_position()
    cid = center.arrive("q")
    center.route()
    written = [e for e in center.store.envelopes(before, 1000)]
    assert [e.type for e in written if e.meta["actor_id"] == "router"] == [
        "hotline.contact.offered.v1",
        "hotline.agent.reserved.v1",
    ]
    reserved = written[-1]
    assert reserved.data["contact_id"] == cid
    assert (reserved.data["state"], reserved.data["previous"]) == ("reserved", "available")
    assert center.store.repository.get(agent_uuid("A")).state == "reserved"  # replayed from the events
    assert center.agent_state("A") == "reserved"
    rs = ReadStore(make_engine(f"sqlite:///{tmp_path / 'rm.sqlite'}"), [wallboard.projection, agent_desk.projection])
    rs.create_tables()
    rs.apply(center.envelopes())
    with rs.engine.connect() as conn:
        assert wallboard.wallboard(conn, center.clock.now())["agents_by_state"] == {"reserved": 1}
    center.tick(3)
    center.answer(cid, "A")
    center.route()
    assert center.agent_state("A") == "on_contact"


def test_a_second_chat_keeps_the_agent_on_contact(center: Center) -> None:
    center.queue("chat", media="chat")
    center.login("A", ["chat"], capacity={"chat": 2})
    first = center.arrive("chat", channel="chat")
    center.route()
    center.answer(first, "A")
    second = center.arrive("chat", channel="chat")
    center.route()
    assert center.offered_to(second) == "A"
    reserved = [e for e in center.envelopes() if e.type == "hotline.agent.reserved.v1"][-1]
    assert (reserved.data["state"], reserved.data["previous"]) == ("on_contact", "on_contact")
    assert center.store.repository.get(agent_uuid("A")).derived_state() == "on_contact"


def test_agent_states_in_analytics_include_reservations(center: Center, tmp_path: Path) -> None:
    from analytics.ingest import AnalyticsStore

    center.queue("q")
    center.login("A", ["q"])
    cid = center.arrive("q")
    center.route()
    center.tick(4)
    center.answer(cid, "A")
    center.tick(60)
    center.end(cid, "A")
    store = AnalyticsStore(tmp_path / "a.duckdb")
    try:
        store.ingest_envelopes(center.envelopes())
        rows = store.conn.execute(
            "SELECT state, seconds FROM agent_states WHERE agent_id = ? ORDER BY started_at, state", [str(agent_uuid("A"))]
        ).fetchall()
    finally:
        store.close()
    states = [s for s, _ in rows]
    assert "reserved" in states and states.index("reserved") < states.index("on_contact")
    assert dict(rows)["reserved"] == 4.0  # offered at 0 s, answered at 4 s


def test_a_stale_kept_aggregate_never_wins(center: Center) -> None:
    center.queue("q")
    center.login("A", ["q"])
    cid = center.arrive("q")
    router = center.router
    router.catch_up()
    assert agent_uuid("A") in router.loader.cache
    # The agent goes on break; the router has not read it yet and still thinks A is free.
    center.presence("A", "not_ready", "break")
    decisions = router.view.decide(center.clock.now())
    assert [(d.contact_id, d.agent_id) for d in decisions] == [(cid, "A")]
    router._write(decisions)
    assert router.stats.offered == 0 and router.stats.skipped == 1
    assert not [e for e in center.envelopes() if e.type in ("hotline.contact.offered.v1", "hotline.agent.reserved.v1")]
    assert router.view.agents["A"].presence == "not_ready"
    assert agent_uuid("A") not in router.loader.cache  # the copy the failed attempt changed is gone
    _kept_matches_store(router, center)  # and what it still keeps is what the store holds
    center.presence("A", "available")
    center.route()
    assert center.offered_to(cid) == "A"


def test_read_back_when_another_write_lands_before_the_routers(center: Center) -> None:
    center.queue("q")
    center.login("A", ["q"])
    first = center.arrive("q")
    router = center.router
    router.catch_up()
    decisions = router.view.decide(center.clock.now())
    second = center.arrive("q")  # written after the router's catch-up, before its commit
    router._write(decisions)
    assert router._own == {}
    assert router.view.position == center.store.max_position()
    assert router.view.contacts[first].offered_to == "A"
    assert router.view.contacts[second].status == "queued"
    fresh = Router(center.store, center.bus)
    fresh.rebuild()
    now = center.clock.now().timestamp()
    assert _view_state(fresh.view, now) == _view_state(router.view, now)


def test_buckets_without_agents_do_not_hide_a_contact_that_can_be_served() -> None:
    view = RoutingView()
    rules = QueueRules("q", required_skills={"tax": 3}, relaxation=[[60, 1]])
    at = 1_000_000.0
    feed = itertools.count(1)

    def env(type_: str, stream: str, aggregate_id: str, t: float, **data: Any) -> Envelope:
        when = datetime.fromtimestamp(t, UTC)
        return Envelope(f"hotline.{stream}.{type_}.v1", stream, aggregate_id, 1, next(feed), when, data, {})

    view.apply(env("defined", "queue", "q", at, queue_id="q", names={}, config=rules.as_config()))
    view.apply(env("logged_in", "agent", "A", at, agent_id="A", skills={"tax": 2}, languages=["it"], queues=["q"],
                   departments=[], capacity={"voice": 1}))  # fmt: skip
    view.apply(env("state_changed", "agent", "A", at, agent_id="A", state="available", presence="available", reason=None))
    old, young = "00000000-0000-0000-0000-000000000001", "00000000-0000-0000-0000-000000000002"
    for cid, since, priority in ((old, at, 0), (young, at + 50, 5)):
        view.apply(env("arrived", "contact", cid, since, queue_id="q", media="voice", language="it", priority=priority,
                       direction="inbound", channel="phone"))  # fmt: skip
        when = datetime.fromtimestamp(since, UTC).isoformat()
        view.apply(env("queued", "contact", cid, since, queue_id="q", priority=priority, since=when, reason="arrival"))
    # At +61 s the young, urgent contact ranks first but still needs skill 3; the old one
    # has been relaxed to 2: the bucket found empty for the first must not stop the second.
    decisions = view.decide(at + 61)
    assert [(d.contact_id, d.agent_id) for d in decisions] == [(old, "A")]


def test_can_take_agrees_with_counting_the_load() -> None:
    def reference(a: AgentView, media: str) -> bool:
        if a.presence != "available":
            return False
        load = a.load()
        if load.get("voice"):
            return False
        if media == "voice" and load:
            return False
        return load.get(media, 0) < a.capacity.get(media, 0)

    media = ("voice", "chat", "email")
    for presence in ("available", "not_ready"):
        for desk in itertools.product((None, *media), repeat=4):
            a = AgentView("A", presence=presence, capacity={"voice": 1, "chat": 2, "email": 3})
            slots = (a.offers, a.active, a.pending)
            for i, m in enumerate(desk[:3]):
                if m:
                    slots[i][f"c{i}"] = m
            if desk[3]:
                a.wrapping["w"] = (desk[3], 0.0)
            for m in media:
                assert a.can_take(m) == reference(a, m), (presence, desk, m)
