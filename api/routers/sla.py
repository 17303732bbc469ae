"""SLA clock, business calendars, timers and notifications."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from fastapi import Depends, Query, Response

from api.auth import allow, row_access
from api.deps import CommandRoute, ReadYourWrites, add_command_routes, get_hotline, set_etag
from api.read_log import PersonalDataRead, personal_data_read
from api.responses import Ageing, CalendarView, DeadlineAnswer, NotificationList, RequestSla, TimersStatus
from api.routing import HotlineRouter
from domain.access import Action, allows, authorize
from domain.base import Actor, InvalidCommand, NotFound
from domain.calendars import commands as cal
from domain.calendars.aggregate import BusinessCalendar, JurisdictionCalendar, calendar_id
from domain.notifications import commands as nc
from domain.requests import commands as c
from domain.requests.handlers import load_request
from domain.requests.sla import measures
from infra.runtime import Hotline
from infra.unit_of_work import EventStoreUnitOfWork
from projections import notifications as notes
from projections import sla_breaches, sla_timers

router = HotlineRouter(tags=["sla"])
# The years a working-time question may start in (hours <= a year: the answer stays far
# from the end of datetime's range).
FIRST_YEAR, LAST_YEAR = 1900, 9000


def _calendar(hotline: Hotline, jurisdiction: str) -> BusinessCalendar:
    return _calendar_and_version(hotline, jurisdiction)[0]


def _calendar_and_version(hotline: Hotline, jurisdiction: str) -> tuple[BusinessCalendar, int | None]:
    """The calendar and its aggregate's version; None for the built-in fallback, which no
    event defines (a ChangeCalendar with a definition creates the aggregate)."""
    # Read, not checked out (that would take the command cache's copy away): the cached
    # copy unless the store holds newer events, so the version is the stored one.
    key = calendar_id(jurisdiction)
    agg = hotline.store.read_reference(key, hotline.store.reference(key))
    if isinstance(agg, JurisdictionCalendar):
        return agg.calendar, agg.version
    fallback = hotline.bus.deps.calendar
    if jurisdiction == hotline.bus.deps.jurisdiction and isinstance(fallback, BusinessCalendar):
        return fallback, None
    raise NotFound(f"no calendar for jurisdiction {jurisdiction!r}", code="calendar_missing")


# ------------------------------------------------------------------ calendars
@router.get("/calendars/{jurisdiction}", response_model=CalendarView, summary="A jurisdiction's business calendar")
def get_calendar(
    jurisdiction: str, response: Response, hotline: Hotline = Depends(get_hotline), _: Actor = allow(Action.CATALOGUE_READ)
) -> dict[str, Any]:
    calendar, version = _calendar_and_version(hotline, jurisdiction)
    set_etag(response, version)  # If-Match on POST /calendars/{jurisdiction}
    return {"jurisdiction": jurisdiction, "version": version, **calendar.to_dict()}


add_command_routes(
    router,
    "/calendars/{jurisdiction}",
    [CommandRoute("", cal.ChangeCalendar, "Change a calendar: whole definition, holidays, make-up days")],
)


@router.get(
    "/calendars/{jurisdiction}/deadline",
    response_model=DeadlineAnswer,
    summary="Working-time arithmetic: start + hours of working time",
)
def deadline(
    jurisdiction: str,
    start: datetime,
    hours: float = Query(gt=0, le=24 * 365),
    hotline: Hotline = Depends(get_hotline),
    _: Actor = allow(Action.CATALOGUE_READ),
) -> dict[str, Any]:
    if start.tzinfo is None:
        raise InvalidCommand("start needs a time zone offset", field="start")
    if not FIRST_YEAR <= start.year <= LAST_YEAR:
        # A year of working time from the last days of 9999 passes the end of the calendar
        # Python can count (an OverflowError); no deadline is that far.
        raise InvalidCommand(f"start must be in the years {FIRST_YEAR} to {LAST_YEAR}", field="start")
    cal = _calendar(hotline, jurisdiction)
    due = cal.add_working_time(start, timedelta(hours=hours))
    return {"start": start, "working_hours": hours, "due_at": due, "local_due_at": due.astimezone(cal.zone).isoformat()}


# ------------------------------------------------------------------ the SLA clock
add_command_routes(
    router,
    "/requests/{ref}",
    [
        CommandRoute("wait-for-citizen", c.WaitForCitizen, "Stop the SLA clock: waiting for the citizen"),
        CommandRoute("citizen-responded", c.CitizenResponded, "Restart the SLA clock; the deadline moves by the pause"),
    ],
)


@router.get("/requests/{ref}/sla", response_model=RequestSla, summary="SLA measures and timers of one request")
def request_sla(
    ref: str, hotline: Hotline = Depends(get_hotline), actor: Actor = allow(Action.REQUESTS_READ), _ryw: None = ReadYourWrites
) -> dict[str, Any]:
    r = load_request(EventStoreUnitOfWork(hotline.store), ref)
    authorize(actor, Action.REQUESTS_READ, r.access())
    with hotline.read_store.engine.connect() as conn:
        timers = sla_timers.request_timers(conn, str(r.id))
    return {
        "reference": r.reference,
        "status": r.status,
        "measures": measures(r, hotline.clock.now()),
        "window_start": r.window_start,
        "escalated": r.escalated,
        "timers": timers,
    }


@router.get("/sla/ageing", response_model=Ageing, summary="Due-soon and overdue work per department and provider, in ageing buckets")
def ageing(
    hotline: Hotline = Depends(get_hotline),
    actor: Actor = allow(Action.SLA_READ),
    by: str = Query("provider", pattern="^(provider|department)$"),
    _ryw: None = ReadYourWrites,
) -> dict[str, Any]:
    now = hotline.clock.now()
    with hotline.read_store.engine.connect() as conn:
        groups = sla_breaches.ageing(conn, now, by=by)
    # A department sees its own rows (the provider rows carry their department).
    return {"as_of": now, "groups": [g for g in groups if allows(actor, Action.SLA_READ, row_access(g))]}


@router.get("/sla/timers", response_model=TimersStatus, summary="The timer table and, when it runs here, the timer process")
def timers_status(hotline: Hotline = Depends(get_hotline), _: Actor = allow(Action.OPERATIONS_READ)) -> dict[str, Any]:
    with hotline.read_store.engine.connect() as conn:
        table = sla_timers.timer_status(conn, hotline.clock.now())
    process = hotline.extras.get("timers")
    return {"table": table, "process": process.stats.as_dict() if process else None}


# ------------------------------------------------------------------ notifications
@router.get(
    "/notifications",
    response_model=NotificationList,
    summary="Messages sent or to send (status: queued, sending, sent, failed, dead_lettered)",
)
def list_notifications(
    hotline: Hotline = Depends(get_hotline),
    actor: Actor = allow(Action.NOTIFICATIONS_READ),
    status: str | None = None,
    request_id: str | None = None,
    limit: int = Query(100, ge=1, le=1000),
    _ryw: None = ReadYourWrites,
    read: PersonalDataRead = personal_data_read("message delivery"),
) -> dict[str, Any]:
    with hotline.read_store.engine.connect() as conn:
        messages = notes.listing(conn, status=status, request_id=request_id, limit=limit)
        counts = notes.counts(conn)
    if messages:  # recipients' addresses and numbers
        read.record(actor, what="notifications", subject=request_id, count=len(messages))
    return {"counts": counts, "messages": messages}


add_command_routes(
    router,
    "/notifications/{notification_id}",
    [CommandRoute("retry", nc.RetryNotification, "Send a dead-lettered message again", name="retry_notification")],
)
