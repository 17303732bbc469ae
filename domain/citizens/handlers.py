"""Citizen handlers: one citizen across channels, recognised by phone number or email."""

from __future__ import annotations

import uuid
from typing import Any

from domain.access import Action, allows, authorize
from domain.base import Context, InvalidCommand, InvalidTransition
from domain.citizens import commands as c
from domain.citizens.aggregate import Citizen, CitizenIdentity, ContactDetails, identity_id, normalise_phone
from domain.handling import Handlers, UnitOfWork, parse_id

handles = Handlers("citizens")


def find_claim(uow: UnitOfWork, contact: ContactDetails, identifier: str) -> tuple[CitizenIdentity | None, bool]:
    """Who claimed this identifier, and whether under its current key (else under the key
    it had before email keys were case-folded: a claim made then is still honoured)."""
    claim = _held(uow.read(CitizenIdentity, identity_id(identifier)))
    if claim is not None:
        return claim, True
    legacy = contact.legacy_identifier(identifier)
    return (_held(uow.read(CitizenIdentity, identity_id(legacy))) if legacy else None), False


def _held(claim: CitizenIdentity | None) -> CitizenIdentity | None:
    """A released claim (its citizen was erased) is no claim: the identifier is free."""
    return None if claim is None or claim.released else claim


def claim_identifier(uow: UnitOfWork, ctx: Context, identifier: str, citizen_id: uuid.UUID, *, checked: bool = True) -> None:
    """Claims the identifier for the citizen: a new claim, an event on the released one
    (the claim's id derives from the identifier, so there is only ever one aggregate), or
    a tentative claim of another citizen separated to this one (:func:`separates`)."""
    found = uow.find(CitizenIdentity, identity_id(identifier))
    if found is None:
        uow.add(CitizenIdentity.claim(identifier, citizen_id, ctx, verified=checked))
    elif found.released:
        found.reclaim(citizen_id, ctx, verified=checked)
    elif found.tentative and found.citizen_id != str(citizen_id) and checked:
        previous = uow.find(Citizen, uuid.UUID(str(found.citizen_id)))
        found.separate(citizen_id, ctx)
        if previous is not None:
            previous.withdraw_identifier(identifier, ctx)
    if checked:
        uow.get(Citizen, citizen_id).identity_checked(ctx)


def separates(uow: UnitOfWork, claim: CitizenIdentity | None) -> bool:
    """Whether a tentative claim, met where its identifier is checked to be the person's
    (a call the agent takes, a sign-in code), goes to that person rather than to the
    citizen it names: that citizen holds another identifier someone checked was theirs,
    so the one who typed this one beside it may be somebody else. A tentative claim of a
    citizen nobody checked is simply confirmed: nobody else can reach that record yet."""
    if claim is None or not claim.tentative or claim.citizen_id is None:
        return False
    holder = uow.find(Citizen, uuid.UUID(claim.citizen_id))
    return holder is not None and holder.checked


def _checked_claim(uow: UnitOfWork, identifier: str, claim: CitizenIdentity | None, current: bool) -> tuple[CitizenIdentity | None, bool]:
    """A claim met where its identifier is checked: a tentative one loaded afresh (it may
    change now, and the shared reference copy may be seconds old), and one that separates
    read as nobody's (the person met now takes it)."""
    if claim is None or not claim.tentative or not current:  # tentative claims are only made under current keys
        return claim, current
    mine = _held(uow.find(CitizenIdentity, identity_id(identifier)))
    return (None, True) if separates(uow, mine) else (mine, current)


def known_citizen(uow: UnitOfWork, contact: ContactDetails, *, checked: bool = False, confirmed_only: bool = False) -> uuid.UUID | None:
    """The citizen this phone number or email already belongs to, if any; creates nothing.
    ``checked``: the identifiers were checked to be the person's (a caller id), so a claim
    that would separate (:func:`separates`) names nobody; ``confirmed_only``: tentative
    claims name nobody."""
    for identifier in contact.identifiers():
        claim, _ = find_claim(uow, contact, identifier)
        if claim is None or claim.citizen_id is None:
            continue
        if (confirmed_only and claim.tentative) or (checked and separates(uow, claim)):
            continue
        return uuid.UUID(claim.citizen_id)
    return None


