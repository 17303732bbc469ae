"""Calendar handlers: a jurisdiction's business calendar, loaded from a file or changed."""

from __future__ import annotations

from typing import Any

from domain.base import Context, NotFound
from domain.calendars import commands as c
from domain.calendars.aggregate import JurisdictionCalendar, calendar_id, load_calendars
from domain.config import Deps
from domain.deadlines import WorkingTime
from domain.handling import Handlers, UnitOfWork

handles = Handlers("calendars")


def jurisdiction_calendar(uow: UnitOfWork, deps: Deps) -> WorkingTime | None:
    """The jurisdiction's business calendar (changed by commands), else the configured one."""
    found = uow.read(JurisdictionCalendar, calendar_id(deps.jurisdiction))
    return found.calendar if found is not None else deps.calendar


@handles(c.ImportCalendars, issued_by=("api.cli.sla", "api.demo"))
def import_calendars(uow: UnitOfWork, ctx: Context, cmd: c.ImportCalendars) -> dict[str, Any]:
    """Loads a calendars file (``infra/data/calendars.yaml``); unchanged calendars stay as they are."""
    changed = []
    for jurisdiction, calendar in load_calendars(cmd.document).items():
        agg = uow.find(JurisdictionCalendar, calendar_id(jurisdiction))
        if agg is None:
            uow.add(JurisdictionCalendar.define(jurisdiction, calendar.to_dict(), ctx))
            changed.append(jurisdiction)
        elif agg.redefine(calendar.to_dict(), "loaded from file", ctx):
            changed.append(jurisdiction)
    return {"changed": changed}


@handles(c.ChangeCalendar)
def change_calendar(uow: UnitOfWork, ctx: Context, cmd: c.ChangeCalendar) -> dict[str, Any]:
    jurisdiction = cmd.jurisdiction
    agg = uow.find(JurisdictionCalendar, calendar_id(jurisdiction))
    if agg is not None:
        agg.expect_version(cmd.expected_version)
        if cmd.definition is not None:
            agg.redefine(cmd.definition, cmd.reason, ctx)
    elif cmd.definition is not None:
        agg = JurisdictionCalendar.define(jurisdiction, cmd.definition, ctx)
        uow.add(agg)
    else:
        raise NotFound(f"no calendar for jurisdiction {jurisdiction!r}", code="calendar_missing")
    for day in cmd.declare_holidays:
        agg.declare_holiday(day, cmd.reason, ctx)
    for day in cmd.withdraw_holidays:
        agg.withdraw_holiday(day, ctx)
    for day in cmd.declare_makeup_days:
        agg.declare_makeup_day(day, cmd.makeup_hours, ctx)
    for day in cmd.withdraw_makeup_days:
        agg.withdraw_makeup_day(day, ctx)
    for year in cmd.publish_years:  # after the days, so one command loads a whole notice
        agg.publish_year(year, cmd.reason, ctx)
    return {"jurisdiction": jurisdiction, "version": agg.version, "calendar": agg.calendar.to_dict()}
