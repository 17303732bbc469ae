from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from domain.base import FixedClock
from infra.runtime import Hotline
from infra.settings import Settings
from tests.auth import SignedInClient
from tests.contact_center.harness import START, Center


@pytest.fixture
def center() -> Iterator[Center]:
    c = Center()
    yield c
    c.close()


@pytest.fixture
def api(tmp_path: Path) -> Iterator[tuple[TestClient, Hotline]]:
    """The API over an embedded hotline of its own, signed in as the headers say."""
    hotline = Hotline.start(Settings(data_dir=tmp_path), clock=FixedClock(START))
    try:
        with SignedInClient(create_app(hotline=hotline)) as client:
            yield client, hotline
    finally:
        hotline.close()
