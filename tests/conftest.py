"""Shared fixtures: a hotline on SQLite and on a real PostgreSQL, with an injected clock.

PostgreSQL and Kafka come from ``infra/postgres.sh`` and ``infra/kafka.sh`` (the test
command starts them). Locally a missing service skips its tests; with ``CI=true`` a
missing service is a failure, never a skip.
"""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
import yaml

from domain.base import SYSTEM, FixedClock
from infra.runtime import Hotline
from infra.settings import Settings

PG_HOST = os.environ.get("HOTLINE_TEST_PG_HOST", "127.0.0.1")
PG_PORT = int(os.environ.get("HOTLINE_PG_PORT", "55432"))
KAFKA_BOOTSTRAP = f"127.0.0.1:{os.environ.get('HOTLINE_KAFKA_PORT', '59092')}"
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
CATALOGUE = Path(__file__).resolve().parent.parent / "infra" / "data" / "catalogue.yaml"
START = datetime(2026, 11, 16, 9, 0, tzinfo=UTC)  # a Monday morning


def _port_open(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


# Each service's start script in infra/.
START_SCRIPTS = {"PostgreSQL": "infra/postgres.sh", "Kafka": "infra/kafka.sh"}


def require_service(name: str, host: str, port: int) -> None:
    """Skip locally, fail in CI, when a real service the test needs is not running."""
    if _port_open(host, port):
        return
    message = f"{name} is not running on {host}:{port} (start it with {START_SCRIPTS[name]} start)"
    if IN_CI:
        pytest.fail(message)
    pytest.skip(message)


def create_pg_database(prefix: str = "t") -> str:
    """A fresh, empty database on the test server; returns its URL."""
    import psycopg

    require_service("PostgreSQL", PG_HOST, PG_PORT)
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(f"postgresql://postgres@{PG_HOST}:{PG_PORT}/postgres", autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return f"postgresql://postgres@{PG_HOST}:{PG_PORT}/{name}"


def drop_pg_database(url: str) -> None:
    import psycopg

    name = url.rsplit("/", 1)[1]
    with psycopg.connect(f"postgresql://postgres@{PG_HOST}:{PG_PORT}/postgres", autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def pg_url() -> Iterator[str]:
    url = create_pg_database()
    yield url
    drop_pg_database(url)


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock(START)


def load_catalogue(hotline: Hotline) -> None:
    from domain.catalogue import commands as catc

    hotline.bus.execute(catc.ImportCatalogue(document=yaml.safe_load(CATALOGUE.read_text("utf-8"))), SYSTEM)


@pytest.fixture(params=["sqlite", "postgres"])
def store_settings(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Settings]:
    """Settings for each event store: the same tests run on SQLite and PostgreSQL."""
    if request.param == "sqlite":
        yield Settings(data_dir=tmp_path)
        return
    url = create_pg_database()
    try:
        yield Settings(data_dir=tmp_path, database_url=url, pg_pool_size=8)
    finally:
        drop_pg_database(url)


@pytest.fixture
def hotline(store_settings: Settings, clock: FixedClock) -> Iterator[Hotline]:
    h = Hotline.start(store_settings, clock)
    load_catalogue(h)
    yield h
    h.close()


@pytest.fixture
def sqlite_hotline(tmp_path: Path, clock: FixedClock) -> Iterator[Hotline]:
    h = Hotline.start(Settings(data_dir=tmp_path), clock)
    load_catalogue(h)
    yield h
    h.close()


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Deletes the Kafka topics this session's distributed tests created (tests/kafka/
    harness.py ``PREFIXES_USED``): a developer's broker otherwise keeps thousands of
    partitions from every run, and spends its CPU on them."""
    import sys

    harness = sys.modules.get("tests.kafka.harness")
    host, port = harness.KAFKA.rsplit(":", 1) if harness is not None else ("", "0")
    if harness is None or not harness.PREFIXES_USED or not _port_open(host, int(port)):
        return
    try:
        harness.delete_prefixed_topics(harness.KAFKA, set(harness.PREFIXES_USED))
    except Exception as exc:  # a clean-up: never the session's result
        import warnings

        warnings.warn(f"the session's Kafka topics were not deleted: {exc}", stacklevel=1)
