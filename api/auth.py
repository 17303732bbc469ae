"""Who is asking, and may they: sign-in and permissions on the HTTP side.

Every endpoint declares its rule with :func:`allow` (an :class:`~domain.access.Action`
of the one policy, domain/access.py) or, for the few that need no sign-in at all
(health, metrics, the token endpoints' keys), with :data:`OPEN`. ``api/app.py`` copies
the rule into the OpenAPI document (``x-permission``), and a test refuses any operation
without one.

Credentials, in order: ``Authorization: Bearer <JWT>`` (the hotline's own tokens, or the
configured OpenID Connect issuer's), ``Authorization: Bearer hk_…`` or ``X-API-Key: hk_…``
(an integrator's API key), and, only with ``HOTLINE_TRUSTED_GATEWAY=true`` behind an
authenticating proxy, the proxy's ``X-Actor-*`` headers. No credentials: an anonymous
citizen, who may take only the public actions (and is rate-limited per address).
"""

from __future__ import annotations

import hmac
from typing import Any

from fastapi import Depends, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from api.errors import Unauthenticated
from domain.access import PUBLIC, Access, Action, Scope, acting_department, authorize, scope, scopes
from domain.base import Actor, Forbidden, InvalidCommand
from infra.identity.service import API_KEY_PREFIX
from infra.identity.tokens import InvalidToken, NoHotlineRole
from infra.rate_limits import RateLimits
from infra.runtime import Hotline

bearer = HTTPBearer(
    auto_error=False,
    description="A token from POST /auth/token (staff), POST /auth/citizen/token (citizens), the OpenID Connect issuer, or an API key hk_…",
)
ANONYMOUS = Actor(id="anonymous", role="citizen", via="anonymous")
SESSION_COOKIE, CSRF_COOKIE = "hotline_session", "hotline_csrf"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def client_address(request: Request) -> str:
    return request.client.host if request.client else "unknown"


def caller(actor: Actor, request: Request) -> str:
    """Whom a public limit counts: the signed-in subject, else the client address."""
    return actor.id if actor is not ANONYMOUS else f"address:{client_address(request)}"


async def authenticate(request: Request, credentials: HTTPAuthorizationCredentials | None = Depends(bearer)) -> Actor | None:
    """The signed-in actor, None without credentials; 401 for credentials we refuse.

    Async: run on the event loop, not in a worker thread (two thread hops a request cost
    more than the check). What it may read is brief and cached: a verified token for its
    lifetime, accounts and API keys through the store's 2 s reference cache, the issuer's
    keys on rotation."""
    hotline: Hotline = request.app.state.hotline
    raw = credentials.credentials if credentials is not None else request.headers.get("x-api-key")
    if raw:
        try:
            if raw.startswith(API_KEY_PREFIX):
                # Expiry is a fact of the key's events: measured on the hotline's clock.
                return hotline.identity.verify_api_key(raw, hotline.clock.now())
            return hotline.identity.verify_token(raw)
        except InvalidToken as exc:
            raise Unauthenticated(str(exc)) from None
        except NoHotlineRole as exc:
            raise Forbidden(str(exc)) from None
    if request.headers.get("authorization"):
        raise Unauthenticated("the Authorization header must be 'Bearer <token>'")
    session = request.cookies.get(SESSION_COOKIE)
    if session:
        return session_actor(request, hotline, session)
    if hotline.settings.trusted_gateway and "x-actor-role" in request.headers:
        return gateway_actor(request)
    return None


def session_actor(request: Request, hotline: Hotline, token: str) -> Actor:
    """The console's sign-in: the same token, kept in an HttpOnly, SameSite=Strict cookie.
    A change sent with it must also carry the page's CSRF token (double submit: another
    site can neither read the cookie nor set the header)."""
    if request.method not in SAFE_METHODS:
        sent, expected = request.headers.get("x-csrf-token", ""), request.cookies.get(CSRF_COOKIE, "")
        if not expected or not hmac.compare_digest(sent.encode(), expected.encode()):
            raise Forbidden("a change from the console must carry its X-CSRF-Token", code="csrf")
    try:
        return hotline.identity.verify_token(token)
    except InvalidToken as exc:
        raise Unauthenticated(f"the console session has ended: {exc}") from None
    except NoHotlineRole as exc:
        raise Forbidden(str(exc)) from None


