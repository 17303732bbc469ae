"""Business calendars: when a jurisdiction works, and working-time arithmetic.

A :class:`BusinessCalendar` is a value object: a time zone, working hours per weekday,
holidays and make-up working days (调休: a Saturday or Sunday worked in exchange for a
longer holiday, common in China). Holidays come two ways:

- by rule, for every year: fixed dates, Easter-based, "first Monday of …" (``holiday_rules``,
  see ``rules.py``; ``annual_holidays`` is the older MM-DD form, still read);
- by a list a government publishes year by year (``holidays`` and ``makeup_working_days``,
  dated). A calendar that depends on such a list names the years it has
  (``published_years``); asking it about any other year is an error that names the
  jurisdiction and the year, never a silent working day.

It answers
the deadline policy's question "what instant is N working hours after this one?"
(:meth:`add_working_time`, the ``WorkingTime`` protocol of ``domain/deadlines.py``) and
the SLA clock's "how much working time lies between these instants?".

Calendars are kept per jurisdiction by the :class:`JurisdictionCalendar` aggregate, so a
change (a holiday declared, hours changed) is an event like every other; the file
``infra/data/calendars.yaml`` seeds them.

All arithmetic is done on UTC instants built from local wall-clock times, so daylight
saving changes are handled by the time zone database, not by hand.
"""

from __future__ import annotations

import itertools
import uuid
from calendar import isleap
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from domain.base import Context, HotlineAggregate, InvalidCommand, derived_id
from domain.calendars.rules import HolidayRule

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
# A calendar whose next working minute lies further ahead than this is broken.
MAX_SEARCH_DAYS = 366 * 30
ZERO = timedelta(0)

Interval = tuple[time, time]
DEFINITION_KEYS = (
    "time_zone",
    "working_hours",
    "holiday_rules",
    "annual_holidays",
    "holidays",
    "makeup_working_days",
    "makeup_day_hours",
    "published_years",
)


