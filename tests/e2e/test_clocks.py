"""No command writes the future: clock skew is absorbed, injected clocks only run on
scratch stores, ``hotline simulate`` leaves the live store alone, and Erlang C says when
a queue is unstable."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import uuid
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from domain.base import MAX_CLOCK_SKEW, FixedClock, InvalidCommand
from domain.requests import commands as c
from infra import scratch
from infra.settings import Settings
from tests.conftest import START
from tests.sla.conftest import AGENT, register, start

ROOT = Path(__file__).resolve().parents[2]
HOTLINE = str(Path(sys.executable).parent / "hotline")


def _cli(data: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, HOTLINE_DATA_DIR=str(data), COLUMNS="200")
    return subprocess.run([HOTLINE, *args], env=env, cwd=ROOT, capture_output=True, text=True, timeout=300)


def _events(data: Path) -> int:
    with sqlite3.connect(data / "events.sqlite") as conn:
        return int(conn.execute("SELECT count(*) FROM stored_events").fetchone()[0])


def test_a_command_a_little_behind_the_last_event_happens_at_its_time(tmp_path: Path) -> None:
    """Another node's clock a few seconds behind: applied at the aggregate's time, not refused."""
    clock = FixedClock(START)
    h = start(Settings(data_dir=tmp_path), clock)
    try:
        req = register(h)
        clock.advance(seconds=-5)  # this node lags 5 s behind the one that registered it
        h.bus.execute(c.AddNote(ref=req["reference"], text="called back"), AGENT)
        stored: Any = h.store.repository.get(uuid.UUID(req["id"]))
        assert stored.modified_on == START  # not 5 s before its registration
        clock.advance(seconds=-MAX_CLOCK_SKEW.total_seconds())  # far behind: a clock is wrong
        with pytest.raises(InvalidCommand, match="clock skew"):
            h.bus.execute(c.AddNote(ref=req["reference"], text="again"), AGENT)
    finally:
        h.close()


def test_an_injected_clock_never_runs_on_the_live_store(tmp_path: Path) -> None:
    live = tmp_path / "live"
    h = start(Settings(data_dir=live), FixedClock(START))
    register(h, urgency="urgent", problem_code="pothole")
    h.close()
    before = _events(live)
    later = (START + timedelta(days=7)).isoformat()

    refused = _cli(live, "timers", "--once", "--clock", later)
    assert refused.returncode != 0
    assert "live store" in (refused.stderr + refused.stdout)
    assert _events(live) == before

    copied = _cli(live, "timers", "--once", "--copy", "--clock", later)
    assert copied.returncode == 0, copied.stderr
    assert "scratch copy" in copied.stdout
    assert json.loads(copied.stdout[copied.stdout.index("{") :])["fired"] > 0
    assert _events(live) == before, "the live store is untouched"

    scratch.mark(live, "a test")  # a folder declared scratch takes the clock directly
    assert _cli(live, "timers", "--once", "--clock", later).returncode == 0
    assert _events(live) > before


def test_simulate_writes_a_scratch_store_and_compares_with_erlang_c(tmp_path: Path) -> None:
    live = tmp_path / "live"
    live.mkdir()
    result = _cli(live, "simulate", "--single-queue", "--hours", "0.5", "--agents", "14", "--calls", "200", "--json")
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert summary["store"] != "live" and Path(summary["store"]).joinpath(scratch.MARK).exists()
    assert not (live / "events.sqlite").exists(), "nothing written to the live store"
    q = summary["queues"]["single"]
    assert q["abandoned"] == 0 and q["answered"] > 50
    assert summary["erlang_c"]["unstable"] is False and round(summary["erlang_c"]["service_level"], 3) == 0.888


def test_erlang_c_says_unstable_and_refuses_impossible_input(tmp_path: Path) -> None:
    unstable = _cli(tmp_path, "erlang-c", "--calls", "100", "--aht", "180", "--agents", "5")
    assert unstable.returncode == 0
    body = json.loads(unstable.stdout)  # valid JSON: no Infinity
    assert body["unstable"] is True and body["asa_seconds"] is None and body["probability_of_waiting"] == 1.0
    for bad in (["--agents", "-1"], ["--agents", "100001"]):
        r = _cli(tmp_path, "erlang-c", "--calls", "100", "--aht", "180", *bad)
        assert r.returncode == 2, (bad, r.stdout)
    assert _cli(tmp_path, "erlang-c", "--calls", "inf", "--aht", "180").returncode == 2
