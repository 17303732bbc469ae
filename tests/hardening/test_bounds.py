"""Every input bounded (issue 18): the body's size (413), the length of every text field
and header the hotline stores (422), the range of every number (422); each refusal is the
API's JSON error, and nothing near a limit takes long."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from domain.base import FixedClock
from domain.limits import HEADER_MAX, ID_MAX, SHORT_TEXT_MAX, TEXT_MAX
from infra.runtime import Hotline
from infra.settings import Settings
from tests.auth import SignedInClient, bearer
from tests.conftest import START, create_pg_database, drop_pg_database, load_catalogue
from tests.sla.conftest import load_calendars

AGENT = {"X-Actor-Id": "op-anna", "X-Actor-Role": "agent"}
SUP = {"X-Actor-Id": "sup-li", "X-Actor-Role": "supervisor"}
BODY: dict[str, Any] = {
    "kind": "action",
    "subtype": "complaint",
    "channel": "web",
    "description": "Deep pothole in front of number 12",
    "contact": {"name": "Mario Rossi", "phone": "+39 06 1234 5678"},
    "problem_code": "pothole",
    "collected": {"size": "large"},
}
TOO_BIG = 2**63  # one past the stores' BIGINT


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def client(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    """One hotline per store for the whole module (the refusals change nothing)."""
    url = create_pg_database() if request.param == "postgres" else None
    h = Hotline.start(Settings(data_dir=tmp_path_factory.mktemp("bounds"), database_url=url, pg_pool_size=8), FixedClock(START))
    try:
        load_catalogue(h)
        load_calendars(h)
        with SignedInClient(create_app(hotline=h)) as c:
            yield c
    finally:
        h.close()
        if url:
            drop_pg_database(url)


@pytest.fixture
def small_body(tmp_path: Path, clock: FixedClock) -> Iterator[TestClient]:
    """A hotline configured with a 4 KiB body limit (HOTLINE_MAX_BODY_BYTES)."""
    h = Hotline.start(Settings(data_dir=tmp_path, max_body_bytes=4096), clock)
    load_catalogue(h)
    with SignedInClient(create_app(hotline=h)) as c:
        yield c
    h.close()


def error_of(r: Any, status: int) -> dict[str, Any]:
    """The JSON error body of a refusal with this status."""
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("application/json")
    error: dict[str, Any] = r.json()["error"]
    assert error["status"] == status and error["code"] and error["message"]
    return error


def fields_of(error: dict[str, Any]) -> set[str]:
    return {p["field"] for p in error.get("details", {}).get("problems", [])} | {error.get("details", {}).get("field")}


# ------------------------------------------------------------------ body size
def test_a_body_over_the_limit_is_413_with_or_without_content_length(client: TestClient) -> None:
    limit = 1024 * 1024
    big = b'{"description": "' + b"x" * limit + b'"}'
    error = error_of(client.post("/requests", content=big, headers={"content-type": "application/json"}), 413)
    assert error["code"] == "body_too_large" and error["details"]["max_bytes"] == limit

    def chunked() -> Iterator[bytes]:  # no Content-Length: counted as it arrives
        yield b'{"description": "'
        for _ in range(64):
            yield b"y" * 32768

    error_of(client.post("/requests", content=chunked(), headers={"content-type": "application/json"}), 413)
    # Under the limit the body is read and judged on its content.
    near = {**BODY, "description": "z" * (limit // 2)}
    assert "description" in fields_of(error_of(client.post("/requests", json=near, headers=AGENT), 422))
    assert client.post("/requests", json=BODY, headers=AGENT).status_code == 201


def test_the_limit_is_configurable(small_body: TestClient) -> None:
    body = {**BODY, "description": "a" * 5000}
    assert error_of(small_body.post("/requests", json=body, headers=AGENT), 413)["details"]["max_bytes"] == 4096
    assert small_body.post("/requests", json=BODY, headers=AGENT).status_code == 201


def test_attachment_uploads_keep_their_own_larger_limit(small_body: TestClient) -> None:
    ref = small_body.post("/requests", json=BODY, headers=AGENT).json()["reference"]
    text = b"a photo's caption, as text\n" * 4000  # ~100 KB: over the 4 KiB body limit
    r = small_body.post(f"/requests/{ref}/attachments", files={"file": ("note.txt", text, "text/plain")}, headers=AGENT)
    assert r.status_code == 201, r.text


# ------------------------------------------------------------------ text and headers
@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        ("/requests", {**BODY, "description": "d" * (TEXT_MAX + 1)}, "description"),
        ("/requests", {**BODY, "problem_code": "p" * (ID_MAX + 1)}, "problem_code"),
        ("/requests", {**BODY, "contact": {"name": "n" * 201, "phone": "+39 06 1234 5678"}}, "contact.name"),
        ("/requests", {**BODY, "contact_id": "c" * (ID_MAX + 1)}, "contact_id"),
        ("/requests/{ref}/dispatch", {"instructions": "i" * (TEXT_MAX + 1)}, "instructions"),
        ("/requests/{ref}/dispatch", {"department_id": "d" * (ID_MAX + 1)}, "department_id"),
        ("/requests/{ref}/notes", {"text": "t" * (TEXT_MAX + 1)}, "text"),
        ("/requests/{ref}/supervision", {"reason": "r" * (SHORT_TEXT_MAX + 1)}, "reason"),
        ("/requests/{ref}/kind", {"kind": "information", "reason": "r" * (SHORT_TEXT_MAX + 1)}, "reason"),
        ("/requests/{ref}/reply", {"message": "m" * (TEXT_MAX + 1)}, "message"),
    ],
)
def test_every_stored_text_has_a_maximum(client: TestClient, path: str, body: dict[str, Any], field: str) -> None:
    if "{ref}" in path:
        path = path.format(ref=client.post("/requests", json=BODY, headers=AGENT).json()["reference"])
    assert field in fields_of(error_of(client.post(path, json=body, headers=SUP), 422))


@pytest.mark.parametrize("header", ["Idempotency-Key", "X-Correlation-Id", "If-Match", "X-Actor-Id", "X-Purpose"])
def test_headers_the_hotline_stores_have_a_maximum(client: TestClient, header: str) -> None:
    limit = HEADER_MAX[header.lower()]
    settings = client.app.state.hotline.settings  # type: ignore[attr-defined]
    headers = {**bearer(settings, "op-anna", "agent"), header: "h" * (limit + 1)}
    error = error_of(client.post("/requests", json=BODY, headers=headers), 422)
    assert error["code"] == "header_too_long" and error["details"]["field"] == header.lower()
    # A 60 KB one is refused the same way, and at the limit it is taken.
    error_of(client.get("/requests", headers={**headers, header: "h" * 60_000}), 422)
    if header in ("Idempotency-Key", "X-Correlation-Id"):
        ok = client.post("/requests", json=BODY, headers={**headers, header: "h" * limit})
        assert ok.status_code == 201, ok.text


# ------------------------------------------------------------------ numbers
@pytest.mark.parametrize(
    ("url", "field"),
    [
        (f"/staffing/erlang-c?calls=100&aht=180&agents={TOO_BIG}", "agents"),
        ("/staffing/erlang-c?calls=inf&aht=180", "calls"),
        ("/staffing/erlang-c?calls=nan&aht=180", "calls"),
        ("/staffing/erlang-c?calls=100&aht=1e308", "aht"),
        (f"/requests?min_position={TOO_BIG}", "min_position"),
        ("/requests?limit=100000", "limit"),
        (f"/requests/X/sla?min_position={TOO_BIG}", "min_position"),
        (f"/wallboard?min_position={TOO_BIG}", "min_position"),
        ("/calendars/default/deadline?start=9999-12-31T20:00:00%2B00:00&hours=8760", "start"),
        ("/calendars/default/deadline?start=2026-11-30T09:00:00%2B01:00&hours=8761", "hours"),
        ("/calendars/default/deadline?start=2026-11-30T09:00:00%2B01:00&hours=inf", "hours"),
    ],
)
def test_every_number_has_a_range(client: TestClient, url: str, field: str) -> None:
    started = time.monotonic()
    r = client.get(url, headers=SUP)
    error = error_of(r, 422)
    assert any(field in f for f in fields_of(error) if f) or field in error["message"], error
    assert time.monotonic() - started < 5  # never the minutes (or for ever) it took


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        ("/callbacks", {"retry_seconds": 10**31}, "retry_seconds"),
        ("/callbacks", {"priority": 10**31}, "priority"),
        ("/queues", {"queue_id": "q1", "sl_seconds": 10**31}, "sl_seconds"),
        ("/queues", {"queue_id": "q1", "max_wait_seconds": 10**31}, "max_wait_seconds"),
        ("/queues", {"queue_id": "q1", "ageing_per_minute": 1e308}, "ageing_per_minute"),
        ("/requests/{ref}/rating", {"score": 10**31}, "score"),
    ],
)
def test_numbers_in_bodies_have_a_range(client: TestClient, path: str, body: dict[str, Any], field: str) -> None:
    if "{ref}" in path:
        path = path.format(ref=client.post("/requests", json=BODY, headers=AGENT).json()["reference"])
    if path == "/callbacks":
        body = {"queue_id": "voice", "phone": "+39 06 1234 5678", "due_at": "2026-11-30T09:00:00+01:00", **body}
    assert field in fields_of(error_of(client.post(path, json=body, headers=SUP), 422))


def test_the_largest_staffing_question_answers_at_once(client: TestClient) -> None:
    # ~99,000 erlangs at a 99 % target: one agent at a time took 10 s; bisected, well under 2.
    started = time.monotonic()
    r = client.get("/staffing/erlang-c", params={"calls": 990_000, "aht": 180, "target_sl": 0.99, "target_seconds": 0}, headers=SUP)
    assert r.status_code == 200, r.text
    assert 99_000 < r.json()["agents"] <= 100_000
    assert time.monotonic() - started < 5  # never the minutes (or for ever) it took
