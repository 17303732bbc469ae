"""Versions a screen can use (ETag / If-Match) and the operators' search, over HTTP on both stores.

Oracles: the version is the highest version of the aggregate's events in the event store;
the search's expected answers are computed here from what the test registered.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from domain.base import FixedClock
from infra.runtime import Hotline
from tests.auth import SignedInClient, actor

AGENT = actor("op-anna", "agent")
SUP = actor("sup-li", "supervisor")
ROADS = actor("dept-transport", "department", departments=["transport"])
INTEGRATOR = actor("open311", "integrator")


@pytest.fixture
def client(hotline: Hotline) -> Iterator[TestClient]:
    with SignedInClient(create_app(hotline=hotline)) as c:
        yield c


def ok(r: Any, status: int = 200) -> Any:
    assert r.status_code == status, r.text
    return r.json()


def register(client: TestClient, description: str, **kw: Any) -> dict[str, Any]:
    body = {
        "kind": "action",
        "subtype": "complaint",
        "channel": "phone",
        "description": description,
        "urgency": "normal",
        "contact": {"name": "Mario Rossi", "phone": "+39 06 1234 5678"},
        **kw,
    }
    return ok(client.post("/requests", json=body, headers=AGENT), 201)


def store_version(hotline: Hotline, aggregate_id: str) -> int:
    return max(e.version for e in hotline.store.iter_envelopes() if e.aggregate_id == aggregate_id)


# ------------------------------------------------------------------------ versions
def test_read_version_is_the_aggregates_and_if_match_with_its_etag_succeeds(client: TestClient, hotline: Hotline) -> None:
    reg = register(client, "Pothole in front of number 12", problem_code="pothole")
    ref = reg["reference"]
    for step in ("dispatch", "notes"):
        ok(client.post(f"/requests/{ref}/{step}", json={"text": "x"} if step == "notes" else {}, headers=AGENT))
    read = client.get(f"/requests/{ref}", headers=AGENT)
    body = ok(read)
    # Timer plans (TimersScheduled) and notes count: the read model is at the store's version.
    assert body["version"] == store_version(hotline, reg["id"]) == body["timeline"][-1]["version"]
    assert read.headers["ETag"] == f'"{body["version"]}"'

    answer = ok(client.post(f"/requests/{ref}/notes", json={"text": "mine"}, headers={**AGENT, "If-Match": read.headers["ETag"]}))
    assert answer["version"] > body["version"]
    again = client.get(f"/requests/{ref}", headers=AGENT)
    assert again.headers["ETag"] == f'"{answer["version"]}"' == f'"{store_version(hotline, reg["id"])}"'

    # Someone else writes in between: the screen's ETag is stale, 409.
    ok(client.post(f"/requests/{ref}/notes", json={"text": "theirs"}, headers=SUP))
    stale = client.post(f"/requests/{ref}/notes", json={"text": "late"}, headers={**AGENT, "If-Match": again.headers["ETag"]})
    assert stale.status_code == 409, stale.text
    # The forms an If-Match may take: weak (a compressing proxy), bare (older clients), any.
    current = client.get(f"/requests/{ref}", headers=AGENT).headers["ETag"]
    ok(client.post(f"/requests/{ref}/notes", json={"text": "w"}, headers={**AGENT, "If-Match": f"W/{current}"}))
    current = client.get(f"/requests/{ref}", headers=AGENT).headers["ETag"]
    ok(client.post(f"/requests/{ref}/notes", json={"text": "bare"}, headers={**AGENT, "If-Match": current.strip('"')}))
    ok(client.post(f"/requests/{ref}/notes", json={"text": "any"}, headers={**AGENT, "If-Match": "*"}))
    for bad in ('"abc"', '"3", "4"', "W/3"):
        r = client.post(f"/requests/{ref}/notes", json={"text": "bad"}, headers={**AGENT, "If-Match": bad})
        assert r.status_code == 422 and r.json()["error"]["details"]["field"] == "If-Match", (bad, r.text)


def test_work_order_read_has_its_etag(client: TestClient, hotline: Hotline) -> None:
    ref = register(client, "Pothole again", problem_code="pothole")["reference"]
    ok(client.post(f"/requests/{ref}/dispatch", json={}, headers=AGENT))
    ok(client.post(f"/requests/{ref}/accept", json={"department_id": "transport"}, headers=ROADS))
    wo = ok(client.post(f"/requests/{ref}/work-order", headers=SUP), 201)
    read = client.get(f"/work-orders/{wo['id']}", headers=SUP)
    assert read.headers["ETag"] == f'"{ok(read)["version"]}"' == f'"{store_version(hotline, wo["id"])}"'
    ok(client.post(f"/work-orders/{wo['id']}/start", json={}, headers={**ROADS, "If-Match": read.headers["ETag"]}))
    r = client.post(f"/work-orders/{wo['id']}/cancel", json={"reason": "dup"}, headers={**SUP, "If-Match": read.headers["ETag"]})
    assert r.status_code == 409, r.text


# ------------------------------------------------------------------------ search
CASES = [
    # description, fields, contact
    ("Streetlight out at the bus stop in Via Roma", {"urgency": "urgent", "channel": "phone"}, ("Mario Rossi", "+39 06 1234 5678")),
    ("Deep pothole in Via Appia near the school", {"urgency": "normal", "channel": "web"}, ("Giulia Bianchi", "+39 347 123 4567")),
    ("Rubbish bins overflowing in Piazza Navona", {"urgency": "control", "channel": "email"}, ("Anna Verdi", "+39 02 8765 4321")),
    ("Streetlights flickering all night in Via Appia", {"urgency": "normal", "channel": "phone"}, ("Luca Neri", "+39 333 765 4321")),
    ("小区门口的路灯坏了", {"urgency": "urgent", "channel": "web", "language": "zh"}, ("王伟", "+39 320 111 2222")),
]


@pytest.fixture
def cases(client: TestClient, clock: FixedClock) -> list[dict[str, Any]]:
    made = []
    for i, (description, fields, (name, phone)) in enumerate(CASES):
        reg = register(client, description, contact={"name": name, "phone": phone}, **fields)
        made.append({**reg, **fields, "description": description, "name": name, "at": clock.now(), "n": i})
        clock.advance(hours=1)
    return made


def refs(page: dict[str, Any]) -> list[str]:
    return [r["reference"] for r in page["items"]]


def search(client: TestClient, headers: dict[str, str] = SUP, **params: Any) -> dict[str, Any]:
    page = ok(client.get("/requests", params=params, headers=headers))
    assert set(page) == {"items", "total", "next_cursor"}
    return page


def test_free_text_filters_total_and_order(client: TestClient, cases: list[dict[str, Any]], clock: FixedClock) -> None:
    by_n = {c["n"]: c["reference"] for c in cases}
    newest_first = [by_n[n] for n in (4, 3, 2, 1, 0)]
    page = search(client)
    assert refs(page) == newest_first and page["total"] == 5 and page["next_cursor"] is None
    # Words of the description, stemmed (streetlights ~ streetlight), every word must match.
    assert refs(search(client, q="streetlight")) == [by_n[3], by_n[0]]
    assert refs(search(client, q="via appia")) == [by_n[3], by_n[1]]
    assert refs(search(client, q="appia streetlight")) == [by_n[3]]
    assert refs(search(client, q="navo")) == [by_n[2]]  # the last word as it is being typed
    assert refs(search(client, q="路灯")) == [by_n[4]]  # a two-character Chinese word
    assert search(client, q="tramway")["total"] == 0
    # The reference, whole or its serial part.
    assert refs(search(client, q=by_n[2])) == [by_n[2]]
    # Staff find a case by the caller's name or number, as given or dialled nationally.
    assert refs(search(client, q="Bianchi")) == [by_n[1]]
    assert refs(search(client, q="+39 347 123 4567")) == [by_n[1]]
    assert refs(search(client, q="347 1234567")) == [by_n[1]]
    assert refs(search(client, q="王伟")) == [by_n[4]]
    # An integrator never finds a case by someone's personal data (its words, yes).
    assert search(client, INTEGRATOR, q="Bianchi")["total"] == 0
    assert search(client, INTEGRATOR, q="3471234567")["total"] == 0
    assert refs(search(client, INTEGRATOR, q="pothole")) == [by_n[1]]

    assert refs(search(client, urgency="urgent")) == [by_n[4], by_n[0]]
    assert refs(search(client, channel="phone", q="via")) == [by_n[3], by_n[0]]
    assert refs(search(client, sort="urgency")) == [by_n[4], by_n[0], by_n[2], by_n[3], by_n[1]]
    assert refs(search(client, sort="registered_at")) == newest_first[::-1]
    start = cases[1]["at"]
    window = search(client, registered_from=start.isoformat(), registered_to=(start + timedelta(hours=2)).isoformat())
    assert refs(window) == [by_n[2], by_n[1]]
    assert search(client, registered_to=start.date().isoformat())["total"] == 5  # a date alone: the whole day
    due = sorted(cases, key=lambda c: (c["due_at"], c["id"]))
    assert refs(search(client, sort="due_at")) == [c["reference"] for c in due]
    first_due = min(c["due_at"] for c in cases)
    assert refs(search(client, due_before=first_due)) == []
    assert search(client, overdue="false")["total"] == 5 and search(client, overdue="true")["total"] == 0
    assert search(client, supervised="true")["total"] == 0


def test_overdue_and_supervised(client: TestClient, cases: list[dict[str, Any]], clock: FixedClock) -> None:
    clock.advance(days=3)  # urgent (24 h) and control (48 h) cases are late, normal ones not yet
    late = {c["reference"] for c in cases if c["urgency"] in ("urgent", "control")}
    assert set(refs(search(client, overdue="true"))) == late
    assert search(client, overdue="false")["total"] == 5 - len(late)
    ok(client.post(f"/requests/{cases[1]['reference']}/supervision", json={"supervised": True, "reason": "late"}, headers=SUP))
    assert refs(search(client, supervised="true")) == [cases[1]["reference"]]


def test_cursor_pages_cover_everything_once(client: TestClient, cases: list[dict[str, Any]]) -> None:
    for sort in ("-registered_at", "registered_at", "due_at", "-due_at", "urgency"):
        whole = refs(search(client, sort=sort, limit=50))
        seen: list[str] = []
        page = search(client, sort=sort, limit=2)
        while True:
            assert page["total"] == 5
            seen += refs(page)
            if page["next_cursor"] is None:
                break
            page = search(client, sort=sort, limit=2, cursor=page["next_cursor"])
        assert seen == whole, sort
    r = client.get("/requests", params={"sort": "due_at", "cursor": search(client, limit=1)["next_cursor"]}, headers=SUP)
    assert r.status_code == 422 and r.json()["error"]["details"]["field"] == "cursor"
    assert client.get("/requests", params={"cursor": "not-a-cursor"}, headers=SUP).status_code == 422


def test_department_sees_only_its_cases(client: TestClient, cases: list[dict[str, Any]]) -> None:
    ref = cases[1]["reference"]
    ok(client.post(f"/requests/{ref}/classify", json={"problem_code": "pothole"}, headers=AGENT))
    ok(client.post(f"/requests/{ref}/dispatch", json={}, headers=AGENT))
    assert refs(search(client, ROADS)) == [ref] and search(client, ROADS)["total"] == 1
    assert refs(search(client, ROADS, q="via")) == [ref]
    assert search(client, ROADS, q="Bianchi")["total"] == 0  # departments read no personal data
    assert refs(search(client, department_id="transport", status="dispatched", problem_code="pothole")) == [ref]
    assert refs(search(client, status=["dispatched", "closed"])) == [ref]
    assert search(client, status=["dispatched", "registered"])["total"] == 5
    assert search(client, department_id="transport")["total"] == 1


@pytest.mark.parametrize(
    ("params", "field", "allowed"),
    [
        ({"status": "bogus"}, "status", "registered"),
        ({"urgency": "high"}, "urgency", "urgent"),
        ({"kind": "x"}, "kind", "action"),
        ({"subtype": "x"}, "subtype", "complaint"),
        ({"channel": "fax"}, "channel", "phone"),
        ({"sort": "name"}, "sort", "-registered_at"),
    ],
)
def test_unknown_values_are_422_listing_the_allowed(client: TestClient, params: dict[str, str], field: str, allowed: str) -> None:
    r = client.get("/requests", params=params, headers=SUP)
    assert r.status_code == 422, r.text
    details = r.json()["error"]["details"]
    assert details["field"] == field and allowed in details["allowed"]


def test_bad_dates_are_422_saying_the_format(client: TestClient) -> None:
    for field in ("registered_from", "registered_to", "due_before"):
        r = client.get("/requests", params={field: "30/11/2026"}, headers=SUP)
        assert r.status_code == 422 and r.json()["error"]["details"]["field"] == field
        assert "ISO 8601" in r.json()["error"]["message"]
    r = client.get("/requests", params={"overdue": "maybe"}, headers=SUP)
    assert r.status_code == 422


def test_every_row_is_at_its_aggregates_version_and_the_counts_add_up(hotline: Hotline) -> None:
    """After random lifecycles (timer plans, replies, closures, work orders): each request's
    row has the version of its last stored event, and the kept totals per (status,
    department) equal a count of the rows."""
    from collections import Counter

    import sqlalchemy as sa

    from projections import request_status as rs
    from tests.kafka.harness import Workload

    work = Workload(hotline, seed=5)
    for _ in range(120):
        work.step()
    versions: dict[str, int] = {}
    for e in hotline.store.iter_envelopes():
        if e.stream == "request":
            versions[e.aggregate_id] = max(versions.get(e.aggregate_id, 0), e.version)
    with hotline.read_store.engine.connect() as conn:
        rows = [dict(r) for r in conn.execute(sa.select(rs.REQUESTS)).mappings()]
        kept = {(r["status"], r["department_id"]): r["count"] for r in conn.execute(sa.select(rs.COUNTS)).mappings()}
        page = rs.find(conn, rs.Filters(status=("closed", "dispatched")), now=hotline.clock.now())
    assert rows and {r["id"]: r["version"] for r in rows} == versions
    assert kept == dict(Counter((r["status"], r["department_id"] or "") for r in rows))
    assert page["total"] == sum(r["status"] in ("closed", "dispatched") for r in rows)
