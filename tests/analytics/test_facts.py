"""The fact tables ingest keeps equal the aggregation of all events, however batches fall.

``contact_facts`` / ``request_facts`` are maintained incrementally (only what a batch
touched is recomputed); these tests recompute them from scratch with the definitions
(``_CONTACT_AGG`` / ``_REQUEST_AGG``) and compare, after batches that split contacts and
requests, redeliveries, out-of-order deliveries, the CloudEvents path and a restart.
"""

from __future__ import annotations

import json
import random
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import pytest

from analytics import schema
from analytics.ingest import AnalyticsStore
from analytics.schema import _CONTACT_AGG, _REQUEST_AGG
from domain.envelope import Envelope
from tests.analytics.conftest import DAY


def _naive(t: datetime) -> datetime:
    return t.replace(tzinfo=None)


def _from_scratch(conn: duckdb.DuckDBPyConnection, table: str) -> list[tuple[Any, ...]]:
    if table == "contacts":
        sql = f"SELECT {_CONTACT_AGG} FROM contact_events GROUP BY contact_id ORDER BY contact_id"
    else:
        sql = f"SELECT {_REQUEST_AGG} FROM request_events GROUP BY request_id ORDER BY request_id"
    return conn.execute(sql).fetchall()


def _facts(conn: duckdb.DuckDBPyConnection, table: str) -> list[tuple[Any, ...]]:
    key = "contact_id" if table == "contacts" else "request_id"
    return conn.execute(f"SELECT * FROM {table} ORDER BY {key}").fetchall()


def _assert_facts_exact(conn: duckdb.DuckDBPyConnection) -> None:
    for table in ("contacts", "requests"):
        want = _from_scratch(conn, table)
        got = _facts(conn, table)
        assert len(got) == len(want) > 0, table
        assert got == want, table
    # One row per contact / request, bookkeeping consistent with the events.
    for facts, events, key in (("contact_facts", "contact_events", "contact_id"), ("request_facts", "request_events", "request_id")):
        bad = conn.execute(
            f"""SELECT count(*) FROM {facts} f JOIN (
                    SELECT {key}, min(position) lo, max(position) hi, min(time) t0 FROM {events} GROUP BY {key}
                ) e USING ({key})
                WHERE f.first_position <> e.lo OR f.last_position <> e.hi OR f.first_event_at <> e.t0"""
        ).fetchone()
        assert bad == (0,), facts
        dup = conn.execute(f"SELECT count(*) - count(DISTINCT {key}) FROM {facts}").fetchone()
        assert dup == (0,), facts


def test_facts_equal_the_events_whatever_the_batches(tmp_path: Path, traffic: list[Envelope]) -> None:
    store = AnalyticsStore(tmp_path / "a.duckdb")
    rng = random.Random(5)
    i = 0
    while i < len(traffic):  # uneven batches: contacts and requests straddle them
        n = rng.choice([1, 7, 50, 333, 1200])
        store.ingest_envelopes(traffic[i : i + n])
        if rng.random() < 0.2:  # a redelivery of something already stored
            j = rng.randrange(0, i + 1)
            assert store.ingest_envelopes(traffic[j : j + 40]) == 0
        i += n
    _assert_facts_exact(store.conn)
    store.close()


def test_facts_survive_out_of_order_and_cloudevents(tmp_path: Path, traffic: list[Envelope]) -> None:
    store = AnalyticsStore(tmp_path / "a.duckdb")
    # Later events first: a contact's or request's first event arrives after later ones
    # (as when Kafka partitions interleave).
    half = len(traffic) // 2
    store.ingest_envelopes(traffic[half : half + 900])
    store.ingest_envelopes(traffic[:half])
    docs = [json.dumps(e.to_cloudevent()) for e in traffic[half + 900 :]]
    for k in range(0, len(docs), 650):
        store.ingest_cloudevents(docs[k : k + 650])
    assert store.counts()["events"] == len(traffic)
    _assert_facts_exact(store.conn)
    store.close()


