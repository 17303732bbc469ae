"""Signing tests in: real bearer tokens from the hotline's own issuer.

``token_for`` mints a token the server of a data folder accepts (as ``hotline token``
does). :class:`SignedInClient` is a TestClient that signs every request in: the
``X-Actor-Id`` / ``X-Actor-Role`` / ``X-Actor-Departments`` / ``X-Actor-Citizen`` headers
with which a test names who acts become a real token (verified like any other; the
server itself ignores those headers), and a request naming nobody goes as ``DEFAULT``,
a supervisor. ``anonymous=True`` sends no credentials at all.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from fastapi.testclient import TestClient

from infra.identity.keys import Keyring
from infra.identity.tokens import TokenIssuer
from infra.settings import Settings

DEFAULT = {"X-Actor-Id": "sup-default", "X-Actor-Role": "supervisor"}
_ISSUERS: dict[str, TokenIssuer] = {}


def token_for(
    settings: Settings,
    sub: str,
    roles: str | Sequence[str],
    *,
    departments: Sequence[str] = (),
    citizen: str | None = None,
    ttl: int = 3600,
    now: float | None = None,
) -> str:
    key = str(settings.keys_dir)
    issuer = _ISSUERS.get(key)
    if issuer is None:
        issuer = _ISSUERS[key] = TokenIssuer(Keyring(settings.keys_dir), settings.token_issuer, settings.oidc_audience)
    role_list = [roles] if isinstance(roles, str) else list(roles)
    return issuer.issue(sub, role_list, ttl=ttl, departments=departments, citizen_id=citizen, now=now)


def bearer(settings: Settings, sub: str, roles: str | Sequence[str], **kw: Any) -> dict[str, str]:
    return {"Authorization": f"Bearer {token_for(settings, sub, roles, **kw)}"}


def actor(sub: str, role: str, departments: Sequence[str] = (), citizen: str | None = None) -> dict[str, str]:
    """Who acts, in the headers SignedInClient turns into a token."""
    headers = {"X-Actor-Id": sub, "X-Actor-Role": role}
    if departments:
        headers["X-Actor-Departments"] = ",".join(departments)
    if citizen:
        headers["X-Actor-Citizen"] = citizen
    return headers


def signed_in(headers: dict[str, str], settings: Settings) -> dict[str, str]:
    """The request's headers with the named actor replaced by a real bearer token."""
    if any(k.lower() == "authorization" for k in headers):
        return headers
    named = {k.lower(): v for k, v in headers.items()}
    who = named if "x-actor-role" in named else {k.lower(): v for k, v in DEFAULT.items()}
    rest = {k: v for k, v in headers.items() if not k.lower().startswith("x-actor-")}
    departments = [d for d in who.get("x-actor-departments", "").split(",") if d]
    token = token_for(settings, who["x-actor-id"], who["x-actor-role"], departments=departments, citizen=who.get("x-actor-citizen"))
    return {**rest, "Authorization": f"Bearer {token}"}


class SignedInClient(TestClient):
    def request(self, method: str, url: Any, *args: Any, anonymous: bool = False, **kwargs: Any) -> Any:  # type: ignore[override]
        if not anonymous:
            settings = self.app.state.hotline.settings  # type: ignore[attr-defined]
            kwargs["headers"] = signed_in(dict(kwargs.get("headers") or {}), settings)
        return super().request(method, url, *args, **kwargs)
