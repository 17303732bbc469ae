"""The OpenAPI document says what the API does (fast; the fuzz test checks it against the
running API): the one error body, the statuses each kind of route can answer, the headers
commands read, a typed answer for every JSON operation."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from domain.base import FixedClock
from infra.runtime import Hotline
from infra.settings import Settings
from tests.conftest import START

METHODS = {"get", "post", "put", "patch", "delete"}


@pytest.fixture(scope="module")
def doc(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    hotline = Hotline.start(Settings(data_dir=Path(tmp_path_factory.mktemp("doc"))), FixedClock(START))
    try:
        with TestClient(create_app(hotline=hotline)) as client:
            yield client.get("/openapi.json").json()
    finally:
        hotline.close()


def operations(doc: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    for path, item in doc["paths"].items():
        for method, op in item.items():
            if method in METHODS:
                yield f"{method.upper()} {path}", op


def test_errors_are_the_api_error_body(doc: dict[str, Any]) -> None:
    assert "HTTPValidationError" not in json.dumps(doc), "FastAPI's {detail: ...} body is documented somewhere"
    error = doc["components"]["schemas"]["ErrorResponse"]
    assert error["required"] == ["error"]
    wrong = []
    for name, op in operations(doc):
        assert "default" not in op["responses"], f"{name}: a 'default' answer would hide undocumented statuses"
        for status, answer in op["responses"].items():
            if name == "GET /readyz" and status == "503":
                continue  # not an error of the request: the readiness report (test below)
            if status[0] in "45" and not name.split()[1].startswith("/open311/"):
                schema = answer.get("content", {}).get("application/json", {}).get("schema", {})
                if schema.get("$ref") != "#/components/schemas/ErrorResponse":
                    wrong.append(f"{name} {status}")
    assert not wrong, f"error answers without the API's error body: {wrong}"


def test_statuses_follow_from_what_a_route_reads(doc: dict[str, Any]) -> None:
    missing = []
    for name, op in operations(doc):
        statuses = set(op["responses"])
        signed_in = op.get("x-permission") not in (None, "open")
        needs = set()
        if signed_in:
            needs |= {"401", "403"}
        if op.get("parameters") or op.get("requestBody"):
            needs.add("422" if not name.split()[1].startswith("/open311/") else "400")
        if op.get("requestBody"):
            needs.add("413")
        if any(p["in"] == "path" for p in op.get("parameters", [])):
            needs.add("404")
        if any(p["name"] == "min_position" for p in op.get("parameters", [])):
            needs.add("504")
        if op.get("x-public") and signed_in:
            needs.add("429")
        if needs - statuses:
            missing.append(f"{name}: {sorted(needs - statuses)}")
    assert not missing, f"statuses not declared: {missing}"


def test_commands_declare_the_headers_they_read(doc: dict[str, Any]) -> None:
    dispatch = doc["paths"]["/requests/{ref}/dispatch"]["post"]
    headers = {p["name"]: p for p in dispatch["parameters"] if p["in"] == "header"}
    assert {"Idempotency-Key", "If-Match", "X-Correlation-Id"} <= set(headers)
    assert "409" in dispatch["responses"] and "X-Event-Position" in dispatch["responses"]["200"]["headers"]
    schemes = doc["components"]["securitySchemes"]
    assert {"HTTPBearer", "ApiKey", "ConsoleSession", "TrustedGateway"} <= set(schemes)
    assert schemes["ApiKey"]["name"] == "X-API-Key"
    assert dispatch["security"][0] == {"HTTPBearer": []}
    # A public action takes a caller without credentials too.
    assert {} in doc["paths"]["/requests"]["post"]["security"]


def untyped(schema: dict[str, Any]) -> bool:
    """``{}`` or an object of anything, with no properties named."""
    return schema.get("type") in (None, "object") and not schema.get("properties") and not schema.get("$ref")


def test_every_json_answer_is_typed(doc: dict[str, Any]) -> None:
    untyped_answers = []
    for name, op in operations(doc):
        for status, answer in op["responses"].items():
            schema = answer.get("content", {}).get("application/json", {}).get("schema")
            if status.startswith("2") and schema is not None and untyped(schema):
                untyped_answers.append(f"{name} {status}")
    # A delivered file is served as it was sent (the gateway's JSON), not as a representation
    # of this API.
    untyped_answers = [u for u in untyped_answers if u.split()[1] != "/outbox/{notification_id}/raw"]
    assert not untyped_answers, f"{len(untyped_answers)} JSON answers without a model: {untyped_answers}"


def test_readiness_documents_both_answers(doc: dict[str, Any]) -> None:
    answers = doc["paths"]["/readyz"]["get"]["responses"]
    ready = answers["200"]["content"]["application/json"]["schema"]
    not_ready = answers["503"]["content"]["application/json"]["schema"]
    assert ready == {"$ref": "#/components/schemas/ReadinessReport"}
    assert not_ready == {"$ref": "#/components/schemas/NotReady"}
    schemas = doc["components"]["schemas"]
    assert schemas["NotReady"]["properties"]["status"]["const"] == "not ready"
    assert {"status", "mode", "problems", "checks"} <= set(schemas["ReadinessReport"]["required"])


def test_readiness_answers_match_the_document(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """/readyz as it answers, ready and not, against the schemas the document gives it, and
    the distributed mode's check shapes (which need Kafka to produce live) against its model."""
    from api.responses import NotReady, ReadinessReport

    hotline = Hotline.start(Settings(data_dir=tmp_path, readyz_cache_seconds=0.0), FixedClock(START))
    try:
        with TestClient(create_app(hotline=hotline)) as client:
            document = client.get("/openapi.json").json()

            def schema_of(status: str) -> Any:
                ref = document["paths"]["/readyz"]["get"]["responses"][status]["content"]["application/json"]["schema"]
                return jsonschema.Draft202012Validator({**ref, "components": document["components"]})

            ready = client.get("/readyz")
            assert ready.status_code == 200 and ready.json()["status"] == "ready"
            schema_of("200").validate(ready.json())

            def unreachable() -> int:
                raise ConnectionError("store down")

            monkeypatch.setattr(hotline.store, "max_position", unreachable)
            down = client.get("/readyz")
            assert down.status_code == 503, down.text
            schema_of("503").validate(down.json())
            assert down.json()["problems"] == ["event_store: ConnectionError: store down"]
    finally:
        monkeypatch.undo()
        hotline.close()
    distributed = {
        "status": "not ready",
        "mode": "distributed",
        "problems": ["consumers: group g is 20 messages behind (bound 10)"],
        "checks": {
            "event_store": {"position": 40, "problem": None, "ok": True},
            "relay": {"position": 40, "lag": 0, "problem": None, "ok": True},
            "kafka": {"bootstrap_servers": "localhost:9092", "answered_seconds_ago": 0.2, "problem": None, "ok": True},
            "consumers": {"group": "g", "lag": 20, "partitions_behind": [{"partition": 0, "lag": 20}], "problem": "…", "ok": False},
            "router": {"leader": True, "problem": None, "ok": True},
        },
    }
    assert NotReady.model_validate(distributed).model_dump(mode="json", exclude_unset=True) == distributed
    with pytest.raises(ValueError):
        ReadinessReport.model_validate({**distributed, "status": "maybe"})


def test_every_retry_answer_says_when(doc: dict[str, Any]) -> None:
    """A 429 or 503 carries Retry-After, Open311's error lists as much as the API's body."""
    silent = [
        f"{name} {status}"
        for name, op in operations(doc)
        for status, answer in op["responses"].items()
        if status in ("429", "503") and name != "GET /readyz" and "Retry-After" not in answer.get("headers", {})
    ]
    assert not silent, f"retryable answers without Retry-After: {silent}"
