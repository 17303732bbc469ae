"""A process starting beside running ones (an API worker while a consumer applies a batch)
must not lock the read models' tables: ``ReadStore.create_tables`` once ran CREATE INDEX
IF NOT EXISTS for every index in one transaction, which locks each table against writes
until commit, index there or not; against a consumer's open batch PostgreSQL found a
deadlock and the API worker failed to start (seen with ``hotline serve --workers 2``)."""

from __future__ import annotations

import threading

import sqlalchemy as sa

from infra.read_store import ReadStore, make_engine
from infra.wiring import all_projections


def _store(url: str) -> ReadStore:
    store = ReadStore(make_engine(url, 4), all_projections())
    store.create_tables()
    return store


def test_a_starting_process_waits_for_no_open_batch(pg_url: str) -> None:
    running = _store(pg_url)
    starting = _store(pg_url)
    try:
        with running.engine.begin() as batch:
            # A batch in flight: a row written to a read model, the transaction still open.
            batch.exec_driver_sql("SET LOCAL lock_timeout = '20s'")
            table = running.tables["rm_requests"]
            batch.execute(sa.delete(table).where(table.c.id == "nobody"))
            done = threading.Event()
            failed: list[BaseException] = []

            def start() -> None:
                try:
                    starting.create_tables()
                except BaseException as exc:  # reported below
                    failed.append(exc)
                done.set()

            threading.Thread(target=start, daemon=True).start()
            assert done.wait(10), "create_tables waited for the open batch's table lock"
            assert not failed, failed
    finally:
        running.engine.dispose()
        starting.engine.dispose()


def test_an_index_added_since_is_created_on_start(pg_url: str) -> None:
    store = _store(pg_url)
    try:
        with store.engine.begin() as conn:
            conn.exec_driver_sql("DROP INDEX ix_rm_requests_status")
        store.create_tables()
        with store.engine.connect() as conn:
            names = {r[0] for r in conn.exec_driver_sql("SELECT indexname FROM pg_indexes WHERE tablename = 'rm_requests'")}
        assert "ix_rm_requests_status" in names
    finally:
        store.engine.dispose()
