"""Signing in to the console, and the rule every console page declares.

The console keeps the same bearer token the API issues, in an HttpOnly, SameSite=Strict
cookie (``hotline_session``), beside a CSRF token the page sends back on every change
(``api/auth.py`` checks both). A page declares its permission with :func:`page`, as an
API endpoint does with ``allow``: without a session the browser is sent to the sign-in
page, and a refusal is a 403 page naming the permission.
"""

from __future__ import annotations

import secrets
from typing import Any
from urllib.parse import quote

from fastapi import Depends, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from api.auth import CSRF_COOKIE, SESSION_COOKIE, authenticate
from api.console.web import LANGUAGE_COOKIE, LANGUAGES, render
from api.deps import get_hotline
from api.errors import Unauthenticated, status_of
from api.routers.auth import failed_sign_in, limit_sign_in
from api.routing import HotlineRouter
from domain.access import Action, authorize
from domain.base import Actor, DomainError
from infra.identity.tokens import InvalidToken
from infra.rate_limits import LimitExceeded
from infra.runtime import Hotline

router = HotlineRouter(include_in_schema=False)


CONSOLE_SIGN_IN, PORTAL_SIGN_IN = "/console/sign-in", "/portal/sign-in"


class SignInFirst(DomainError):
    """A console page asked for without a session: the browser goes to sign in."""

    code = "unauthenticated"


def page(action: Action) -> Any:
    """The page's rule: a signed-in user allowed ``action`` (else sign-in, or a 403 page)."""
    return _rule(action, citizens_only=False)


def citizen_page(action: Action) -> Any:
    """A citizen's own page on the portal: a signed-in citizen allowed ``action``; anyone
    else (a visitor, a member of staff) is asked to sign in on the portal."""
    return _rule(action, citizens_only=True)


def _rule(action: Action, *, citizens_only: bool) -> Any:
    async def dependency(request: Request, actor: Actor | None = Depends(authenticate)) -> Actor:
        if actor is None or (citizens_only and not actor.citizen_id):
            sign_in = PORTAL_SIGN_IN if citizens_only else CONSOLE_SIGN_IN
            raise SignInFirst("sign in to see this page", next=request.url.path, sign_in=sign_in)
        authorize(actor, action)
        request.state.actor = actor
        return actor

    dependency.action = action  # type: ignore[attr-defined]  # what tests/console checks every page declares
    dependency.__name__ = f"{'citizen_page' if citizens_only else 'page'}_{action.name.lower()}"
    return Depends(dependency)


async def _public_page(request: Request, actor: Actor | None = Depends(authenticate)) -> Actor | None:
    """No sign-in needed (the sign-in page itself, the citizen portal's public pages)."""
    return actor


_public_page.action = None  # type: ignore[attr-defined]
PUBLIC_PAGE: Any = Depends(_public_page)


def start_session(response: Response, token: str, ttl: int, *, secure: bool) -> None:
    """Keeps the token in the browser for its lifetime, with a fresh CSRF token."""
    cookie = {"max_age": ttl, "samesite": "strict", "secure": secure, "path": "/"}
    response.set_cookie(SESSION_COOKIE, token, httponly=True, **cookie)  # type: ignore[arg-type]
    response.set_cookie(CSRF_COOKIE, secrets.token_urlsafe(24), httponly=False, **cookie)  # type: ignore[arg-type]


def end_session(response: Response) -> None:
    response.delete_cookie(SESSION_COOKIE, path="/")
    response.delete_cookie(CSRF_COOKIE, path="/")


# Where each role starts: its main screen.
HOMES = {
    "agent": "/console/desk",
    "expert": "/console/desk",
    "supervisor": "/console/wallboard",
    "department": "/console/inbox",
    "control_office": "/console/control",
    "analyst": "/console/reports",
    "auditor": "/console/audit",
    "administrator": "/console/knowledge",
    "citizen": "/portal",
}


def home_of(actor: Actor) -> str:
    return HOMES.get(actor.role, "/portal")


