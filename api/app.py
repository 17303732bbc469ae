"""The FastAPI application: commands in, queries out. OpenAPI docs at /docs."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import APIRouter, FastAPI, Request
from fastapi.middleware.cors import CORSMiddleware
from fastapi.routing import APIRoute

from api import errors
from api.auth import rule_of
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
        # The router, timers, notifier and analytics ingest, as the settings ask.
        stops = start_background(app.state.hotline)
        try:
            yield
        finally:
            for stop in reversed(stops):
                stop()
            if own:
                app.state.hotline.close()

    app = FastAPI(title="Hotline", version="0.1.0", description=DESCRIPTION, lifespan=lifespan)
    errors.install(app)

    @app.middleware("http")
    async def server_timing(request: Request, call_next: Any) -> Any:
        # Server-Timing says where a request's time went: the command (domain and event
        # store, group commit included) and the whole application (FastAPI, validation,
        # serialisation, thread hand-off). The rest of what a client sees is the server
        # loop and the network. The same time goes to the HTTP latency histogram, by
        # route template (``/requests/{ref}``: the labels stay few).
        started = time.perf_counter()
        try:
            response = await call_next(request)
        except Exception:
            observe_http(request.method, _route_of(request), 500, time.perf_counter() - started)
            raise
        elapsed = time.perf_counter() - started
        observe_http(request.method, _route_of(request), response.status_code, elapsed)
        total = elapsed * 1000
        timing = f"app;dur={total:.2f}"
        command = request.scope.get("state", {}).get("command_ms")
        if command is not None:
            timing += f", command;dur={command:.2f}"
        response.headers["Server-Timing"] = timing
        return response

    @app.middleware("http")
    async def security_headers(request: Request, call_next: Any) -> Any:
        response = await call_next(request)
        headers = response.headers
        headers.setdefault("X-Content-Type-Options", "nosniff")
        headers.setdefault("Referrer-Policy", "no-referrer")
        headers.setdefault("X-Frame-Options", "DENY")
        if response.headers.get("content-type", "").startswith("text/html"):
            headers.setdefault("Content-Security-Policy", HTML_CSP)
        else:
            # Answers carry personal data: never kept by a browser or a proxy.
            headers.setdefault("Cache-Control", "no-store")
        return response

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
        app.include_router(module.router)
    return app


# The OpenAPI docs page loads Swagger UI from its CDN; everything else comes from here.
HTML_CSP = (
    "default-src 'self'; script-src 'self' 'unsafe-inline' https://cdn.jsdelivr.net; "
    "style-src 'self' 'unsafe-inline' https://cdn.jsdelivr.net; img-src 'self' data: https://fastapi.tiangolo.com; "
    "frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
)


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


def _route_of(request: Request) -> str:
    """The matched route's template, or one label for every path that matched none."""
    route = request.scope.get("route")
    return getattr(route, "path", None) or "unmatched"
