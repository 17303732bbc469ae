"""The simulator's summary and the service-level report count the same way: a contact is
counted once, under the queue it arrived in, even when another queue answered it after an
overflow; service level over answered contacts, and over answered plus abandoned after the
short-abandon time; ASA over answered contacts."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from analytics import kpis
from analytics.ingest import AnalyticsStore
from telephony_adapter.simulator import SimConfig, Simulator
from tests.contact_center.harness import START, Center


@pytest.mark.slow
def test_simulator_summary_equals_the_service_level_report(tmp_path: Path) -> None:
    center = Center()
    try:
        config = SimConfig.default_day(hours=1.5, agents=12, seed=7)
        config.start = START.replace(hour=10)  # the peak: queues fill, environment overflows
        for q in config.queues:
            if q.queue_id == "environment":
                q.config["max_wait_seconds"] = 20
        report = Simulator(center.store, center.bus, center.clock, config, router=center.router).run()
        events = center.store.envelopes(0, 1_000_000)
    finally:
        center.close()
    assert report.queues["environment"].get("overflowed_queue", 0) > 0, "the scenario has overflows"

    analytics = AnalyticsStore(tmp_path / "a.duckdb")
    analytics.ingest_envelopes(events)
    rows = {r["bucket"]: r for r in kpis.contact_kpis(analytics.conn, config.start, config.start + timedelta(days=1), "queue")}
    analytics.close()
    for queue_id, sim in report.queues.items():
        got = rows[queue_id]
        assert (sim["answered"], sim["abandoned"]) == (got["answered"], got["abandoned"]), queue_id
        threshold = sim["sl_threshold_seconds"]
        if threshold == kpis.KpiParams().sl_threshold_seconds:  # the report's threshold (chat's is 60 s)
            assert sim["service_level"] == pytest.approx(got["service_level"], abs=1e-4), queue_id
            assert sim["service_level_offered"] == pytest.approx(got["service_level_offered"], abs=1e-4), queue_id
        assert sim["asa_seconds"] == pytest.approx(got["asa_seconds"], abs=0.01), queue_id


def test_the_simulated_menu_asks_for_skills_and_only_skilled_agents_answer_them() -> None:
    """``QueueSpec.menu_skills``: about that share of callers ask for the skill, and every
    such call that is answered before the queue drops the skill goes to an agent with it."""
    center = Center()
    try:
        config = SimConfig.default_day(hours=1.0, agents=12, seed=11)
        config.start = START.replace(hour=10)
        config.queues = [q for q in config.queues if q.queue_id == "general"]
        Simulator(center.store, center.bus, center.clock, config, router=center.router).run()
        events = center.store.envelopes(0, 1_000_000)
    finally:
        center.close()
    skills_of = {e.data["agent_id"]: e.data["skills"] for e in events if e.name == "logged_in"}
    asked = {e.aggregate_id: e.data["skill"] for e in events if e.name == "arrived"}
    shares = {s: sum(1 for a in asked.values() if a == s) / len(asked) for s in ("roads", "waste")}
    assert len(asked) > 50
    assert 0.05 < shares["roads"] < 0.3 and 0.02 < shares["waste"] < 0.25, shares
    answered = [(e.aggregate_id, e.data["agent_id"]) for e in events if e.name == "answered"]
    with_skill = [(cid, agent) for cid, agent in answered if asked.get(cid)]
    assert with_skill, "some calls that asked for a skill were answered"
    for cid, agent in with_skill:  # the general queue never relaxes: the skill holds
        assert skills_of[agent].get(asked[cid], 0) >= 1, (cid, agent, asked[cid])
