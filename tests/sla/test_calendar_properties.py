"""Properties of working-time arithmetic over random calendars and deadline policies."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from domain.base import InvalidCommand
from domain.calendars.aggregate import WEEKDAYS, BusinessCalendar, load_calendars
from domain.deadlines import compute_due
from domain.requests.sla import resume_due

CALENDARS = Path(__file__).resolve().parents[2] / "infra" / "data" / "calendars.yaml"
ZONES = ["Europe/Rome", "Asia/Shanghai", "America/New_York", "UTC", "Australia/Lord_Howe", "Asia/Kathmandu"]


@st.composite
def day_hours(draw: st.DrawFn) -> list[list[str]]:
    """0-3 non-overlapping intervals on a 15-minute grid."""
    marks = sorted(draw(st.sets(st.integers(0, 96), min_size=0, max_size=6)))
    if len(marks) % 2:
        marks = marks[:-1]
    out = []
    for a, b in zip(marks[::2], marks[1::2], strict=True):
        out.append([_hhmm(a * 15), _hhmm(b * 15)])
    return out


def _hhmm(minutes: int) -> str:
    return "24:00" if minutes == 1440 else f"{minutes // 60:02d}:{minutes % 60:02d}"


@st.composite
def calendars(draw: st.DrawFn) -> BusinessCalendar:
    hours = {day: draw(day_hours()) for day in WEEKDAYS}
    assume(any(hours.values()))
    days = st.dates(date(2025, 12, 1), date(2027, 3, 1))
    holidays = draw(st.sets(days, max_size=40))
    makeup = draw(st.sets(days, max_size=8)) - holidays
    doc: dict[str, Any] = {
        "time_zone": draw(st.sampled_from(ZONES)),
        "working_hours": hours,
        "holidays": [d.isoformat() for d in holidays],
        "makeup_working_days": [d.isoformat() for d in makeup],
        "makeup_day_hours": draw(day_hours()) or [["09:00", "17:00"]],
    }
    return BusinessCalendar.from_dict("random", doc)


instants = st.datetimes(datetime(2026, 1, 1), datetime(2026, 12, 31), timezones=st.just(UTC))
durations = st.integers(0, 300 * 60).map(lambda m: timedelta(minutes=m))
rules = st.fixed_dictionaries({"hours": st.integers(1, 400), "basis": st.sampled_from(["clock", "working"])})


@settings(max_examples=200, deadline=None)
@given(calendars(), instants, durations)
def test_working_time_deadline_never_falls_outside_working_time(cal: BusinessCalendar, start: datetime, d: timedelta) -> None:
    due = cal.add_working_time(start, d)
    assert due >= start
    assert cal.is_working_time(due), f"{due} is outside working time"
    # and exactly the requested working time lies between start and the deadline
    assert cal.working_time_between(start, due) == d


@settings(max_examples=200, deadline=None)
@given(calendars(), instants, durations, durations)
def test_deadlines_are_monotonic_in_the_allowed_duration(cal: BusinessCalendar, start: datetime, a: timedelta, b: timedelta) -> None:
    short, long_ = sorted((a, b))
    assert cal.add_working_time(start, short) <= cal.add_working_time(start, long_)


@settings(max_examples=200, deadline=None)
@given(calendars(), instants, rules, st.integers(0, 500))
def test_policy_deadlines_are_monotonic_in_hours_and_start(cal: BusinessCalendar, start: datetime, rule: dict, extra: int) -> None:
    longer = dict(rule, hours=rule["hours"] + extra)
    assert compute_due(start, rule, cal) <= compute_due(start, longer, cal)
    assert compute_due(start, rule, cal) <= compute_due(start + timedelta(minutes=extra), rule, cal)
    if rule["basis"] == "working":
        assert cal.is_working_time(compute_due(start, rule, cal))


@settings(max_examples=200, deadline=None)
@given(calendars(), instants, rules, st.integers(0, 20_000), st.integers(0, 20_000))
def test_a_pause_never_makes_a_deadline_earlier(cal: BusinessCalendar, start: datetime, rule: dict, off: int, length: int) -> None:
    due = compute_due(start, rule, cal)
    paused_from = start + timedelta(minutes=off)
    resumed = paused_from + timedelta(minutes=length)
    new_due = resume_due(due, paused_from, resumed, rule["basis"], cal)
    assert new_due >= due
    # a longer pause never gives an earlier deadline either
    assert resume_due(due, paused_from, resumed + timedelta(minutes=30), rule["basis"], cal) >= new_due
    if rule["basis"] == "working":
        assert cal.is_working_time(new_due)
        # the deadline moved by exactly the working time the pause took
        assert cal.working_time_between(due, new_due) == cal.working_time_between(paused_from, resumed)


@settings(max_examples=100, deadline=None)
@given(calendars(), instants, st.integers(0, 15))
def test_working_days_land_in_working_time_and_grow(cal: BusinessCalendar, start: datetime, n: int) -> None:
    a = cal.add_working_days(start, n)
    b = cal.add_working_days(start, n + 1)
    assert cal.is_working_time(a) and cal.is_working_time(b)
    assert start <= a < b


# ---------------------------------------------------------------- the shipped calendars
@pytest.fixture(scope="module")
def shipped() -> dict[str, BusinessCalendar]:
    return load_calendars(yaml.safe_load(CALENDARS.read_text("utf-8")))


def test_shanghai_spring_festival_and_makeup_saturday(shipped: dict[str, BusinessCalendar]) -> None:
    sh = shipped["shanghai"]
    tz = sh.zone
    assert sh.is_working_day(date(2026, 2, 14))  # Saturday worked (调休)
    assert not sh.is_working_day(date(2026, 2, 16))  # 春节
    assert sh.is_working_day(date(2026, 1, 4))  # Sunday worked after 元旦
    # Friday 17:00 + 2 working hours: one hour Friday, one on the make-up Saturday
    due = sh.add_working_time(datetime(2026, 2, 13, 17, 0, tzinfo=tz), timedelta(hours=2))
    assert due.astimezone(tz) == datetime(2026, 2, 14, 10, 0, tzinfo=tz)
    # Saturday evening + 1 working hour: after the nine-day holiday, Tuesday 24th
    due = sh.add_working_time(datetime(2026, 2, 14, 18, 0, tzinfo=tz), timedelta(hours=1))
    assert due.astimezone(tz) == datetime(2026, 2, 24, 10, 0, tzinfo=tz)


def test_rome_easter_and_lunch_break(shipped: dict[str, BusinessCalendar]) -> None:
    ro = shipped["rome"]
    tz = ro.zone
    # Thursday before Easter 12:00 + 8 h: 1 h Thu morning, 3.5 h Thu afternoon, 3.5 h Friday morning
    due = ro.add_working_time(datetime(2026, 4, 2, 12, 0, tzinfo=tz), timedelta(hours=8))
    assert due.astimezone(tz) == datetime(2026, 4, 3, 12, 0, tzinfo=tz)
    # Friday 12:00 + 2 h: 1 h Friday, Easter weekend and Monday off, Tuesday 09:30
    due = ro.add_working_time(datetime(2026, 4, 3, 12, 0, tzinfo=tz), timedelta(hours=2))
    assert due.astimezone(tz) == datetime(2026, 4, 7, 9, 30, tzinfo=tz)
    assert shipped["default"].time_zone == "Europe/Rome"


def test_daylight_saving_day_counts_real_hours() -> None:
    cal = BusinessCalendar.from_dict("dst", {"time_zone": "Europe/Rome", "working_hours": {d: [["00:00", "24:00"]] for d in WEEKDAYS}})
    # 29 March 2026 has 23 hours in Rome: a whole-day interval is 23 real hours
    day = cal.intervals(date(2026, 3, 29))
    assert day[0][1] - day[0][0] == timedelta(hours=23)


def test_bad_calendars_are_refused() -> None:
    with pytest.raises(InvalidCommand):
        BusinessCalendar.from_dict("x", {"time_zone": "Mars/Olympus", "working_hours": {"mon": [["09:00", "17:00"]]}})
    with pytest.raises(InvalidCommand):
        BusinessCalendar.from_dict("x", {"time_zone": "UTC", "working_hours": {}})
    with pytest.raises(InvalidCommand):
        BusinessCalendar.from_dict("x", {"time_zone": "UTC", "working_hours": {"mon": [["17:00", "09:00"]]}})
    with pytest.raises(InvalidCommand):
        BusinessCalendar.from_dict(
            "x",
            {
                "time_zone": "UTC",
                "working_hours": {"mon": [["09:00", "17:00"]]},
                "holidays": ["2026-01-05"],
                "makeup_working_days": ["2026-01-05"],
            },
        )
    assert time(9) < time(17)