def gateway_actor(request: Request) -> Actor:
    """The authenticating proxy's word (trusted gateway mode only)."""
    h = request.headers
    role = h["x-actor-role"]
    roles = tuple(r.strip() for r in h.get("x-actor-roles", role).split(",") if r.strip())
    try:
        return Actor(
            id=h.get("x-actor-id") or "gateway-user",
            role=role,
            name=h.get("x-actor-name"),
            roles=roles if role in roles else (role, *roles),
            departments=tuple(d.strip() for d in h.get("x-actor-departments", "").split(",") if d.strip()),
            citizen_id=h.get("x-actor-citizen") or None,
            via="gateway",
        )
    except InvalidCommand as exc:
        raise Unauthenticated(f"the gateway's X-Actor-Role: {exc.message}") from None


def allow(action: Action) -> Any:
    """The endpoint's rule: the caller must be allowed ``action`` (403 naming it if not;
    401 if they must sign in first). Answers the acting :class:`Actor`.

    The scope (own department, own case, assigned) is checked where the thing acted on
    is known: by the command's handler, or by the query on the rows it reads."""

    async def dependency(request: Request, actor: Actor | None = Depends(authenticate)) -> Actor:
        hotline: Hotline = request.app.state.hotline
        if actor is None:
            if action not in PUBLIC:
                raise Unauthenticated(f"sign in to take {action.value}: send 'Authorization: Bearer <token>'", permission=action.value)
            actor = ANONYMOUS
        authorize(actor, action)
        if action in PUBLIC and actor.role == "citizen":
            # The public face: limited per address (anonymous) or per signed-in citizen.
            who = caller(actor, request)
            limits = hotline_limits(hotline)
            if limits.shared:  # a database round trip: off the event loop
                await run_in_threadpool(limits.hit, "public", hotline.settings.rate_limit_public, who)
            else:
                limits.hit("public", hotline.settings.rate_limit_public, who)
        request.state.actor = actor
        return actor

    dependency.action = action  # type: ignore[attr-defined]  # read by api/app.py for x-permission
    dependency.__name__ = f"allow_{action.name.lower()}"
    return Depends(dependency)


async def _open(request: Request) -> None:
    """No sign-in: health, metrics (its own token), signing keys, discovery."""


_open.action = None  # type: ignore[attr-defined]
OPEN: Any = Depends(_open)


def hotline_limits(hotline: Hotline) -> RateLimits:
    """The process's rate limits (built on first use: in memory, or in PostgreSQL)."""
    limits: RateLimits | None = hotline.extras.get("rate_limits")
    if limits is None:
        limits = hotline.extras.setdefault("rate_limits", RateLimits.for_hotline(hotline))
    return limits


def rule_of(dependant: Any) -> tuple[bool, Action | None]:
    """(declared, action) of a route's dependency tree: what :func:`allow` or :data:`OPEN` said."""
    for dep in dependant.dependencies:
        if hasattr(dep.call, "action"):
            return True, dep.call.action
        declared, action = rule_of(dep)
        if declared:
            return declared, action
    return False, None


# ---------------------------------------------------------------------- scoped reads
def department_filter(actor: Actor, action: Action, named: str | None) -> str | None:
    """A list's department filter: any (or none) for scope ``all``; for a department user,
    one of their own departments, whatever the query asked."""
    if scope(actor, action) is not Scope.OWN_DEPARTMENT:
        return named  # all; or a citizen's own cases (citizen_filter narrows those)
    return acting_department(actor, action, named, actor.departments[0] if len(actor.departments) == 1 else None)


def citizen_filter(actor: Actor, action: Action, named: str | None) -> str | None:
    """A list's citizen filter: a citizen sees only their own cases."""
    if scope(actor, action) is not Scope.OWN_CASES or Scope.ALL in scopes(actor, action):
        return named
    if actor.citizen_id is None or (named is not None and named != actor.citizen_id):
        raise Forbidden(f"a citizen reads only their own cases ({action.value})", permission=action.value)
    return actor.citizen_id


def row_access(row: dict[str, Any]) -> Access:
    return Access.of_department(row.get("department_id"), row.get("citizen_id"))
