"""The SLA clock and the timer plan: which timers a request has and when they fall due.

Rules (pure; the request aggregate and the timer process both rely on them):

* **Measures** help desks report: time to acknowledge (dispatch → 签收), time to first
  response (registration → first interim or final reply), time to resolution
  (registration → resolved). Time spent waiting for the citizen does not count.
* **Pause**: while a request waits for the citizen the clock stops; when the citizen
  answers, the deadline moves by the pause, measured on the deadline's own basis (clock
  time, or working time on the jurisdiction's calendar). A pause never makes a deadline
  earlier.
* **Timer plan**: warnings at configurable fractions of the allowed time, the deadline
  itself, reminders to the department (催办) every N working days after it, escalation
  to the control office after N working days overdue, an interim reply due to the
  citizen when no reply has gone out by a fraction of the allowed time, and the
  satisfaction callback (回访) the working day after closure.

A timer's key names the deadline it belongs to (``missed:20260102T101500Z``): when the
deadline moves (extension, pause, re-dispatch) the old keys vanish from the plan and new
ones appear, and a key fires at most once per request, which the event store enforces.
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from domain.base import InvalidCommand
from domain.deadlines import WorkingTime

APPROACHING = "deadline_approaching"
MISSED = "deadline_missed"
REMINDER = "reminder"
ESCALATION = "escalation"
INTERIM_DUE = "interim_reply_due"
CALLBACK = "satisfaction_callback"
KINDS = (APPROACHING, MISSED, REMINDER, ESCALATION, INTERIM_DUE, CALLBACK)
# Kinds that only make sense ahead of the deadline: a new one already in the past when
# it is planned (the deadline moved after its moment) is left out, not fired late.
AHEAD_OF_DEADLINE = (APPROACHING, INTERIM_DUE)
# Request states in which the department's clock runs.
RUNNING_STATES = ("registered", "dispatched", "in_progress", "returned", "awaiting_ruling")
WAITING = "waiting_citizen"
DAY = timedelta(days=1)


@dataclass(frozen=True)
class SlaPolicy:
    """A jurisdiction's timer settings."""

    warning_points: tuple[float, ...] = (0.75, 0.9)
    interim_reply_at: float | None = 0.9  # fraction of the allowed time; None: never
    reminders: int = 3  # 催办 after the deadline, one every ``reminder_every_working_days``
    reminder_every_working_days: int = 1
    escalate_after_working_days: int = 2
    satisfaction_callback: bool = True

    def __post_init__(self) -> None:
        if any(not 0 < p < 1 for p in self.warning_points):
            raise InvalidCommand("warning points are fractions of the allowed time between 0 and 1")
        if self.interim_reply_at is not None and not 0 < self.interim_reply_at < 1:
            raise InvalidCommand("interim_reply_at is a fraction between 0 and 1")
        if self.reminders < 0 or self.reminder_every_working_days < 1 or self.escalate_after_working_days < 0:
            raise InvalidCommand("reminders and escalation need non-negative working-day counts")

    @classmethod
    def from_dict(cls, doc: dict[str, Any] | None) -> SlaPolicy:
        doc = dict(doc or {})
        if "warning_points" in doc:
            doc["warning_points"] = tuple(float(p) for p in doc["warning_points"])
        return cls(**doc)


class _Calendarish(WorkingTime, Protocol):
    def add_working_days(self, start: datetime, days: int) -> datetime: ...

    def working_time_between(self, start: datetime, end: datetime) -> timedelta: ...

    def next_working_day_start(self, instant: datetime) -> datetime: ...


@dataclass(frozen=True)
class Timer:
    key: str
    kind: str
    at: datetime  # when it falls due
    deadline: datetime  # the request deadline it belongs to
    detail: int | None = None  # percent for warnings, number for reminders, days for escalation
    department_id: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "kind": self.kind,
            "at": self.at.isoformat(),
            "deadline": self.deadline.isoformat(),
            "detail": self.detail,
            "department_id": self.department_id,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Timer:
        return cls(
            key=d["key"],
            kind=d["kind"],
            at=datetime.fromisoformat(d["at"]),
            deadline=datetime.fromisoformat(d["deadline"]),
            detail=d.get("detail"),
            department_id=d.get("department_id"),
        )


def stamp(instant: datetime) -> str:
    return instant.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")


# ------------------------------------------------------------------ working-time helpers
def add_working_days(calendar: WorkingTime | None, start: datetime, days: int) -> datetime:
    if calendar is not None and hasattr(calendar, "add_working_days"):
        return calendar.add_working_days(start, days)  # type: ignore[no-any-return]
    return start + days * DAY


