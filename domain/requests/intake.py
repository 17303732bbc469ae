"""Per-jurisdiction policies: who may register anonymously, where phone numbers are read."""

from __future__ import annotations

from dataclasses import dataclass

from domain.base import InvalidCommand
from domain.citizens.aggregate import ContactDetails

CONTACT_FIELDS = ("name", "phone", "email")


@dataclass(frozen=True)
class IntakePolicy:
    """The Italian procedure's rule is the default: no name and phone, no registration.

    A jurisdiction may instead accept anonymous requests; the contact given (if any) is
    then hidden from departments and integrators.
    """

    allow_anonymous: bool = False
    required_contact: tuple[str, ...] = ("name", "phone")
    default_region: str = "IT"
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
