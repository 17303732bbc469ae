"""`hotline serve --demo` (what `bash infra/run.sh` runs) sends the demo's replies by
itself, to the local outbox: every final reply the demo's events hold reaches the
citizen's address with the text the department wrote.

The oracle is the event store read after the server stopped: the FinalReplied events and
the requests' contacts, not the notifier's read model."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import uuid
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path

import httpx
import pytest

from api.demo import DEMO_PASSWORD
from domain.base import FixedClock, event_type_name
from domain.notifications.aggregate import REPLY_CHANNEL_TO_CHANNEL, notification_id
from domain.requests.aggregate import ServiceRequest
from infra.outbox import path_of
from infra.runtime import Hotline
from infra.settings import Settings
from tests.conftest import START

ROOT = Path(__file__).resolve().parents[2]
HOTLINE = str(Path(sys.executable).parent / "hotline")
FINAL_REPLIED = event_type_name(ServiceRequest.FinalReplied)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.slow
def test_serve_demo_sends_every_reply_to_the_outbox(tmp_path: Path) -> None:
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("HOTLINE_")}
    env.update(HOTLINE_DATA_DIR=str(tmp_path), HOTLINE_PORT=str(port), HOTLINE_LOG_LEVEL="warning")
    server = subprocess.Popen([HOTLINE, "serve", "--demo"], env=env, cwd=ROOT)
    base = f"http://127.0.0.1:{port}"
    counts: dict[str, int] = {}
    try:
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.5)
        else:
            pytest.fail("hotline serve --demo did not answer /healthz")
        token = httpx.post(f"{base}/auth/token", json={"username": "sup-li", "password": DEMO_PASSWORD}).json()["access_token"]
        auth = {"Authorization": f"Bearer {token}"}
        # Wait until nothing is left to send (the notifier works in rounds beside the API).
        while time.monotonic() < deadline:
            counts = httpx.get(f"{base}/notifications", params={"limit": 1}, headers=auth).json()["counts"]
            if counts.get("sent") and not counts.get("queued") and not counts.get("sending"):
                break
            time.sleep(0.5)
        assert counts.get("sent") and not counts.get("queued") and not counts.get("sending"), counts
        assert not counts.get("failed") and not counts.get("dead_lettered"), counts
        listed = httpx.get(f"{base}/outbox", params={"limit": 1000}, headers=auth).json()
        assert listed["total"] == counts["sent"], (listed["total"], counts)
    finally:
        server.terminate()
        server.wait(timeout=60)

    h = Hotline.start(Settings(data_dir=tmp_path), FixedClock(START))  # no lifespan: nothing runs beside it
    try:
        replies = [e for e in h.store.iter_envelopes() if e.type == FINAL_REPLIED]
        assert len(replies) >= 10, "the demo answers requests"
        delivered = 0
        for env_ in replies:
            request: ServiceRequest = h.store.repository.get(uuid.UUID(env_.aggregate_id))
            personal = request.personal or {}
            channel = REPLY_CHANNEL_TO_CHANNEL.get(str(env_.data.get("channel") or request.reply_channel))
            field = {"email": "email", "fax": "fax"}.get(str(channel), "phone")
            if channel is None or not personal.get(field):
                continue  # nobody to send it to
            path = path_of(tmp_path / "outbox", notification_id(f"{env_.aggregate_id}/{env_.version}:final_reply"))
            assert path is not None, f"the final reply to {request.reference} is not in the outbox"
            assert path.parent.name == channel
            if channel == "email":
                mail = message_from_bytes(path.read_bytes(), policy=policy.default)
                assert isinstance(mail, EmailMessage)
                text = mail.get_body(("plain",))
                assert mail["To"] == personal["email"]
                assert text is not None and env_.data["message"].strip() in text.get_content().replace("\r\n", "\n")  # type: ignore[attr-defined]
            else:
                doc = json.loads(path.read_text("utf-8"))
                assert doc["to"] == personal[field] and env_.data["message"].strip() in doc["body"]
            delivered += 1
        assert delivered >= 5, f"only {delivered} of {len(replies)} final replies had someone to go to"
    finally:
        h.close()
