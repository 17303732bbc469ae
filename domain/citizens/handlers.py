"""Citizen handlers: one citizen across channels, recognised by phone number or email."""

from __future__ import annotations

import uuid
from typing import Any

from domain.access import authorize
from domain.base import Context, InvalidTransition
from domain.citizens import commands as c
from domain.citizens.aggregate import Citizen, CitizenIdentity, ContactDetails, identity_id
from domain.handling import Handlers, UnitOfWork, parse_id

handles = Handlers("citizens")


def find_claim(uow: UnitOfWork, contact: ContactDetails, identifier: str) -> tuple[CitizenIdentity | None, bool]:
    """Who claimed this identifier, and whether under its current key (else under the key
    it had before email keys were case-folded: a claim made then is still honoured)."""
    claim = uow.read(CitizenIdentity, identity_id(identifier))  # claims never change
    if claim is not None:
        return claim, True
    legacy = contact.legacy_identifier(identifier)
    return (uow.read(CitizenIdentity, identity_id(legacy)) if legacy else None), False


def known_citizen(uow: UnitOfWork, contact: ContactDetails) -> uuid.UUID | None:
    """The citizen this phone number or email already belongs to, if any; creates nothing."""
    for identifier in contact.identifiers():
        claim, _ = find_claim(uow, contact, identifier)
        if claim is not None:
            return uuid.UUID(claim.citizen_id)
    return None


def resolve_citizen(uow: UnitOfWork, ctx: Context, contact: ContactDetails, language: str) -> Citizen | None:
    """The one citizen behind this phone number or email, created on first contact."""
    identifiers = contact.identifiers()
    if not identifiers:
        return None
    claims = {identifier: find_claim(uow, contact, identifier) for identifier in identifiers}
    owner = next((claim.citizen_id for claim, _ in claims.values() if claim is not None), None)
    if owner is None:
        citizen = Citizen.register(contact, language, ctx)
        uow.add(citizen)
        for identifier in identifiers:
            uow.add(CitizenIdentity.claim(identifier, citizen.id, ctx))
        return citizen
    citizen = uow.get(Citizen, uuid.UUID(owner))
    citizen.learn(contact, ctx)
    for identifier, (claim, current) in claims.items():
        # New to the hotline, or claimed by this citizen under its old key: claim it under
        # the current one. An identifier of another citizen stays theirs.
        if claim is None or (not current and claim.citizen_id == owner):
            uow.add(CitizenIdentity.claim(identifier, citizen.id, ctx))
    return citizen


def signed_in_citizen(uow: UnitOfWork, ctx: Context) -> Citizen | None:
    """The signed-in citizen acting (their token names their record), if it is one."""
    if ctx.actor.role != "citizen" or ctx.actor.citizen_id is None:
        return None
    return uow.get(Citizen, parse_id(ctx.actor.citizen_id, "citizen"))


@handles(c.UpdateCitizen)
def update_citizen(uow: UnitOfWork, ctx: Context, cmd: c.UpdateCitizen) -> dict[str, Any]:
    citizen = uow.get(Citizen, parse_id(cmd.citizen_id, "citizen"))
    authorize(ctx.actor, cmd.action, citizen.access())
    citizen.expect_version(cmd.expected_version)
    if cmd.contact is not None:
        contact = ContactDetails.parse(cmd.contact.model_dump(), ctx.deps.policy.default_region)
        citizen.change_contact_details(contact, ctx)
        for identifier in contact.identifiers():
            claim, current = find_claim(uow, contact, identifier)
            if claim is not None and claim.citizen_id != str(citizen.id):
                raise InvalidTransition(f"{identifier.split(':')[0]} already belongs to another citizen", code="identifier_taken")
            if claim is None or not current:
                uow.add(CitizenIdentity.claim(identifier, citizen.id, ctx))
    if cmd.language is not None:
        citizen.prefer_language(cmd.language, ctx)
    return {"id": str(citizen.id), "version": citizen.version}
