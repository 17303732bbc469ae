"""Agent state intervals: state_changed events, and reservations that carry their state."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from analytics import kpis
from analytics.ingest import AnalyticsStore
from domain.envelope import Envelope

T0 = datetime(2025, 2, 3, 8, 0, tzinfo=UTC)
META = {"actor_id": "router", "actor_role": "system"}


def _agent(version: int, minutes: float, name: str, **data: object) -> Envelope:
    return Envelope(f"hotline.agent.{name}.v1", "agent", "agent-7", version, version, T0 + timedelta(minutes=minutes), data, META)


def test_reservations_that_carry_the_state_start_an_interval(tmp_path: Path) -> None:
    events = [
        _agent(1, 0, "logged_in", skills={}, languages=[], departments=[], queues=["q"], capacity={}),
        _agent(2, 0, "state_changed", state="available", previous="logged_out", presence="available", reason=None),
        # Today's reservation: one event that carries the new state.
        _agent(3, 10, "reserved", contact_id="c-1", queue_id="q", media="voice", state="reserved", previous="available"),
        _agent(4, 10.5, "state_changed", state="on_contact", previous="reserved", presence="available", reason=None),
        _agent(5, 20, "state_changed", state="available", previous="on_contact", presence="available", reason=None),
        # A reservation recorded before they carried it: the state_changed after it counts.
        _agent(6, 30, "reserved", contact_id="c-2", queue_id="q", media="voice"),
        _agent(7, 30, "state_changed", state="reserved", previous="available", presence="available", reason=None),
        _agent(8, 31, "state_changed", state="break", previous="reserved", presence="not_ready", reason="break"),
        _agent(9, 40, "logged_out", forced_by=None),
    ]
    store = AnalyticsStore(tmp_path / "a.duckdb")
    store.ingest_envelopes(events)
    rows = store.conn.execute("SELECT state, seconds, staffed, busy FROM agent_states ORDER BY started_at, state").fetchall()
    assert rows == [
        ("available", 0.0, True, False),  # logged_in, then the state_changed at the same moment
        ("available", 600.0, True, False),
        ("reserved", 30.0, True, True),
        ("on_contact", 570.0, True, False),
        ("available", 600.0, True, False),
        ("reserved", 60.0, True, True),
        ("break", 540.0, False, False),
        ("logged_out", 0.0, False, False),
    ]
    staffed = kpis.staffed_time(store.conn, T0, T0 + timedelta(hours=1))[0]["staffed_seconds"]
    assert staffed == 31 * 60
    store.close()
