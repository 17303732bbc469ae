"""The router's fast path on a real PostgreSQL: events inserted in binary read back equal,
a routing burst assigns each contact and each voice agent at most once, and what the
router keeps (its view and its aggregates) equals a rebuild from the store."""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from consumers.router import Router, own_envelope
from domain.base import Actor, Context, FixedClock, aggregate_state
from domain.contact_center import commands as cc
from domain.contact_center.contacts import Contact
from domain.envelope import envelope_of
from infra.runtime import Hotline
from infra.settings import Settings
from tests.conftest import create_pg_database, drop_pg_database

pytestmark = pytest.mark.postgres
T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
SUP, PBX = Actor("sup", "supervisor"), Actor("pbx", "system")


@pytest.fixture
def cc_hotline(tmp_path: Path) -> Iterator[Hotline]:
    url = create_pg_database("t_cc_fastpath")
    hotline = Hotline.start(Settings(data_dir=tmp_path, database_url=url, inprocess_projections=False), FixedClock(T0))
    try:
        yield hotline
    finally:
        hotline.close()
        drop_pg_database(url)


def test_events_appended_in_one_round_trip_read_back_equal(cc_hotline: Hotline) -> None:
    from infra.pg_recorder import HotlinePostgresRecorder

    assert isinstance(cc_hotline.store.recorder, HotlinePostgresRecorder)
    ctx = Context(PBX, T0)
    contact = Contact.arrive(
        channel="phone",
        queue_id="q",
        language="ar",
        priority=2,
        personal={"phone": "+390612345678", "name": 'محمد 李雷 O\'Brien \\ "quoted" \x01'},
        direction="inbound",
        citizen_id=None,
        external_id=f"chan-{uuid.uuid4()}",
        subject="垃圾 — rifiuti",
        ctx=ctx,
    )
    contact.enqueue("q", ctx)
    recordings = cc_hotline.store.save(contact)
    loaded: Any = cc_hotline.store.repository.get(contact.id)
    assert (loaded.personal, loaded.subject, loaded.since, loaded.version) == (contact.personal, contact.subject, T0, 2)
    for r in recordings:
        (n,) = cc_hotline.store.notifications(r.notification.id - 1, 1)
        stored = cc_hotline.store.mapper.to_domain_event(n)
        assert own_envelope(stored, n.id) == envelope_of(r.domain_event, r.notification.id)


def test_a_burst_assigns_each_contact_and_agent_once_and_a_restart_sees_the_same(cc_hotline: Hotline) -> None:
    bus, store = cc_hotline.bus, cc_hotline.store
    for q in ("q1", "q2"):
        bus.execute(cc.DefineQueue(queue_id=q, offer_timeout_seconds=600), SUP)
    agents = [f"a{i:02d}" for i in range(30)]
    with ThreadPoolExecutor(8) as pool:
        list(
            pool.map(
                lambda a: bus.execute(cc.LoginAgent(agent_id=a, queues=["q1", "q2"]), Actor(a, "agent")),
                agents,
            )
        )
        contacts = list(
            pool.map(
                lambda i: bus.execute(cc.ContactArrives(channel="phone", queue_id=f"q{1 + i % 2}"), PBX).result["id"],
                range(80),
            )
        )
    router = Router(store, bus, batch=7)  # several batches: the kept aggregates are reused
    router.rebuild()
    router.run_until_idle()
    assert router.stats.offered == 30 and router.stats.batches >= 4
    # Half decline: their contacts go back; the router, fed from the log, routes again.
    declined = sorted((cid, c.offered_to) for cid, c in router.view.contacts.items() if c.offered_to)[:15]
    for cid, agent in declined:
        bus.execute(cc.Decline(contact_id=cid, agent_id=agent), Actor(agent, "agent"))
    router.run_until_idle()
    assert router.stats.offered == 45

    offers: Counter[str] = Counter()
    holding: dict[str, str | None] = {}
    for e in store.iter_envelopes():
        if e.type == "hotline.contact.offered.v1":
            offers[e.aggregate_id] += 1
        elif e.type == "hotline.agent.reserved.v1":
            assert holding.get(e.data["agent_id"]) is None, f"{e.data['agent_id']} reserved twice"
            assert e.data["state"] == "reserved"
            holding[e.data["agent_id"]] = e.data["contact_id"]
        elif e.type == "hotline.agent.offer_lost.v1":
            holding[e.data["agent_id"]] = None
    assert set(offers) <= set(contacts)
    assert max(offers.values()) <= 2 and sum(offers.values()) == 45
    assert sum(1 for c in router.view.contacts.values() if c.offered_to) == 30

    fresh = Router(store, bus, name="after-restart")
    fresh.rebuild()
    for cid, c in router.view.contacts.items():
        f = fresh.view.contacts[cid]
        assert (f.status, f.offered_to, f.queue_id, f.since) == (c.status, c.offered_to, c.queue_id, c.since)
    for aid, a in router.view.agents.items():
        f_agent = fresh.view.agents[aid]
        assert (f_agent.state, f_agent.presence, f_agent.offers) == (a.state, a.presence, a.offers)
    for aggregate_id, kept in router.loader.cache.items():
        stored: Any = store.repository.get(aggregate_id)
        assert kept.version == stored.version and aggregate_state(kept) == aggregate_state(stored)
