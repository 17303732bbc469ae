"""The backlog counts a request for a department only while it is dispatched to it, as the
departments' workloads do: one still at the hotline (never dispatched, or returned to the
dispatcher) is in the null department ("not sent to a department" on the console), not in
the department it was classified for. An analytics file of schema version 5 gets the
column when it is opened."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import pytest

from analytics import schema
from analytics.ingest import AnalyticsStore
from analytics.reports import Reports
from domain.base import FixedClock
from domain.envelope import Envelope
from tests.analytics.traffic import Traffic, published

NOW = datetime(2026, 12, 2, 12, tzinfo=UTC)
T0 = NOW - timedelta(days=2)
HOUR = timedelta(hours=1)


def traffic() -> list[Envelope]:
    t = Traffic()

    def request(rid: str, *steps: tuple[timedelta, str, dict[str, Any]]) -> None:
        t.emit(T0, "request", "registered", rid, kind="action", subtype="complaint", channel="phone", urgency="normal",
               language="it", due_at=(NOW + timedelta(days=3)).isoformat())  # fmt: skip
        t.emit(T0, "request", "classified", rid, problem_code="pothole", category_id="roads", department_id="transport",
               provider_id="transport")  # fmt: skip
        for after, name, data in steps:
            t.emit(T0 + after, "request", name, rid, **data)

    to = {"department_id": "transport", "provider_id": "transport"}
    waste = {"department_id": "waste", "provider_id": "waste"}
    request("at-hotline")  # classified for transport, never dispatched
    request("dispatched", (HOUR, "dispatched", to))
    request("accepted", (HOUR, "dispatched", waste), (2 * HOUR, "accepted", {"department_id": "waste"}))
    # Returned a day later; as of before that it was with transport.
    request("returned", (HOUR, "dispatched", to), (24 * HOUR, "returned_to_dispatcher", {**to, "return_count": 1}))
    # Dispatched and returned at the same instant: the versions say it was returned.
    request("tied", (HOUR, "dispatched", to), (HOUR, "returned_to_dispatcher", {**to, "return_count": 1}))
    request(
        "redispatched",
        (HOUR, "dispatched", to),
        (2 * HOUR, "returned_to_dispatcher", {**to, "return_count": 1}),
        (3 * HOUR, "dispatched", waste),
    )
    return t.finish()


NOW_BY_DEPARTMENT = {None: 3, "transport": 1, "waste": 2}  # at-hotline, returned, tied | dispatched | accepted, redispatched
# Before "returned" went back: it was with transport.
EARLIER_BY_DEPARTMENT = {None: 2, "transport": 2, "waste": 2}


def backlog(path: Path, as_of: datetime, by: str = "department") -> list[dict[str, Any]]:
    return Reports(path, clock=FixedClock(NOW)).run("backlog", T0 - timedelta(days=1), as_of, by).records()


@pytest.fixture(scope="module")
def db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return published(tmp_path_factory.mktemp("backlog-departments") / "a.duckdb", traffic())


def test_only_requests_dispatched_to_a_department_are_its_backlog(db: Path) -> None:
    assert {r["department"]: r["open_requests"] for r in backlog(db, NOW)} == NOW_BY_DEPARTMENT
    # As of a moment some requests are in flight (their later steps replayed from events).
    assert {r["department"]: r["open_requests"] for r in backlog(db, T0 + 12 * HOUR)} == EARLIER_BY_DEPARTMENT
    by_category = {(r["department"], r["category"]): r["open_requests"] for r in backlog(db, NOW, "department_category")}
    assert by_category == {(None, "roads"): 3, ("transport", "roads"): 1, ("waste", "roads"): 2}


def test_the_requests_report_still_groups_by_the_classified_department(db: Path) -> None:
    rows = Reports(db, clock=FixedClock(NOW)).run("requests", T0 - timedelta(days=1), NOW, "department").records()
    assert {r["bucket"]: r["requests_registered"] for r in rows} == {"transport": 4, "waste": 2}


def test_an_analytics_file_of_version_5_gets_the_department_a_request_is_with(tmp_path: Path) -> None:
    path = tmp_path / "a.duckdb"
    store = AnalyticsStore(path)
    store.ingest_envelopes(traffic())
    # Back to version 5: request facts without the column.
    store.conn.execute("CREATE TABLE old_facts AS SELECT * EXCLUDE (assigned_department_id) FROM request_facts")
    store.conn.execute("DROP TABLE request_facts CASCADE; ALTER TABLE old_facts RENAME TO request_facts")
    store.conn.execute("UPDATE schema_info SET value = '5' WHERE key = 'schema_version'")
    store.conn.close()
    again = AnalyticsStore(path)
    assert schema.stored_schema_version(again.conn) == schema.SCHEMA_VERSION == 6
    again.publish_snapshot(force=True)
    again.close()
    assert {r["department"]: r["open_requests"] for r in backlog(path, NOW)} == NOW_BY_DEPARTMENT
    conn = duckdb.connect(str(path), read_only=True)
    try:
        assert conn.execute("SELECT count(*) FROM requests WHERE assigned_department_id IS NULL").fetchone() == (3,)
    finally:
        conn.close()
