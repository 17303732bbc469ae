"""Crash test: the notification consumer (a real ``hotline notify`` subprocess) killed
with SIGKILL mid-run, restarted: no message lost, none sent twice."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

from domain.base import FixedClock
from domain.requests import commands as c
from infra import scratch
from infra.runtime import Hotline
from infra.settings import Settings
from projections import notifications as read_model
from tests.conftest import START
from tests.sla.conftest import AGENT, ROADS, register, run, start
from tests.sla.servers import Provider, SmtpServer

ROOT = Path(__file__).resolve().parents[2]
EMAILS, SMSES = 40, 20


def _spawn(data_dir: Path, smtp: SmtpServer, provider: Provider) -> subprocess.Popen[bytes]:
    env = dict(
        os.environ,
        HOTLINE_DATA_DIR=str(data_dir),
        HOTLINE_JURISDICTION="rome",
        HOTLINE_SMTP_PORT=str(smtp.port),
        HOTLINE_SMS_GATEWAY_URL=provider.url,
        HOTLINE_SMS_GATEWAY_BACKOFF_SECONDS="0.01",
        PYTHONPATH=str(ROOT),
    )
    return subprocess.Popen(
        [str(Path(sys.executable).parent / "hotline"), "notify", "--clock", START.isoformat(), "--once"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )


@pytest.mark.slow
def test_killed_notification_consumer_sends_nothing_twice_and_loses_nothing(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, jurisdiction="rome")
    scratch.mark(tmp_path, "a test with a fixed clock")  # `--clock` runs only on a scratch store
    h = start(settings, FixedClock(START))
    for i in range(EMAILS + SMSES):
        req = register(h, problem_code="pothole", reply_channel="email" if i < EMAILS else "sms", language=["it", "ar", "zh", "en"][i % 4])
        run(h, c.Dispatch(ref=req["reference"]), AGENT)
        run(h, c.Accept(ref=req["reference"], department_id="transport"), ROADS)
        run(h, c.FinalReply(ref=req["reference"], message=f"answer {i}"), ROADS)
    h.close()

    with SmtpServer() as smtp, Provider() as provider:
        kills = 0
        for target in (10, 30):
            proc = _spawn(tmp_path, smtp, provider)
            deadline = time.monotonic() + 120
            while time.monotonic() < deadline and proc.poll() is None:
                if len(smtp.messages) + len(provider.delivered) >= target:
                    proc.send_signal(signal.SIGKILL)
                    kills += 1
                    break
                time.sleep(0.005)
            proc.wait(timeout=30)
        assert kills == 2, "the consumer finished before it was killed"
        assert len(smtp.messages) + len(provider.delivered) < EMAILS + SMSES
        for _ in range(2):  # a second round sends what an in-doubt SMS left for retry
            final = _spawn(tmp_path, smtp, provider)
            _, err = final.communicate(timeout=300)
            assert final.returncode == 0, err.decode()[-3000:]

        ids = Counter(m["Message-ID"] for m in smtp.messages)
        assert max(ids.values()) == 1, "an email was sent twice"
        h = Hotline.start(settings, FixedClock(START))
        try:
            with h.read_store.engine.connect() as conn:
                rows = read_model.listing(conn, limit=1000)
            assert len(rows) == EMAILS + SMSES
            status = Counter(r["status"] for r in rows)
            # Emails: sent exactly once, or (at most one per kill) in doubt in the dead-letter list.
            in_doubt = [r for r in rows if r["status"] == "dead_lettered"]
            assert len(in_doubt) <= kills and all(r["channel"] == "email" for r in in_doubt)
            assert all("in doubt" in (r["last_error"] or "") for r in in_doubt)
            assert status["sent"] + len(in_doubt) == EMAILS + SMSES
            sent_emails = {r["key"] for r in rows if r["channel"] == "email" and r["status"] == "sent"}
            arrived = {m["X-Hotline-Idempotency-Key"] for m in smtp.messages}
            assert sent_emails <= arrived and len(arrived) <= EMAILS
            # SMS: the provider deduplicates by key, so an in-doubt SMS is retried: all delivered once.
            assert len(provider.delivered) == SMSES
        finally:
            h.close()
