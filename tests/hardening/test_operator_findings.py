"""What an operator met running the distributed mode on a loaded machine: workers killed
before they could serve, a readiness answer one probe late, and every process holding
a pool's worth of idle PostgreSQL connections."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import psycopg
import pytest
from typer.testing import CliRunner

from infra.readiness import Readiness
from infra.runtime import Hotline
from infra.settings import Settings
from tests.conftest import PG_HOST, PG_PORT


def test_serve_gives_workers_the_configured_time_to_answer_their_first_ping(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    import uvicorn

    from api.cli import app

    seen: dict[str, Any] = {}
    monkeypatch.setattr(uvicorn, "run", lambda *a, **kw: seen.update(kw))
    monkeypatch.setenv("HOTLINE_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("HOTLINE_WORKER_HEALTHCHECK_SECONDS", "90")
    from infra.settings import get_settings

    get_settings.cache_clear()
    try:
        result = CliRunner().invoke(app, ["serve"])
    finally:
        get_settings.cache_clear()
    assert result.exit_code == 0, result.output
    assert seen["timeout_worker_healthcheck"] == 90  # uvicorn's own 5 s killed slow-starting workers for ever


def test_readiness_answers_from_kafka_now_not_from_the_previous_probe() -> None:
    settings = Settings(kafka_bootstrap_servers="127.0.0.1:1", readyz_cache_seconds=0.5, readyz_kafka_timeout_seconds=2.0)
    readiness = Readiness(SimpleNamespace(settings=settings, extras={}))  # type: ignore[arg-type]
    group = settings.kafka_consumer_group
    answers: Iterator[dict[str, dict[str, Any]]] = iter(
        [{group: {"lag": 47, "committed": {"p0": 100}}}, {group: {"lag": 0, "committed": {"p0": 147}}}]
    )

    def refresh() -> None:  # what the group's offsets say at the moment it is asked
        time.sleep(0.05)
        readiness._kafka_answer = (time.monotonic(), next(answers))
        readiness._kafka_started = None
        readiness._kafka_done.set()

    readiness._refresh_kafka = refresh  # type: ignore[method-assign]
    first, _ = readiness._kafka_state()
    assert first is not None and first[group]["lag"] == 47
    time.sleep(0.6)  # the answer is older than the cache's half second: the next probe asks again
    second, problem = readiness._kafka_state()
    assert problem is None and second is not None and second[group]["lag"] == 0, "answered with the previous probe's offsets"


def test_a_process_opens_few_postgres_connections_until_it_needs_more(pg_url: str, tmp_path: Path) -> None:
    name = pg_url.rsplit("/", 1)[1]

    def connections() -> int:
        with psycopg.connect(f"postgresql://postgres@{PG_HOST}:{PG_PORT}/postgres", autocommit=True) as conn:
            row = conn.execute("SELECT count(*) FROM pg_stat_activity WHERE datname = %s", (name,)).fetchone()
            return int(row[0]) if row else 0

    hotline = Hotline.start(Settings(data_dir=tmp_path, database_url=pg_url, pg_pool_size=16))
    try:
        time.sleep(0.5)  # the pool's opening connections are made in the background
        opened = connections()
        assert opened <= 6, f"{opened} connections open at start (16 before: the whole pool)"
        # Under concurrent use it still grows to what is needed.
        barrier = threading.Barrier(8)

        def hold() -> None:
            with hotline.store.recorder.datastore.get_connection():  # type: ignore[attr-defined]
                barrier.wait(10)
                time.sleep(0.2)

        threads = [threading.Thread(target=hold) for _ in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(20)
        assert connections() >= 8
    finally:
        hotline.close()
