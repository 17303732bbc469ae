"""The AsyncAPI document: generated from the event classes, committed, and served."""

from __future__ import annotations

from pathlib import Path

from api.app import create_app
from api.asyncapi import committed, generate, render
from consumers.kafka_contract import INTERNAL_STREAMS
from domain.base import event_type_name
from domain.requests.aggregate import ServiceRequest
from infra.settings import Settings
from tests.auth import SignedInClient


def test_committed_document_matches_the_event_classes() -> None:
    assert committed() == generate(), "api/asyncapi.json is stale: run `hotline asyncapi --out api/asyncapi.json`"


def test_every_request_event_is_a_message_with_its_fields() -> None:
    doc = generate()
    assert "hotline.requests" in doc["channels"]
    assert not any(f"hotline.{s}s" in doc["channels"] for s in INTERNAL_STREAMS)
    registered = doc["components"]["schemas"][event_type_name(ServiceRequest.Registered)]
    assert registered["properties"]["reference"]["type"] == "string" and registered["properties"]["reference"]["description"]
    assert {k: v for k, v in registered["properties"]["due_at"].items() if k != "description"} == {"type": "string", "format": "date-time"}
    assert "masked" in registered["properties"]["personal"]["description"]
    assert render().endswith("\n")


def test_served_by_the_api(tmp_path: Path) -> None:
    with SignedInClient(create_app(Settings(data_dir=tmp_path))) as client:
        answer = client.get("/asyncapi.json")
        assert answer.status_code == 200
        assert answer.json() == generate()
        status = client.get("/kafka/status").json()
        assert status["mode"] == "embedded"
