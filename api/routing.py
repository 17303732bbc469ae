"""How the API's routes run: queries on a few threads of their own, everything else on
FastAPI's, and every route in the application's own list (:func:`add_routes`).

FastAPI runs every plain ``def`` route on one pool of 40 threads. A command spends most
of its time there waiting for its group commit, so commands want many threads. A query
is the opposite: on the embedded default it is Python and SQLite, bound by the GIL, and
40 of them at once only fight over it. Measured with 64 clients reading the wallboard,
the server's CPU per read rose from 1.9 ms (one client) to 3.4–4.1 ms, where with reads
on two threads it stayed at 2.2–2.3 ms; under 60 % of the console's load goal (README,
performance) the p99 fell from 1.4–2.2 s to 0.4–0.9 s with one or two threads. So a
``def`` route for GET runs on its own limiter of ``HOTLINE_READ_THREADS`` threads (two
on SQLite: one slow query, a search or a report, still leaves a thread for the rest);
reads beyond that wait on the event loop, holding no thread. A GET marked
:func:`quick_read` (small, bounded work: one case, one desk, the wallboard) runs on the
event loop itself where the settings allow it (SQLite by default), since there the
hand-off to a thread and back cost as much as the query. Other plain ``def`` routes
(commands) run on FastAPI's threads, as coroutines that hand their body to a thread
(:func:`on_worker_threads` says why). ``async def`` routes (the live feeds,
read-your-writes) are left as they are.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from typing import Any

import anyio
import anyio.to_thread
from anyio.lowlevel import RunVar
from fastapi import APIRouter, FastAPI
from fastapi.routing import APIRoute

# One limiter per event loop (the server's; a test client's portal has its own).
_READ_LIMITER: RunVar[anyio.CapacityLimiter] = RunVar("hotline_read_limiter")
DEFAULT_READ_THREADS = 8
# Whether this event loop runs quick reads itself (the app's lifespan sets it).
_QUICK_INLINE: RunVar[bool] = RunVar("hotline_quick_reads_inline")

READ_METHODS = frozenset({"GET", "HEAD"})


def set_read_threads(count: int, *, quick_inline: bool = False) -> None:
    """How many queries run at once on this event loop, and whether it runs quick reads
    itself (the app's lifespan sets both)."""
    _READ_LIMITER.set(anyio.CapacityLimiter(count))
    _QUICK_INLINE.set(quick_inline)


def quick_read(endpoint: Callable[..., Any]) -> Callable[..., Any]:
    """Marks a GET endpoint whose work is small and bounded whatever the data: one case,
    one agent's desk, one summary, a list under a limit. Where the settings allow it
    (``HOTLINE_QUICK_READS_INLINE``, on by default with SQLite), it runs on the event loop
    itself: on the embedded default the hand-off to a read thread and back cost about as
    much CPU as the query, and with these reads on the loop the console's full load was
    served at 365-443 requests/s against 227-266 (README, performance). Anything that may take long
    (searches, reports, exports) must not be marked: while it runs, nothing else does."""
    endpoint.quick_read = True  # type: ignore[attr-defined]
    return endpoint


def read_limiter() -> anyio.CapacityLimiter:
    try:
        return _READ_LIMITER.get()
    except LookupError:  # an app started without its lifespan
        set_read_threads(DEFAULT_READ_THREADS)
        return _READ_LIMITER.get()


def on_read_threads(endpoint: Callable[..., Any]) -> Callable[..., Any]:
    """``endpoint`` (a plain function) as a coroutine that runs it on the read limiter."""
    return _on_thread(endpoint, read_limiter)


def quick_inline() -> bool:
    try:
        return _QUICK_INLINE.get()
    except LookupError:  # an app started without its lifespan
        return False


def on_loop_or_read_threads(endpoint: Callable[..., Any]) -> Callable[..., Any]:
    """A :func:`quick_read` endpoint as a coroutine: on the event loop where this loop
    runs quick reads itself, else on the read limiter."""
    threaded = on_read_threads(endpoint)

    @functools.wraps(endpoint)
    async def run(*args: Any, **kwargs: Any) -> Any:
        if quick_inline():
            return endpoint(*args, **kwargs)
        return await threaded(*args, **kwargs)

    return run


def on_worker_threads(endpoint: Callable[..., Any]) -> Callable[..., Any]:
    """``endpoint`` (a plain function) as a coroutine that runs it on anyio's default
    limiter, the threads FastAPI itself would have run it on. Why then: FastAPI checks a
    plain function's answer against its response model on a worker thread too, a second
    hand-off to a thread and back for every command; a coroutine's answer is checked on
    the event loop, where that brief check costs less than the hand-off."""
    return _on_thread(endpoint, anyio.to_thread.current_default_thread_limiter)


def _on_thread(endpoint: Callable[..., Any], limiter: Callable[[], anyio.CapacityLimiter]) -> Callable[..., Any]:
    # ``functools.wraps`` keeps what FastAPI reads: the signature and the annotations'
    # module (through ``__wrapped__``).
    @functools.wraps(endpoint)
    async def run(*args: Any, **kwargs: Any) -> Any:
        return await anyio.to_thread.run_sync(functools.partial(endpoint, *args, **kwargs), limiter=limiter())

    return run


class HotlineRoute(APIRoute):
    """An API route whose plain-``def`` endpoint runs where chosen here: a GET on the read
    threads (a :func:`quick_read` one perhaps on the event loop), anything else on the
    default threads."""

    def __init__(self, path: str, endpoint: Callable[..., Any], **kwargs: Any) -> None:
        if not inspect.iscoroutinefunction(endpoint):
            methods = {m.upper() for m in kwargs.get("methods") or ()}
            if not (methods and methods <= READ_METHODS):
                endpoint = on_worker_threads(endpoint)
            elif getattr(endpoint, "quick_read", False):
                endpoint = on_loop_or_read_threads(endpoint)
            else:
                endpoint = on_read_threads(endpoint)
        super().__init__(path, endpoint, **kwargs)


class HotlineRouter(APIRouter):
    """The router every area of the API and the console uses (``tests/identity`` checks)."""

    def __init__(self, *, route_class: type[HotlineRoute] = HotlineRoute, **kwargs: Any) -> None:
        super().__init__(route_class=route_class, **kwargs)


def add_routes(app: FastAPI, router: APIRouter) -> None:
    """Puts ``router``'s routes in the application's own list, in order.

    Not ``app.include_router``: FastAPI (0.16x) keeps an included router as one entry that
    matches a request by walking its routes, and walks the chosen router's routes again to
    handle it, so every request paid for each router before its own, twice for its own: a
    seventh of the event loop's time under the console's load (py-spy), 0.2-0.4 ms a
    request. Flat, a request is matched once against each route before its own, about a
    microsecond each. The routers set their prefixes and tags themselves, so there is
    nothing to include; ``app.dependency_overrides`` does not reach these routes (the
    tests give ``create_app`` the hotline they want instead)."""
    app.router.routes.extend(router.routes)
