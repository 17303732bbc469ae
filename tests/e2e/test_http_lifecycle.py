"""The request lifecycle end to end over HTTP, on SQLite and on a real PostgreSQL."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from domain.events import name_of
from infra.runtime import Hotline
from tests.auth import SignedInClient

AGENT = {"X-Actor-Id": "op-anna", "X-Actor-Role": "agent"}
ROADS = {"X-Actor-Id": "dept-transport", "X-Actor-Role": "department", "X-Actor-Departments": "transport"}
SUP = {"X-Actor-Id": "sup-li", "X-Actor-Role": "supervisor"}
CITIZEN = {"X-Actor-Id": "citizen-web", "X-Actor-Role": "citizen"}
BODY = {
    "kind": "action",
    "subtype": "complaint",
    "channel": "web",
    "description": "Deep pothole in front of number 12",
    "contact": {"name": "Mario Rossi", "phone": "+39 06 1234 5678", "email": "mario@example.it"},
    "location": {"address": "Via Roma 12", "lat": 41.9, "lon": 12.5},
    "urgency": "urgent",
    "problem_code": "pothole",
    "collected": {"size": "large"},
}


@pytest.fixture
def client(hotline: Hotline) -> Iterator[TestClient]:
    with SignedInClient(create_app(hotline=hotline)) as c:
        yield c


def post(
    client: TestClient, path: str, body: dict[str, Any] | None = None, headers: dict[str, str] = AGENT, status: int = 200
) -> dict[str, Any]:
    r = client.post(path, json=body or {}, headers=headers)
    assert r.status_code == status, r.text
    return r.json()


def test_full_lifecycle(client: TestClient, hotline: Hotline, clock: Any) -> None:
    reg = post(client, "/requests", BODY, status=201)
    ref = reg["reference"]
    assert reg["status"] == "registered" and reg["position"] > 0
    assert reg["due_at"].startswith((clock.now() + timedelta(hours=24)).date().isoformat())

    # Read your write: the operator's list shows it at once.
    listed = client.get("/requests", params={"min_position": reg["position"], "status": "registered"}).json()["items"]
    assert [r["reference"] for r in listed] == [ref]

    post(client, f"/requests/{ref}/dispatch", {"instructions": "cones needed"})
    post(client, f"/requests/{ref}/accept", {"department_id": "transport"}, headers=ROADS)
    wo = post(client, f"/requests/{ref}/work-order", status=201)
    dup = post(client, "/requests", {**BODY, "contact": {"name": "Anna", "phone": "+39 347 123 4567"}}, status=201)
    post(client, f"/requests/{dup['reference']}/link-duplicate", {"work_order_id": wo["id"]})
    post(client, f"/requests/{ref}/supervision", {"reason": "school street"}, headers=SUP)
    post(client, f"/requests/{ref}/notes", {"text": "citizen called again"})
    post(
        client,
        f"/requests/{ref}/interim-reply",
        {"message": "crew booked", "delay_reason": "asphalt plant closed", "expected_at": (clock.now() + timedelta(hours=20)).isoformat()},
    )

    # Supervisors' views.
    loads = client.get("/departments/workloads").json()
    transport = next(d for d in loads if d["department_id"] == "transport")
    assert transport["by_state"] == {"in_progress": 1} and transport["work_orders"] == {"open": 1}
    clock.advance(hours=23)
    soon = client.get("/sla/breaches", params={"due_within_hours": 2}).json()
    assert ref in [b["reference"] for b in soon["due_soon"]]
    clock.advance(hours=2)
    late = client.get("/sla/breaches", params={"department_id": "transport"}).json()
    assert ref in [b["reference"] for b in late["overdue"]]

    post(client, f"/work-orders/{wo['id']}/start", {"crew": "Crew 3"}, headers=ROADS)
    post(client, f"/work-orders/{wo['id']}/complete", {"outcome": "Filled with asphalt"}, headers=ROADS)
    post(client, f"/requests/{ref}/reply", {"message": "Fixed, thank you", "channel": "email"})
    post(client, f"/requests/{ref}/resolve", {"resolution": "repaired"})
    closed = post(client, f"/requests/{ref}/close")
    assert closed["status"] == "closed"
    # The citizen rates their own case (signed in: their token names their record).
    post(client, f"/requests/{ref}/rating", {"score": 5, "comment": "fast"}, headers={**CITIZEN, "X-Actor-Citizen": reg["citizen_id"]})

    detail = client.get(f"/requests/{ref}").json()
    assert detail["status"] == "closed" and detail["rating"] == 5 and detail["closed_on_time"] is False
    assert detail["work_order_outcome"] == "Filled with asphalt"
    steps = [
        "registered",
        "classified",
        "dispatched",
        "accepted",
        "work_order_linked",
        "supervision_started",
        "note_added",
        "interim_replied",
        "work_order_outcome_recorded",
        "final_replied",
        "resolved",
        "closed",
        "rated",
    ]
    types = [name_of(t["type"]) for t in detail["timeline"]]
    assert [t for t in types if t in steps] == steps  # every step, in order (timers may come between)
    assert {t["actor_role"] for t in detail["timeline"]} >= {"agent", "department", "supervisor", "citizen"}
    assert client.get(f"/requests/{dup['reference']}").json()["work_order_outcome"] == "Filled with asphalt"

    citizen = client.get(f"/citizens/{reg['citizen_id']}").json()
    assert citizen["requests"] == 1 and citizen["open_requests"] == 0
    assert next(name_of(h["type"]) for h in citizen["history"]) == "rated"
    found = client.get("/citizens", params={"phone": "06 1234 5678"}).json()
    assert [c["id"] for c in found] == [reg["citizen_id"]]

    order = client.get(f"/work-orders/{wo['id']}").json()
    assert order["status"] == "completed" and len(order["request_ids"]) == 2


def test_errors_are_json_that_say_what_is_wrong(client: TestClient) -> None:
    r = client.post("/requests", json={**BODY, "urgency": "yesterday"}, headers=AGENT)
    assert r.status_code == 422
    assert r.json()["error"]["code"] == "invalid_request" and "urgency" in r.json()["error"]["message"]

    r = client.post("/requests", json={**BODY, "contact": None}, headers=AGENT)
    assert r.status_code == 422 and r.json()["error"]["code"] == "anonymous_refused"

    r = client.get("/requests/000000000000")
    assert r.status_code == 404 and r.json()["error"]["code"] == "not_found"

    ref = post(client, "/requests", BODY, status=201)["reference"]
    r = client.post(f"/requests/{ref}/close", json={}, headers=AGENT)
    assert r.status_code == 409 and "registered" in r.json()["error"]["message"]

    r = client.post(f"/requests/{ref}/accept", json={"department_id": "transport"}, headers={"X-Actor-Id": "x", "X-Actor-Role": "wizard"})
    assert r.status_code == 403 and "none of the hotline's roles" in r.json()["error"]["message"]

    r = client.post(f"/requests/{ref}/rating", json={"score": 9}, headers=CITIZEN)
    assert r.status_code == 422 and "score" in r.json()["error"]["message"]

    r = client.post("/requests", content=b"{not json", headers={**AGENT, "Content-Type": "application/json"})
    assert r.status_code == 422 and r.json()["error"]["code"] == "invalid_request"


def test_idempotency_key_and_if_match(client: TestClient) -> None:
    headers = {**AGENT, "Idempotency-Key": "call-7781-register"}
    first = client.post("/requests", json=BODY, headers=headers)
    again = client.post("/requests", json=BODY, headers=headers)
    assert first.status_code == again.status_code == 201
    assert first.json()["reference"] == again.json()["reference"]
    assert again.headers.get("Idempotent-Replayed") == "true"
    assert client.get("/requests").json()["total"] == 1
    # The retry (its client lost the first answer) can still read its write: a position at
    # or after the first commit, in the body and the header (it was 0, with no header).
    position = again.json()["position"]
    assert position >= first.json()["position"] > 0 and again.headers["X-Event-Position"] == str(position)
    assert client.get("/requests", params={"min_position": position}).json()["total"] == 1
    other = client.post("/requests", json={**BODY, "description": "something else"}, headers=headers)
    assert other.status_code == 422 and other.json()["error"]["code"] == "idempotency_key_reused"

    for refused in ({"json": {**BODY, "expected_version": 5}, "headers": AGENT}, {"json": BODY, "headers": {**AGENT, "If-Match": '"7"'}}):
        r = client.post("/requests", **refused)  # type: ignore[arg-type]
        assert r.status_code == 422 and "expected_version" in r.text, r.text
    ref, version = first.json()["reference"], first.json()["version"]
    negative = client.post(f"/requests/{ref}/notes", json={"text": "x", "expected_version": -3}, headers=AGENT)
    assert negative.status_code == 422, negative.text
    stale = client.post(f"/requests/{ref}/notes", json={"text": "x"}, headers={**AGENT, "If-Match": str(version - 1)})
    assert stale.status_code == 409 and stale.json()["error"]["code"] == "version_conflict"
    fresh = client.post(f"/requests/{ref}/notes", json={"text": "x"}, headers={**AGENT, "If-Match": str(version)})
    assert fresh.status_code == 200 and fresh.json()["version"] == version + 1


def test_catalogue_over_http(client: TestClient) -> None:
    tree = client.get("/catalogue").json()
    deps = {d["id"]: d for d in tree["departments"]}
    assert deps["environment"]["names"]["zh"] == "环境服务局" and deps["environment"]["names"]["ar"] == "الخدمات البيئية"
    pc = client.get("/catalogue/problem-codes/appliance-removal").json()
    assert pc["route"]["department_id"] == "environment" and pc["work_order_template"]["tasks"]
    names = {"zh": "噪音", "ar": "ضوضاء", "it": "Rumore", "en": "Noise"}
    post(client, "/catalogue/categories", {"id": "noise", "provider_id": "solid-waste", "names": names}, headers=SUP, status=201)
    r = client.post("/catalogue/categories", json={"id": "noise2", "provider_id": "solid-waste", "names": {"en": "Noise"}}, headers=SUP)
    assert r.status_code == 422
    r = client.post("/catalogue/categories", json={"id": "noise", "provider_id": "solid-waste", "names": names}, headers=SUP)
    assert r.status_code == 409 and r.json()["error"]["code"] == "already_exists"
    r = client.post("/catalogue/departments", json={"id": "x", "names": names}, headers=AGENT)
    assert r.status_code == 403 and r.json()["error"]["code"] == "forbidden"
    post(client, "/catalogue/problem-codes/pothole/revision", {"deadlines": {"normal": {"hours": 16, "basis": "working"}}}, headers=SUP)
    assert client.get("/catalogue/problem-codes/pothole").json()["deadlines"]["normal"] == {"hours": 16.0, "basis": "working"}


def test_health_and_docs(client: TestClient) -> None:
    post(client, "/requests", BODY, status=201)
    health = client.get("/healthz").json()
    assert health["status"] == "ok" and health["position"] > 0
    assert all(p["lag"] == 0 for p in health["projections"].values())
    assert client.get("/docs").status_code == 200
    spec = client.get("/openapi.json").json()
    assert "/requests/{ref}/dispatch" in spec["paths"]


def test_wrong_methods_and_content_types_are_named(client: TestClient) -> None:
    """405 lists every method of the path (RFC 9110); a JSON body sent as another type is a
    415 that says so (it was a 422 "not a valid dictionary"); broken JSON names no field."""
    for method in ("DELETE", "PUT", "PATCH"):
        r = client.request(method, "/requests", headers=AGENT)
        assert r.status_code == 405 and r.headers["allow"] == "GET, POST", (method, r.headers.get("allow"))
    r = client.post("/requests", content=json.dumps(BODY).encode(), headers={**AGENT, "Content-Type": "text/plain"})
    assert r.status_code == 415 and r.json()["error"]["code"] == "unsupported_media_type" and "text/plain" in r.text, r.text
    r = client.post("/requests", content=b'{"kind": "action",', headers={**AGENT, "Content-Type": "application/json"})
    assert r.status_code == 422 and r.json()["error"]["details"]["problems"][0]["field"] == "", r.text
    assert "not valid JSON" in r.json()["error"]["message"]


def test_an_unknown_queue_is_404(client: TestClient) -> None:
    r = client.get("/queues/nope/waiting", headers=AGENT)
    assert r.status_code == 404 and r.json()["error"]["message"] == "no queue nope", r.text
