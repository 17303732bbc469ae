"""Reports count the hotline's local days (``Settings.time_zone``), not UTC ones.

A few contacts placed around Rome's DST changes: a local day starts at local midnight, the
day the clocks go back has 25 hours and the one they go forward 23, the hour repeated at
the change makes two hourly buckets, and the heat map's hours are the local ones.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from fastapi.testclient import TestClient

from analytics import kpis
from analytics.reports import Reports, connect_reader, render
from domain.base import FixedClock
from domain.envelope import Envelope
from tests.analytics.conftest import reports_client, settings_over
from tests.analytics.traffic import Traffic, published

ROME = ZoneInfo("Europe/Rome")
ANALYST = {"X-Actor-Id": "ana", "X-Actor-Role": "analyst"}


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


# Rome's clocks go back on 2026-10-25 at 01:00 UTC (03:00 CEST → 02:00 CET) and forward
# on 2026-03-29 at 01:00 UTC (02:00 CET → 03:00 CEST).
CALLS = {
    "2026-10-24T21:30": date(2026, 10, 24),  # 23:30 CEST
    "2026-10-24T22:30": date(2026, 10, 25),  # 00:30 CEST: the UTC day before
    "2026-10-25T00:30": date(2026, 10, 25),  # 02:30 CEST
    "2026-10-25T01:30": date(2026, 10, 25),  # 02:30 CET: the same local hour again
    "2026-10-25T22:30": date(2026, 10, 25),  # 23:30 CET
    "2026-10-25T23:30": date(2026, 10, 26),  # 00:30 CET: the UTC day before
    "2026-10-31T23:30": date(2026, 11, 1),  # 00:30 CET on 1 November: November's
}


def _call(t: Traffic, cid: str, arrived: datetime, agent: str = "agent-1") -> None:
    t.emit(arrived, "contact", "arrived", cid, channel="phone", queue_id="q-general", language="it", direction="inbound")
    t.emit(arrived + timedelta(seconds=5), "contact", "queued", cid, queue_id="q-general", priority=1)
    t.emit(arrived + timedelta(seconds=15), "contact", "answered", cid, agent_id=agent, queue_id="q-general", wait_seconds=10.0)
    t.emit(arrived + timedelta(seconds=75), "contact", "ended", cid, agent_id=agent, talk_seconds=60.0, hold_seconds=0.0)


def _shift(t: Traffic, agent: str, start: datetime, end: datetime) -> None:
    t.emit(start, "agent", "logged_in", agent, state="available")
    t.emit(end, "agent", "logged_out", agent, reason=None)


def dst_traffic() -> list[Envelope]:
    t = Traffic()
    for i, when in enumerate(CALLS):
        _call(t, f"c-{i}", at(when))
    # Signed in from 22:00 CEST on 24 October to 01:00 CET on 26 October, and over the
    # whole of 29 March (a 23-hour day).
    _shift(t, "agent-1", at("2026-10-24T20:00"), at("2026-10-26T00:00"))
    _shift(t, "agent-2", at("2026-03-28T22:00"), at("2026-03-29T23:00"))
    return t.finish()


@pytest.fixture(scope="module")
def dst_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return published(tmp_path_factory.mktemp("dst") / "analytics.duckdb", dst_traffic())


@pytest.fixture()
def rome(dst_db: Path) -> Reports:
    return Reports(dst_db, time_zone="Europe/Rome", clock=FixedClock(at("2026-11-02T12:00")))


def test_a_day_is_a_local_calendar_day(rome: Reports) -> None:
    result = rome.run("daily", "2026-10-24", "2026-10-27", "day")
    offered = {r["bucket"]: r["offered"] for r in result.records()}
    assert offered == {date(2026, 10, 24): 1, date(2026, 10, 25): 4, date(2026, 10, 26): 1}
    # The window is whole local days: a date means local midnight.
    assert result.params["from"] == datetime(2026, 10, 24, tzinfo=ROME)
    assert result.params["from"].utcoffset() == timedelta(hours=2)
    assert result.params["to"] == datetime(2026, 10, 27, tzinfo=ROME) == at("2026-10-26T23:00")
    assert result.params["time_zone"] == "Europe/Rome"


def test_the_day_the_clocks_change_has_25_or_23_hours_of_staffing(dst_db: Path) -> None:
    conn = connect_reader(dst_db)
    try:
        autumn = {r["bucket"]: r["staffed_seconds"] for r in kpis.staffed_time(conn, "2026-10-24", "2026-10-27", "day", "Europe/Rome")}
        spring = {r["bucket"]: r["staffed_seconds"] for r in kpis.staffed_time(conn, "2026-03-29", "2026-03-30", "day", "Europe/Rome")}
        hours = kpis.contact_kpis(conn, "2026-10-25", "2026-10-26", "hour", tz="Europe/Rome")
    finally:
        conn.close()
    assert autumn == {date(2026, 10, 24): 2 * 3600, date(2026, 10, 25): 25 * 3600, date(2026, 10, 26): 3600}
    assert spring == {date(2026, 3, 29): 23 * 3600}
    # Every hour of the 25-hour day has its bucket (the agent was signed in all day).
    assert len(hours) == 25 and sum(r["staffed_seconds"] for r in hours) == 25 * 3600


def test_hours_are_absolute_and_shown_in_local_time(rome: Reports) -> None:
    rows = [r for r in rome.run("service_level", "2026-10-25", "2026-10-26", "hour").records() if r["offered"]]
    buckets = [r["bucket"] for r in rows]
    # 00:30 CEST, 02:30 CEST, 02:30 CET (the same wall-clock hour, an hour later), 23:30 CET.
    assert [b.isoformat() for b in buckets] == [
        "2026-10-25T00:00:00+02:00",
        "2026-10-25T02:00:00+02:00",
        "2026-10-25T02:00:00+01:00",
        "2026-10-25T23:00:00+01:00",
    ]
    assert all(b.tzinfo == ROME for b in buckets)


def test_weeks_and_months_are_local(rome: Reports) -> None:
    months = {r["bucket"]: r["offered"] for r in rome.run("daily", "2026-10-01", "2026-11-02", "month").records() if r["offered"]}
    assert months == {date(2026, 10, 1): 6, date(2026, 11, 1): 1}
    weeks = {r["bucket"]: r["offered"] for r in rome.run("daily", "2026-10-19", "2026-11-02", "week").records() if r["offered"]}
    # Sunday 25 October belongs to the week of Monday the 19th; 1 November (a Sunday) to the 26th's.
    assert weeks == {date(2026, 10, 19): 5, date(2026, 10, 26): 2}


def test_the_heat_map_uses_local_weekdays_and_hours(rome: Reports) -> None:
    cells = {(r["weekday"], r["hour"]): r["offered"] for r in rome.run("heatmap", "2026-10-24", "2026-11-02").records()}
    # Saturday 23:30, then Sunday 00:30, 02:30 twice and 23:30, Monday 00:30, Sunday 1 Nov 00:30.
    assert cells == {(6, 23): 1, (7, 0): 2, (7, 2): 2, (7, 23): 1, (1, 0): 1}


def test_the_default_window_is_whole_local_days_ending_with_the_latest_data(rome: Reports) -> None:
    # The latest event: 31 October 23:31 UTC, 1 November 00:31 in Rome.
    result = rome.run("service_level")  # "today": one local day
    assert (result.params["from"], result.params["to"]) == (datetime(2026, 11, 1, tzinfo=ROME), datetime(2026, 11, 2, tzinfo=ROME))
    assert [r["bucket"].isoformat() for r in result.records() if r["offered"]] == ["2026-11-01T00:00:00+01:00"]
    assert rome.run("daily").params["from"] == datetime(2026, 10, 26, tzinfo=ROME)  # seven local days
    # One bound given, the other seven local days away: across the change, 7 × 24 h + 1 h.
    before = rome.run("daily", end="2026-10-26").params
    assert (before["from"], before["to"]) == (datetime(2026, 10, 19, tzinfo=ROME), datetime(2026, 10, 26, tzinfo=ROME))
    # (Aware datetimes of one zone subtract as wall-clock times: compare in UTC.)
    assert before["to"].astimezone(UTC) - before["from"].astimezone(UTC) == timedelta(days=7, hours=1)
    after = rome.run("daily", "2026-10-19T08:00").params
    assert after["to"] == datetime(2026, 10, 26, 8, tzinfo=ROME)  # seven local days on, the same local time


def test_a_time_without_offset_is_local_and_one_with_an_offset_is_that_instant(rome: Reports) -> None:
    local = rome.run("daily", "2026-10-25T00:00", "2026-10-26T00:00", "total").records()[0]["offered"]
    instant = rome.run("daily", "2026-10-24T22:00:00+00:00", "2026-10-25T23:00:00Z", "total").records()[0]["offered"]
    assert local == instant == 4


def test_utc_is_still_available(dst_db: Path) -> None:
    utc = Reports(dst_db, time_zone="UTC")
    offered = {r["bucket"]: r["offered"] for r in utc.run("daily", "2026-10-24", "2026-10-27", "day").records() if r["offered"]}
    assert offered == {date(2026, 10, 24): 2, date(2026, 10, 25): 4}


def test_buckets_in_json_and_csv_say_their_local_date_or_offset(rome: Reports) -> None:
    days = json.loads(render(rome.run("daily", "2026-10-24", "2026-10-27", "day"), "json"))
    assert [r["bucket"] for r in days["rows"]] == ["2026-10-24", "2026-10-25", "2026-10-26"]
    assert days["params"]["from"] == "2026-10-24T00:00:00+02:00" and days["params"]["to"] == "2026-10-27T00:00:00+01:00"
    hours = render(rome.run("service_level", "2026-10-25", "2026-10-26", "hour"), "csv").decode().splitlines()
    assert hours[1].startswith("2026-10-25T00:00:00+02:00,") and hours[-1].startswith("2026-10-25T23:00:00+01:00,")
    assert any(line.startswith("2026-10-25T02:00:00+01:00,") for line in hours)


def test_kpis_in_the_time_zone_with_an_unknown_zone_refused(dst_db: Path) -> None:
    conn = connect_reader(dst_db)
    try:
        rows = kpis.contact_kpis(conn, "2026-10-25", "2026-10-26", "day", tz="Europe/Rome")
        assert [(r["bucket"], r["offered"]) for r in rows] == [(date(2026, 10, 25), 4)]
        with pytest.raises(ValueError, match="unknown time zone"):
            kpis.check_time_zone(conn, "Mars/Olympus")
    finally:
        conn.close()


# ---------------------------------------------------------------------------- over HTTP
@pytest.fixture()
def client(tmp_path: Path, dst_db: Path) -> Iterator[TestClient]:
    # The default zone: Europe/Rome.
    yield from reports_client(settings_over(tmp_path, dst_db), FixedClock(at("2026-11-02T12:00")))


def test_the_api_reports_local_days(client: TestClient) -> None:
    r = client.get("/reports/daily", params={"from": "2026-10-24", "to": "2026-10-27", "by": "day"}, headers=ANALYST)
    assert r.status_code == 200, r.text
    doc = r.json()
    assert [(row["bucket"], row["offered"]) for row in doc["rows"]] == [("2026-10-24", 1), ("2026-10-25", 4), ("2026-10-26", 1)]
    assert doc["params"]["time_zone"] == "Europe/Rome"


def test_a_days_staffing_is_its_busiest_half_hours(tmp_path: Path) -> None:
    """Erlang C assumes a steady rate: 60 calls in one morning half hour need the agents
    of that half hour, not those of 62 calls spread over 86,400 s (one agent)."""
    from analytics import erlang

    t = Traffic()
    for i in range(60):  # 10:00-10:30 local (CET) on 3 November, 75 s each
        _call(t, f"rush-{i}", at("2026-11-03T09:00") + timedelta(seconds=30 * i), agent=f"agent-{i % 8}")
    _call(t, "early", at("2026-11-03T06:10"))
    _call(t, "late", at("2026-11-03T16:40"))
    reports = Reports(published(tmp_path / "a.duckdb", t.finish()), time_zone="Europe/Rome", clock=FixedClock(at("2026-11-05T12:00")))
    halves = reports.run("staffing", "2026-11-03", "2026-11-04", "interval").records()
    [day] = reports.run("staffing", "2026-11-03", "2026-11-04", "day").records()
    peak = max(halves, key=lambda r: r["agents"])
    assert peak["bucket"] == datetime(2026, 11, 3, 10, 0, tzinfo=ROME) and peak["offered"] == 60
    assert day["bucket"] == date(2026, 11, 3) and day["offered"] == 62
    assert (day["agents"], day["scheduled_agents"]) == (peak["agents"], peak["scheduled_agents"]) and day["agents"] >= 4
    spread = erlang.agents_needed(62, 86_400, 75.0, 0.8, 20.0, 0.3)
    assert spread.agents <= 2 < day["agents"], "a day spread over 86,400 s understates its need"
    # The day's service level: each half hour staffed to its own need meets the target.
    assert day["service_level"] >= 0.8 and 0 < day["occupancy"] <= 1
