"""Privacy commands: erase one citizen's personal data, and the retention rule."""

from __future__ import annotations

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field
from pydantic.json_schema import SkipJsonSchema

from domain.access import Action
from domain.handling import Command, Target


class EraseCitizen(Command):
    """Destroys the citizen's keys: their personal data reads as erased everywhere."""

    action = Action.PRIVACY_ERASE
    citizen_id: Target = ""
    reason: str = Field(min_length=5, max_length=1000, description="Why (the citizen's request, a ruling …): recorded on the event")
    # Filled by the hotline from its key store (infra/citizen_keys.py), never by the caller.
    subjects: SkipJsonSchema[list[str]] = Field(default_factory=list)


class RetentionCandidate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    citizen_id: str
    subjects: list[str] = Field(default_factory=list)


class ApplyRetention(Command):
    """Erases the citizens among ``candidates`` whose requests are all closed before
    ``cutoff`` (checked here, on the requests themselves); the others are skipped."""

    action = Action.PRIVACY_RETENTION
    cutoff: AwareDatetime
    candidates: list[RetentionCandidate] = Field(default_factory=list, max_length=500)


class RecordErasureCarriedOut(Command):
    """The hotline finished what an erasure's event decided (keys, outbox, files)."""

    action = Action.PRIVACY_ERASE
    citizen_id: str
    keys_destroyed: int = Field(ge=0, le=1_000_000)
    files_deleted: int = Field(ge=0, le=1_000_000)
