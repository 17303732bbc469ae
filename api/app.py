"""The FastAPI application: commands in, queries out. OpenAPI docs at /docs."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

from fastapi import APIRouter, FastAPI
from fastapi.middleware.cors import CORSMiddleware
from fastapi.routing import APIRoute
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api import console, errors, limits, openapi
from api.auth import rule_of
from api.read_your_writes import close_waiters
from api.routing import add_routes, set_read_threads
from consumers.background import start_background
from domain.access import PUBLIC
from infra.metrics import observe_http
from infra.runtime import Hotline
from infra.settings import Settings, get_settings

DESCRIPTION = """
Hotline: the backend of a citizen-service hotline and contact center (12345 / 311).

Every change is an event; what you read here are projections of those events.
Sign in first: staff with `POST /auth/token` (or at the OpenID Connect issuer),
citizens with a one-time code (`POST /auth/citizen/code`, then `/auth/citizen/token`),
integrators with an API key; send `Authorization: Bearer <token>`. Each operation names
the permission it needs (`x-permission`; the policy is domain/access.py): 401 without
a valid token, 403 naming the permission when it is refused. `Idempotency-Key` on a POST makes a retry harmless; `If-Match`
(or `expected_version`) makes a write conditional. A command's answer carries
`position`: pass it as `min_position` to a query to read your own write.
"""


def create_app(settings: Settings | None = None, hotline: Hotline | None = None, **start_kw: Any) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        own = hotline is None
        app.state.hotline = hotline or Hotline.start(settings or get_settings(), **start_kw)
        settings_now = app.state.hotline.settings
        set_read_threads(settings_now.query_threads, quick_inline=settings_now.inline_quick_reads)
        # The router, timers, notifier and analytics ingest, as the settings ask.
        stops = start_background(app.state.hotline)
        try:
            yield
        finally:
            await close_waiters(app.state.hotline)
            for stop in reversed(stops):
                stop()
            if own:
                app.state.hotline.close()

    app = FastAPI(title="Hotline", version="0.1.0", description=DESCRIPTION, lifespan=lifespan, docs_url=None, redoc_url=None)
    errors.install(app)

    app.add_middleware(ServerTiming)
    app.add_middleware(SecurityHeaders)

    cors = (settings or get_settings()).cors_origins if hotline is None else hotline.settings.cors_origins
    if cors:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=cors,
            allow_methods=["GET", "POST"],
            allow_headers=["Authorization", "Content-Type", "Idempotency-Key", "If-Match", "X-Correlation-Id"],
            expose_headers=["Location", "X-Event-Position", "Retry-After"],
        )

    from infra.wiring import ROUTERS

    for module in ROUTERS:
        declare_permissions(module.router)
        add_routes(app, module.router)
    console.install(app)
    openapi.install(app)  # every status, header and answer documented (api/openapi.py)
    limits.install(app, hotline.settings if hotline is not None else settings or get_settings())
    return app


# Everything a page loads comes from here (the API docs' Swagger UI too, from
# api/console/static/vendor); only the docs page runs an inline script (Swagger UI's start).
HTML_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
    "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
)
DOCS_CSP = HTML_CSP.replace("script-src 'self'", "script-src 'self' 'unsafe-inline'")


class HttpMiddleware:
    """A plain ASGI middleware for HTTP requests (others, the lifespan, pass through):
    a subclass defines ``http``, what it does around an HTTP request."""

    http: Callable[[Scope, Receive, Send], Awaitable[None]]

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        await self.http(scope, receive, send)


class ServerTiming(HttpMiddleware):
    """Server-Timing says where a request's time went: the command (domain and event store,
    group commit included) and the whole application (FastAPI, validation, serialisation,
    thread hand-off). The rest of what a client sees is the server loop and the network.
    The same time goes to the HTTP latency histogram, by route template (``/requests/{ref}``:
    the labels stay few). A plain ASGI middleware: Starlette's request/response middleware
    ran every request in a task of its own with memory streams, a large share of the event
    loop's time per request under load."""

    async def http(self, scope: Scope, receive: Receive, send: Send) -> None:
        started = time.perf_counter()
        answered = False

        async def send_with_timing(message: Message) -> None:
            nonlocal answered
            if message["type"] == "http.response.start":
                answered = True
                elapsed = time.perf_counter() - started
                observe_http(scope["method"], _route_of(scope), message["status"], elapsed)
                timing = f"app;dur={elapsed * 1000:.2f}"
                command = scope.get("state", {}).get("command_ms")
                if command is not None:
                    timing += f", command;dur={command:.2f}"
                message = {**message, "headers": [*message.get("headers", []), (b"server-timing", timing.encode())]}
            await send(message)

        try:
            await self.app(scope, receive, send_with_timing)
        except Exception:
            if not answered:
                observe_http(scope["method"], _route_of(scope), 500, time.perf_counter() - started)
            raise


class SecurityHeaders(HttpMiddleware):
    """Headers every answer carries (a plain ASGI middleware: it only edits the response
    start, without the cost of a request/response middleware on every call)."""

    COMMON = ((b"x-content-type-options", b"nosniff"), (b"referrer-policy", b"no-referrer"), (b"x-frame-options", b"DENY"))

    async def http(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                present = {name.lower() for name, _ in headers}
                html = any(n.lower() == b"content-type" and v.startswith(b"text/html") for n, v in headers)
                csp = DOCS_CSP if scope["path"] == "/docs" else HTML_CSP
                extra = [*self.COMMON, (b"content-security-policy", csp.encode())] if html else [*self.COMMON]
                if scope["path"].startswith("/console/static/"):
                    extra.append((b"cache-control", b"public, max-age=86400"))
                else:
                    # Answers and pages carry personal data: never kept by a browser or a proxy.
                    extra.append((b"cache-control", b"no-store"))
                headers += [(n, v) for n, v in extra if n not in present]
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_with_headers)


def declare_permissions(router: APIRouter) -> None:
    """Copies each route's rule (api/auth.py) into the OpenAPI document as
    ``x-permission`` (``open`` for the few without sign-in) and ``x-public``; a route
    without a rule gets none, and tests/identity refuse it. Done on the router before
    the app includes it (the app's own route list holds wrappers)."""
    for route in router.routes:
        if not isinstance(route, APIRoute):
            continue
        declared, action = rule_of(route.dependant)
        if not declared:
            continue
        extra = {"x-permission": action.value if action else "open", "x-public": action is None or action in PUBLIC}
        route.openapi_extra = {**(route.openapi_extra or {}), **extra}


def _route_of(scope: Scope) -> str:
    """The matched route's template, or one label for every path that matched none."""
    route = scope.get("route")
    return getattr(route, "path", None) or "unmatched"
