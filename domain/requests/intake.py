"""Per-jurisdiction policies: who may register anonymously, where phone numbers are read."""

from __future__ import annotations

from dataclasses import dataclass

import phonenumbers

from domain.base import InvalidCommand
from domain.citizens.aggregate import ContactDetails

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

    def check(self, contact: ContactDetails, *, wants_anonymity: bool) -> bool:
        """Returns whether the contact is hidden; refuses what the policy forbids."""
        if wants_anonymity or contact.is_anonymous:
            if not self.allow_anonymous:
                raise InvalidCommand(
                    "anonymous requests are not registered here: the citizen's " + " and ".join(self.required_contact) + " are required",
                    code="anonymous_refused",
                    required=list(self.required_contact),
                )
            return True
        missing = [f for f in self.required_contact if not getattr(contact, f)]
        if missing:
            raise InvalidCommand(
                f"contact details missing: {missing} (this jurisdiction requires {list(self.required_contact)})",
                code="contact_required",
                missing=missing,
            )
        return False
