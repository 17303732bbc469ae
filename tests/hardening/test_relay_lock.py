"""Leader election without PostgreSQL (the embedded store): an exclusive ``flock`` that a
killed process gives up; and two relays on one SQLite store, of which one leads."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

from consumers.kafka_contract import RELAY_NAME
from consumers.leadership import LOCK_KEY, FileLockLeadership, named_lock_key
from consumers.relay import Relay
from infra.settings import Settings


def test_file_lock_has_one_holder_and_is_freed_when_released(tmp_path: Path) -> None:
    path = tmp_path / "relay.lock"
    a, b = FileLockLeadership(path), FileLockLeadership(path)
    assert a.acquire() and a.still_leader()
    assert not b.acquire() and not b.still_leader()
    a.release()
    assert b.acquire() and not a.still_leader()
    b.release()


def test_file_lock_of_a_killed_process_is_free(tmp_path: Path) -> None:
    path = tmp_path / "relay.lock"
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time; from pathlib import Path; from consumers.leadership import FileLockLeadership as F;"
            f" assert F(Path({str(path)!r})).acquire(); print('held', flush=True); time.sleep(60)",
        ],
        stdout=subprocess.PIPE,
        cwd=Path(__file__).resolve().parents[2],
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == b"held"
        mine = FileLockLeadership(path)
        assert not mine.acquire()
        holder.send_signal(signal.SIGKILL)
        holder.wait(10)
        deadline = time.monotonic() + 2
        while not mine.acquire():
            assert time.monotonic() < deadline, "the dead holder's lock was not freed"
            time.sleep(0.05)
        mine.release()
    finally:
        if holder.poll() is None:
            holder.kill()


def test_lock_keys_differ_per_contender() -> None:
    relay = named_lock_key(f"relay:{RELAY_NAME}")
    assert 2**31 < relay < 2**63 and relay != LOCK_KEY  # away from the projections' 31-bit keys, and the router's
    assert named_lock_key("relay:other") != relay


def test_two_relays_on_one_sqlite_store_one_leads(tmp_path: Path) -> None:
    # No broker is contacted: leadership is settled before anything is published.
    settings = Settings(data_dir=tmp_path, kafka_bootstrap_servers="127.0.0.1:1")
    first, second = Relay(settings), Relay(settings)
    try:
        assert first._lead() and first.is_leader
        assert not second._lead() and not second.is_leader
        first.close()  # stepping down frees the lock at once
        assert second._lead() and second.is_leader
    finally:
        first.close()
        second.close()
