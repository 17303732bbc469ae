"""``hotline serve`` warns when its API processes' pools may exceed PostgreSQL's
``max_connections`` (infra/pg_connections.py), against the real server."""

from __future__ import annotations

import psycopg

from infra.pg_connections import budget, per_api_process
from infra.settings import Settings


def _max_connections(url: str) -> int:
    with psycopg.connect(url) as conn:
        row = conn.execute("SHOW max_connections").fetchone()
    assert row
    return int(row[0])


def test_pools_within_the_server_limit_give_no_warning(pg_url: str) -> None:
    settings = Settings(database_url=pg_url, pg_pool_size=2)
    found = budget(settings, workers=1)
    assert found.needed == per_api_process(settings) == 2 * 2 + 18
    assert found.max_connections == _max_connections(pg_url)
    assert found.reserved >= 0 and found.in_use >= 0
    assert found.warning(1, settings) is None


def test_too_many_workers_are_named_with_the_figures(pg_url: str) -> None:
    settings = Settings(database_url=pg_url, pg_pool_size=16)
    limit = _max_connections(pg_url)
    workers = limit // per_api_process(settings) + 1  # just past what the server takes
    found = budget(settings, workers)
    assert found.needed > found.available
    warning = found.warning(workers, settings)
    assert warning is not None
    assert f"{workers} API process(es) may open {found.needed} PostgreSQL connections" in warning
    assert f"max_connections {limit}" in warning and "HOTLINE_PG_POOL_SIZE" in warning


def test_connections_in_use_count_against_the_budget(pg_url: str) -> None:
    settings = Settings(database_url=pg_url, pg_pool_size=2)
    before = budget(settings, 1).in_use
    held = [psycopg.connect(pg_url) for _ in range(3)]
    try:
        assert budget(settings, 1).in_use >= before + 3
    finally:
        for conn in held:
            conn.close()
