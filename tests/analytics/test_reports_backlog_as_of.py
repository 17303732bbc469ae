"""The backlog is as of now (the business clock's) when the window reaches into the
future, as the default window does: it ends at the next local midnight."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from analytics.reports import Reports
from domain.base import FixedClock
from domain.envelope import Envelope
from tests.analytics.traffic import Traffic, published

NOW = datetime(2026, 12, 2, 7, 44, tzinfo=UTC)  # 08:44 in Rome
# (registered, due): three past due now, two more by midnight; the oldest 5 days old now.
REQUESTS = [
    (NOW - timedelta(days=5), NOW - timedelta(days=3)),
    (NOW - timedelta(days=3), NOW - timedelta(days=1)),
    (NOW - timedelta(days=2), NOW - timedelta(hours=1)),
    (NOW - timedelta(days=1), NOW + timedelta(hours=2)),
    (NOW - timedelta(hours=5), NOW + timedelta(hours=10)),
    (NOW - timedelta(hours=1), NOW + timedelta(days=3)),
]


def traffic() -> list[Envelope]:
    t = Traffic()
    for i, (registered, due) in enumerate(REQUESTS):
        t.emit(registered, "request", "registered", f"r-{i}", kind="action", subtype="complaint", channel="phone",
               urgency="normal", language="it", due_at=due.isoformat())  # fmt: skip
    return t.finish()


@pytest.fixture(scope="module")
def db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return published(tmp_path_factory.mktemp("backlog") / "a.duckdb", traffic())


def test_the_default_backlog_is_as_of_now(db: Path) -> None:
    result = Reports(db, time_zone="Europe/Rome", clock=FixedClock(NOW)).run("backlog", by="total")
    assert result.params["to"] == datetime(2026, 12, 3, tzinfo=ZoneInfo("Europe/Rome"))  # the window: whole local days
    assert result.params["as_of"] == NOW and result.params["as_of"].tzinfo == ZoneInfo("Europe/Rome")
    assert "as of 2026-12-02 08:44" in result.title
    (row,) = result.records()
    assert (row["open_requests"], row["past_due"]) == (6, 3)
    assert row["oldest_days"] == pytest.approx(5.0)


def test_a_window_ending_in_the_past_is_as_of_its_end(db: Path) -> None:
    end = NOW - timedelta(days=2, hours=12)
    result = Reports(db, clock=FixedClock(NOW)).run("backlog", NOW - timedelta(days=9), end, "total")
    assert result.params["as_of"] == end
    (row,) = result.records()
    # Registered by then: the first two; past due by then: the first.
    assert (row["open_requests"], row["past_due"], row["oldest_days"]) == (2, 1, pytest.approx(2.5))
