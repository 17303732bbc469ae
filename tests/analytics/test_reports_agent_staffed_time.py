"""The agents report's "Time signed in" and occupancy, with agent events as the Agent
aggregate publishes them: its stream id is a UUID derived from the agent's id
(``agent_uuid``), and every event names the agent by that id (``agent_id``), which is
also what a contact's events call the agent who answered."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from analytics import schema
from analytics.ingest import AnalyticsStore
from analytics.reports import Reports
from domain.contact_center.agents import agent_uuid
from domain.envelope import Envelope
from tests.analytics.traffic import Traffic

T0 = datetime(2026, 11, 24, 8, 0, tzinfo=UTC)
WINDOW = (T0 - timedelta(hours=8), T0 + timedelta(hours=16))


def agent_event(t: Traffic, when: datetime, code: str, name: str, **data: object) -> None:
    t.emit(when, "agent", name, str(agent_uuid(code)), agent_id=code, **data)


def traffic() -> list[Envelope]:
    t = Traffic()
    # anna: 8 h signed in with a 30-minute break; marco: 4 h.
    agent_event(t, T0, "agent-anna", "logged_in", skills={}, languages=["it"], departments=[], capacity={})
    agent_event(t, T0, "agent-anna", "state_changed", state="available", reason=None)
    agent_event(t, T0 + timedelta(hours=3), "agent-anna", "state_changed", state="not_ready", reason="break")
    agent_event(t, T0 + timedelta(hours=3, minutes=30), "agent-anna", "state_changed", state="available", reason=None)
    agent_event(t, T0 + timedelta(hours=8), "agent-anna", "state_changed", state="logged_out", reason=None)
    agent_event(t, T0 + timedelta(hours=8), "agent-anna", "logged_out", forced_by=None)
    agent_event(t, T0 + timedelta(hours=1), "agent-marco", "logged_in", skills={}, languages=["it"], departments=[], capacity={})
    agent_event(t, T0 + timedelta(hours=1), "agent-marco", "state_changed", state="available", reason=None)
    agent_event(t, T0 + timedelta(hours=5), "agent-marco", "state_changed", state="logged_out", reason=None)
    agent_event(t, T0 + timedelta(hours=5), "agent-marco", "logged_out", forced_by=None)
    for i, (code, minute) in enumerate([("agent-anna", 70), ("agent-anna", 130), ("agent-marco", 90)]):
        cid = f"contact-{i}"
        start = T0 + timedelta(minutes=minute)
        t.emit(start, "contact", "arrived", cid, channel="phone", queue_id="q", language="it", direction="inbound")
        t.emit(start, "contact", "queued", cid, queue_id="q", priority=1)
        t.emit(start + timedelta(seconds=12), "contact", "answered", cid, agent_id=code, queue_id="q", wait_seconds=12.0)
        t.emit(start + timedelta(seconds=312), "contact", "ended", cid, agent_id=code, talk_seconds=300.0, hold_seconds=0.0)
        t.emit(start + timedelta(seconds=372), "contact", "wrapped_up", cid, agent_id=code, wrap_seconds=60.0, disposition="answered")
    return t.finish()


STAFFED = {"agent-anna": 7.5 * 3600, "agent-marco": 4 * 3600}
HANDLED = {"agent-anna": 2 * 360.0, "agent-marco": 360.0}


def check(reports: Reports) -> None:
    got = {r["agent_id"]: r for r in reports.run("agents", *WINDOW).records()}
    assert set(got) == set(STAFFED)
    for code, staffed in STAFFED.items():
        assert got[code]["staffed_seconds"] == pytest.approx(staffed), code
        assert got[code]["occupancy"] == pytest.approx(HANDLED[code] / staffed), code


def test_agents_report_shows_time_signed_in_and_occupancy(tmp_path: Path) -> None:
    store = AnalyticsStore(tmp_path / "a.duckdb")
    store.ingest_envelopes(traffic())
    states = store.conn.execute("SELECT DISTINCT agent_id, agent_code FROM agent_states ORDER BY agent_code").fetchall()
    assert states == [(str(agent_uuid("agent-anna")), "agent-anna"), (str(agent_uuid("agent-marco")), "agent-marco")]
    store.publish_snapshot(force=True)
    store.close()
    check(Reports(tmp_path / "a.duckdb"))


def test_an_analytics_file_of_version_4_gets_the_agents_code(tmp_path: Path) -> None:
    path = tmp_path / "a.duckdb"
    store = AnalyticsStore(path)
    store.ingest_envelopes(traffic())
    # Back to version 4: agent events without the agent's code.
    store.conn.execute("DROP VIEW agent_states; ALTER TABLE agent_events DROP COLUMN agent_code")
    store.conn.execute("UPDATE schema_info SET value = '4' WHERE key = 'schema_version'")
    store.conn.close()
    again = AnalyticsStore(path)
    assert schema.stored_schema_version(again.conn) == schema.SCHEMA_VERSION
    again.publish_snapshot(force=True)
    again.close()
    check(Reports(path))
