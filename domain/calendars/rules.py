"""Holidays defined by rule: the same every year, computed for any year asked.

A rule is written as text, alone or with a name and a range of years::

    "01-01"                      fixed date (MM-DD); 02-29 only in leap years
    "easter+1"                   days from Western (Gregorian) Easter Sunday: "easter", "easter-2"
    "first mon of september"     nth weekday of a month: first…fifth or 1st…5th, or "last";
                                 weekday and month by English name or abbreviation, or month number
    {rule: "10-04", name: San Francesco, from: 2026}   from/until: first/last year, both included

Holidays that a government publishes year by year (China's State Council notice, with
its make-up working days) are not rules: they stay dated lists (see ``aggregate.py``).
"""

from __future__ import annotations

import calendar as _gregorian
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from dateutil.easter import EASTER_WESTERN, easter

from domain.base import InvalidCommand

_WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
_MONTHS = tuple(m.lower() for m in _gregorian.month_name[1:])
_ORDINALS = {"first": 1, "1st": 1, "second": 2, "2nd": 2, "third": 3, "3rd": 3, "fourth": 4, "4th": 4, "fifth": 5, "5th": 5, "last": -1}

_FIXED = re.compile(r"^(\d{1,2})-(\d{1,2})$")
_EASTER = re.compile(r"^easter\s*(?:([+-])\s*(\d{1,3}))?$")
_NTH = re.compile(r"^(\w+)\s+(\w+)\s+(?:of|in)\s+(\w+)$")

EXAMPLES = ["01-01", "easter", "easter+1", "first mon of september", "last mon of may"]


def _by_name(word: str, names: tuple[str, ...], what: str) -> int:
    """Index of an English name or its 3-letter (or longer) abbreviation."""
    if len(word) >= 3:
        for i, name in enumerate(names):
            if name.startswith(word):
                return i
    raise InvalidCommand(f"holiday rule: {word!r} is not a {what}", allowed=list(names))


def _month(word: str) -> int:
    if word.isdigit():
        if 1 <= int(word) <= 12:
            return int(word)
        raise InvalidCommand(f"holiday rule: month {word} is not 1-12")
    return _by_name(word, _MONTHS, "month") + 1


@dataclass(frozen=True)
class HolidayRule:
    """One holiday that recurs by rule. ``kind`` is ``fixed``, ``easter`` or ``nth``."""

    text: str
    kind: str
    month: int = 0
    day: int = 0  # fixed: day of month; easter: offset in days; nth: ordinal (-1 = last)
    weekday: int = 0  # nth: Monday = 0
    name: str | None = None
    first_year: int | None = None
    last_year: int | None = None

    @classmethod
    def parse(cls, raw: Any) -> HolidayRule:
        """A rule from its text or from ``{rule, name, from, until}``."""
        if isinstance(raw, Mapping):
            unknown = set(raw) - {"rule", "name", "from", "until"}
            if unknown or "rule" not in raw:
                raise InvalidCommand(
                    f"holiday rule {dict(raw)!r}: use the keys rule, name, from, until", allowed=["rule", "name", "from", "until"]
                )
            rule = cls.parse(raw["rule"])
            first, last = (_year(raw.get(k), k) for k in ("from", "until"))
            if first is not None and last is not None and last < first:
                raise InvalidCommand(f"holiday rule {rule.text!r}: until {last} is before from {first}")
            name = raw.get("name")
            return cls(rule.text, rule.kind, rule.month, rule.day, rule.weekday, str(name) if name else None, first, last)
        text = " ".join(str(raw).strip().lower().split())
        if m := _FIXED.match(text):
            month, day = int(m[1]), int(m[2])
            try:
                date(2024, month, day)  # a leap year accepts 02-29
            except ValueError:
                raise InvalidCommand(f"holiday rule {raw!r}: no such day of the year") from None
            return cls(f"{month:02d}-{day:02d}", "fixed", month, day)
        if m := _EASTER.match(text):
            offset = int(m[2] or 0) * (-1 if m[1] == "-" else 1)
            return cls(f"easter{offset:+d}" if offset else "easter", "easter", day=offset)
        if m := _NTH.match(text):
            if m[1] not in _ORDINALS:
                raise InvalidCommand(f"holiday rule {raw!r}: {m[1]!r} is not an ordinal", allowed=list(_ORDINALS))
            nth, weekday, month = _ORDINALS[m[1]], _by_name(m[2], _WEEKDAYS, "weekday"), _month(m[3])
            ordinal = "last" if nth == -1 else ("first", "second", "third", "fourth", "fifth")[nth - 1]
            return cls(f"{ordinal} {_WEEKDAYS[weekday][:3]} of {_MONTHS[month - 1]}", "nth", month, nth, weekday)
        raise InvalidCommand(f"holiday rule {raw!r} is not understood", allowed=EXAMPLES)

    def in_year(self, year: int) -> date | None:
        """The holiday's date in ``year``, or None when it is not kept that year."""
        if (self.first_year is not None and year < self.first_year) or (self.last_year is not None and year > self.last_year):
            return None
        if self.kind == "fixed":
            return date(year, self.month, self.day) if _gregorian.isleap(year) or (self.month, self.day) != (2, 29) else None
        if self.kind == "easter":
            return easter(year, EASTER_WESTERN) + timedelta(days=self.day)
        days_in_month = _gregorian.monthrange(year, self.month)[1]
        if self.day == -1:
            last = date(year, self.month, days_in_month)
            return last - timedelta(days=(last.weekday() - self.weekday) % 7)
        first = date(year, self.month, 1)
        found = first + timedelta(days=(self.weekday - first.weekday()) % 7 + 7 * (self.day - 1))
        return found if found.month == self.month else None  # no fifth Monday this month

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"rule": self.text}
        if self.name:
            out["name"] = self.name
        if self.first_year is not None:
            out["from"] = self.first_year
        if self.last_year is not None:
            out["until"] = self.last_year
        return out


def _year(value: Any, what: str) -> int | None:
    if value is None:
        return None
    try:
        year = int(value)
    except (TypeError, ValueError):
        raise InvalidCommand(f"holiday rule: {what} {value!r} is not a year") from None
    if not 1583 <= year <= 4099:  # the Gregorian computus's range
        raise InvalidCommand(f"holiday rule: {what} {year} is outside 1583-4099")
    return year
