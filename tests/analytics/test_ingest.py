"""Ingest: idempotent under redelivery, resumes after a restart, readable while it runs."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import duckdb

from analytics import kpis
from analytics.ingest import AnalyticsStore, InProcessAnalytics
from analytics.reports import connect_reader
from domain.envelope import Envelope
from tests.analytics.conftest import DAY


class ListStore:
    """The two methods of the event store that the in-process ingest uses."""

    def __init__(self, envelopes: list[Envelope]) -> None:
        self.items = envelopes
        self.reads = 0

    def max_position(self) -> int:
        return self.items[-1].position if self.items else 0

    def envelopes(self, after: int, limit: int = 1000, stop: int | None = None) -> list[Envelope]:
        self.reads += 1
        return [e for e in self.items if e.position > after and (stop is None or e.position <= stop)][:limit]


class BusyStore(ListStore):
    """A store under a steady load: a command commits while each read runs."""

    def __init__(self, envelopes: list[Envelope], committed: int) -> None:
        super().__init__(envelopes[:committed])
        self.coming = envelopes[committed:]

    def envelopes(self, after: int, limit: int = 1000, stop: int | None = None) -> list[Envelope]:
        found = super().envelopes(after, limit, stop)
        if self.coming:
            self.items.append(self.coming.pop(0))
        return found


def test_a_catch_up_takes_what_was_committed_when_it_began(tmp_path: Path, traffic: list[Envelope]) -> None:
    """Not what commits meanwhile: chasing each new commit made a DuckDB transaction of
    every few commands under load (the cost is per transaction), half a server's CPU."""
    source = BusyStore(traffic[:400], committed=100)
    ingest = InProcessAnalytics(source, tmp_path / "busy.duckdb", batch=10)
    try:
        assert ingest.catch_up() == traffic[99].position
        assert source.reads == 10
        assert ingest.catch_up() == traffic[109].position  # the next round: what came meanwhile
    finally:
        ingest.close()


def _counts(path: Path) -> dict[str, int]:
    conn = connect_reader(path)
    try:
        tables = ("events", "contact_events", "request_events")
        return {t: conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in tables}  # type: ignore[index]
    finally:
        conn.close()


def test_redelivered_events_are_not_counted_twice(tmp_path: Path, traffic: list[Envelope]) -> None:
    store = AnalyticsStore(tmp_path / "a.duckdb")
    first = store.ingest_envelopes(traffic[:2000])
    assert first == 2000
    # The same events again, overlapping batches, and duplicates inside one batch.
    assert store.ingest_envelopes(traffic[1500:2000]) == 0
    assert store.ingest_envelopes(traffic[1900:2500] + traffic[2400:2450]) == 500
    # As CloudEvents JSON (the Kafka path) the same events are recognised too.
    docs = [json.dumps(e.to_cloudevent()) for e in traffic[2000:2600]]
    assert store.ingest_cloudevents(docs) == 100
    assert store.counts()["events"] == 2600
    n = store.conn.execute("SELECT count(*), count(DISTINCT event_id) FROM events").fetchone()
    assert n == (2600, 2600)
    store.close()


def test_cloudevents_and_envelopes_give_the_same_rows(tmp_path: Path, traffic: list[Envelope]) -> None:
    a = AnalyticsStore(tmp_path / "a.duckdb")
    b = AnalyticsStore(tmp_path / "b.duckdb")
    a.ingest_envelopes(traffic)
    b.ingest_cloudevents([json.dumps(e.to_cloudevent()).encode() for e in traffic], {("hotline.contacts", 0): 41})
    for table in ("contact_events", "request_events", "agent_events", "knowledge_events"):
        q = f"SELECT * EXCLUDE (event_id) FROM {table} ORDER BY position"
        assert a.conn.execute(q).fetchall() == b.conn.execute(q).fetchall(), table
    assert b.position("hotline.contacts", 0) == 41
    a.close()
    b.close()


def test_restart_continues_from_the_recorded_position(tmp_path: Path, traffic: list[Envelope]) -> None:
    path = tmp_path / "a.duckdb"
    half = len(traffic) // 2
    source = ListStore(traffic[:half])
    ingest = InProcessAnalytics(source, path, batch=500)
    assert ingest.catch_up() == traffic[half - 1].position
    ingest.close()  # the process stops

    source.items = traffic  # more events were committed meanwhile
    again = InProcessAnalytics(source, path, batch=500)
    assert again.applied_position == traffic[half - 1].position
    assert again.lag() == len(traffic) - half
    assert again.catch_up() == traffic[-1].position
    assert again.catch_up() == traffic[-1].position  # nothing new: no second application
    again.close()
    assert _counts(path)["events"] == len(traffic)


