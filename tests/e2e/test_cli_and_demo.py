"""The README's first command in miniature: the demo loads through the real command path,
the server answers, and every projection rebuilt from the events equals the live one."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa

from api.demo import DEMO_PASSWORD, load_demo
from infra.read_store import make_engine
from infra.settings import Settings
from infra.wiring import FOUNDATION

ROOT = Path(__file__).resolve().parents[2]
HOTLINE = str(Path(sys.executable).parent / "hotline")  # the installed CLI, beside this interpreter


def _snapshot(url: str) -> dict[str, list[tuple[Any, ...]]]:
    engine = make_engine(url)
    out: dict[str, list[tuple[Any, ...]]] = {}
    with engine.connect() as conn:
        for p in FOUNDATION:
            for name, table in p.tables.items():
                out[name] = sorted(tuple(str(v) for v in r) for r in conn.execute(sa.select(table)))
    engine.dispose()
    return out


@pytest.fixture(scope="module")
def demo_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    data = tmp_path_factory.mktemp("demo")
    counts = load_demo(Settings(data_dir=data), only_if_empty=True)
    assert counts["requests"] >= 60 and counts["closed"] > 0 and counts["duplicates"] > 0 and counts["awaiting_ruling"] > 0
    return data


def _cli(data: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, HOTLINE_DATA_DIR=str(data))
    return subprocess.run([HOTLINE, *args], env=env, cwd=ROOT, capture_output=True, text=True, timeout=300)


def test_replay_rebuilds_the_same_read_models(demo_dir: Path) -> None:
    settings = Settings(data_dir=demo_dir)
    before = _snapshot(settings.read_store_url)
    assert before["rm_requests"] and before["rm_request_timeline"] and before["rm_sla_watch"]
    for p in FOUNDATION:
        result = _cli(demo_dir, "replay", p.name)
        assert result.returncode == 0, result.stderr
    assert _snapshot(settings.read_store_url) == before


def test_status_reports_positions(demo_dir: Path) -> None:
    result = _cli(demo_dir, "status")
    assert result.returncode == 0, result.stderr
    assert '"event_store_position"' in result.stdout and "request_status" in result.stdout


def test_serve_answers_with_demo_data(demo_dir: Path) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = dict(os.environ, HOTLINE_DATA_DIR=str(demo_dir), HOTLINE_PORT=str(port), HOTLINE_LOG_LEVEL="warning")
    server = subprocess.Popen([HOTLINE, "serve"], env=env, cwd=ROOT)
    try:
        base = f"http://127.0.0.1:{port}"
        for _ in range(150):
            try:
                if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.2)
        else:
            pytest.fail("hotline serve did not answer /healthz")
        assert httpx.get(f"{base}/docs").status_code == 200
        # Nobody reads a case without signing in; the demo's supervisor signs in (README).
        assert httpx.get(f"{base}/requests").status_code == 401
        signed = httpx.post(f"{base}/auth/token", json={"username": "sup-li", "password": DEMO_PASSWORD})
        assert signed.status_code == 200, signed.text
        auth = {"Authorization": f"Bearer {signed.json()['access_token']}"}
        overdue = httpx.get(f"{base}/sla/breaches", params={"due_within_hours": 48}, headers=auth).json()
        assert overdue["overdue"] or overdue["due_soon"]
        loads = httpx.get(f"{base}/departments/workloads", headers=auth).json()
        assert {d["department_id"] for d in loads} >= {"transport", "environment"}
        requests = httpx.get(f"{base}/requests", params={"limit": 500}, headers=auth).json()["items"]
        assert {r["status"] for r in requests} >= {"closed", "in_progress", "dispatched", "awaiting_ruling"}
        # The transport department's clerk sees only what is dispatched to transport.
        clerk = httpx.post(f"{base}/auth/token", json={"username": "dept-transport", "password": DEMO_PASSWORD}).json()
        clerks = {"Authorization": f"Bearer {clerk['access_token']}"}
        theirs = httpx.get(f"{base}/requests", params={"limit": 500}, headers=clerks).json()["items"]
        assert theirs and {r["department_id"] for r in theirs} == {"transport"}
    finally:
        server.terminate()
        server.wait(timeout=30)
