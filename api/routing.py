"""How the API's routes run: queries on a few threads of their own, everything else as
FastAPI runs it.

FastAPI runs every plain ``def`` route on one pool of 40 threads. A command spends most
of its time there waiting for its group commit, so commands want many threads. A query
is the opposite: on the embedded default it is Python and SQLite, bound by the GIL, and
40 of them at once only fight over it. Measured with 64 clients reading the wallboard,
the server's CPU per read rose from 1.9 ms (one client) to 3.4–4.1 ms, where with reads
on two threads it stayed at 2.2–2.3 ms; under 60 % of the console's load goal (README,
performance) the p99 fell from 1.4–2.2 s to 0.4–0.9 s with one or two threads. So a
``def`` route for GET runs on its own limiter of ``HOTLINE_READ_THREADS`` threads (two
on SQLite: one slow query, a search or a report, still leaves a thread for the rest);
reads beyond that wait on the event loop, holding no thread. ``async def`` routes (the
live feeds, read-your-writes) are left as they are.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from typing import Any

import anyio
import anyio.to_thread
from anyio.lowlevel import RunVar
from fastapi import APIRouter
from fastapi.routing import APIRoute

# One limiter per event loop (the server's; a test client's portal has its own).
_READ_LIMITER: RunVar[anyio.CapacityLimiter] = RunVar("hotline_read_limiter")
DEFAULT_READ_THREADS = 8

READ_METHODS = frozenset({"GET", "HEAD"})


def set_read_threads(count: int) -> None:
    """How many queries run at once on this event loop (the app's lifespan sets it)."""
    _READ_LIMITER.set(anyio.CapacityLimiter(count))


def read_limiter() -> anyio.CapacityLimiter:
    try:
        return _READ_LIMITER.get()
    except LookupError:  # an app started without its lifespan
        set_read_threads(DEFAULT_READ_THREADS)
        return _READ_LIMITER.get()


def on_read_threads(endpoint: Callable[..., Any]) -> Callable[..., Any]:
    """``endpoint`` (a plain function) as a coroutine that runs it on the read limiter.
    ``functools.wraps`` keeps what FastAPI reads: the signature and the annotations'
    module (through ``__wrapped__``)."""

    @functools.wraps(endpoint)
    async def run(*args: Any, **kwargs: Any) -> Any:
        return await anyio.to_thread.run_sync(functools.partial(endpoint, *args, **kwargs), limiter=read_limiter())

    return run


class HotlineRoute(APIRoute):
    """An API route whose plain-``def`` GET endpoint runs on the read threads."""

    def __init__(self, path: str, endpoint: Callable[..., Any], **kwargs: Any) -> None:
        methods = {m.upper() for m in kwargs.get("methods") or ()}
        if methods and methods <= READ_METHODS and not inspect.iscoroutinefunction(endpoint):
            endpoint = on_read_threads(endpoint)
        super().__init__(path, endpoint, **kwargs)


class HotlineRouter(APIRouter):
    """The router every area of the API and the console uses (``tests/identity`` checks)."""

    def __init__(self, *, route_class: type[HotlineRoute] = HotlineRoute, **kwargs: Any) -> None:
        super().__init__(route_class=route_class, **kwargs)
