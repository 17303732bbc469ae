"""``hotline telephony`` as its own process, configured only by settings (``HOTLINE_ARI_*``),
against the stand-in: it connects with the credentials, a call becomes a contact, and
SIGTERM stops it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from domain.contact_center import commands as cc
from infra.runtime import Hotline
from infra.settings import Settings
from telephony_adapter.standin.server import StandIn
from tests.telephony.ari_harness import MODEL, SUPERVISOR, wait

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow  # a process of its own: its start-up is most of the time
def test_the_telephony_command(tmp_path: Path) -> None:
    hotline = Hotline.start(Settings(data_dir=tmp_path))
    hotline.bus.execute(cc.DefineQueue(queue_id="general"), SUPERVISOR)
    hotline.close()
    standin = StandIn(MODEL, password="s3cret").start()
    env = {
        **os.environ,
        "HOTLINE_DATA_DIR": str(tmp_path),
        "HOTLINE_ARI_URL": standin.url,
        "HOTLINE_ARI_USER": standin.user,
        "HOTLINE_ARI_PASSWORD": "s3cret",
        "HOTLINE_ROUTER_INPROCESS": "false",
    }
    env.pop("HOTLINE_DATABASE_URL", None)
    log = (tmp_path / "telephony.log").open("wb")  # a file, not a pipe nobody reads
    command = [str(Path(sys.executable).parent / "hotline"), "telephony"]
    proc = subprocess.Popen(command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        wait(lambda: standin.connections == ["connected hotline"], timeout=60, what="the process connected")
        caller = standin.call("+390655501234", "general")
        wait(lambda: bool(standin.ops("channels.startMoh")), timeout=20, what="the caller answered and queued")
        assert [r.path for r in standin.ops("channels.answer")] == [f"/channels/{caller}/answer"]
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(15) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
        standin.stop()
        log.close()
    assert standin.violations == []
    hotline = Hotline.start(Settings(data_dir=tmp_path))
    try:
        names = [e.name for e in hotline.store.iter_envelopes() if e.stream == "contact"]
        assert names[:2] == ["arrived", "queued"]
    finally:
        hotline.close()