def resolve_citizen(
    uow: UnitOfWork, ctx: Context, contact: ContactDetails, language: str, *, proven: bool = False
) -> tuple[Citizen | None, bool]:
    """The one citizen behind this phone number or email, created on first contact; and
    whether identifiers given together were left unlinked.

    Identifiers new to the hotline are linked to a citizen on record only by staff who
    spoke to the person (:data:`Action.CITIZENS_LINK`). From any other channel a number or
    address of a citizen on record beside one that is not theirs (new, or another
    citizen's) leaves the record as it is: the request gets a new citizen holding the
    identifiers nobody has (or none), so a stranger cannot sign in to that citizen's cases
    with an address of their own, nor redirect their replies.

    Identifiers first given on such a channel are claimed tentatively: nobody checked that
    they are the person's who typed them. Where they are checked later (staff who spoke to
    the person, or ``proven``: the person's own sign-in code) the claim is confirmed, or,
    when its citizen holds another checked identifier, it is separated to the person met
    now (:func:`separates`): a stranger who typed Giulia's number beside their own address
    before she ever called does not receive her later cases."""
    identifiers = contact.identifiers()
    if not identifiers:
        return None, False
    checked = proven or allows(ctx.actor, Action.CITIZENS_LINK)
    claims = {identifier: find_claim(uow, contact, identifier) for identifier in identifiers}
    if checked:
        claims = {identifier: _checked_claim(uow, identifier, claim, current) for identifier, (claim, current) in claims.items()}
        disputed = False
    else:
        # Unchecked, a claim that would separate is nobody's to act on: the writer may be
        # the one who typed it or the one it belongs to. Linked to neither.
        nobodys = {identifier for identifier, (claim, _) in claims.items() if separates(uow, claim)}
        claims = {identifier: found for identifier, found in claims.items() if identifier not in nobodys}
        disputed = bool(nobodys)
    owners = {claim.citizen_id for claim, _ in claims.values() if claim is not None and claim.citizen_id is not None}
    owner = next((claim.citizen_id for claim, _ in claims.values() if claim is not None and claim.citizen_id is not None), None)
    free = [identifier for identifier, (claim, _) in claims.items() if claim is None]
    unlinked = not checked and (disputed or (owner is not None and (len(owners) > 1 or bool(free))))
    if owner is None or unlinked:
        if not free:
            return None, unlinked
        citizen = Citizen.register(contact.only(free) if unlinked else contact, language, ctx)
        uow.add(citizen)
        for identifier in free:
            claim_identifier(uow, ctx, identifier, citizen.id, checked=checked)
        return citizen, unlinked
    citizen = uow.get(Citizen, uuid.UUID(owner))
    citizen.learn(contact, ctx)
    for identifier, (claim, current) in claims.items():
        # New to the hotline, or claimed by this citizen under its old key: claim it under
        # the current one. An identifier of another citizen stays theirs.
        if claim is None or (not current and claim.citizen_id == owner):
            claim_identifier(uow, ctx, identifier, citizen.id, checked=checked)
        elif checked and claim.citizen_id == owner and claim.tentative:
            claim.verify(ctx)
            citizen.identity_checked(ctx)
    return citizen, False


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
            checked = allows(ctx.actor, Action.CITIZENS_LINK)
            if checked:  # one typed on the web beside another person's checked details is this citizen's
                claim, current = _checked_claim(uow, identifier, claim, current)
            if claim is not None and claim.citizen_id != str(citizen.id):
                raise InvalidTransition(f"{identifier.split(':')[0]} already belongs to another citizen", code="identifier_taken")
            if claim is None or not current:
                claim_identifier(uow, ctx, identifier, citizen.id, checked=checked)
    if cmd.language is not None:
        citizen.prefer_language(cmd.language, ctx)
    return {"id": str(citizen.id), "version": citizen.version}


# The SMS channel issues these when a number writes STOP or START (api/routers/sms_inbound.py).
SMS_CHANNEL = ("api.routers.sms_inbound",)


def _citizen_of_number(uow: UnitOfWork, ctx: Context, raw_phone: str) -> tuple[Citizen, str]:
    phone = normalise_phone(raw_phone, ctx.deps.policy.default_region)
    citizen, _ = resolve_citizen(uow, ctx, ContactDetails(phone=phone), ctx.deps.policy.default_language)
    if citizen is None:  # cannot happen: a phone number is an identifier
        raise InvalidCommand("a phone number is needed", field="phone")
    authorize(ctx.actor, Action.CITIZENS_UPDATE, citizen.access())
    return citizen, phone


@handles(c.OptOutOfSms, issued_by=SMS_CHANNEL)
def opt_out_of_sms(uow: UnitOfWork, ctx: Context, cmd: c.OptOutOfSms) -> dict[str, Any]:
    citizen, phone = _citizen_of_number(uow, ctx, cmd.phone)
    changed = citizen.opt_out_of_sms(phone, cmd.keyword, cmd.provider_message_id, ctx)
    return {"citizen_id": str(citizen.id), "sms_opted_out": True, "changed": changed}


@handles(c.OptInToSms, issued_by=SMS_CHANNEL)
def opt_in_to_sms(uow: UnitOfWork, ctx: Context, cmd: c.OptInToSms) -> dict[str, Any]:
    citizen, phone = _citizen_of_number(uow, ctx, cmd.phone)
    changed = citizen.opt_in_to_sms(phone, cmd.keyword, cmd.provider_message_id, ctx)
    return {"citizen_id": str(citizen.id), "sms_opted_out": False, "changed": changed}


def sms_refused(uow: UnitOfWork, phone: str) -> str | None:
    """Why no SMS may go to ``phone`` (E.164): its citizen opted out; None when it may.
    Read as reference data (fresh within the store's reference cache's seconds): the
    sender consults the citizen, never changes it."""
    claim = _held(uow.read(CitizenIdentity, identity_id(f"phone:{phone}")))
    if claim is None or claim.citizen_id is None:
        return None
    citizen = uow.read(Citizen, uuid.UUID(claim.citizen_id))
    return citizen.sms_refused(phone) if citizen is not None else None