def follow_up_at(calendar: WorkingTime | None, due: datetime, days: int) -> datetime:
    """When a reminder or escalation ``days`` working days after the deadline falls. If
    that reaches a year whose holiday list is not yet published (China's notice for next
    year comes in November), it is planned ``days`` calendar days after the deadline: never
    later than the calendar would put it, and the request is still registered (the
    deadline itself is refused in such a year: see JurisdictionCalendar)."""
    try:
        return add_working_days(calendar, due, days)
    except InvalidCommand as exc:
        if exc.code != "holiday_list_missing":
            raise
        return due + days * DAY


def elapsed(calendar: WorkingTime | None, basis: str, start: datetime, end: datetime) -> timedelta:
    """Time between two instants on a deadline basis (working time needs a calendar)."""
    start, end = start.astimezone(UTC), end.astimezone(UTC)  # elapsed time, not wall-clock time
    if end <= start:
        return timedelta(0)
    if basis == "working" and calendar is not None and hasattr(calendar, "working_time_between"):
        return calendar.working_time_between(start, end)  # type: ignore[no-any-return]
    return end - start


def resume_due(due_at: datetime, paused_from: datetime, resumed_at: datetime, basis: str, calendar: WorkingTime | None) -> datetime:
    """The deadline after a pause: moved by the pause, measured on the deadline's basis."""
    if resumed_at < paused_from:
        raise InvalidCommand("a pause cannot end before it starts")
    pause = elapsed(calendar, basis, paused_from, resumed_at)
    if basis == "working" and calendar is not None:
        if pause == timedelta(0):
            return due_at  # paused outside working hours: nothing to give back
        return max(due_at, calendar.add_working_time(due_at, pause))
    return due_at + pause


def paused_within(
    pauses: Sequence[tuple[datetime, datetime | None]], start: datetime, end: datetime, now: datetime | None = None
) -> timedelta:
    """Clock time of the pauses that overlaps [start, end] (an open pause runs to ``now``)."""
    total = timedelta(0)
    for p_start, p_end in pauses:
        p_end = p_end or now or end
        lo, hi = max(start, p_start), min(end, p_end)
        if hi > lo:
            total += hi - lo
    return total


# ------------------------------------------------------------------ measures
def measures(r: Any, now: datetime | None = None) -> dict[str, Any]:
    """SLA measures of a request, in seconds with pauses taken out; None until reached."""
    pauses = list(getattr(r, "pauses", [])) + ([(r.paused_since, None)] if getattr(r, "paused_since", None) else [])
    registered = r.registered_at

    def span(start: datetime | None, end: datetime | None) -> float | None:
        if start is None or end is None:
            return None
        return max(0.0, ((end - start) - paused_within(pauses, start, end, now)).total_seconds())

    return {
        "time_to_acknowledge": span(getattr(r, "dispatched_at", None), r.accepted_at),
        "time_to_first_response": span(registered, r.first_response_at),
        "time_to_resolution": span(registered, r.resolved_at),
        "paused_seconds": paused_within(pauses, registered, now or r.modified_on, now).total_seconds(),
        "due_at": r.due_at.isoformat(),
        "on_time": None if r.resolved_at is None else r.resolved_at <= r.due_at,
    }


