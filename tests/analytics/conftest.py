from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import duckdb
import pytest

from analytics.ingest import AnalyticsStore
from domain.envelope import Envelope
from tests.analytics.traffic import generate, utc

DAY = utc(2024, 5, 6)  # a Monday


@pytest.fixture(scope="session")
def traffic() -> list[Envelope]:
    return generate(DAY, days=2)


@pytest.fixture(scope="session")
def loaded_db(tmp_path_factory: pytest.TempPathFactory, traffic: list[Envelope]) -> Path:
    """An analytics database with two days of traffic, its snapshot published."""
    path = tmp_path_factory.mktemp("analytics") / "analytics.duckdb"
    store = AnalyticsStore(path)
    for i in range(0, len(traffic), 700):
        store.ingest_envelopes(traffic[i : i + 700])
    store.publish_snapshot(force=True)
    store.close()
    return path


@pytest.fixture()
def reader(loaded_db: Path) -> Iterator[duckdb.DuckDBPyConnection]:
    from analytics.reports import connect_reader

    conn = connect_reader(loaded_db)
    yield conn
    conn.close()