def _parse_time(value: Any) -> time:
    if isinstance(value, time):
        return value
    if isinstance(value, int):  # YAML reads 09:00 as sexagesimal minutes when unquoted
        return time(value // 60, value % 60)
    text = str(value).strip()
    if text in ("24:00", "24:00:00"):
        return time.max
    try:
        return time.fromisoformat(text)
    except ValueError:
        raise InvalidCommand(f"working hours: {value!r} is not a time of day like 09:00") from None


def _parse_date(value: Any) -> date:
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    try:
        return date.fromisoformat(str(value))
    except ValueError:
        raise InvalidCommand(f"{value!r} is not a date like 2026-10-01") from None


def _parse_intervals(raw: Any, what: str) -> tuple[Interval, ...]:
    if raw in (None, "", "closed"):
        return ()
    if isinstance(raw, str):
        raw = [part.split("-") for part in raw.replace(" ", "").split(",")]
    intervals = []
    for item in raw:
        if not isinstance(item, list | tuple) or len(item) != 2:
            raise InvalidCommand(f"{what}: each interval is [start, end], not {item!r}")
        start, end = _parse_time(item[0]), _parse_time(item[1])
        if end <= start:
            raise InvalidCommand(f"{what}: interval {item!r} ends before it starts")
        intervals.append((start, end))
    intervals.sort()
    for (_, end), (start, _) in itertools.pairwise(intervals):
        if start < end:
            raise InvalidCommand(f"{what}: working intervals overlap")
    return tuple(intervals)


@dataclass(frozen=True, eq=False)
class BusinessCalendar:
    """When one jurisdiction works. Immutable; build a new one to change it."""

    jurisdiction: str
    time_zone: str
    weekly: tuple[tuple[Interval, ...], ...]  # 7 entries, Monday first
    holidays: frozenset[date] = frozenset()
    annual_holidays: frozenset[tuple[int, int]] = frozenset()  # (month, day), every year
    makeup_days: Mapping[date, tuple[Interval, ...]] = field(default_factory=dict)
    rules: tuple[HolidayRule, ...] = ()
    # None: every holiday is a rule or dated, any year can be answered. A set: the years
    # whose published list is loaded; other years are unknown.
    published_years: frozenset[int] | None = None
    _cache: dict[date, tuple[tuple[datetime, datetime], ...]] = field(default_factory=dict, repr=False, compare=False)
    _by_rule: dict[int, frozenset[date]] = field(default_factory=dict, repr=False, compare=False)

    def __post_init__(self) -> None:
        try:
            object.__setattr__(self, "tz", ZoneInfo(self.time_zone))
        except (ZoneInfoNotFoundError, ValueError):
            raise InvalidCommand(f"unknown time zone {self.time_zone!r}") from None
        if len(self.weekly) != 7:
            raise InvalidCommand("working hours need one entry per weekday")
        if not any(self.weekly):
            raise InvalidCommand(f"calendar {self.jurisdiction!r} has no working hours on any weekday")

    # -------------------------------------------------------------- building
    @classmethod
    def from_dict(cls, jurisdiction: str, doc: Mapping[str, Any]) -> BusinessCalendar:
        unknown_keys = set(doc) - set(DEFINITION_KEYS)
        if unknown_keys:  # a misspelt key would silently drop holidays
            raise InvalidCommand(f"calendar {jurisdiction!r}: unknown keys {sorted(unknown_keys)}", allowed=list(DEFINITION_KEYS))
        hours = doc.get("working_hours") or {}
        unknown = set(hours) - set(WEEKDAYS)
        if unknown:
            raise InvalidCommand(f"working_hours: unknown weekdays {sorted(unknown)}; use {list(WEEKDAYS)}")
        weekly = tuple(_parse_intervals(hours.get(day), f"working_hours.{day}") for day in WEEKDAYS)
        default_makeup = _parse_intervals(doc.get("makeup_day_hours"), "makeup_day_hours") or weekly[0]
        makeup: dict[date, tuple[Interval, ...]] = {}
        raw_makeup = doc.get("makeup_working_days") or []
        if isinstance(raw_makeup, Mapping):
            for day, spec in raw_makeup.items():
                makeup[_parse_date(day)] = _parse_intervals(spec, f"makeup_working_days.{day}") or default_makeup
        else:
            for day in raw_makeup:
                makeup[_parse_date(day)] = default_makeup
        annual = set()
        for md in doc.get("annual_holidays") or []:
            try:
                month, day = (int(x) for x in str(md).split("-"))
                date(2024, month, day)  # a leap year accepts 02-29
            except ValueError:
                raise InvalidCommand(f"annual holiday {md!r} must be MM-DD") from None
            annual.add((month, day))
        holidays = frozenset(_parse_date(d) for d in doc.get("holidays") or [])
        clash = holidays & set(makeup)
        if clash:
            raise InvalidCommand(f"{sorted(clash)[0]} is both a holiday and a make-up working day")
        rules = tuple(HolidayRule.parse(r) for r in doc.get("holiday_rules") or [])
        raw_years = doc.get("published_years")
        if raw_years is not None and not isinstance(raw_years, list | tuple | set | frozenset):
            raise InvalidCommand("published_years is a list of years, e.g. [2025, 2026]")
        try:
            published = None if raw_years is None else frozenset(int(y) for y in raw_years)
        except (TypeError, ValueError):
            raise InvalidCommand(f"published_years: {raw_years!r} are not all years") from None
        return cls(
            jurisdiction=jurisdiction,
            time_zone=str(doc.get("time_zone") or "UTC"),
            weekly=weekly,
            holidays=holidays,
            annual_holidays=frozenset(annual),
            makeup_days=makeup,
            rules=rules,
            published_years=published,
        )

    def to_dict(self) -> dict[str, Any]:
        def fmt(intervals: Iterable[Interval]) -> list[list[str]]:
            return [[_fmt_time(s), _fmt_time(e)] for s, e in intervals]

        return {
            "time_zone": self.time_zone,
            "working_hours": {day: fmt(self.weekly[i]) for i, day in enumerate(WEEKDAYS)},
            "holidays": sorted(d.isoformat() for d in self.holidays),
            "annual_holidays": sorted(f"{m:02d}-{d:02d}" for m, d in self.annual_holidays),
            "holiday_rules": [r.to_dict() for r in self.rules],
            "makeup_working_days": {d.isoformat(): fmt(iv) for d, iv in sorted(self.makeup_days.items())},
            "published_years": None if self.published_years is None else sorted(self.published_years),
        }

    # -------------------------------------------------------------- questions
    @property
    def zone(self) -> ZoneInfo:
        return self.tz  # type: ignore[attr-defined,no-any-return]

    def knows_year(self, year: int) -> bool:
        return self.published_years is None or year in self.published_years

    def check_year(self, year: int) -> None:
        """Refuses a year whose published holiday list is missing (no silent working days)."""
        if not self.knows_year(year):
            have = sorted(self.published_years or ())
            raise InvalidCommand(
                f"calendar {self.jurisdiction!r} has no published holiday list for {year} "
                f"(loaded: {', '.join(map(str, have)) or 'none'}): load that year's holidays and make-up "
                "working days before computing working time in it",
                code="holiday_list_missing",
                jurisdiction=self.jurisdiction,
                year=year,
                published_years=have,
            )

    def unpublished_year_ahead(self, instant: datetime, horizon: timedelta = timedelta(days=60)) -> int | None:
        """The first year without its published list that begins within ``horizon`` of the
        instant (or contains it): for an early warning, since deadlines, reminders and
        escalations that reach into it will be refused."""
        first, last = self.local_date(instant).year, self.local_date(_aware(instant) + horizon).year
        return next((y for y in range(first, last + 1) if not self.knows_year(y)), None)

    def _rule_days(self, year: int) -> frozenset[date]:
        found = self._by_rule.get(year)
        if found is None:
            found = frozenset(d for d in (r.in_year(year) for r in self.rules) if d is not None)
            self._by_rule[year] = found
        return found

    def is_holiday(self, day: date) -> bool:
        self.check_year(day.year)
        return day in self.holidays or (day.month, day.day) in self.annual_holidays or day in self._rule_days(day.year)

    def holidays_in(self, year: int) -> list[dict[str, Any]]:
        """Every holiday of a year with its name where a rule gives one (an unknown year is refused)."""
        self.check_year(year)
        named: dict[date, str | None] = {d: None for d in self.holidays if d.year == year}
        for month, day in self.annual_holidays:
            if month != 2 or day != 29 or isleap(year):
                named.setdefault(date(year, month, day), None)
        for rule in self.rules:
            found = rule.in_year(year)
            if found is not None and named.get(found) is None:
                named[found] = rule.name or rule.text
        return [{"date": d.isoformat(), "name": n, "working": d in self.makeup_days} for d, n in sorted(named.items())]

    def hours_of(self, day: date) -> tuple[Interval, ...]:
        """The local working intervals of a date: make-up days work, holidays do not."""
        self.check_year(day.year)
        if day in self.makeup_days:
            return self.makeup_days[day]
        if self.is_holiday(day):
            return ()
        return self.weekly[day.weekday()]

    def is_working_day(self, day: date) -> bool:
        return bool(self.hours_of(day))

    def intervals(self, day: date) -> tuple[tuple[datetime, datetime], ...]:
        """The working intervals of a local date as UTC instants."""
        cached = self._cache.get(day)
        if cached is not None:
            return cached
        found = []
        for start, end in self.hours_of(day):
            s = datetime.combine(day, start, self.zone).astimezone(UTC)
            e = (
                datetime.combine(day + timedelta(days=1), time(0), self.zone) if end == time.max else datetime.combine(day, end, self.zone)
            ).astimezone(UTC)
            if e > s:  # an interval swallowed by a daylight-saving jump is skipped
                found.append((s, e))
        result = tuple(found)
        if len(self._cache) > 4096:
            self._cache.clear()
        self._cache[day] = result
        return result

    def _spill(self, day: date) -> tuple[tuple[datetime, datetime], ...]:
        """The intervals of the day before the one asked about, looked at only for an
        interval that ends at local midnight: an unknown year adds nothing there (at
        most the single instant of midnight) instead of refusing the question."""
        return self.intervals(day) if self.knows_year(day.year) else ()

    def local_date(self, instant: datetime) -> date:
        return _aware(instant).astimezone(self.zone).date()

    def is_working_time(self, instant: datetime) -> bool:
        """Whether the instant lies in a working interval (both ends included)."""
        instant = _aware(instant)
        day = self.local_date(instant)
        # An interval of the day before may end at local midnight.
        return any(s <= instant <= e for s, e in (*self._spill(day - timedelta(days=1)), *self.intervals(day)))

    def _spans_from(self, instant: datetime) -> Iterable[tuple[tuple[datetime, datetime], ...]]:
        """The working intervals of each local day from the instant's (and the one before)."""
        day = self.local_date(instant)
        yield self._spill(day - timedelta(days=1))
        for _ in range(MAX_SEARCH_DAYS):
            yield self.intervals(day)
            day += timedelta(days=1)
        raise InvalidCommand(f"calendar {self.jurisdiction!r} has no working time in {MAX_SEARCH_DAYS} days")

    def add_working_time(self, start: datetime, duration: timedelta) -> datetime:
        """The instant when ``duration`` of working time has passed after ``start``.

        The answer always lies in working time: a zero duration from outside working
        hours gives the next working instant."""
        if duration < ZERO:
            raise InvalidCommand("a working-time duration cannot be negative")
        start = _aware(start).astimezone(UTC)
        remaining = duration
        for spans in self._spans_from(start):
            for s, e in spans:
                if e < start:
                    continue
                begin = max(s, start)
                available = e - begin
                if remaining <= available:
                    return begin + remaining
                remaining -= available
        raise AssertionError("unreachable")  # _days_from raises first

    def next_working_instant(self, instant: datetime) -> datetime:
        return self.add_working_time(instant, ZERO)

    def working_time_between(self, start: datetime, end: datetime) -> timedelta:
        """Working time in [start, end]; zero when end is not after start."""
        # In UTC: a difference of two datetimes of the same zone is wall-clock time.
        start, end = _aware(start).astimezone(UTC), _aware(end).astimezone(UTC)
        if end <= start:
            return ZERO
        first, last = self.local_date(start), self.local_date(end)
        days = (first + timedelta(days=n) for n in range((last - first).days + 1))
        total = ZERO
        for spans in itertools.chain([self._spill(first - timedelta(days=1))], map(self.intervals, days)):
            for s, e in spans:
                lo, hi = max(s, start), min(e, end)
                if hi > lo:
                    total += hi - lo
        return total

    def add_working_days(self, start: datetime, days: int) -> datetime:
        """The same local time ``days`` working days later (after moving ``start`` into
        working time), clipped into that day's working hours."""
        if days < 0:
            raise InvalidCommand("working days cannot be negative")
        begin = self.next_working_instant(start)
        local = begin.astimezone(self.zone)
        day = local.date()
        counted = 0
        for _ in range(MAX_SEARCH_DAYS):
            if counted == days:
                break
            day += timedelta(days=1)
            if self.is_working_day(day):
                counted += 1
        else:
            raise InvalidCommand(f"calendar {self.jurisdiction!r} has too few working days")
        if days == 0:
            return begin
        target = datetime.combine(day, local.time().replace(tzinfo=None), self.zone).astimezone(UTC)
        spans = self.intervals(day)
        for s, e in spans:
            if s <= target <= e:
                return target
            if target < s:
                return s  # before the day's (next) opening: its opening
        return spans[-1][1] if spans else self.next_working_instant(target)

    def next_working_day_start(self, instant: datetime) -> datetime:
        """Opening time of the first working day after the instant's local date."""
        day = self.local_date(instant)
        for _ in range(MAX_SEARCH_DAYS):
            day += timedelta(days=1)
            spans = self.intervals(day)
            if spans:
                return spans[0][0]
        raise InvalidCommand(f"calendar {self.jurisdiction!r} has no working day ahead")


def _aware(instant: datetime) -> datetime:
    if instant.tzinfo is None:
        raise InvalidCommand("time must be timezone-aware")
    return instant


def _fmt_time(t: time) -> str:
    return "24:00" if t == time.max else t.strftime("%H:%M")


def load_calendars(document: Mapping[str, Any]) -> dict[str, BusinessCalendar]:
    """Every calendar of a calendars file, aliases included (``default: rome``)."""
    found = {jid: BusinessCalendar.from_dict(jid, doc) for jid, doc in (document.get("calendars") or {}).items()}
    for alias, target in (document.get("aliases") or {}).items():
        if target not in found:
            raise InvalidCommand(f"calendar alias {alias!r} names unknown calendar {target!r}")
        found[alias] = BusinessCalendar.from_dict(alias, found[target].to_dict())
    return found


# ------------------------------------------------------------------ the aggregate
def calendar_id(jurisdiction: str) -> uuid.UUID:
    return derived_id("calendar", jurisdiction)


class JurisdictionCalendar(HotlineAggregate):
    """The business calendar of one jurisdiction, changed by commands."""

    STREAM = "calendar"

    class Defined(HotlineAggregate.Created):
        """The jurisdiction's working calendar was defined: time zone, working hours, holidays. Deadlines count working time in it."""

        jurisdiction: str
        definition: dict[str, Any]

    class Redefined(HotlineAggregate.Event):
        """The working calendar's definition was replaced."""

        definition: dict[str, Any]
        reason: str | None

        def apply(self, c: JurisdictionCalendar) -> None:
            c.definition = dict(self.definition)

    class HolidayDeclared(HotlineAggregate.Event):
        """A day was declared a holiday: no working time on it."""

        day: str
        name: str | None

        def apply(self, c: JurisdictionCalendar) -> None:
            c.definition["holidays"] = sorted({*c.definition.get("holidays", []), self.day})

    class HolidayWithdrawn(HotlineAggregate.Event):
        """A declared holiday was withdrawn: the day is an ordinary day again."""

        day: str

        def apply(self, c: JurisdictionCalendar) -> None:
            c.definition["holidays"] = [d for d in c.definition.get("holidays", []) if d != self.day]

    class MakeupDayDeclared(HotlineAggregate.Event):
        """A normally free day was declared a working day (a make-up day), with its hours."""

        day: str
        hours: list[list[str]]

        def apply(self, c: JurisdictionCalendar) -> None:
            c.definition.setdefault("makeup_working_days", {})[self.day] = self.hours

    class MakeupDayWithdrawn(HotlineAggregate.Event):
        """A declared make-up day was withdrawn."""

        day: str

        def apply(self, c: JurisdictionCalendar) -> None:
            c.definition.get("makeup_working_days", {}).pop(self.day, None)

    class ListPublished(HotlineAggregate.Event):
        """A year's published holiday list is complete: working time in it can be computed."""

        year: int
        source: str | None

        def apply(self, c: JurisdictionCalendar) -> None:
            c.definition["published_years"] = sorted({*(c.definition.get("published_years") or []), self.year})

    def __init__(self, jurisdiction: str, definition: dict[str, Any]) -> None:
        self.jurisdiction = jurisdiction
        self.definition = dict(definition)

    @classmethod
    def define(cls, jurisdiction: str, definition: Mapping[str, Any], ctx: Context) -> JurisdictionCalendar:
        normal = BusinessCalendar.from_dict(jurisdiction, definition).to_dict()  # validates
        return cls._start(cls.Defined, calendar_id(jurisdiction), ctx, jurisdiction=jurisdiction, definition=normal)

    @property
    def calendar(self) -> BusinessCalendar:
        cached: tuple[int, BusinessCalendar] | None = getattr(self, "_built", None)
        if cached is None or cached[0] != self.version:
            cached = (self.version, BusinessCalendar.from_dict(self.jurisdiction, self.definition))
            self._built = cached
        return cached[1]

    def redefine(self, definition: Mapping[str, Any], reason: str | None, ctx: Context) -> bool:
        normal = BusinessCalendar.from_dict(self.jurisdiction, definition).to_dict()
        if normal == BusinessCalendar.from_dict(self.jurisdiction, self.definition).to_dict():
            return False  # loading the same file twice changes nothing
        self._record(self.Redefined, ctx, definition=normal, reason=reason)
        return True

    def declare_holiday(self, day: date, name: str | None, ctx: Context) -> None:
        if day.isoformat() in self.definition.get("makeup_working_days", {}):
            raise InvalidCommand(f"{day} is a make-up working day: withdraw it first")
        if day.isoformat() in self.definition.get("holidays", []):
            raise InvalidCommand(f"{day} is already a holiday")
        self._record(self.HolidayDeclared, ctx, day=day.isoformat(), name=name)

    def withdraw_holiday(self, day: date, ctx: Context) -> None:
        if day.isoformat() not in self.definition.get("holidays", []):
            raise InvalidCommand(f"{day} is not a holiday of {self.jurisdiction}")
        self._record(self.HolidayWithdrawn, ctx, day=day.isoformat())

    def declare_makeup_day(self, day: date, hours: Any, ctx: Context) -> None:
        if day.isoformat() in self.definition.get("holidays", []):
            raise InvalidCommand(f"{day} is a holiday: withdraw it first")
        intervals = _parse_intervals(hours, "hours") or self.calendar.weekly[0]
        self._record(self.MakeupDayDeclared, ctx, day=day.isoformat(), hours=[[_fmt_time(s), _fmt_time(e)] for s, e in intervals])

    def publish_year(self, year: int, source: str | None, ctx: Context) -> None:
        """Marks a year's list (holidays and make-up days, declared before) as loaded."""
        published = self.definition.get("published_years")
        if published is None:
            raise InvalidCommand(f"calendar {self.jurisdiction!r} defines its holidays by rule, not by a published list")
        if year in published:
            raise InvalidCommand(f"the {year} list of {self.jurisdiction} is already published")
        self._record(self.ListPublished, ctx, year=year, source=source)

    def withdraw_makeup_day(self, day: date, ctx: Context) -> None:
        if day.isoformat() not in self.definition.get("makeup_working_days", {}):
            raise InvalidCommand(f"{day} is not a make-up working day of {self.jurisdiction}")
        self._record(self.MakeupDayWithdrawn, ctx, day=day.isoformat())
