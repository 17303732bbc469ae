"""A missing published year over HTTP: a 422 naming the jurisdiction and year, then loaded."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from domain.base import FixedClock
from infra.settings import Settings
from tests.auth import SignedInClient
from tests.conftest import START
from tests.sla.conftest import start

SUP = {"X-Actor-Id": "sup1", "X-Actor-Role": "supervisor"}


@pytest.fixture
def client(tmp_path: Path) -> Iterator[TestClient]:
    h = start(Settings(data_dir=tmp_path, jurisdiction="shanghai"), FixedClock(START))
    with SignedInClient(create_app(hotline=h)) as tc:
        yield tc
    h.close()


def test_missing_year_is_a_422_until_its_list_is_published(client: TestClient) -> None:
    cal = client.get("/calendars/shanghai").json()
    assert cal["published_years"] == [2025, 2026] and "2025-02-08" in cal["makeup_working_days"]
    rome = client.get("/calendars/rome").json()
    assert {"rule": "easter+1", "name": "Lunedì dell'Angelo"} in rome["holiday_rules"] and rome["published_years"] is None

    ask = {"start": "2026-12-31T09:00:00+08:00", "hours": 16}
    r = client.get("/calendars/shanghai/deadline", params=ask)
    assert r.status_code == 422, r.text
    error = r.json()["error"]
    assert error["code"] == "holiday_list_missing"
    assert error["details"]["jurisdiction"] == "shanghai" and error["details"]["year"] == 2027
    assert "2027" in error["message"] and "shanghai" in error["message"]

    # Rome's holidays are rules: 2027 needs nothing loaded (Easter Monday 29 March 2027 is off).
    r = client.get("/calendars/rome/deadline", params={"start": "2027-03-26T12:00:00+01:00", "hours": 2})
    assert r.status_code == 200 and r.json()["local_due_at"] == "2027-03-30T09:30:00+02:00"

    # Loading a list (test dates, not a real notice): one command, days then the year.
    r = client.post(
        "/calendars/shanghai",
        json={"declare_holidays": ["2027-01-01"], "publish_years": [2027], "reason": "test notice"},
        headers=SUP,
    )
    assert r.status_code == 200, r.text
    assert r.json()["calendar"]["published_years"] == [2025, 2026, 2027]
    r = client.get("/calendars/shanghai/deadline", params=ask)
    assert r.status_code == 200, r.text
    # 31 Dec 09:00 + 16 h: 8 h on the 31st, 1 January off, 8 h on Monday 4 January (2nd and 3rd a weekend)
    assert date.fromisoformat(r.json()["local_due_at"][:10]) == date(2027, 1, 4)
    assert r.json()["local_due_at"] == "2027-01-04T18:00:00+08:00"
