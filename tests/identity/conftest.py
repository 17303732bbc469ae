"""The identity tests' hotline (embedded, the catalogue loaded, a fixed business clock)
and a plain TestClient on it: each test sends exactly the credentials it means to."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from domain.base import FixedClock
from infra.runtime import Hotline
from infra.settings import Settings
from tests.conftest import START, load_catalogue
from tests.sla.servers import SmtpServer


@pytest.fixture
def smtp() -> Iterator[SmtpServer]:
    """A real SMTP server on loopback (aiosmtpd): where citizens' sign-in codes go."""
    with SmtpServer() as server:
        yield server


@pytest.fixture
def hotline(tmp_path: Path) -> Iterator[Hotline]:
    h = Hotline.start(Settings(data_dir=tmp_path), FixedClock(START))
    load_catalogue(h)
    yield h
    h.close()


@pytest.fixture
def client(hotline: Hotline) -> Iterator[TestClient]:
    with TestClient(create_app(hotline=hotline)) as c:
        yield c


def pothole(channel: str = "phone", **contact: Any) -> dict[str, Any]:
    """A complaint the catalogue routes to transport."""
    return {
        "kind": "action",
        "subtype": "complaint",
        "channel": channel,
        "description": "Deep pothole in front of number 12",
        "contact": contact or {"name": "Mario Rossi", "phone": "+39 06 1234 5678"},
        "location": {"address": "Via Roma 12"},
        "urgency": "urgent",
        "problem_code": "pothole",
    }
