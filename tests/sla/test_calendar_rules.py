"""Holidays by rule for every year, published lists with their years, and real clock hours.

Oracles written out here, not computed by the code under test: Easter Sunday 2025-2035
(Gregorian computus, as in every church calendar), Italy's holidays of 2027 (legge
260/1949 as amended, legge 151/2025 for 4 October), and the State Council's notices for
2025 (2024-11-12) and 2026 (2025-11-04) with their make-up working days.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import yaml

from domain.base import SYSTEM, Context, FixedClock, InvalidCommand
from domain.calendars import commands as calc
from domain.calendars.aggregate import WEEKDAYS, BusinessCalendar, JurisdictionCalendar, calendar_id, load_calendars
from domain.calendars.rules import HolidayRule
from domain.deadlines import compute_due
from infra.runtime import Hotline
from infra.settings import Settings
from infra.unit_of_work import EventStoreUnitOfWork
from tests.sla.conftest import SUP, start

CALENDARS = Path(__file__).resolve().parents[2] / "infra" / "data" / "calendars.yaml"
ROME = ZoneInfo("Europe/Rome")
SHANGHAI = ZoneInfo("Asia/Shanghai")

EASTER_SUNDAYS = {
    2025: date(2025, 4, 20),
    2026: date(2026, 4, 5),
    2027: date(2027, 3, 28),
    2028: date(2028, 4, 16),
    2029: date(2029, 4, 1),
    2030: date(2030, 4, 21),
    2031: date(2031, 4, 13),
    2032: date(2032, 3, 28),
    2033: date(2033, 4, 17),
    2034: date(2034, 4, 9),
    2035: date(2035, 3, 25),
}

# Weekday holidays of Rome in 2027: what makes a working day a day off.
ROME_2027_WEEKDAY_HOLIDAYS = {
    date(2027, 1, 1): "Capodanno (Fri)",
    date(2027, 1, 6): "Epifania (Wed)",
    date(2027, 3, 29): "Lunedì dell'Angelo",
    date(2027, 6, 2): "Festa della Repubblica (Wed)",
    date(2027, 6, 29): "Santi Pietro e Paolo (Tue)",
    date(2027, 10, 4): "San Francesco (Mon)",
    date(2027, 11, 1): "Ognissanti (Mon)",
    date(2027, 12, 8): "Immacolata (Wed)",
}
ROME_2027_WEEKEND_HOLIDAYS = [
    date(2027, 3, 28),
    date(2027, 4, 25),
    date(2027, 5, 1),
    date(2027, 8, 15),
    date(2027, 12, 25),
    date(2027, 12, 26),
]

SHANGHAI_MAKEUP = {
    2025: [date(2025, 1, 26), date(2025, 2, 8), date(2025, 4, 27), date(2025, 9, 28), date(2025, 10, 11)],
    2026: [date(2026, 1, 4), date(2026, 2, 14), date(2026, 2, 28), date(2026, 5, 9), date(2026, 9, 20), date(2026, 10, 10)],
}
# (first, last) day of each holiday period in the notices.
SHANGHAI_PERIODS = {
    2025: [("01-01", "01-01"), ("01-28", "02-04"), ("04-04", "04-06"), ("05-01", "05-05"), ("05-31", "06-02"), ("10-01", "10-08")],
    2026: [
        ("01-01", "01-03"),
        ("02-15", "02-23"),
        ("04-04", "04-06"),
        ("05-01", "05-05"),
        ("06-19", "06-21"),
        ("09-25", "09-27"),
        ("10-01", "10-07"),
    ],
}


@pytest.fixture(scope="module")
def shipped() -> dict[str, BusinessCalendar]:
    return load_calendars(yaml.safe_load(CALENDARS.read_text("utf-8")))


def _all_days(year: int) -> list[date]:
    return [date(year, 1, 1) + timedelta(days=n) for n in range((date(year + 1, 1, 1) - date(year, 1, 1)).days)]


# ---------------------------------------------------------------- rules
@pytest.mark.parametrize(("year", "sunday"), sorted(EASTER_SUNDAYS.items()))
def test_easter_rules_against_the_computus_table(year: int, sunday: date) -> None:
    assert sunday.weekday() == 6
    assert HolidayRule.parse("easter").in_year(year) == sunday
    assert HolidayRule.parse("Easter + 1").in_year(year) == sunday + timedelta(days=1)
    assert HolidayRule.parse("easter-2").in_year(year) == sunday - timedelta(days=2)  # Good Friday


def test_weekday_of_month_and_fixed_rules() -> None:
    # US Labor Day and Memorial Day, UK late May bank holiday, US Thanksgiving
    assert HolidayRule.parse("first mon of september").in_year(2026) == date(2026, 9, 7)
    assert HolidayRule.parse("last monday of may").in_year(2026) == date(2026, 5, 25)
    assert HolidayRule.parse("last mon of 5").in_year(2027) == date(2027, 5, 31)
    assert HolidayRule.parse("4th thu of nov").in_year(2026) == date(2026, 11, 26)
    assert HolidayRule.parse("fifth mon of february").in_year(2027) is None  # February 2027 has four Mondays
    assert HolidayRule.parse("02-29").in_year(2027) is None and HolidayRule.parse("02-29").in_year(2028) == date(2028, 2, 29)
    kept = HolidayRule.parse({"rule": "10-04", "name": "San Francesco", "from": 2026, "until": 2030})
    assert [kept.in_year(y) for y in (2025, 2026, 2030, 2031)] == [None, date(2026, 10, 4), date(2030, 10, 4), None]
    assert HolidayRule.parse(kept.to_dict()) == kept


@pytest.mark.parametrize(
    "bad",
    [
        "13-01",
        "02-30",
        "easter*2",
        "first funday of may",
        "sixth mon of may",
        "first mon of smarch",
        {"rule": "01-01", "when": 1},
        {"name": "x"},
    ],
)
def test_rules_that_are_not_understood_are_refused(bad: Any) -> None:
    with pytest.raises(InvalidCommand):
        HolidayRule.parse(bad)


# ---------------------------------------------------------------- Rome: rules, every year
def test_rome_2027_has_easter_monday_and_san_francesco(shipped: dict[str, BusinessCalendar]) -> None:
    ro = shipped["rome"]
    for day in ROME_2027_WEEKDAY_HOLIDAYS:
        assert day.weekday() < 5 and ro.is_holiday(day) and not ro.is_working_day(day), ROME_2027_WEEKDAY_HOLIDAYS[day]
    expected = set(ROME_2027_WEEKDAY_HOLIDAYS) | set(ROME_2027_WEEKEND_HOLIDAYS)
    assert {d for d in _all_days(2027) if ro.is_holiday(d)} == expected
    assert {date.fromisoformat(h["date"]) for h in ro.holidays_in(2027)} == expected
    # Friday 1 October 2027 12:00 + 2 working hours: 1 h Friday, weekend, Monday 4th off: Tuesday 09:30
    due = ro.add_working_time(datetime(2027, 10, 1, 12, 0, tzinfo=ROME), timedelta(hours=2))
    assert due.astimezone(ROME) == datetime(2027, 10, 5, 9, 30, tzinfo=ROME)
    # Thursday 25 March 2027 17:00 + 6 h: 0.5 h Thursday, 4.5 h Friday, Easter Monday off, 1 h Tuesday
    due = ro.add_working_time(datetime(2027, 3, 25, 17, 0, tzinfo=ROME), timedelta(hours=6))
    assert due.astimezone(ROME) == datetime(2027, 3, 30, 9, 30, tzinfo=ROME)


@pytest.mark.parametrize("year", sorted(EASTER_SUNDAYS))
def test_rome_easter_monday_every_year_and_san_francesco_from_2026(shipped: dict[str, BusinessCalendar], year: int) -> None:
    ro = shipped["rome"]
    assert ro.is_holiday(EASTER_SUNDAYS[year] + timedelta(days=1))
    assert ro.is_holiday(date(year, 10, 4)) == (year >= 2026)
    assert not ro.is_holiday(EASTER_SUNDAYS[year] + timedelta(days=2))


# ---------------------------------------------------------------- Shanghai: the published lists
@pytest.mark.parametrize("year", [2025, 2026])
def test_shanghai_published_lists_with_makeup_days(shipped: dict[str, BusinessCalendar], year: int) -> None:
    sh = shipped["shanghai"]
    off = set()
    for first, last in SHANGHAI_PERIODS[year]:
        day, end = date.fromisoformat(f"{year}-{first}"), date.fromisoformat(f"{year}-{last}")
        while day <= end:
            off.add(day)
            day += timedelta(days=1)
    for day in SHANGHAI_MAKEUP[year]:
        assert day.weekday() >= 5, f"{day} is a weekday: not a make-up day"
    expected_working = {d for d in _all_days(year) if (d.weekday() < 5 and d not in off) or d in SHANGHAI_MAKEUP[year]}
    assert {d for d in _all_days(year) if sh.is_working_day(d)} == expected_working


def test_shanghai_2026_makeup_saturday_counts_as_working_time(shipped: dict[str, BusinessCalendar]) -> None:
    sh = shipped["shanghai"]
    # Saturday 9 May 2026 (worked for Labour Day): Friday 8th 17:00 + 2 h ends Saturday 10:00
    due = compute_due(datetime(2026, 5, 8, 17, 0, tzinfo=SHANGHAI), {"hours": 2, "basis": "working"}, sh)
    assert due.astimezone(SHANGHAI) == datetime(2026, 5, 9, 10, 0, tzinfo=SHANGHAI)
    # Sunday 20 September 2026 is worked, Saturday 19th is not
    assert sh.is_working_day(date(2026, 9, 20)) and not sh.is_working_day(date(2026, 9, 19))


def test_missing_published_year_is_a_clear_error(shipped: dict[str, BusinessCalendar]) -> None:
    sh = shipped["shanghai"]
    rule = {"hours": 16, "basis": "working"}
    # Inside 2026 it works; a deadline running into 2027 needs the 2027 notice.
    assert compute_due(datetime(2026, 12, 28, 9, 0, tzinfo=SHANGHAI), rule, sh) == datetime(2026, 12, 29, 18, 0, tzinfo=SHANGHAI)
    with pytest.raises(InvalidCommand) as err:
        compute_due(datetime(2026, 12, 31, 9, 0, tzinfo=SHANGHAI), rule, sh)
    assert err.value.code == "holiday_list_missing"
    assert err.value.details["jurisdiction"] == "shanghai" and err.value.details["year"] == 2027
    assert "shanghai" in err.value.message and "2027" in err.value.message
    for ask in (
        lambda: sh.is_working_day(date(2024, 10, 1)),
        lambda: sh.add_working_days(datetime(2026, 12, 30, 9, tzinfo=SHANGHAI), 5),
        lambda: sh.next_working_day_start(datetime(2026, 12, 31, 12, tzinfo=SHANGHAI)),
        lambda: sh.working_time_between(datetime(2026, 12, 31, 9, tzinfo=UTC), datetime(2027, 1, 4, 9, tzinfo=UTC)),
    ):
        with pytest.raises(InvalidCommand, match="no published holiday list"):
            ask()
    # A clock-hours deadline needs no calendar year.
    assert compute_due(datetime(2026, 12, 31, 9, 0, tzinfo=SHANGHAI), {"hours": 48, "basis": "clock"}, sh) == datetime(
        2027, 1, 2, 9, 0, tzinfo=SHANGHAI
    )


def test_an_early_warning_names_the_year_to_load(shipped: dict[str, BusinessCalendar]) -> None:
    sh, ro = shipped["shanghai"], shipped["rome"]
    assert sh.unpublished_year_ahead(datetime(2026, 10, 1, tzinfo=UTC)) is None
    assert sh.unpublished_year_ahead(datetime(2026, 11, 30, tzinfo=UTC)) == 2027
    assert sh.unpublished_year_ahead(datetime(2024, 6, 1, tzinfo=UTC)) == 2024
    assert ro.unpublished_year_ahead(datetime(2026, 11, 30, tzinfo=UTC), timedelta(days=3650)) is None


def test_publishing_a_year_through_the_aggregate_makes_it_computable(shipped: dict[str, BusinessCalendar]) -> None:
    ctx = Context(SYSTEM, datetime(2026, 11, 30, 9, tzinfo=UTC))
    agg = JurisdictionCalendar.define("shanghai", shipped["shanghai"].to_dict(), ctx)
    with pytest.raises(InvalidCommand, match="2027"):
        agg.calendar.is_working_day(date(2027, 1, 4))
    # An invented list for the test (not real dates): 4 January off, Saturday 9th worked
    agg.declare_holiday(date(2027, 1, 4), "test", ctx)
    agg.declare_makeup_day(date(2027, 1, 9), None, ctx)
    agg.publish_year(2027, "test notice", ctx)
    cal = agg.calendar
    assert not cal.is_working_day(date(2027, 1, 4)) and cal.is_working_day(date(2027, 1, 5)) and cal.is_working_day(date(2027, 1, 9))
    with pytest.raises(InvalidCommand, match="already published"):
        agg.publish_year(2027, None, ctx)
    # A calendar by rule has no list to publish.
    rome = JurisdictionCalendar.define("rome", shipped["rome"].to_dict(), ctx)
    with pytest.raises(InvalidCommand, match="by rule"):
        rome.publish_year(2027, None, ctx)


def test_definitions_stored_before_rules_still_load() -> None:
    # What Defined events held before holiday_rules and published_years existed.
    old = {
        "time_zone": "Europe/Rome",
        "working_hours": {d: ([["08:30", "13:00"]] if d != "sat" and d != "sun" else []) for d in WEEKDAYS},
        "holidays": ["2026-04-05", "2026-04-06"],
        "annual_holidays": ["01-01", "12-25"],
        "makeup_working_days": {},
    }
    cal = BusinessCalendar.from_dict("rome", old)
    assert cal.is_holiday(date(2026, 4, 6)) and cal.is_holiday(date(2030, 12, 25)) and cal.is_working_day(date(2027, 3, 29))
    assert cal.published_years is None and cal.to_dict()["holiday_rules"] == []
    with pytest.raises(InvalidCommand, match="unknown keys"):
        BusinessCalendar.from_dict("rome", {**old, "holiday_rule": ["easter+1"]})


# ---------------------------------------------------------------- real elapsed clock hours
@pytest.mark.parametrize(
    ("start", "hours"),
    [
        (datetime(2026, 3, 28, 12, 0), 24),  # spring forward: Sunday 29 March 2026 02:00 -> 03:00
        (datetime(2026, 10, 24, 12, 0), 24),  # fall back: Sunday 25 October 2026 03:00 -> 02:00
        (datetime(2027, 3, 27, 23, 30), 5),  # Sunday 28 March 2027
        (datetime(2027, 10, 30, 20, 0), 72),  # Sunday 31 October 2027
    ],
)
def test_clock_hours_are_real_elapsed_hours_across_dst(start: datetime, hours: int) -> None:
    local_start = start.replace(tzinfo=ROME)
    due = compute_due(local_start, {"hours": hours, "basis": "clock"})
    # Independent check: POSIX seconds, which count real time whatever the zone.
    assert due.timestamp() - local_start.timestamp() == hours * 3600
    assert due.astimezone(UTC) - local_start.astimezone(UTC) == timedelta(hours=hours)
    # The same instant given in UTC or in Rome's zone gives the same deadline.
    assert compute_due(local_start.astimezone(UTC), {"hours": hours}) == due


def test_spring_forward_wall_clock_shows_the_missing_hour() -> None:
    due = compute_due(datetime(2026, 3, 28, 12, 0, tzinfo=ROME), {"hours": 24, "basis": "clock"})
    assert due.astimezone(ROME).replace(tzinfo=None) == datetime(2026, 3, 29, 13, 0)
    due = compute_due(datetime(2026, 10, 24, 12, 0, tzinfo=ROME), {"hours": 24, "basis": "clock"})
    assert due.astimezone(ROME).replace(tzinfo=None) == datetime(2026, 10, 25, 11, 0)


def test_working_time_between_local_instants_counts_real_hours() -> None:
    always = BusinessCalendar.from_dict("24x7", {"time_zone": "Europe/Rome", "working_hours": {d: [["00:00", "24:00"]] for d in WEEKDAYS}})
    a, b = datetime(2026, 3, 28, 12, 0, tzinfo=ROME), datetime(2026, 3, 29, 12, 0, tzinfo=ROME)
    assert always.working_time_between(a, b) == timedelta(hours=23)
    a, b = datetime(2026, 10, 24, 12, 0, tzinfo=ROME), datetime(2026, 10, 25, 12, 0, tzinfo=ROME)
    assert always.working_time_between(a, b) == timedelta(hours=25)
    assert always.add_working_time(a, timedelta(hours=25)) == b


def test_naive_start_is_refused() -> None:
    with pytest.raises(InvalidCommand, match="timezone-aware"):
        compute_due(datetime(2026, 3, 28, 12, 0), {"hours": 24})


# ---------------------------------------------------------------- stored events, both stores
def test_published_year_survives_a_restart(store_settings: Settings, clock: FixedClock) -> None:
    settings = store_settings.model_copy(update={"jurisdiction": "shanghai"})
    h = start(settings, clock)
    try:
        h.bus.execute(calc.ChangeCalendar(jurisdiction="shanghai", declare_holidays=[date(2027, 1, 1)], publish_years=[2027]), SUP)
    finally:
        h.close()
    h = Hotline.start(settings, clock)  # everything read back from the event store
    try:
        agg = EventStoreUnitOfWork(h.store).find(JurisdictionCalendar, calendar_id("shanghai"))
        assert agg is not None and agg.definition["published_years"] == [2025, 2026, 2027]
        cal = agg.calendar
        assert not cal.is_working_day(date(2027, 1, 1)) and cal.is_working_day(date(2027, 1, 4))
        assert not cal.is_working_day(date(2026, 2, 16)) and cal.is_working_day(date(2026, 2, 14))
    finally:
        h.close()
