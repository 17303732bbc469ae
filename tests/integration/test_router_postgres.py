"""Leader election and failover of the ACD router on a real PostgreSQL.

A router process (``hotline router``) leads; an in-process
router stands by. The leader routes; then it is killed with SIGKILL (no clean release:
the server drops its session and its advisory lock) and the standby must take over
within seconds, rebuild its view from the events, and route the next contact, with
no contact ever offered twice.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from consumers.router import LOCK_KEY, AdvisoryLockLeadership, Router
from domain.base import Actor
from domain.contact_center import commands as cc
from infra.runtime import Hotline
from infra.settings import Settings
from tests.conftest import create_pg_database, drop_pg_database

pytestmark = pytest.mark.postgres
ROOT = Path(__file__).resolve().parents[2]
SUP = Actor("sup", "supervisor")
PBX = Actor("pbx", "system")


@pytest.fixture
def cc_pg_url() -> Iterator[str]:
    url = create_pg_database("t_cc_router")
    yield url
    drop_pg_database(url)


def _lock_holder(url: str) -> int | None:
    with psycopg.connect(url, autocommit=True) as conn:
        row = conn.execute(
            # Advisory locks are per database: other tests' routers on other databases do not count.
            "SELECT l.pid FROM pg_locks l JOIN pg_database d ON d.oid = l.database"
            " WHERE d.datname = current_database() AND l.locktype = 'advisory' AND l.classid = %s AND l.objid = %s AND l.granted",
            (LOCK_KEY >> 32, LOCK_KEY & 0xFFFFFFFF),
        ).fetchone()
        return int(row[0]) if row else None


def _wait(predicate: object, timeout: float, what: str) -> float:
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        if predicate():  # type: ignore[operator]
            return time.monotonic() - started
        time.sleep(0.1)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def _offers(hotline: Hotline) -> list[tuple[str, str]]:
    return [(e.aggregate_id, e.data["agent_id"]) for e in hotline.store.iter_envelopes() if e.type == "hotline.contact.offered.v1"]


def test_one_leader_and_failover_within_seconds(cc_pg_url: str, tmp_path: Path) -> None:
    hotline = Hotline.start(Settings(data_dir=tmp_path, database_url=cc_pg_url))
    leader_proc: subprocess.Popen[bytes] | None = None
    standby: Router | None = None
    try:
        hotline.bus.execute(cc.DefineQueue(queue_id="q", wrap_seconds=0, offer_timeout_seconds=300), SUP)
        for a in ("A1", "A2"):
            hotline.bus.execute(cc.LoginAgent(agent_id=a, queues=["q"]), Actor(a, "agent"))

        env = {
            **os.environ,
            "HOTLINE_DATABASE_URL": cc_pg_url,
            "HOTLINE_DATA_DIR": str(tmp_path / "leader"),
            "PYTHONPATH": str(ROOT),
        }
        leader_proc = subprocess.Popen(
            [str(Path(sys.executable).parent / "hotline"), "router", "--name", "leader", "--poll", "0.1"],
            cwd=ROOT,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        _wait(lambda: _lock_holder(cc_pg_url) is not None, 30, "the first router to take the lock")
        first_holder = _lock_holder(cc_pg_url)

        standby = Router(hotline.store, hotline.bus, leadership=AdvisoryLockLeadership(cc_pg_url), name="standby")
        standby.start()
        time.sleep(1.5)
        assert not standby.is_leader  # the lock is taken: it stands by
        assert _lock_holder(cc_pg_url) == first_holder

        c1 = hotline.bus.execute(cc.ContactArrives(channel="phone", queue_id="q"), PBX).result["id"]
        _wait(lambda: any(cid == c1 for cid, _ in _offers(hotline)), 15, "the leader to offer the first contact")

        leader_proc.send_signal(signal.SIGKILL)  # dies without releasing anything
        leader_proc.wait(10)
        killed_at = time.monotonic()
        _wait(lambda: standby.is_leader, 15, "the standby to take over")
        takeover = time.monotonic() - killed_at
        assert takeover < 5.0, f"takeover took {takeover:.1f} s"

        c2 = hotline.bus.execute(cc.ContactArrives(channel="phone", queue_id="q"), PBX).result["id"]
        _wait(lambda: any(cid == c2 for cid, _ in _offers(hotline)), 15, "the new leader to offer the second contact")
        offers = _offers(hotline)
        assert sorted(cid for cid, _ in offers) == sorted([c1, c2])  # each offered exactly once
        assert len({agent for _, agent in offers}) == 2  # to two different agents (A1 still holds c1)
        # The new leader rebuilt its view from the events: it knows c1 is offered.
        assert standby.view.contacts[c1].offered_to is not None
    finally:
        if standby is not None:
            standby.stop()
        if leader_proc is not None and leader_proc.poll() is None:
            leader_proc.kill()
        hotline.close()


def test_two_in_process_routers_only_one_leads(cc_pg_url: str, tmp_path: Path) -> None:
    hotline = Hotline.start(Settings(data_dir=tmp_path, database_url=cc_pg_url))
    r1 = Router(hotline.store, hotline.bus, leadership=AdvisoryLockLeadership(cc_pg_url), name="r1")
    r2 = Router(hotline.store, hotline.bus, leadership=AdvisoryLockLeadership(cc_pg_url), name="r2")
    try:
        r1.start()
        _wait(lambda: r1.is_leader, 10, "r1 to lead")
        r2.start()
        time.sleep(1.5)
        assert r1.is_leader and not r2.is_leader
        r1.stop()  # a clean stop releases the lock
        _wait(lambda: r2.is_leader, 5, "r2 to take over")
    finally:
        r1.stop()
        r2.stop()
        hotline.close()