def test_crash_after_commit_before_position_is_harmless(tmp_path: Path, traffic: list[Envelope]) -> None:
    # Simulate a crash that lost the position (but not the rows): the next run re-reads
    # the log from an older position and must add nothing twice.
    path = tmp_path / "a.duckdb"
    ingest = InProcessAnalytics(ListStore(traffic), path, batch=1000)
    ingest.catch_up()
    ingest.analytics.conn.execute("UPDATE ingest_positions SET position = 100")
    ingest.close()
    again = InProcessAnalytics(ListStore(traffic), path, batch=1000)
    assert again.applied_position == 100
    again.catch_up()
    again.close()
    assert _counts(path)["events"] == len(traffic)


READER = textwrap.dedent(
    """
    import json, sys, time
    from analytics.reports import connect_reader
    path, seconds = sys.argv[1], float(sys.argv[2])
    seen, errors, end = [], [], time.time() + seconds
    while time.time() < end:
        try:
            conn = connect_reader(path)
            seen.append(conn.execute("SELECT count(*) FROM contacts_between('2024-05-01', '2024-06-01')").fetchone()[0])
            conn.close()
        except Exception as e:  # any failure to read is a test failure
            errors.append(repr(e))
        time.sleep(0.02)
    print(json.dumps({"seen": seen, "errors": errors}))
    """
)


def test_analysts_read_while_ingest_writes(tmp_path: Path, traffic: list[Envelope]) -> None:
    path = tmp_path / "a.duckdb"
    store = AnalyticsStore(path, snapshot_interval=0)
    store.ingest_envelopes(traffic[:200])
    store.publish_snapshot(force=True)
    reader = subprocess.Popen(
        [sys.executable, "-c", READER, str(path), "4"], stdout=subprocess.PIPE, text=True, cwd=Path(__file__).parents[2]
    )
    # The writer keeps the database open and busy the whole time.
    for i in range(200, len(traffic), 300):
        store.ingest_envelopes(traffic[i : i + 300])
        store.publish_snapshot()
        time.sleep(0.1)
    out, _ = reader.communicate(timeout=60)
    store.close()
    result: dict[str, Any] = json.loads(out)
    assert result["errors"] == []
    assert len(result["seen"]) > 10
    assert result["seen"] == sorted(result["seen"])  # snapshots only move forward
    assert result["seen"][-1] > result["seen"][0]
    # Old snapshot versions are pruned; the link points at the newest.
    assert len(list(tmp_path.glob("a.snapshot-*.duckdb"))) <= 3


def test_snapshot_is_read_only(tmp_path: Path, traffic: list[Envelope]) -> None:
    store = AnalyticsStore(tmp_path / "a.duckdb")
    store.ingest_envelopes(traffic[:100])
    store.publish_snapshot(force=True)
    conn = connect_reader(tmp_path / "a.duckdb")
    try:
        try:
            conn.execute("DELETE FROM events")
            raise AssertionError("a reader could delete")
        except duckdb.Error as e:
            assert "read-only" in str(e).lower()
    finally:
        conn.close()
        store.close()


def test_real_event_store_catch_up(tmp_path: Path) -> None:
    """The demo's events (through the real command path) land in DuckDB."""
    from api.demo import load_demo
    from infra.runtime import Hotline
    from infra.settings import Settings

    settings = Settings(data_dir=tmp_path / "data")
    load_demo(settings, only_if_empty=False, days=2, seed=3)
    hotline = Hotline.start(settings)
    try:
        ingest = InProcessAnalytics(hotline.store, settings.duckdb_path)
        position = ingest.catch_up()
        assert position == hotline.store.max_position() > 0
        ingest.close()
    finally:
        hotline.close()
    conn = connect_reader(settings.duckdb_path)
    try:
        registered = conn.execute("SELECT count(*) FROM requests WHERE registered_at IS NOT NULL").fetchone()[0]  # type: ignore[index]
        assert registered > 0
        first, last = kpis.data_range(conn)
        assert first is not None and last is not None and last - first > timedelta(hours=12)
        row = kpis.request_kpis(conn, first, last + timedelta(seconds=1))[0]
        assert row["requests_registered"] == registered
    finally:
        conn.close()
    _ = DAY


def test_background_ingest_follows_new_events(tmp_path: Path, traffic: list[Envelope]) -> None:
    from analytics.ingest import start_background

    source = ListStore(traffic[:1000])
    stop = start_background(source, tmp_path / "bg.duckdb", interval=0.05)
    try:
        deadline = time.time() + 20
        while stop.ingest.applied_position < traffic[999].position and time.time() < deadline:  # type: ignore[attr-defined]
            time.sleep(0.05)
        source.items = traffic  # new commits
        while stop.ingest.applied_position < traffic[-1].position and time.time() < deadline:  # type: ignore[attr-defined]
            time.sleep(0.05)
        assert stop.ingest.applied_position == traffic[-1].position  # type: ignore[attr-defined]
    finally:
        stop()
    assert _counts(tmp_path / "bg.duckdb")["events"] == len(traffic)
