"""The jurisdiction's configuration that command handlers need (``ctx.deps``)."""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

from domain.deadlines import WorkingTime
from domain.requests.intake import IntakePolicy
from domain.requests.sla import SlaPolicy


def random_reference(now: datetime) -> str:
    """Digits only, so citizens can key it into the IVR: YYMMDD + 6 random digits."""
    return now.strftime("%y%m%d") + f"{secrets.randbelow(1_000_000):06d}"


class SecretHasher(Protocol):
    """Hashes secrets one way (passwords, sign-in codes): infra/identity/secrets.py."""

    def hash(self, secret: str) -> str: ...

    def verify(self, hashed: str, secret: str) -> bool: ...


@dataclass
class Deps:
    """Who may register anonymously, how phone numbers are read, the calendar and SLA rules."""

    policy: IntakePolicy = field(default_factory=IntakePolicy)
    jurisdiction: str = "default"
    calendar: WorkingTime | None = None  # used when the jurisdiction has no calendar aggregate
    new_reference: Callable[[datetime], str] = random_reference
    sla: SlaPolicy = field(default_factory=SlaPolicy)
    secrets: SecretHasher | None = None
