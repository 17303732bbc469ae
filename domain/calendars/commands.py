"""Calendar commands: a jurisdiction's working hours, holidays and make-up days."""

from __future__ import annotations

from datetime import date
from typing import Any

from pydantic import Field

from domain.access import Action
from domain.handling import Command, Target


class ChangeCalendar(Command):
    action = Action.CATALOGUE_MANAGE

    jurisdiction: Target = ""
    definition: dict[str, Any] | None = Field(default=None, description="A whole calendar, as in calendars.yaml")
    declare_holidays: list[date] = Field(default_factory=list)
    withdraw_holidays: list[date] = Field(default_factory=list)
    declare_makeup_days: list[date] = Field(default_factory=list)
    withdraw_makeup_days: list[date] = Field(default_factory=list)
    makeup_hours: list[list[str]] | None = Field(default=None, description="Default: Monday's hours")
    publish_years: list[int] = Field(
        default_factory=list,
        description="Years whose published holiday list (holidays and make-up days above) is now complete",
    )
    reason: str | None = None


class ImportCalendars(Command):
    """Loads a calendars file (``infra/data/calendars.yaml``); unchanged calendars stay as they are."""

    action = Action.CATALOGUE_MANAGE

    document: dict[str, Any]