def safe_next(target: str | None) -> str | None:
    """Only a path of this site: never an open redirect."""
    if target and target.startswith("/") and not target.startswith("//") and "\\" not in target:
        return target
    return None


@router.get("/", response_class=RedirectResponse)
async def root(_: Actor | None = PUBLIC_PAGE) -> RedirectResponse:
    return RedirectResponse("/console", status_code=303)


@router.get("/console", response_class=RedirectResponse)
async def console_home(actor: Actor | None = PUBLIC_PAGE) -> RedirectResponse:
    return RedirectResponse(home_of(actor) if actor else "/console/sign-in", status_code=303)


@router.get("/console/sign-in", response_class=HTMLResponse)
async def sign_in_form(request: Request, next: str | None = None, actor: Actor | None = PUBLIC_PAGE) -> HTMLResponse:
    return render(request, "sign_in.html", None, next=safe_next(next) or "", error=None, username="")


@router.post("/console/sign-in", response_class=HTMLResponse)
def sign_in(
    request: Request,
    username: str = Form("", max_length=64),
    password: str = Form("", max_length=256),
    next: str = Form(""),
    hotline: Hotline = Depends(get_hotline),
    _: Actor | None = PUBLIC_PAGE,
) -> Response:
    try:
        limit_sign_in(hotline, request, f"username:{username}")
    except LimitExceeded as exc:  # the sign-in page, in the reader's language, not a JSON error
        page = render(request, "sign_in.html", None, status_code=429, next=safe_next(next) or "", error="limited", username=username)
        page.headers["Retry-After"] = str(exc.details.get("retry_after", 60))
        return page
    try:
        token, member = hotline.identity.staff_sign_in(username, password)
    except InvalidToken:
        failed_sign_in(hotline, request)
        return render(request, "sign_in.html", None, status_code=401, next=safe_next(next) or "", error="wrong", username=username)
    actor = member.actor()
    response = RedirectResponse(safe_next(next) or home_of(actor), status_code=303)
    start_session(response, token, hotline.settings.token_ttl_seconds, secure=request.url.scheme == "https")
    return response


@router.post("/console/sign-out", response_class=RedirectResponse)
async def sign_out(request: Request, actor: Actor | None = PUBLIC_PAGE) -> RedirectResponse:
    response = RedirectResponse("/portal" if actor and actor.role == "citizen" else "/console/sign-in", status_code=303)
    end_session(response)
    return response


@router.get("/console/language", response_class=RedirectResponse)
async def choose_language(request: Request, to: str, back: str | None = None, _: Actor | None = PUBLIC_PAGE) -> RedirectResponse:
    response = RedirectResponse(safe_next(back) or "/console", status_code=303)
    if to in LANGUAGES:
        response.set_cookie(LANGUAGE_COOKIE, to, max_age=365 * 86400, samesite="lax", path="/")
    return response


def install_pages(app: Any) -> None:
    """HTML answers for the console's refusals (the API keeps its JSON ones)."""
    json_domain_error = app.exception_handlers[DomainError]

    async def domain_error(request: Request, exc: DomainError) -> Response:
        if isinstance(exc, SignInFirst):
            target = f"{exc.details.get('sign_in', CONSOLE_SIGN_IN)}?next={quote(str(exc.details.get('next', '')))}"
            if request.headers.get("hx-request"):
                return Response(status_code=401, headers={"HX-Redirect": target})
            return RedirectResponse(target, status_code=303)
        wants_page = request.url.path.startswith(("/console", "/portal")) and not request.headers.get("hx-request")
        if wants_page and request.method == "GET":
            if isinstance(exc, Unauthenticated):
                sign_in = PORTAL_SIGN_IN if request.url.path.startswith("/portal") else CONSOLE_SIGN_IN
                response = RedirectResponse(f"{sign_in}?next={quote(request.url.path)}", status_code=303)
                end_session(response)
                return response
            status = status_of(exc)
            return render(request, "error.html", getattr(request.state, "actor", None), status_code=status, status=status, error=exc)
        answer: Response = await json_domain_error(request, exc)
        return answer

    app.exception_handlers[DomainError] = domain_error
