"""The FastAPI application: commands in, queries out. OpenAPI docs at /docs."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request

from api import errors
from consumers.background import start_background
from infra.metrics import observe_http
from infra.runtime import Hotline
from infra.settings import Settings, get_settings

DESCRIPTION = """
Hotline: the backend of a citizen-service hotline and contact center (12345 / 311).

Every change is an event; what you read here are projections of those events.
Send `X-Actor-Id` and `X-Actor-Role` with every call (the gateway in front of this
service sets them). `Idempotency-Key` on a POST makes a retry harmless; `If-Match`
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

    from infra.wiring import ROUTERS

    for module in ROUTERS:
        app.include_router(module.router)
    return app


def _route_of(request: Request) -> str:
    """The matched route's template, or one label for every path that matched none."""
    route = request.scope.get("route")
    return getattr(route, "path", None) or "unmatched"
