"""Crash tests: the timer process killed with SIGKILL mid-run loses nothing and fires
nothing twice. A real subprocess (``hotline timers``) on a real store."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from datetime import timedelta
from pathlib import Path

import pytest

from domain.base import FixedClock
from domain.requests.aggregate import ServiceRequest
from infra import scratch
from infra.runtime import Hotline
from infra.settings import Settings
from projections import sla_timers
from tests.conftest import START
from tests.sla.conftest import register, start

ROOT = Path(__file__).resolve().parents[2]
REQUESTS = 120
TIMER_TYPES = ("deadline_approaching", "deadline_missed", "reminder_sent", "escalated", "interim_reply_due")


def _timer_rows(db: Path) -> int:
    with sqlite3.connect(db, timeout=30) as conn:
        return int(
            conn.execute(
                "SELECT count(*) FROM stored_events WHERE topic LIKE '%Deadline%' OR topic LIKE '%Reminder%'"
                " OR topic LIKE '%Escalated%' OR topic LIKE '%InterimReplyDue%'"
            ).fetchone()[0]
        )


def _spawn(data_dir: Path, at: str, *extra: str) -> subprocess.Popen[bytes]:
    env = dict(os.environ, HOTLINE_DATA_DIR=str(data_dir), HOTLINE_JURISDICTION="rome", PYTHONPATH=str(ROOT))
    return subprocess.Popen(
        [str(Path(sys.executable).parent / "hotline"), "timers", "--clock", at, "--once", "--batch", "7", *extra],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )


@pytest.mark.slow
@pytest.mark.parametrize("path", ["fast", "slow"])
def test_killed_timer_process_loses_and_duplicates_nothing(tmp_path: Path, path: str) -> None:
    settings = Settings(data_dir=tmp_path, jurisdiction="rome")
    scratch.mark(tmp_path, "a test with a fixed clock")  # `--clock` runs only on a scratch store
    clock = FixedClock(START)
    h = start(settings, clock)
    ids = [register(h, urgency="urgent", problem_code="pothole")["id"] for _ in range(REQUESTS)]
    h.close()
    at = (START + timedelta(days=7)).isoformat()
    extra = ("--slow-path",) if path == "slow" else ()
    db = tmp_path / "events.sqlite"

    kills = 0
    for _round in range(2):  # kill it twice, at different points
        proc = _spawn(tmp_path, at, *extra)
        base = _timer_rows(db)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and proc.poll() is None:
            if _timer_rows(db) >= base + 40 * (_round + 1):
                proc.send_signal(signal.SIGKILL)
                kills += 1
                break
            time.sleep(0.01)
        proc.wait(timeout=30)
    assert kills >= 1, "the process finished before it could be killed: make the run longer"
    mid = _timer_rows(db)
    assert 0 < mid < REQUESTS * 8, "the kills should land mid-run"

    final = _spawn(tmp_path, at)
    _out, err = final.communicate(timeout=300)
    assert final.returncode == 0, err.decode()[-3000:]

    clock.current = START + timedelta(days=7)
    h = Hotline.start(settings, clock)
    try:
        fired_total = 0
        for rid in ids:
            r: ServiceRequest = h.store.repository.get(__import__("uuid").UUID(rid))
            events = [e for e in h.store.envelopes(0, 100_000) if e.aggregate_id == rid] if rid == ids[0] else None
            due = {k for k, t in r.timers_scheduled.items() if t["at"] <= clock.now().isoformat()}
            assert r.timers_fired == due, f"request {rid}: lost timers {due - r.timers_fired}"
            fired_total += len(r.timers_fired)
            if events is not None:
                keys = Counter(e.data["timer_key"] for e in events if e.name in TIMER_TYPES)
                assert keys and max(keys.values()) == 1
        # every timer event in the store names a distinct (request, key): nothing fired twice
        all_keys = Counter((e.aggregate_id, e.data["timer_key"]) for e in h.store.iter_envelopes() if e.name in TIMER_TYPES)
        assert max(all_keys.values()) == 1
        assert sum(all_keys.values()) == fired_total == REQUESTS * 8
        with h.read_store.engine.connect() as conn:
            assert sla_timers.due_timers(conn, clock.now()) == []
    finally:
        h.close()
