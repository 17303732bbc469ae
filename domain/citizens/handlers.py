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


def resolve_citizen(uow: UnitOfWork, ctx: Context, contact: ContactDetails, language: str) -> Citizen | None:
    """The one citizen behind this phone number or email, created on first contact."""
    identifiers = contact.identifiers()
    if not identifiers:
        return None
    citizen: Citizen | None = None
    for identifier in identifiers:
        claim = uow.read(CitizenIdentity, identity_id(identifier))  # claims never change
        if claim is not None:
            citizen = uow.get(Citizen, uuid.UUID(claim.citizen_id))
            break
    if citizen is None:
        citizen = Citizen.register(contact, language, ctx)
        uow.add(citizen)
        for identifier in identifiers:
            uow.add(CitizenIdentity.claim(identifier, citizen.id, ctx))
        return citizen
    for identifier in citizen.learn(contact, ctx):
        if uow.find(CitizenIdentity, identity_id(identifier)) is None:
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
            claim = uow.find(CitizenIdentity, identity_id(identifier))
            if claim is None:
                uow.add(CitizenIdentity.claim(identifier, citizen.id, ctx))
            elif claim.citizen_id != str(citizen.id):
                raise InvalidTransition(f"{identifier.split(':')[0]} already belongs to another citizen", code="identifier_taken")
    if cmd.language is not None:
        citizen.prefer_language(cmd.language, ctx)
    return {"id": str(citizen.id), "version": citizen.version}