# ------------------------------------------------------------------ the plan
def plan(r: Any, policy: SlaPolicy, calendar: WorkingTime | None, basis: str = "clock") -> list[Timer]:
    """Every timer the request has in its current state (fired ones included).

    ``basis`` is the deadline's (domain/deadlines.py): on ``working`` time the warnings
    fall at their share of the working allowance (75 % of 120 working hours is in office
    hours, not on a holiday evening), else at their share of the clock time."""
    status = r.status
    if status == "closed":
        if not policy.satisfaction_callback or getattr(r, "rated", False) or r.closed_at is None:
            return []
        at = r.closed_at + DAY
        if calendar is not None and hasattr(calendar, "next_working_day_start"):
            with contextlib.suppress(InvalidCommand):  # next year's list unpublished: a day later
                at = calendar.next_working_day_start(r.closed_at)
        return [Timer(f"callback:{stamp(r.closed_at)}", CALLBACK, at, r.due_at, None, r.department_id)]
    if status not in RUNNING_STATES:
        return []  # replied, resolved, or waiting for the citizen: the clock does not run
    due: datetime = r.due_at
    start: datetime = r.window_start
    dep = r.department_id
    key = stamp(due)
    # Allowed time: the window from the allowance's start to the deadline, pauses taken out.
    allowed = (due - start) - paused_within(getattr(r, "pauses", []), start, due)
    timers: list[Timer] = []
    if allowed > timedelta(0):
        share = _share_of_working_time(calendar, start, due, getattr(r, "pauses", [])) if basis == "working" else None
        at_share = share or (lambda point: due - (1 - point) * allowed)
        for point in sorted(set(policy.warning_points)):
            pct = round(point * 100)
            timers.append(Timer(f"approaching-{pct}:{key}", APPROACHING, at_share(point), due, pct, dep))
        if policy.interim_reply_at is not None and r.interim_replies == 0:
            timers.append(Timer(f"interim-due:{key}", INTERIM_DUE, at_share(policy.interim_reply_at), due, None, dep))
    timers.append(Timer(f"missed:{key}", MISSED, due, due, None, dep))
    for n in range(1, policy.reminders + 1):
        at = follow_up_at(calendar, due, n * policy.reminder_every_working_days)
        timers.append(Timer(f"reminder-{n}:{key}", REMINDER, at, due, n, dep))
    if policy.escalate_after_working_days:
        days = policy.escalate_after_working_days
        timers.append(Timer(f"escalation:{key}", ESCALATION, follow_up_at(calendar, due, days), due, days, dep))
    return timers


def _share_of_working_time(
    calendar: WorkingTime | None, start: datetime, due: datetime, pauses: Sequence[tuple[datetime, datetime | None]]
) -> Any:
    """``point`` → the instant when that share of the working time from ``start`` to ``due``
    (pauses taken out) has passed; None without a calendar that measures working time."""
    between = getattr(calendar, "working_time_between", None)
    if calendar is None or between is None:
        return None

    def paused(until: datetime) -> timedelta:
        return sum((between(max(start, p), min(until, q or until)) for p, q in pauses), timedelta(0))

    try:
        allowed = between(start, due) - paused(due)
    except InvalidCommand:  # a year whose calendar is not published: clock time
        return None
    if allowed <= timedelta(0):
        return None

    def at(point: float) -> datetime:
        target = point * allowed
        moment = calendar.add_working_time(start, target)
        for _ in range(len(pauses)):  # pauses before the moment push it on
            later = calendar.add_working_time(start, target + paused(moment))
            if later == moment:
                break
            moment = later
        return min(moment, due)

    return at


def reschedule(r: Any, policy: SlaPolicy, calendar: WorkingTime | None, now: datetime, basis: str = "clock") -> list[Timer] | None:
    """The new plan if it differs from the scheduled one, else None.

    Timers already scheduled stay even when past (they are about to fire, or fired); a
    new warning whose moment is already past is left out."""
    current: dict[str, Any] = getattr(r, "timers_scheduled", {}) or {}
    # Most commands (notes, contacts) change nothing the plan depends on: when the inputs
    # and the scheduled timers are those of the last check, the answer is the same (a
    # warning left out as past stays past). Kept on the aggregate as a memo (see
    # domain.base.aggregate_state), not in its events.
    checked = r.__dict__.get("_memo_timer_plan")
    inputs = (*_plan_inputs(r), basis)
    if checked is not None and checked[1] is policy and checked[2] is calendar and checked[3] is current and checked[0] == inputs:
        return None
    wanted = [t for t in plan(r, policy, calendar, basis) if t.key in current or t.kind not in AHEAD_OF_DEADLINE or t.at > now]
    wanted.sort(key=lambda t: (t.at, t.key))
    if [t.key for t in wanted] == list(current) and all(current[t.key] == t.to_dict() for t in wanted):
        plan_kept(r, policy, calendar, basis)
        return None
    return wanted


def plan_kept(r: Any, policy: SlaPolicy, calendar: WorkingTime | None, basis: str = "clock") -> None:
    """The scheduled timers are the plan for the request as it is now (after a check, or
    once a new plan is scheduled)."""
    # The objects are held, not their ids, so a later object can never pass for them.
    r.__dict__["_memo_timer_plan"] = ((*_plan_inputs(r), basis), policy, calendar, getattr(r, "timers_scheduled", None))


def _plan_inputs(r: Any) -> tuple[Any, ...]:
    """Everything of the request that ``plan`` reads."""
    return (
        r.status,
        r.due_at,
        r.window_start,
        r.department_id,
        r.interim_replies,
        getattr(r, "closed_at", None),
        getattr(r, "rated", False),
        len(getattr(r, "pauses", ())),
        getattr(r, "paused_since", None),
    )
