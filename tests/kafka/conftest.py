"""Fixtures of the Kafka tests: real PostgreSQL and a real Kafka broker (infra/*.sh).

Each test gets its own database and its own topic prefix and consumer group, so tests
(and other engineers' tests) never see each other's events."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from domain.base import SystemClock
from infra.runtime import Hotline
from infra.settings import Settings
from tests.conftest import PG_HOST, PG_PORT, create_pg_database, drop_pg_database, load_catalogue, require_service
from tests.kafka.harness import distributed_settings

pytestmark = [pytest.mark.kafka, pytest.mark.postgres]


@pytest.fixture
def kafka_settings(tmp_path: Path) -> Iterator[Settings]:
    require_service("Kafka", "127.0.0.1", 59092)
    require_service("PostgreSQL", PG_HOST, PG_PORT)
    url = create_pg_database("t_kafka")
    try:
        yield distributed_settings(url, tmp_path / "data")
    finally:
        drop_pg_database(url)


@pytest.fixture
def distributed(kafka_settings: Settings) -> Iterator[Hotline]:
    """The write side in distributed mode: no in-process projections."""
    h = Hotline.start(kafka_settings, SystemClock())
    assert h.projector is None, "with Kafka settings the projections must not run in-process"
    load_catalogue(h)
    yield h
    h.close()
