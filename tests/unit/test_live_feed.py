"""The live feed: what the read models announce after they apply, in-process and, for
projections in other processes, through PostgreSQL's LISTEN/NOTIFY."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
import sqlalchemy as sa

from domain.base import Actor
from domain.requests import commands as c
from infra.live_feed import LiveFeed, listen, notify, notify_payloads
from infra.runtime import Hotline
from tests.conftest import create_pg_database, drop_pg_database

AGENT = Actor("op1", "agent")


def run(coroutine: Any) -> Any:
    """asyncio.run in a thread of its own: the browser tests' Playwright keeps an event
    loop running in the main thread for the whole session."""
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coroutine).result()


def test_an_applied_command_announces_its_read_models_and_keys(hotline: Hotline) -> None:
    heard: list[set[str]] = []
    hotline.read_store.listeners.append(heard.append)
    answer = hotline.bus.execute(
        c.RegisterRequest(
            kind="action",
            subtype="complaint",
            channel="phone",
            description="Pothole",
            problem_code="pothole",
            contact=c.Contact(name="Ada", phone="+39 06 1234 5678"),
        ),
        AGENT,
    ).result
    hotline.bus.execute(c.Dispatch(ref=answer["reference"]), AGENT)
    topics = set().union(*heard)
    assert {"request_status", f"request_status:request-{answer['id']}", "request_status:department-transport"} <= topics
    assert "department_workload:department-transport" in topics
    assert any(t.startswith("request_status:citizen-") for t in topics)
    assert "wallboard" not in topics  # nothing of the contact center changed


def test_subscribers_hear_only_their_topics() -> None:
    async def scenario() -> tuple[set[str], set[str]]:
        feed = LiveFeed(asyncio.get_running_loop())
        transport = feed.subscribe(["request_status:department-transport"])
        environment = feed.subscribe(["request_status:department-environment"])
        feed.publish({"request_status", "request_status:department-transport"})
        got = await transport.changed(1.0)
        other = await environment.changed(0.05)
        feed.unsubscribe(transport)
        assert feed.connections == 1
        return got, other

    got, other = run(scenario())
    assert got == {"request_status"} and other == set()


def test_payloads_stay_under_the_notify_limit() -> None:
    topics = {f"request_status:request-{i:036d}" for i in range(1000)}
    payloads = list(notify_payloads(topics))
    assert len(payloads) > 1 and all(len(p.encode()) < 8000 for p in payloads)
    assert set().union(*(json.loads(p) for p in payloads)) == topics


@pytest.mark.postgres
def test_notify_reaches_a_listening_process_only_on_commit() -> None:
    url = create_pg_database("live")
    stop = threading.Event()
    try:

        async def scenario() -> set[str]:
            feed = LiveFeed(asyncio.get_running_loop())
            watcher = feed.subscribe(["agent_desk:agent-7"])
            threading.Thread(target=listen, args=(feed, url, stop), daemon=True).start()
            await asyncio.sleep(0.5)  # LISTEN in place
            engine = sa.create_engine(url.replace("postgresql://", "postgresql+psycopg://"))
            try:
                with engine.connect() as conn:
                    notify(conn, {"agent_desk", "agent_desk:agent-7"})
                    conn.rollback()  # rolled back: never heard
                assert await watcher.changed(0.5) == set()
                with engine.begin() as conn:
                    notify(conn, {"agent_desk", "agent_desk:agent-7"})
                started = time.perf_counter()
                heard = await watcher.changed(5.0)
                assert time.perf_counter() - started < 1.0
                return heard
            finally:
                engine.dispose()

        assert run(scenario()) == {"agent_desk"}
    finally:
        stop.set()
        time.sleep(1.2)
        drop_pg_database(url)
