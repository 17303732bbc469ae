"""Late in December, next year's holiday list may not be published yet (China's State
Council notice usually comes in November, sometimes later). A request whose deadline is
still in this year is registered; its reminders and escalation, which fall in January,
are planned by calendar days; a deadline that itself falls in the unknown year is refused
with a clear error (not silently counted as working days)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from domain.base import FixedClock, InvalidCommand
from infra.settings import Settings
from tests.sla.conftest import register, request_events, start


def test_reminders_in_an_unpublished_year_do_not_block_intake(tmp_path: Path) -> None:
    at = datetime(2026, 12, 24, 2, 0, tzinfo=UTC)  # Thursday 10:00 in Shanghai
    h = start(Settings(data_dir=tmp_path, jurisdiction="shanghai"), FixedClock(at))
    try:
        r = register(h, problem_code="pothole", urgency="normal")  # due within 2026; follow-ups reach 2027
        due = datetime.fromisoformat(r["due_at"])
        assert due.year == 2026
        timers = [e for e in request_events(h, r["id"]) if e.name == "timers_scheduled"]
        planned = {t["kind"]: datetime.fromisoformat(t["at"]) for e in timers for t in e.data["timers"]}
        follow_ups = [t for k, t in planned.items() if k in ("reminder", "escalation")]
        assert any(t.year == 2027 for t in follow_ups)
        assert all(t <= due + timedelta(days=30) for t in follow_ups)

        h.clock.current = datetime(2026, 12, 30, 2, 0, tzinfo=UTC)  # type: ignore[attr-defined]
        with pytest.raises(InvalidCommand) as refused:
            # 72 working hours from 30 December: the deadline itself is in 2027
            collected = {"appliance_type": "fridge", "pickup_address": "Via Roma 10"}
            register(h, problem_code="appliance-removal", urgency="normal", collected=collected)
        assert refused.value.code == "holiday_list_missing" and "2027" in refused.value.message
    finally:
        h.close()
