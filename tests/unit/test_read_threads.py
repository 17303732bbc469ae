"""Queries run on a few threads of their own (api/routing.py): at most ``read_threads`` at
once, the rest waiting without a thread; commands and ``async`` routes untouched; and
FastAPI still sees each wrapped route's parameters and answer."""

from __future__ import annotations

import asyncio
import inspect
import threading
import time

import httpx
from fastapi import FastAPI, Query
from fastapi.routing import APIRoute
from starlette.routing import Mount, Route

from api.routing import HotlineRoute, HotlineRouter, add_routes, quick_read, set_read_threads
from infra.settings import SQLITE_READ_THREADS, Settings
from infra.wiring import CONSOLE, ROUTERS


def _app(read_threads: int) -> tuple[FastAPI, dict[str, int]]:
    seen = {"now": 0, "most": 0, "writes_now": 0, "writes_most": 0}
    lock = threading.Lock()

    def busy(kind: str) -> None:
        with lock:
            seen[f"{kind}now"] += 1
            seen[f"{kind}most"] = max(seen[f"{kind}most"], seen[f"{kind}now"])
        time.sleep(0.05)
        with lock:
            seen[f"{kind}now"] -= 1

    router = HotlineRouter()

    @router.get("/slow/{key}")
    def slow(key: str, times: int = Query(1, ge=1, le=3)) -> dict[str, str]:
        busy("")
        return {"key": key * times}

    @router.post("/write")
    def write() -> dict[str, bool]:
        busy("writes_")
        return {"ok": True}

    app = FastAPI()
    app.include_router(router)
    app.state.read_threads = read_threads
    return app, seen


async def _hammer(app: FastAPI, method: str, path: str, n: int) -> list[httpx.Response]:
    set_read_threads(app.state.read_threads)  # on this event loop, as api/app.py's lifespan does
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        return list(await asyncio.gather(*[client.request(method, path) for _ in range(n)]))


def test_at_most_read_threads_queries_run_at_once_and_every_one_is_answered() -> None:
    app, seen = _app(read_threads=2)
    answers = asyncio.run(_hammer(app, "GET", "/slow/ab?times=2", 12))
    assert [a.json() for a in answers] == [{"key": "abab"}] * 12
    assert seen["most"] == 2


def test_commands_are_not_held_to_the_read_threads() -> None:
    app, seen = _app(read_threads=1)
    answers = asyncio.run(_hammer(app, "POST", "/write", 8))
    assert all(a.status_code == 200 for a in answers)
    assert seen["writes_most"] > 1  # FastAPI's own pool, as before


def test_a_wrapped_route_keeps_its_parameters_and_validation() -> None:
    app, _ = _app(read_threads=2)
    answers = asyncio.run(_hammer(app, "GET", "/slow/x?times=9", 1))
    assert answers[0].status_code == 422
    parameters = {p["name"] for p in app.openapi()["paths"]["/slow/{key}"]["get"]["parameters"]}
    assert parameters == {"key", "times"}


def test_every_area_uses_the_hotline_router() -> None:
    for module in (*ROUTERS, *CONSOLE):
        assert isinstance(module.router, HotlineRouter), module.__name__


def test_the_default_follows_the_store() -> None:
    assert Settings(database_url=None).query_threads == SQLITE_READ_THREADS
    assert Settings(database_url="postgresql://h/db", pg_pool_size=12).query_threads == 12
    assert Settings(database_url=None, read_threads=3).query_threads == 3


def test_a_command_runs_on_a_worker_thread_and_its_answer_is_checked() -> None:
    router = HotlineRouter()
    ran_on: list[str] = []

    @router.post("/count", response_model=dict[str, int])
    def count() -> dict[str, object]:
        ran_on.append(threading.current_thread().name)
        return {"n": "not a number"}  # the response model refuses it: a server error, as before

    app = FastAPI()
    add_routes(app, router)
    route = next(r for r in app.routes if isinstance(r, APIRoute) and r.path == "/count")
    assert inspect.iscoroutinefunction(route.endpoint)  # a coroutine: FastAPI checks its answer on the loop
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)

    async def post() -> httpx.Response:
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            return await client.post("/count")

    assert asyncio.run(post()).status_code == 500
    assert ran_on and ran_on[0] != threading.main_thread().name


def test_the_application_lists_its_routes_itself() -> None:
    """No included-router entries (api/routing.py add_routes says why): every API route is
    the application's own, in the order of infra/wiring.py."""
    from api.app import create_app

    app = create_app(Settings(database_url=None))
    assert all(isinstance(r, (APIRoute, Mount, Route)) for r in app.router.routes)  # nothing wrapping routers
    wired = [r.path for module in ROUTERS for r in module.router.routes]
    listed = [r.path for r in app.router.routes if isinstance(r, HotlineRoute)]
    assert listed[: len(wired)] == wired


def _quick_app() -> tuple[FastAPI, list[str]]:
    ran_on: list[str] = []
    router = HotlineRouter()

    @router.get("/quick")
    @quick_read
    def quick() -> dict[str, bool]:
        ran_on.append(threading.current_thread().name)
        return {"ok": True}

    app = FastAPI()
    add_routes(app, router)
    return app, ran_on


async def _get_quick(app: FastAPI, inline: bool) -> httpx.Response:
    set_read_threads(2, quick_inline=inline)  # as api/app.py's lifespan does
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as client:
        return await client.get("/quick")


def test_a_quick_read_runs_on_the_event_loop_where_allowed_and_on_a_read_thread_elsewhere() -> None:
    app, ran_on = _quick_app()
    loop_thread = threading.current_thread().name  # asyncio.run runs the loop in this thread
    assert asyncio.run(_get_quick(app, inline=True)).json() == {"ok": True}
    assert asyncio.run(_get_quick(app, inline=False)).json() == {"ok": True}
    assert ran_on[0] == loop_thread and ran_on[1] != loop_thread


def test_quick_reads_are_inline_on_sqlite_only_by_default() -> None:
    assert Settings(database_url=None).inline_quick_reads
    assert not Settings(database_url="postgresql://h/db").inline_quick_reads
    assert not Settings(database_url=None, quick_reads_inline=False).inline_quick_reads


def test_the_console_s_hot_reads_are_quick_and_searches_are_not() -> None:
    from api.routers import contact_center, knowledge, requests, supervision

    quick = {
        r.path
        for m in (contact_center, requests, supervision, knowledge)
        for r in m.router.routes
        if getattr(r, "endpoint", None) and getattr(getattr(r.endpoint, "__wrapped__", None), "quick_read", False)
    }
    assert {"/wallboard", "/agents/{agent_id}/desk", "/requests/{ref}", "/sla/breaches"} <= quick
    assert "/requests" not in quick and not any(p.startswith("/knowledge") for p in quick)
