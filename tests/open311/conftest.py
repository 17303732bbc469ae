"""Open311 tests' fixtures: the shared hotline (SQLite and PostgreSQL, tests/conftest.py),
a plain TestClient on it (each call sends exactly the credentials it means to), and an
integrator's API key issued as an administrator issues one (``POST /api-keys``)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from infra.runtime import Hotline
from tests.auth import bearer

BASE = "/open311/v2"
# What an Open311 gateway's key may do: read the catalogue, submit and follow requests, add photos.
OPEN311_ACTIONS = ["catalogue.read", "requests.register", "requests.read", "attachments.add"]


@pytest.fixture
def client(hotline: Hotline) -> Iterator[TestClient]:
    with TestClient(create_app(hotline=hotline)) as c:
        yield c


def issue_key(client: TestClient, hotline: Hotline, actions: list[str] = OPEN311_ACTIONS) -> str:
    answer = client.post(
        "/api-keys",
        json={"name": "Open311 gateway of the city app", "role": "integrator", "actions": actions},
        headers=bearer(hotline.settings, "admin", "administrator"),
    )
    assert answer.status_code == 201, answer.text
    key: str = answer.json()["key"]
    return key


@pytest.fixture
def api_key(client: TestClient, hotline: Hotline) -> str:
    return issue_key(client, hotline)


def staff(hotline: Hotline, role: str = "supervisor", **kw: Any) -> dict[str, str]:
    return bearer(hotline.settings, f"{role}-open311", role, **kw)


def pothole_form(api_key: str, **extra: str) -> dict[str, str]:
    """A FixMyStreet-like submission: a pothole with its size, a location and the reporter."""
    return {
        "api_key": api_key,
        "service_code": "pothole",
        "lat": "41.8902",
        "long": "12.4922",
        "address_string": "Piazza del Colosseo, Roma",
        "description": "Deep pothole by the bus stop, a cyclist fell yesterday",
        "first_name": "Mario",
        "last_name": "Rossi",
        "email": "mario.rossi@example.org",
        "phone": "+39 06 1234 5678",
        "attribute[size]": "large",
        **extra,
    }
