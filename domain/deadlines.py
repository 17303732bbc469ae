"""Deadline policy: when a request is due, given its urgency and problem code.

A rule is ``{"hours": 24, "basis": "clock" | "working"}``. Clock hours are real
elapsed time, whatever the time zone of the start (across a daylight-saving change 24
clock hours are not "the same time tomorrow"). Working hours need a business calendar
(see ``domain/calendars/aggregate.py``); the calendar is injected so that every
jurisdiction can have its own.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from domain.base import InvalidCommand
from domain.catalogue.aggregate import DEFAULT_DEADLINES, URGENCIES


class WorkingTime(Protocol):
    """What a business calendar offers the deadline policy."""

    def add_working_time(self, start: datetime, duration: timedelta) -> datetime: ...


def deadline_rule(urgency: str, problem_code: dict[str, Any] | None) -> dict[str, Any]:
    if urgency not in URGENCIES:
        raise InvalidCommand(f"unknown urgency {urgency!r}", urgencies=list(URGENCIES))
    rules = (problem_code or {}).get("deadlines") or DEFAULT_DEADLINES
    return dict(rules.get(urgency) or DEFAULT_DEADLINES[urgency])


def compute_due(start: datetime, rule: dict[str, Any], calendar: WorkingTime | None = None) -> datetime:
    if start.tzinfo is None:
        raise InvalidCommand("a deadline's start must be timezone-aware")
    allowed = timedelta(hours=float(rule["hours"]))
    if rule.get("basis", "clock") == "working" and calendar is not None:
        return calendar.add_working_time(start, allowed)
    # Without a calendar a working-time rule falls back to clock time: never earlier
    # than a calendar would give, so no deadline is promised too soon.
    # Added in UTC: Python adds a timedelta to a zone-aware datetime on the wall clock,
    # which across a DST change is an hour more or less of real time. The answer keeps
    # the start's zone for display.
    return (start.astimezone(UTC) + allowed).astimezone(start.tzinfo)
