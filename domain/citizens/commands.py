"""Citizen commands: one citizen across channels, their contact details and language."""

from __future__ import annotations

from pydantic import Field

from domain.access import Action
from domain.handling import Command, Target
from domain.requests.commands import Contact, Language


class UpdateCitizen(Command):
    action = Action.CITIZENS_UPDATE

    citizen_id: Target = ""
    contact: Contact | None = None
    language: Language | None = None


class SmsConsentCommand(Command):
    """A number's own word about SMS, as the SMS channel received it (from that number)."""

    action = Action.CITIZENS_UPDATE

    phone: str = Field(min_length=1, max_length=40, description="The number that wrote, as the provider gave it")
    keyword: str = Field(min_length=1, max_length=20, description="The keyword it wrote (STOP, START …)")
    provider_message_id: str | None = Field(default=None, max_length=200)


class OptOutOfSms(SmsConsentCommand):
    """STOP (and the other opt-out keywords): the citizen behind the number, found or
    created, gets no more SMS on it."""


class OptInToSms(SmsConsentCommand):
    """START or UNSTOP: SMS to the number resume."""
