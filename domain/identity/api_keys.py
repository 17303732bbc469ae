"""API keys for integrators and the hotline's own adapters (a PBX, a city system).

An administrator issues a key; the secret is shown once and only its hash is kept.
A key carries a role (``integrator`` or ``system``), the actions it may take (a subset of
what its role may) and the jurisdiction it serves; it can expire and be revoked. Every
event a key causes names it: the actor is ``api-key:<id>``.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from domain.access import RULES, Action
from domain.base import Actor, Context, HotlineAggregate, InvalidCommand, InvalidTransition

KEY_ROLES = ("integrator", "system")


def check_actions(role: str, actions: list[str]) -> list[str]:
    if role not in KEY_ROLES:
        raise InvalidCommand(f"an API key's role is one of {list(KEY_ROLES)}", field="role")
    if not actions:
        raise InvalidCommand("name the actions this key may take", field="actions", actions=[a.value for a in Action])
    known = {a.value for a in Action}
    unknown = [a for a in actions if a not in known]
    if unknown:
        raise InvalidCommand(f"unknown actions {unknown}", field="actions")
    beyond = [a for a in actions if role not in RULES[Action(a)]]
    if beyond:
        raise InvalidCommand(f"a {role} may not take {beyond}", field="actions")
    return sorted(set(actions))


class ApiKey(HotlineAggregate):
    STREAM = "api_key"
    PUBLISHED = False  # the secret's hash stays in the event store

    class Issued(HotlineAggregate.Created):
        name: str
        role: str
        actions: list[str]
        jurisdiction: str
        secret_hash: str
        expires_at: datetime | None

    class Revoked(HotlineAggregate.Event):
        reason: str

        def apply(self, k: ApiKey) -> None:
            k.revoked = True

    def __init__(self, name: str, role: str, actions: list[str], jurisdiction: str, secret_hash: str, expires_at: datetime | None) -> None:
        self.name = name
        self.role = role
        self.actions = actions
        self.jurisdiction = jurisdiction
        self.secret_hash = secret_hash
        self.expires_at = expires_at
        self.revoked = False

    @classmethod
    def issue(
        cls, name: str, role: str, actions: list[str], jurisdiction: str, secret_hash: str, expires_at: datetime | None, ctx: Context
    ) -> ApiKey:
        if not name.strip():
            raise InvalidCommand("an API key needs a name that says who uses it", field="name")
        if expires_at is not None and expires_at <= ctx.now:
            raise InvalidCommand("expires_at is in the past", field="expires_at")
        return cls._start(
            cls.Issued,
            uuid.uuid4(),
            ctx,
            name=name,
            role=role,
            actions=check_actions(role, actions),
            jurisdiction=jurisdiction,
            secret_hash=secret_hash,
            expires_at=expires_at,
        )

    def revoke(self, reason: str, ctx: Context) -> None:
        if self.revoked:
            raise InvalidTransition("the key is already revoked")
        self._record(self.Revoked, ctx, reason=reason)

    def usable(self, now: datetime) -> bool:
        return not self.revoked and (self.expires_at is None or now < self.expires_at)

    def actor(self) -> Actor:
        return Actor(id=f"api-key:{self.id}", role=self.role, name=self.name, allowed_actions=frozenset(self.actions), via="api_key")

    def summary(self) -> dict[str, Any]:
        return {
            "id": str(self.id),
            "name": self.name,
            "role": self.role,
            "actions": self.actions,
            "jurisdiction": self.jurisdiction,
            "expires_at": self.expires_at.isoformat() if self.expires_at else None,
            "revoked": self.revoked,
            "version": self.version,
        }
