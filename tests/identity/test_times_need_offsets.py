"""A date-time a command takes must say its offset: a naive one ("2026-12-14T10:00:00")
or a bare date was compared with the case's aware deadlines and answered 500."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from infra.runtime import Hotline
from tests.identity.test_permission_matrix import dept, new_request, ok

TRANSPORT = ["transport"]


@pytest.mark.parametrize("value", ["2026-12-14T10:00:00", "2026-12-20"])
def test_a_time_without_its_offset_is_refused_by_name(client: TestClient, hotline: Hotline, value: str) -> None:
    ref = new_request(client, hotline)["reference"]
    ok(client.post(f"/requests/{ref}/accept", json={}, headers=dept(hotline, TRANSPORT)))
    sends = [
        (f"/requests/{ref}/extension", {"requested_due_at": value, "reason": "asphalt plant closed"}, "requested_due_at"),
        (f"/requests/{ref}/interim-reply", {"message": "m", "delay_reason": "d", "expected_at": value}, "expected_at"),
    ]
    for path, body, field in sends:
        r = client.post(path, json=body, headers=dept(hotline, TRANSPORT))
        assert r.status_code == 422, f"{path}: {r.status_code} {r.text}"
        assert field in r.text and "timezone" in r.text.lower(), r.text
    aware = {"requested_due_at": "2026-12-14T10:00:00+01:00", "reason": "asphalt plant closed"}
    ok(client.post(f"/requests/{ref}/extension", json=aware, headers=dept(hotline, TRANSPORT)))