def test_an_old_contact_continued_long_after_is_found(tmp_path: Path, traffic: list[Envelope], monkeypatch: pytest.MonkeyPatch) -> None:
    # With a tiny "recent" window every continuation must be found by the full lookup.
    monkeypatch.setattr(schema, "RECENT_POSITIONS", 3)
    store = AnalyticsStore(tmp_path / "a.duckdb")
    for k in range(0, len(traffic), 97):
        store.ingest_envelopes(traffic[k : k + 97])
    # A late event of the very first contact (a request linked weeks later).
    first = next(e for e in traffic if e.stream == "contact")
    late = Envelope(
        "hotline.contact.request_linked.v1",
        "contact",
        first.aggregate_id,
        99,
        traffic[-1].position + 1,
        first.time + timedelta(days=20),
        {"request_id": "req-late"},
        {"actor_id": "x", "actor_role": "agent"},
    )
    assert store.ingest_envelopes([late]) == 1
    row = store.conn.execute("SELECT request_id FROM contacts WHERE contact_id = ?", [first.aggregate_id]).fetchone()
    assert row == ("req-late",)
    _assert_facts_exact(store.conn)
    store.close()


def test_a_version_1_database_gets_its_facts_on_open(tmp_path: Path, traffic: list[Envelope]) -> None:
    path = tmp_path / "a.duckdb"
    store = AnalyticsStore(path)
    store.ingest_envelopes(traffic)
    # As a database written before the fact tables existed.
    store.conn.execute("DROP VIEW contacts; DROP VIEW requests; DROP TABLE contact_facts; DROP TABLE request_facts")
    store.close()
    again = AnalyticsStore(path)
    _assert_facts_exact(again.conn)
    again.close()


def test_requests_open_at_replays_requests_in_flight(tmp_path: Path, traffic: list[Envelope]) -> None:
    store = AnalyticsStore(tmp_path / "a.duckdb")
    store.ingest_envelopes(traffic)
    c = store.conn
    # The definition: every request's last status-changing event by t, from its events.
    replay = """
        SELECT * FROM (
            SELECT request_id,
                min(time) FILTER (name = 'registered') AS registered_at,
                arg_max(name, time) FILTER (name IN ('registered', 'dispatched', 'accepted', 'returned_to_dispatcher',
                    'sent_for_ruling', 'final_replied', 'resolved', 'closed', 'reopened')) AS last_step,
                arg_max(due_at, time) FILTER (due_at IS NOT NULL) AS due_at,
                coalesce(arg_max(department_id, time) FILTER (name = 'dispatched'),
                         arg_max(department_id, time) FILTER (name = 'classified')) AS department_id,
                -- with a department only while dispatched to it: not after a return
                CASE WHEN arg_max(name, version) FILTER (name IN ('dispatched', 'returned_to_dispatcher')) = 'dispatched'
                     THEN arg_max(department_id, version) FILTER (name = 'dispatched') END AS assigned_department_id,
                arg_max(category_id, time) FILTER (name = 'classified') AS category_id,
                arg_max(problem_code, time) FILTER (name = 'classified') AS problem_code,
                any_value(urgency) FILTER (name = 'registered') AS urgency
            FROM request_events WHERE time <= $t GROUP BY request_id
        ) WHERE registered_at IS NOT NULL AND last_step NOT IN ('resolved', 'closed')
        ORDER BY request_id"""
    in_flight_seen = 0
    for hours in (9, 13, 20, 24, 30, 40, 47, 80, 24 * 30):
        t = _naive(DAY + timedelta(hours=hours))
        got = c.execute("SELECT * FROM requests_open_at($t) ORDER BY request_id", {"t": t}).fetchall()
        assert got == c.execute(replay, {"t": t}).fetchall(), hours
        in_flight_seen += c.execute(
            "SELECT count(*) FROM request_facts WHERE first_event_at <= $t AND last_event_at > $t", {"t": t}
        ).fetchone()[0]  # type: ignore[index]
    assert in_flight_seen > 50  # the replay branch was exercised
    store.close()
