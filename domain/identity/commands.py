"""Identity commands: staff accounts, API keys, citizens' sign-in codes."""

from __future__ import annotations

from pydantic import AwareDatetime, Field, SecretStr

from domain.access import Action
from domain.handling import Command, Target


class EnrollStaff(Command):
    action = Action.STAFF_MANAGE

    username: str = Field(min_length=2, max_length=64)
    name: str = Field(min_length=1, max_length=200)
    roles: list[str] = Field(min_length=1, max_length=12)
    departments: list[str] = Field(default_factory=list, max_length=50)
    password: SecretStr | None = Field(default=None, description="Optional: set later with /staff/{username}/password")


class StaffCommand(Command):
    """A command on one staff account, named by its username."""

    action = Action.STAFF_MANAGE

    username: Target = ""


class GrantRole(StaffCommand):
    role: str


class RevokeRole(StaffCommand):
    role: str


class AssignDepartments(StaffCommand):
    departments: list[str] = Field(max_length=50)


class DisableStaff(StaffCommand):
    reason: str = Field(min_length=1, max_length=500)


class EnableStaff(StaffCommand):
    pass


class SetPassword(StaffCommand):
    password: SecretStr


class IssueApiKey(Command):
    """Built by the API from what the administrator asked for and the secret it drew:
    only the secret's hash reaches the event."""

    action = Action.API_KEYS_MANAGE

    name: str = Field(min_length=1, max_length=200)
    role: str = "integrator"
    actions: list[str] = Field(min_length=1, max_length=100)
    jurisdiction: str | None = None
    expires_at: AwareDatetime | None = None
    secret_hash: str = Field(min_length=16, max_length=200)


class RevokeApiKey(Command):
    action = Action.API_KEYS_MANAGE

    key_id: Target = ""
    reason: str = Field(min_length=1, max_length=500)


class RequestSignInCode(Command):
    """``identifier`` is ``phone:+39…`` or ``email:…`` (normalised by the API); ``code``
    was drawn by the API, which sends it: the event keeps only its hash."""

    action = Action.CITIZENS_SIGN_IN

    identifier: str
    code: SecretStr


class VerifySignInCode(Command):
    action = Action.CITIZENS_SIGN_IN

    identifier: str
    code: SecretStr
    name: str | None = None  # for a citizen new to the hotline
    language: str | None = None
