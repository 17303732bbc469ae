"""Citizen commands: one citizen across channels, their contact details and language."""

from __future__ import annotations

from domain.access import Action
from domain.handling import Command, Target
from domain.requests.commands import Contact, Language


class UpdateCitizen(Command):
    action = Action.CITIZENS_UPDATE

    citizen_id: Target = ""
    contact: Contact | None = None
    language: Language | None = None
