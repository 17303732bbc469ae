"""Staff accounts: who may sign in, with which roles and for which departments.

Every change is an event on the member's stream (enrolled, role granted or revoked,
departments assigned, disabled, enabled, password changed), so who could do what, and
who said so, is itself auditable. The password hash lives apart, in an unpublished
:class:`StaffCredential` stream: it never reaches Kafka or analytics.
"""

from __future__ import annotations

import re
import uuid
from typing import Any

from domain.access import Access
from domain.base import ROLES, Actor, Context, HotlineAggregate, InvalidCommand, InvalidTransition, derived_id

USERNAME = re.compile(r"^[a-z0-9][a-z0-9._@-]{1,63}$")
# Roles a staff account may hold: citizens sign in with a code, processes with keys.
STAFF_ROLES = tuple(r for r in ROLES if r not in ("citizen", "system"))
MIN_PASSWORD = 10


def staff_id(username: str) -> uuid.UUID:
    return derived_id("staff", username)


def credential_id(username: str) -> uuid.UUID:
    return derived_id("staff-credential", username)


def check_username(username: str) -> str:
    if not USERNAME.match(username):
        raise InvalidCommand("a username is 2-64 lower-case letters, digits, '.', '_', '-' or '@'", field="username")
    return username


def check_roles(roles: list[str], departments: list[str]) -> list[str]:
    unknown = [r for r in roles if r not in STAFF_ROLES]
    if unknown:
        raise InvalidCommand(f"not a staff role: {unknown}", field="roles", staff_roles=list(STAFF_ROLES))
    if "department" in roles and not departments:
        raise InvalidCommand("a department user needs at least one department", field="departments")
    return sorted(set(roles), key=ROLES.index)


def check_password(password: str) -> str:
    if not MIN_PASSWORD <= len(password) <= 256:
        raise InvalidCommand(f"a password has {MIN_PASSWORD} to 256 characters", field="password")
    return password


class StaffMember(HotlineAggregate):
    STREAM = "staff"

    class Enrolled(HotlineAggregate.Created):
        """A staff member was enrolled, with their roles and departments (the password is kept apart, never published)."""

        username: str
        name: str
        roles: list[str]
        departments: list[str]

    class RoleGranted(HotlineAggregate.Event):
        """A role was granted to the staff member."""

        role: str

        def apply(self, s: StaffMember) -> None:
            s.roles = sorted({*s.roles, self.role}, key=ROLES.index)

    class RoleRevoked(HotlineAggregate.Event):
        """A role was revoked from the staff member."""

        role: str

        def apply(self, s: StaffMember) -> None:
            s.roles = [r for r in s.roles if r != self.role]

    class DepartmentsAssigned(HotlineAggregate.Event):
        """The staff member's departments changed."""

        departments: list[str]

        def apply(self, s: StaffMember) -> None:
            s.departments = list(self.departments)

    class Disabled(HotlineAggregate.Event):
        """The staff member can no longer sign in."""

        reason: str

        def apply(self, s: StaffMember) -> None:
            s.disabled = True

    class Enabled(HotlineAggregate.Event):
        """The staff member can sign in again."""

        def apply(self, s: StaffMember) -> None:
            s.disabled = False

    class PasswordChanged(HotlineAggregate.Event):
        """The hash itself is in the member's StaffCredential stream."""

        def apply(self, s: StaffMember) -> None:
            s.has_password = True

    def access(self) -> Access:
        return Access(subject=self.username)

    def __init__(self, username: str, name: str, roles: list[str], departments: list[str]) -> None:
        self.username = username
        self.name = name
        self.roles = roles
        self.departments = departments
        self.disabled = False
        self.has_password = False

    @classmethod
    def enrol(cls, username: str, name: str, roles: list[str], departments: list[str], ctx: Context) -> StaffMember:
        check_username(username)
        return cls._start(
            cls.Enrolled,
            staff_id(username),
            ctx,
            username=username,
            name=name,
            roles=check_roles(roles, departments),
            departments=departments,
        )

    def grant(self, role: str, ctx: Context) -> None:
        check_roles([role], self.departments)
        if role in self.roles:
            raise InvalidTransition(f"{self.username} already has role {role}")
        self._record(self.RoleGranted, ctx, role=role)

    def revoke(self, role: str, ctx: Context) -> None:
        if role not in self.roles:
            raise InvalidTransition(f"{self.username} does not have role {role}")
        self._record(self.RoleRevoked, ctx, role=role)

    def assign_departments(self, departments: list[str], ctx: Context) -> None:
        check_roles(self.roles, departments)
        self._record(self.DepartmentsAssigned, ctx, departments=sorted(set(departments)))

    def disable(self, reason: str, ctx: Context) -> None:
        if self.disabled:
            raise InvalidTransition(f"{self.username} is already disabled")
        if not reason.strip():
            raise InvalidCommand("disabling an account needs a reason", field="reason")
        self._record(self.Disabled, ctx, reason=reason)

    def enable(self, ctx: Context) -> None:
        if not self.disabled:
            raise InvalidTransition(f"{self.username} is not disabled")
        self._record(self.Enabled, ctx)

    def password_changed(self, ctx: Context) -> None:
        self._record(self.PasswordChanged, ctx)

    def actor(self) -> Actor:
        """Who this member is when signed in (the claims of their token)."""
        if self.disabled or not self.roles:
            raise InvalidTransition(f"{self.username} may not sign in", code="sign_in_refused")
        return Actor(id=self.username, role=self.roles[0], name=self.name, roles=tuple(self.roles), departments=tuple(self.departments))

    def summary(self) -> dict[str, Any]:
        return {
            "username": self.username,
            "name": self.name,
            "roles": self.roles,
            "departments": self.departments,
            "disabled": self.disabled,
            "has_password": self.has_password,
            "version": self.version,
        }


class StaffCredential(HotlineAggregate):
    """A member's password hash (argon2, by the injected hasher): never published."""

    STREAM = "staff_credential"
    PUBLISHED = False

    class PasswordSet(HotlineAggregate.Created):
        password_hash: str

    class PasswordReset(HotlineAggregate.Event):
        password_hash: str

        def apply(self, c: StaffCredential) -> None:
            c.password_hash = self.password_hash

    def __init__(self, password_hash: str) -> None:
        self.password_hash = password_hash

    @classmethod
    def set_first(cls, username: str, password_hash: str, ctx: Context) -> StaffCredential:
        return cls._start(cls.PasswordSet, credential_id(username), ctx, password_hash=password_hash)

    def reset(self, password_hash: str, ctx: Context) -> None:
        self._record(self.PasswordReset, ctx, password_hash=password_hash)
