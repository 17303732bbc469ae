"""``hotline replay``: rebuild into fresh tables and switch atomically while commands run."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from consumers.replay import replay_projection
from domain.base import SystemClock
from infra.runtime import Hotline
from infra.settings import Settings
from infra.wiring import all_projections
from infra.wiring import projection_named as by_name
from tests.conftest import PG_HOST, PG_PORT, create_pg_database, drop_pg_database, load_catalogue, require_service
from tests.kafka.harness import Workload, diff_snapshots, rebuilt_snapshot, snapshot


@pytest.fixture(params=["sqlite", "postgres"])
def embedded(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Hotline]:
    if request.param == "sqlite":
        settings = Settings(data_dir=tmp_path / "data")
        url = None
    else:
        require_service("PostgreSQL", PG_HOST, PG_PORT)
        url = create_pg_database("t_replay")
        settings = Settings(data_dir=tmp_path / "data", database_url=url, pg_pool_size=6)
    h = Hotline.start(settings, SystemClock())
    load_catalogue(h)
    try:
        yield h
    finally:
        h.close()
        if url:
            drop_pg_database(url)


def test_replay_restores_a_damaged_projection(embedded: Hotline, tmp_path: Path) -> None:
    h = embedded
    work = Workload(h, seed=4)
    for _ in range(200):
        work.step()
    expected = rebuilt_snapshot(h, tmp_path)
    assert diff_snapshots(snapshot(h.read_store), expected, frozenset()) == []
    with h.read_store.engine.begin() as conn:  # damage two read models
        conn.exec_driver_sql("DELETE FROM rm_requests WHERE status = 'closed'")
        conn.exec_driver_sql("UPDATE rm_sla_watch SET department_id = 'nobody'")
    assert diff_snapshots(snapshot(h.read_store), expected, frozenset()) != []
    for name in ("request_status", "sla_breaches"):
        stats = replay_projection(h.settings, by_name(name))
        assert stats["events"] == h.store.max_position()
    assert diff_snapshots(snapshot(h.read_store), expected, frozenset()) == []
    # The swapped tables keep their constraints and index names: a second replay works too.
    stats = replay_projection(h.settings, by_name("request_status"))
    assert stats["position"] == h.store.max_position()
    with h.read_store.engine.connect() as conn:
        names = set(sa.inspect(conn).get_table_names())
    assert not [n for n in names if n.endswith("__rebuild") or n.endswith("__old")]
    assert diff_snapshots(snapshot(h.read_store), expected, frozenset()) == []


def test_replay_while_commands_keep_arriving(embedded: Hotline, tmp_path: Path) -> None:
    h = embedded
    work = Workload(h, seed=9)
    for _ in range(150):
        work.step()
    stop = threading.Event()
    errors: list[BaseException] = []

    def keep_writing() -> None:
        try:
            while not stop.is_set():
                work.step()
        except BaseException as exc:
            errors.append(exc)

    writer = threading.Thread(target=keep_writing)
    writer.start()
    try:
        for p in all_projections()[:4]:
            replay_projection(h.settings, p)
    finally:
        stop.set()
        writer.join(60)
    assert not errors
    assert h.projector is not None
    h.projector.catch_up()
    assert diff_snapshots(snapshot(h.read_store), rebuilt_snapshot(h, tmp_path), frozenset()) == []
