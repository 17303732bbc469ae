"""The SLA endpoints through the FastAPI app (in-process HTTP client)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from consumers.timers import TimerProcess
from domain.base import FixedClock
from infra.runtime import Hotline
from infra.settings import Settings
from tests.auth import SignedInClient
from tests.conftest import START
from tests.sla.conftest import register, start

SUP = {"X-Actor-Id": "sup1", "X-Actor-Role": "supervisor"}
DEP = {"X-Actor-Id": "roads", "X-Actor-Role": "department", "X-Actor-Departments": "roads"}
AGENT = {"X-Actor-Id": "op1", "X-Actor-Role": "agent"}


@pytest.fixture
def hotline(tmp_path: Path) -> Iterator[Hotline]:
    h = start(Settings(data_dir=tmp_path, jurisdiction="shanghai"), FixedClock(START))
    yield h
    h.close()


@pytest.fixture
def client(hotline: Hotline) -> Iterator[TestClient]:
    with SignedInClient(create_app(hotline=hotline)) as tc:
        yield tc


def test_calendar_endpoints(client: TestClient) -> None:
    cal = client.get("/calendars/shanghai").json()
    assert cal["time_zone"] == "Asia/Shanghai" and "2026-02-14" in cal["makeup_working_days"]
    r = client.get("/calendars/shanghai/deadline", params={"start": "2026-02-13T17:00:00+08:00", "hours": 2})
    assert r.status_code == 200 and r.json()["local_due_at"] == "2026-02-14T10:00:00+08:00"
    r = client.post("/calendars/shanghai", json={"declare_holidays": ["2026-11-23"], "reason": "demo"}, headers=SUP)
    assert r.status_code == 200, r.text
    assert "2026-11-23" in client.get("/calendars/shanghai").json()["holidays"]
    r = client.post("/calendars/shanghai", json={"declare_holidays": ["2026-11-24"]}, headers=DEP)
    assert r.status_code in (403, 409) and r.json()
    assert client.get("/calendars/atlantis").status_code == 404


def test_pause_resume_sla_and_timers(client: TestClient, hotline: Hotline) -> None:
    ref = register(hotline, urgency="urgent", problem_code="pothole")["reference"]
    r = client.post(f"/requests/{ref}/wait-for-citizen", json={"reason": "photo needed"}, headers=AGENT)
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "waiting_citizen"
    clock = hotline.clock
    assert isinstance(clock, FixedClock)
    clock.advance(hours=5)
    r = client.post(f"/requests/{ref}/citizen-responded", json={"note": "sent"}, headers=AGENT)
    assert r.status_code == 200 and r.json()["status"] == "registered"
    sla = client.get(f"/requests/{ref}/sla").json()
    assert sla["measures"]["paused_seconds"] == 5 * 3600
    assert {t["kind"] for t in sla["timers"]} >= {"deadline_missed", "deadline_approaching", "escalation"}
    clock.advance(days=3)
    TimerProcess(hotline).tick()
    status = client.get("/sla/timers").json()["table"]
    assert status["fired"] >= 4 and status["pending_due"] == 0
    ageing = client.get("/sla/ageing").json()["groups"]
    assert ageing[0]["overdue"] == 1
    assert client.get("/notifications").json()["counts"] == {}


def test_a_citizens_message_is_kept_on_the_case_and_resumes_a_paused_clock(client: TestClient, hotline: Hotline) -> None:
    ref = register(hotline, urgency="urgent", problem_code="pothole")["reference"]
    # Not waiting: the message is kept, the status is unchanged.
    r = client.post(f"/requests/{ref}/citizen-messages", json={"text": "It got bigger", "channel": "sms"}, headers=AGENT)
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "registered"
    assert client.post(f"/requests/{ref}/wait-for-citizen", json={"reason": "photo needed"}, headers=AGENT).status_code == 200
    clock = hotline.clock
    assert isinstance(clock, FixedClock)
    clock.advance(hours=2)
    r = client.post(f"/requests/{ref}/citizen-messages", json={"text": "Photo attached", "channel": "email"}, headers=AGENT)
    assert r.status_code == 200 and r.json()["status"] == "registered"
    assert client.get(f"/requests/{ref}/sla").json()["measures"]["paused_seconds"] == 2 * 3600
    timeline = client.get(f"/requests/{ref}", headers=AGENT).json()["timeline"]
    wrote = [e for e in timeline if e["type"] == "hotline.request.citizen_wrote.v1"]
    assert [e["details"]["text"] for e in wrote] == ["It got bigger", "Photo attached"]
    assert wrote[1]["details"]["channel"] == "email"
    # Neither text nor attachment: refused, nothing recorded.
    r = client.post(f"/requests/{ref}/citizen-messages", json={"text": "  ", "channel": "web"}, headers=AGENT)
    assert r.status_code == 422 and r.json()["error"]
    assert len(client.get(f"/requests/{ref}", headers=AGENT).json()["timeline"]) == len(timeline)
