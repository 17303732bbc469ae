"""Per-jurisdiction policies: who may register anonymously, where phone numbers are read;
and the details a problem code collects, checked against its field definitions."""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

import phonenumbers

from domain.base import InvalidCommand
from domain.citizens.aggregate import ContactDetails
from domain.limits import COLLECTED_NUMBER_MAX, SHORT_TEXT_MAX

CONTACT_FIELDS = ("name", "phone", "email")

# Where a number given without its country code is read, per jurisdiction the hotline
# knows (infra/data/calendars.yaml names them; "default" is the embedded demo, Rome).
# A deployment elsewhere sets HOTLINE_DEFAULT_REGION (infra/settings.py).
PHONE_REGIONS: dict[str, str] = {"default": "IT", "rome": "IT", "shanghai": "CN"}


def phone_region(jurisdiction: str, configured: str | None = None) -> str:
    """The ISO 3166 region phone numbers are read in: the one configured, else the
    jurisdiction's. Refuses an unknown one rather than read every number as Italian."""
    region = (configured or PHONE_REGIONS.get(jurisdiction) or "").upper()
    if not region:
        raise ValueError(f"jurisdiction {jurisdiction!r} has no known phone region: set HOTLINE_DEFAULT_REGION (e.g. IT, CN, US)")
    if region not in phonenumbers.SUPPORTED_REGIONS:
        raise ValueError(f"phone region {region!r} is not a region phone numbers are known for (ISO 3166 codes: IT, CN, US …)")
    return region


# Channels where the caller's number is all the hotline can know when it registers.
CALLER_ID_ONLY = ("voicemail",)


@dataclass(frozen=True)
class IntakePolicy:
    """The Italian procedure's rule is the default: no name and phone, no registration.

    A jurisdiction may instead accept anonymous requests; the contact given (if any) is
    then hidden from departments and integrators.
    """

    allow_anonymous: bool = False
    required_contact: tuple[str, ...] = ("name", "phone")
    default_region: str = "IT"  # where numbers without a country code are read: phone_region()
    default_language: str = "it"

    def check(self, contact: ContactDetails, *, wants_anonymity: bool, channel: str | None = None) -> bool:
        """Returns whether the contact is hidden; refuses what the policy forbids.

        A voice message has only the number the network gave: nobody was there to ask the
        caller's name, and the agent who calls back completes it. It still needs that number."""
        if wants_anonymity or contact.is_anonymous:
            if not self.allow_anonymous:
                raise InvalidCommand(
                    "anonymous requests are not registered here: the citizen's " + " and ".join(self.required_contact) + " are required",
                    code="anonymous_refused",
                    required=list(self.required_contact),
                )
            return True
        required = ("phone",) if channel in CALLER_ID_ONLY else self.required_contact
        missing = [f for f in required if not getattr(contact, f)]
        if missing:
            raise InvalidCommand(
                f"contact details missing: {missing} (this jurisdiction requires {list(self.required_contact)})",
                code="contact_required",
                missing=missing,
            )
        return False


# ---------------------------------------------------------------------- collected details
def check_collected(problem_code: str, fields: list[dict[str, Any]], collected: dict[str, Any] | None) -> dict[str, Any]:
    """The details a problem code collects (its ``fields_to_collect``), checked: every
    required one given, none it does not define, each of its field's type (a choice one of
    its choices) and within the limits of what the hotline stores. Refuses naming the field
    (``collected.<name>``); answers the details as given. An empty value ("" or null) is a
    detail not given."""
    collected = dict(collected or {})
    defined = {f["name"]: f for f in fields}
    unknown = sorted(set(collected) - set(defined))
    if unknown:
        raise InvalidCommand(
            f"problem code {problem_code} does not collect {unknown}",
            code="invalid_collected",
            field=f"collected.{unknown[0]}",
            known=sorted(defined),
        )
    missing = [name for name, f in defined.items() if f["required"] and collected.get(name) in (None, "")]
    if missing:
        raise InvalidCommand(
            f"problem code {problem_code} needs these details: {missing}",
            code="invalid_collected",
            field=f"collected.{missing[0]}",
            missing=missing,
        )
    for name, value in collected.items():
        if value not in (None, ""):
            problem = _collected_problem(defined[name], value)
            if problem:
                raise InvalidCommand(f"collected.{name} {problem}", code="invalid_collected", field=f"collected.{name}")
    return collected


def _collected_problem(field: dict[str, Any], value: Any) -> str | None:
    """What is wrong with one collected value for its field, or None."""
    kind = field["type"]
    if kind == "number":
        if isinstance(value, bool) or not isinstance(value, int | float):
            return f"must be a number, not {_shown(value)}"
        if not (math.isfinite(value) and abs(value) <= COLLECTED_NUMBER_MAX):
            return f"must be a finite number of at most {COLLECTED_NUMBER_MAX:g} in size"
        return None
    if kind == "boolean":
        return None if isinstance(value, bool) else f"must be true or false, not {_shown(value)}"
    if kind == "location" and isinstance(value, dict):
        return _location_problem(value)
    if not isinstance(value, str):
        return f"must be text, not {_shown(value)}"
    if len(value) > SHORT_TEXT_MAX:
        return f"must be at most {SHORT_TEXT_MAX} characters"
    if kind == "choice":
        choices = [str(choice) for choice in field.get("choices") or []]
        return None if value in choices else f"must be one of {choices}, not {_shown(value)}"
    if kind == "date":
        try:
            (date.fromisoformat if len(value) == 10 else datetime.fromisoformat)(value.replace("Z", "+00:00"))
        except ValueError:
            return f"must be an ISO 8601 date or date-time (2026-11-30), not {_shown(value)}"
    return None  # text, photo (a URL or an attachment id), location as an address


def _location_problem(value: dict[str, Any]) -> str | None:
    """A location given as an object: an address and/or coordinates."""
    extra = sorted(set(value) - {"address", "district", "lat", "lon"})
    if extra:
        return f"as a location takes address, district, lat and lon, not {extra}"
    for key in ("address", "district"):
        text = value.get(key)
        if text is not None and not (isinstance(text, str) and len(text) <= SHORT_TEXT_MAX):
            return f"{key} must be text of at most {SHORT_TEXT_MAX} characters"
    for key, bound in (("lat", 90), ("lon", 180)):
        number = value.get(key)
        if number is not None and (isinstance(number, bool) or not isinstance(number, int | float) or not -bound <= number <= bound):
            return f"{key} must be a number from {-bound} to {bound}"
    return None


def _shown(value: Any) -> str:
    """A value in a message, never a long one (it may be what is wrong)."""
    text = repr(value) if not isinstance(value, dict | list) else type(value).__name__
    return text if len(text) <= 60 else text[:57] + "..."
