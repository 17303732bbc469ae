"""ASGI entry point: ``uvicorn api.main:app`` (what ``hotline serve`` runs, in each worker)."""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI

from api.app import create_app
from infra.logging import configure_logging
from infra.settings import get_settings

log = logging.getLogger("hotline.serve")


def bound_shutdown(app: FastAPI, seconds: float) -> None:
    """Once the application starts shutting down (uvicorn has waited its grace for the
    requests in flight), it has ``seconds`` to finish: stopping the background threads,
    closing the store, and the interpreter's own exit, which waits for every worker thread
    still running a request. Past that the process exits at once: a SIGTERM always stops
    the server, whatever it was doing."""
    inner = app.router.lifespan_context

    @asynccontextmanager
    async def lifespan(running: FastAPI) -> AsyncIterator[Any]:
        async with inner(running) as state:
            try:
                yield state
            finally:
                threading.Thread(target=_exit_after, args=(seconds,), name="shutdown-deadline", daemon=True).start()

    app.router.lifespan_context = lifespan


def _exit_after(seconds: float) -> None:
    time.sleep(seconds)
    log.error("shutdown: still running %.1f s after it began; exiting now", seconds)
    logging.shutdown()
    os._exit(1)


settings = get_settings()
configure_logging(settings)  # a worker process starts here, not in the CLI
app = create_app()
bound_shutdown(app, max(1.0, settings.shutdown_seconds - settings.shutdown_grace_seconds))
