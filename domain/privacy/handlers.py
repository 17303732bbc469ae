"""Privacy handlers: an erasure is an event on the citizen's erasure record."""

from __future__ import annotations

import uuid
from typing import Any

from domain.access import Access, authorize
from domain.base import Context, InvalidCommand, NotFound
from domain.citizens.aggregate import Citizen, CitizenIdentity, ContactDetails, identity_id
from domain.handling import Handlers, UnitOfWork, parse_id
from domain.privacy.aggregate import ERASED, PersonalDataErasure, erasure_id, retention_reason
from domain.privacy.commands import ApplyRetention, EraseCitizen, RecordErasureCarriedOut
from domain.requests.aggregate import ServiceRequest

handles = Handlers("privacy")


def _record(uow: UnitOfWork, ctx: Context, citizen_id: str) -> PersonalDataErasure:
    record = uow.find(PersonalDataErasure, erasure_id(citizen_id))
    if record is None:
        record = PersonalDataErasure.open(citizen_id, ctx)
        uow.add(record)
    return record


@handles(EraseCitizen)
def erase_citizen(uow: UnitOfWork, ctx: Context, cmd: EraseCitizen) -> dict[str, Any]:
    citizen = uow.get(Citizen, parse_id(cmd.citizen_id, "citizen"))
    authorize(ctx.actor, cmd.action, Access(citizen_id=str(citizen.id)))
    record = _record(uow, ctx, str(citizen.id))
    # Personal data on the record that reads (not "[erased]") was written after any erasure.
    readable = any(v is not None and v != ERASED for v in citizen.personal.values())
    record.erase(cmd.reason, "request", cmd.subjects, ctx, new_data=readable)
    released = release_claims(uow, ctx, citizen, cmd.subjects)
    return {
        "citizen_id": str(citizen.id),
        "erasures": record.erasures,
        "subjects": len({str(citizen.id), *cmd.subjects}),
        "claims_released": released,
    }


def release_claims(uow: UnitOfWork, ctx: Context, citizen: Citizen, subjects: list[str]) -> int:
    """Frees the erased citizen's phone numbers and emails: a later contact from them is a
    new citizen, not the erased one. The claims are those the key store linked to the
    citizen (``subjects``) and those of the details on record (read before the keys go)."""
    details = ContactDetails(**{k: v for k, v in citizen.personal.items() if k in ("phone", "email") and isinstance(v, str)})
    candidates = [*subjects, *(str(identity_id(i)) for i in _identifiers(details))]
    released = 0
    for subject in dict.fromkeys(candidates):
        try:
            claim = uow.find(CitizenIdentity, uuid.UUID(subject))
        except ValueError:
            continue
        if claim is not None and claim.citizen_id == str(citizen.id) and claim.release(ctx):
            released += 1
    return released


def _identifiers(details: ContactDetails) -> list[str]:
    try:
        return details.identifiers()
    except InvalidCommand:  # an already erased record ("[erased]" is no email): nothing to add
        return []


@handles(ApplyRetention, issued_by=("infra.privacy",))
def apply_retention(uow: UnitOfWork, ctx: Context, cmd: ApplyRetention) -> dict[str, Any]:
    if cmd.cutoff.tzinfo is None:
        raise InvalidCommand("the cutoff needs a time zone", field="cutoff")
    if cmd.cutoff > ctx.now:
        raise InvalidCommand("the retention cutoff is in the future", field="cutoff")
    erased, kept = [], []
    for candidate in cmd.candidates:
        try:
            citizen = uow.get(Citizen, parse_id(candidate.citizen_id, "citizen"))
        except NotFound:
            kept.append(candidate.citizen_id)
            continue
        if not _all_closed_before(uow, candidate.subjects, cmd.cutoff):
            kept.append(candidate.citizen_id)
            continue
        record = _record(uow, ctx, str(citizen.id))
        # Retention's candidates are those the key store still holds a key of (infra/privacy.py).
        record.erase(retention_reason(cmd.cutoff), "retention", candidate.subjects, ctx, new_data=True)
        release_claims(uow, ctx, citizen, candidate.subjects)
        erased.append(str(citizen.id))
    return {"erased": erased, "kept": kept, "cutoff": cmd.cutoff.isoformat()}


def _all_closed_before(uow: UnitOfWork, subjects: list[str], cutoff: Any) -> bool:
    """The rule, on the requests themselves: at least one request, every one closed
    before the cutoff (an open or recently closed one keeps the citizen's data)."""
    found = 0
    for subject in subjects:
        try:
            request = uow.find(ServiceRequest, uuid.UUID(subject))
        except ValueError:
            continue
        if request is None:
            continue
        found += 1
        if request.status != "closed" or request.closed_at is None or request.closed_at >= cutoff:
            return False
    return found > 0


@handles(RecordErasureCarriedOut, issued_by=("infra.privacy",))
def record_erasure_carried_out(uow: UnitOfWork, ctx: Context, cmd: RecordErasureCarriedOut) -> dict[str, Any]:
    record = uow.get(PersonalDataErasure, erasure_id(cmd.citizen_id))
    record.carry_out(cmd.keys_destroyed, cmd.files_deleted, ctx)
    return {"citizen_id": cmd.citizen_id, "erasures": record.erasures, "carried_out": record.carried_out}
