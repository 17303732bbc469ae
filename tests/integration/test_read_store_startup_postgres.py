"""A process starting beside running ones (an API worker while a consumer applies a batch)
must not lock the read models' tables: ``ReadStore.create_tables`` once ran CREATE INDEX
IF NOT EXISTS for every index in one transaction, which locks each table against writes
until commit, index there or not; against a consumer's open batch PostgreSQL found a
deadlock and the API worker failed to start (seen with ``hotline serve --workers 2``)."""

from __future__ import annotations

import threading

import sqlalchemy as sa

from consumers.kafka_projections import ensure_position_rows
from infra.read_store import ReadStore, lock_projections, make_engine, positions, schemas
from infra.wiring import all_projections


def _store(url: str) -> ReadStore:
    store = ReadStore(make_engine(url, 4), all_projections())
    store.create_tables()
    return store


def _start_beside(starting: ReadStore) -> tuple[threading.Event, list[BaseException]]:
    """``starting.create_tables()`` in a thread (a process starting): set when it returned,
    with what it raised."""
    done = threading.Event()
    failed: list[BaseException] = []

    def start() -> None:
        try:
            starting.create_tables()
        except BaseException as exc:  # reported by the test
            failed.append(exc)
        done.set()

    threading.Thread(target=start, daemon=True).start()
    return done, failed


def test_a_starting_process_waits_for_no_open_batch(pg_url: str) -> None:
    running = _store(pg_url)
    starting = _store(pg_url)
    try:
        with running.engine.begin() as batch:
            # A batch in flight: a row written to a read model, the transaction still open.
            batch.exec_driver_sql("SET LOCAL lock_timeout = '20s'")
            table = running.tables["rm_requests"]
            batch.execute(sa.delete(table).where(table.c.id == "nobody"))
            done, failed = _start_beside(starting)
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


def test_a_changed_projection_is_rebuilt_after_the_batch_in_flight(pg_url: str) -> None:
    """A projection whose tables changed is dropped on start; a consumer's batch holds its
    lock, its position rows and then writes its tables. The start waits for the batch (the
    same lock first), where it used to drop the tables and wait on the position rows while
    the batch waited on the dropped tables: a deadlock, one side aborted."""
    running = _store(pg_url)
    with running.engine.begin() as conn:
        conn.execute(sa.update(schemas).where(schemas.c.name == "request_status").values(fingerprint="changed"))
        ensure_position_rows(conn, ["request_status"], [1])  # as a consumer's feed has
    starting = _store_without_start(pg_url)
    try:
        with running.engine.begin() as batch:
            lock_projections(batch, ["request_status"], exclusive=True)
            batch.execute(sa.select(positions).where(positions.c.name == "request_status").with_for_update()).all()
            done, failed = _start_beside(starting)
            assert not done.wait(1.0), "the start did not wait for the batch holding the projection"
            table = running.tables["rm_requests"]
            batch.execute(sa.delete(table).where(table.c.id == "nobody"))
        assert done.wait(20), "the start did not finish after the batch"
        assert not failed, failed
    finally:
        running.engine.dispose()
        starting.engine.dispose()


def _store_without_start(url: str) -> ReadStore:
    return ReadStore(make_engine(url, 4), all_projections())
