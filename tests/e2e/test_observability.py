"""Logs and metrics: a command's log lines are JSON and carry its command, correlation id
and actor; ``/metrics`` counts commands by class and outcome, group-commit batches and
HTTP requests by route template, and reads projection positions at scrape time."""

from __future__ import annotations

import io
import json
import logging
import re
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from infra.logging import configure_logging
from infra.runtime import Hotline
from infra.settings import Settings
from tests.auth import SignedInClient

AGENT = {"X-Actor-Id": "op-anna", "X-Actor-Role": "agent"}
BODY = {
    "kind": "action",
    "subtype": "complaint",
    "channel": "web",
    "description": "Streetlight out at the bus stop",
    "contact": {"name": "Mario Rossi", "phone": "+39 06 1234 5678"},
    "urgency": "urgent",
    "problem_code": "streetlight-out",
}


@pytest.fixture
def client(sqlite_hotline: Hotline) -> Iterator[TestClient]:
    with SignedInClient(create_app(hotline=sqlite_hotline)) as c:
        yield c


@pytest.fixture
def log_lines(monkeypatch: pytest.MonkeyPatch) -> Iterator[io.StringIO]:
    """configure_logging as a process would, writing into a buffer; undone afterwards."""
    buffer = io.StringIO()
    root = logging.getLogger()
    level, handlers = root.level, list(root.handlers)
    monkeypatch.setattr("sys.stderr", buffer)
    configure_logging(Settings(log_level="debug"))
    try:
        yield buffer
    finally:
        for handler in root.handlers:
            if handler not in handlers:
                root.removeHandler(handler)
        root.setLevel(level)
        logging.captureWarnings(False)


def test_every_line_of_a_command_carries_its_context(client: TestClient, log_lines: io.StringIO) -> None:
    answer = client.post("/requests", json=BODY, headers={**AGENT, "X-Correlation-Id": "corr-42"})
    assert answer.status_code == 201, answer.text
    logging.getLogger("hotline.test").info("after the command")
    lines = [json.loads(line) for line in log_lines.getvalue().splitlines() if line.startswith("{")]
    mine = [line for line in lines if line.get("correlation_id") == "corr-42"]
    assert mine, lines
    for line in mine:
        assert line["command"] == "RegisterRequest" and line["actor_id"] == "op-anna" and line["actor_role"] == "agent"
        assert line["causation_id"] and line["level"] and line["timestamp"] and line["logger"]
    assert any(line["event"].startswith("command done") for line in mine)
    after = next(line for line in lines if line["event"] == "after the command")
    assert "command" not in after and "correlation_id" not in after, "the context is reset after the command"


def _value(text: str, name: str, **labels: str) -> float:
    wanted = ",".join(f'{k}="{v}"' for k, v in labels.items())
    match = re.search(rf"^{re.escape(name)}{re.escape('{' + wanted + '}') if labels else ''} (\S+)$", text, re.M)
    assert match, f"{name} {labels} not in /metrics"
    return float(match.group(1))


def test_metrics(client: TestClient, sqlite_hotline: Hotline) -> None:
    before = client.get("/metrics").text
    registered = _value(before, "hotline_commands_total", command="RegisterRequest", outcome="ok") if "RegisterRequest" in before else 0
    registered_answer = client.post("/requests", json=BODY, headers=AGENT)
    reference = registered_answer.json()["reference"]
    # Where the request's time went: the whole application, and the command inside it.
    timing = dict(part.strip().split(";dur=") for part in registered_answer.headers["server-timing"].split(","))
    assert set(timing) == {"app", "command"} and 0 < float(timing["command"]) <= float(timing["app"])
    assert client.post(f"/requests/{reference}/close", json={}, headers=AGENT).status_code == 409

    response = client.get("/metrics")
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/plain")
    text = response.text
    assert _value(text, "hotline_commands_total", command="RegisterRequest", outcome="ok") == registered + 1
    assert _value(text, "hotline_commands_total", command="Close", outcome="refused") >= 1
    assert _value(text, "hotline_command_duration_seconds_count", command="RegisterRequest", outcome="ok") >= 1
    assert _value(text, "hotline_group_commit_batch_commands_count") >= 1
    assert _value(text, "hotline_http_request_duration_seconds_count", method="POST", route="/requests/{ref}/close", status="409") >= 1
    head = sqlite_hotline.store.max_position()
    assert _value(text, "hotline_event_store_position") == head
    assert _value(text, "hotline_projection_lag_events", projection="request_status") == 0
    assert _value(text, "hotline_projection_position", projection="request_status") == head
    assert "/metrics" not in client.get("/openapi.json").text
