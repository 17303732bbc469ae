"""Identity handlers: staff accounts, API keys and citizens' sign-in codes.

Hashing (argon2 for passwords and codes) is injected as ``ctx.deps.secrets``: the domain
decides what is hashed and when, not how.
"""

from __future__ import annotations

from typing import Any

from domain.base import Context, InvalidTransition, NotFound
from domain.citizens.aggregate import ContactDetails, check_language, identifier_key
from domain.citizens.handlers import resolve_citizen
from domain.config import SecretHasher
from domain.handling import Handlers, UnitOfWork, on_aggregate, parse_id
from domain.identity import commands as c
from domain.identity.api_keys import ApiKey
from domain.identity.sign_in import CitizenSignIn, sign_in_id
from domain.identity.staff import StaffCredential, StaffMember, check_password, credential_id, staff_id

handles = Handlers("identity")


def hasher(ctx: Context) -> SecretHasher:
    if ctx.deps.secrets is None:
        raise RuntimeError("no secret hasher configured (infra/runtime.py injects argon2)")
    return ctx.deps.secrets


# ------------------------------------------------------------------------ staff
def _set_password(uow: UnitOfWork, ctx: Context, member: StaffMember, password: str) -> None:
    hashed = hasher(ctx).hash(check_password(password))
    credential = uow.find(StaffCredential, credential_id(member.username))
    if credential is None:
        uow.add(StaffCredential.set_first(member.username, hashed, ctx))
    else:
        credential.reset(hashed, ctx)
    member.password_changed(ctx)


@handles(c.EnrollStaff)
def enroll_staff(uow: UnitOfWork, ctx: Context, cmd: c.EnrollStaff) -> dict[str, Any]:
    if uow.find(StaffMember, staff_id(cmd.username)) is not None:
        raise InvalidTransition(f"{cmd.username} is already enrolled", code="already_enrolled")
    member = StaffMember.enrol(cmd.username, cmd.name, cmd.roles, sorted(set(cmd.departments)), ctx)
    uow.add(member)
    if cmd.password is not None:
        _set_password(uow, ctx, member, cmd.password.get_secret_value())
    return member.summary()


def load_member(uow: UnitOfWork, cmd: c.StaffCommand) -> StaffMember:
    member = uow.find(StaffMember, staff_id(cmd.username))
    if member is None:
        raise NotFound(f"no staff member {cmd.username}")
    return member


on_member = on_aggregate(load_member, StaffMember.summary)


@handles(c.GrantRole)
@on_member
def grant_role(uow: UnitOfWork, ctx: Context, member: StaffMember, cmd: c.GrantRole) -> None:
    member.grant(cmd.role, ctx)


@handles(c.RevokeRole)
@on_member
def revoke_role(uow: UnitOfWork, ctx: Context, member: StaffMember, cmd: c.RevokeRole) -> None:
    member.revoke(cmd.role, ctx)


@handles(c.AssignDepartments)
@on_member
def assign_departments(uow: UnitOfWork, ctx: Context, member: StaffMember, cmd: c.AssignDepartments) -> None:
    member.assign_departments(cmd.departments, ctx)


@handles(c.DisableStaff)
@on_member
def disable_staff(uow: UnitOfWork, ctx: Context, member: StaffMember, cmd: c.DisableStaff) -> None:
    member.disable(cmd.reason, ctx)


@handles(c.EnableStaff)
@on_member
def enable_staff(uow: UnitOfWork, ctx: Context, member: StaffMember, cmd: c.EnableStaff) -> None:
    member.enable(ctx)


@handles(c.SetPassword)
@on_member
def set_password(uow: UnitOfWork, ctx: Context, member: StaffMember, cmd: c.SetPassword) -> None:
    _set_password(uow, ctx, member, cmd.password.get_secret_value())


# ------------------------------------------------------------------------ API keys
@handles(c.IssueApiKey, issued_by=("api.routers.staff",))
def issue_api_key(uow: UnitOfWork, ctx: Context, cmd: c.IssueApiKey) -> dict[str, Any]:
    jurisdiction = cmd.jurisdiction or ctx.deps.jurisdiction
    key = ApiKey.issue(cmd.name, cmd.role, cmd.actions, jurisdiction, cmd.secret_hash, cmd.expires_at, ctx)
    uow.add(key)
    return key.summary()


@handles(c.RevokeApiKey)
def revoke_api_key(uow: UnitOfWork, ctx: Context, cmd: c.RevokeApiKey) -> dict[str, Any]:
    key = uow.find(ApiKey, parse_id(cmd.key_id, "API key"))
    if key is None:
        raise NotFound(f"no API key {cmd.key_id}")
    key.expect_version(cmd.expected_version)
    key.revoke(cmd.reason, ctx)
    return key.summary()


# ------------------------------------------------------------------------ citizens' codes
@handles(c.RequestSignInCode, issued_by=("api.routers.auth",))
def request_sign_in_code(uow: UnitOfWork, ctx: Context, cmd: c.RequestSignInCode) -> dict[str, Any]:
    key = identifier_key(cmd.identifier)  # Mario.Rossi@ and mario.rossi@ wait for one code
    sign_in = uow.find(CitizenSignIn, sign_in_id(key))
    if sign_in is None:
        sign_in = CitizenSignIn.start(key, ctx)
        uow.add(sign_in)
    sign_in.issue_code(hasher(ctx).hash(cmd.code.get_secret_value()), ctx)
    assert sign_in.expires_at is not None
    return {"expires_at": sign_in.expires_at.isoformat()}


@handles(c.VerifySignInCode, issued_by=("api.routers.auth",))
def verify_sign_in_code(uow: UnitOfWork, ctx: Context, cmd: c.VerifySignInCode) -> dict[str, Any]:
    """Accepted: the citizen (found by the phone or email, or registered now). Refused:
    why, with the wrong try recorded (so this answers rather than raises)."""
    sign_in = uow.find(CitizenSignIn, sign_in_id(identifier_key(cmd.identifier)))
    if sign_in is None:
        return {"accepted": False, "reason": "no code is waiting: ask for a new one"}
    code = cmd.code.get_secret_value()
    matches = sign_in.code_hash is not None and hasher(ctx).verify(sign_in.code_hash, code)
    refused = sign_in.verify(matches, ctx)
    if refused is not None:
        return {"accepted": False, "reason": refused}
    kind, _, value = cmd.identifier.partition(":")
    contact = ContactDetails.parse({kind: value, "name": cmd.name}, ctx.deps.policy.default_region)
    language = check_language(cmd.language or ctx.deps.policy.default_language)
    # One identifier, proven by the code: nothing to link, a tentative claim confirmed.
    citizen, _ = resolve_citizen(uow, ctx, contact, language, proven=True)
    assert citizen is not None  # a phone or an email always names one
    return {"accepted": True, "citizen_id": str(citizen.id), "name": citizen.personal.get("name")}
