"""Privacy: a citizen's right to erasure, honoured by crypto-shredding.

Personal data lives only in event fields named ``personal``, encrypted with a key per
citizen (``infra/citizen_keys.py``). Erasing a citizen destroys their keys: the events
stay (the history replays, every count stays the same), but their ``personal`` values
read back as :data:`ERASED`. :class:`PersonalDataErasure` records each erasure, who asked
and why, with the ids of the streams whose personal data it covers (``subjects``: the
citizen, their requests, contacts, notifications and identity claims; opaque ids, never
the data), so every read model can blank what it copied.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from domain.base import Context, HotlineAggregate, InvalidCommand, InvalidTransition, derived_id

# What a personal value reads as once its key is destroyed (and what read models show).
ERASED = "[erased]"
MIN_REASON = 5


def erased(personal: dict[str, Any] | None) -> dict[str, Any] | None:
    """The personal dict as it reads after erasure: the same keys, every value that was
    given replaced by :data:`ERASED` (absent values stay absent)."""
    if personal is None:
        return None
    return {k: None if v is None else ERASED for k, v in personal.items()}


def erasure_id(citizen_id: str) -> uuid.UUID:
    return derived_id("erasure", citizen_id)


class PersonalDataErasure(HotlineAggregate):
    """The erasures of one citizen's personal data (id derived from the citizen's)."""

    STREAM = "erasure"

    class Requested(HotlineAggregate.Created):
        citizen_id: str

    class Erased(HotlineAggregate.Event):
        citizen_id: str
        reason: str
        basis: str  # "request" (the citizen asked, an administrator acted) or "retention"
        subjects: list[str]  # stream ids whose personal data the destroyed keys covered

        def apply(self, e: PersonalDataErasure) -> None:
            e.erasures += 1
            e.last_erased_at = self.timestamp
            e.covered.update(self.subjects)

    class CarriedOut(HotlineAggregate.Event):
        """What the erasure's event decided was done: the keys destroyed, the outbox's
        copies redacted, the citizen's files deleted. An erasure without it (the process
        stopped half-way) is found and finished by ``hotline privacy resume``."""

        keys_destroyed: int
        files_deleted: int

        def apply(self, e: PersonalDataErasure) -> None:
            e.carried_out += 1

    def __init__(self, citizen_id: str) -> None:
        self.citizen_id = citizen_id
        self.erasures = 0
        self.carried_out = 0
        self.last_erased_at: datetime | None = None
        self.covered: set[str] = set()  # every stream an erasure of the citizen covered

    @property
    def half_done(self) -> bool:
        return self.erasures > self.carried_out

    @classmethod
    def open(cls, citizen_id: str, ctx: Context) -> PersonalDataErasure:
        return cls._start(cls.Requested, erasure_id(citizen_id), ctx, citizen_id=citizen_id)

    def erase(self, reason: str, basis: str, subjects: list[str], ctx: Context, *, new_data: bool) -> None:
        """``new_data``: the caller knows of personal data written since the last erasure
        (the citizen's record reads again, or the key store still holds a key of theirs)."""
        reason = reason.strip()
        if len(reason) < MIN_REASON:
            raise InvalidCommand("an erasure needs a reason", field="reason", min_length=MIN_REASON)
        # Erased once and carried out, nothing new since: a second erasure would only record
        # another event that erased nothing. A half-done one may run again (that finishes it),
        # and a stream linked to the citizen since then is new data to erase (this record's own
        # stream is linked too, by its events' citizen id, and holds no personal data).
        fresh_streams = {self.citizen_id, *subjects} - self.covered - {str(self.id)}
        if self.erasures and self.last_erased_at and not self.half_done and not new_data and not fresh_streams:
            when = self.last_erased_at.isoformat()
            raise InvalidTransition(
                f"citizen {self.citizen_id} was already erased at {when}: nothing new to erase",
                code="already_erased",
                erased_at=when,
                erasures=self.erasures,
            )
        # The citizen's own stream is always covered, whatever else the key store knew.
        covered = list(dict.fromkeys([self.citizen_id, *subjects]))
        self._record(self.Erased, ctx, citizen_id=self.citizen_id, reason=reason, basis=basis, subjects=covered)

    def carry_out(self, keys_destroyed: int, files_deleted: int, ctx: Context) -> None:
        if not self.half_done:
            raise InvalidTransition("no erasure of this citizen is waiting to be carried out")
        self._record(self.CarriedOut, ctx, keys_destroyed=keys_destroyed, files_deleted=files_deleted)


def retention_reason(cutoff: datetime) -> str:
    return f"retention: every request of the citizen closed before {cutoff.date().isoformat()}"
