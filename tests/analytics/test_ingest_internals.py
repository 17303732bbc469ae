"""Ingest internals: the watermark dedupe across interleaved sources, events without a
position, and the writer's own checkpoints."""

from __future__ import annotations

import json
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from analytics import ingest
from analytics.ingest import AnalyticsStore
from domain.envelope import Envelope
from tests.analytics.test_facts import _assert_facts_exact


def test_interleaved_sources_are_deduplicated_below_the_watermark(tmp_path: Path, traffic: list[Envelope]) -> None:
    """Kafka partitions interleave: a batch may hold events below the highest position stored."""
    store = AnalyticsStore(tmp_path / "a.duckdb")
    evens, odds = traffic[0::2], traffic[1::2]
    assert store.ingest_envelopes(evens[:800]) == 800
    # Positions below the watermark, new ones mixed with redelivered ones.
    assert store.ingest_envelopes(odds[:600] + evens[700:800]) == 600
    docs = [json.dumps(e.to_cloudevent()) for e in odds[500:900] + evens[750:900]]
    assert store.ingest_cloudevents(docs) == 300 + 100
    assert store.ingest_envelopes(traffic) == len(traffic) - 1800
    n = store.conn.execute("SELECT count(*), count(DISTINCT event_id) FROM events").fetchone()
    assert n == (len(traffic), len(traffic))
    _assert_facts_exact(store.conn)
    store.close()


def test_cloudevents_without_sequence_are_still_deduplicated(tmp_path: Path, traffic: list[Envelope]) -> None:
    store = AnalyticsStore(tmp_path / "a.duckdb")
    store.ingest_envelopes(traffic[:1000])

    def doc(e: Envelope) -> str:
        ce = e.to_cloudevent()
        del ce["sequence"]  # a producer that does not send the position
        return json.dumps(ce)

    assert store.ingest_cloudevents([doc(e) for e in traffic[900:1100]]) == 100
    assert store.ingest_cloudevents([doc(e) for e in traffic[900:1100]]) == 0
    assert store.counts()["events"] == 1100
    assert store.conn.execute("SELECT count(*) - count(DISTINCT event_id) FROM events").fetchone() == (0,)
    _assert_facts_exact(store.conn)
    store.close()


def test_both_envelope_versions_land_alike(tmp_path: Path, traffic: list[Envelope]) -> None:
    """Envelope 2 (flat attributes, padded ``sequence``) and envelope 1 (``hotlinemeta``,
    integer ``sequence``: messages published before the change) give the same rows."""

    def version_1(e: Envelope) -> str:
        flat = ("hotlineenvelope", "hotlineactor", "hotlinerole", "hotlineactorname", "correlationid", "causationid")
        ce = {k: v for k, v in e.to_cloudevent().items() if k not in flat}
        ce["sequence"] = e.position
        ce["hotlinemeta"] = e.meta
        return json.dumps(ce)

    columns = "event_id, position, type, aggregate_id, version, time, data, actor_id, actor_role, correlation_id, causation_id"
    rows = []
    for name, encode in (("v2", lambda e: json.dumps(e.to_cloudevent())), ("v1", version_1)):
        store = AnalyticsStore(tmp_path / f"{name}.duckdb")
        assert store.ingest_cloudevents([encode(e) for e in traffic[:300]]) == 300
        rows.append(store.conn.execute(f"SELECT {columns} FROM events ORDER BY position").fetchall())
        store.close()
    assert rows[0] == rows[1]
    assert [r[1] for r in rows[0]] == [e.position for e in traffic[:300]]
    assert all(
        (r[7], r[8], r[9]) == (e.meta["actor_id"], e.meta["actor_role"], e.meta["correlation_id"])
        for r, e in zip(rows[0], traffic, strict=False)
    )


def test_the_writer_checkpoints_when_the_wal_is_large(tmp_path: Path, traffic: list[Envelope], monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "a.duckdb"
    store = AnalyticsStore(path)
    store.ingest_envelopes(traffic[:500])
    wal = Path(f"{path}.wal")
    assert wal.exists() and wal.stat().st_size > 0  # below the threshold: in the WAL only
    monkeypatch.setattr(ingest, "CHECKPOINT_BYTES", 1)
    store.ingest_envelopes(traffic[500:1000])
    assert not wal.exists() or wal.stat().st_size == 0  # checkpointed into the file
    assert store.conn.execute("SELECT current_setting('threads')").fetchone() == (ingest.WRITER_THREADS,)
    store.conn.close()
    again = AnalyticsStore(path)
    assert again.counts()["events"] == 1000
    _assert_facts_exact(again.conn)
    again.close()


def test_unusual_values_are_encoded(tmp_path: Path) -> None:
    """Meta values that are not strings, integers beyond 64 bits, NaN, naive times (UTC)."""
    actor = uuid.uuid4()
    envs = [
        Envelope(
            "hotline.knowledge.search_performed.v1",
            "knowledge",
            "s-1",
            1,
            1,
            datetime(2025, 3, 1, 10, 30, 0, 123456),  # naive: UTC
            {"query": "tari", "results": 2**70, "answered": True},
            {"actor_id": actor, "actor_role": "citizen", "correlation_id": 42, "causation_id": None},
        ),
        Envelope(
            "hotline.knowledge.search_performed.v1",
            "knowledge",
            "s-2",
            1,
            2,
            datetime(2025, 3, 1, 11, 30, 0, 1, tzinfo=timezone(timedelta(hours=2))),
            {"query": "rifiuti", "results": 0, "answered": False, "score": float("nan")},
            {"actor_id": "a", "actor_role": "citizen"},
        ),
    ]
    store = AnalyticsStore(tmp_path / "a.duckdb")
    assert store.ingest_envelopes(envs) == 2
    rows = store.conn.execute(
        "SELECT aggregate_id, time, actor_id, correlation_id, causation_id, data FROM events ORDER BY position"
    ).fetchall()
    assert rows[0][:5] == ("s-1", datetime(2025, 3, 1, 10, 30, 0, 123456), str(actor), "42", None)
    assert json.loads(rows[0][5]) == {"query": "tari", "results": 2**70, "answered": True}
    assert rows[1][1] == datetime(2025, 3, 1, 9, 30, 0, 1)  # converted to UTC
    assert json.loads(rows[1][5]) == {"query": "rifiuti", "results": 0, "answered": False, "score": None}
    assert store.conn.execute("SELECT query, answered FROM knowledge_searches ORDER BY time").fetchall() == [
        ("rifiuti", False),  # 09:30 UTC
        ("tari", True),
    ]
    store.close()


def test_the_writer_keeps_its_lock_on_the_file_after_publishing_a_snapshot(tmp_path: Path, traffic: list[Envelope]) -> None:
    """A snapshot copied by path (open, read, close) dropped DuckDB's POSIX lock on the
    file: a `hotline report` beside the server then opened it read-write too, the server's
    ingest failed on the WAL's lock and a published snapshot was corrupt."""
    import subprocess
    import sys

    store = AnalyticsStore(tmp_path / "analytics.duckdb")
    try:
        store.ingest_envelopes(traffic[:50])
        assert store.publish_snapshot(force=True)
        other = subprocess.run(
            [sys.executable, "-c", f"import duckdb; duckdb.connect({str(store.path)!r})"], capture_output=True, text=True, timeout=60
        )
        assert other.returncode != 0 and "lock" in other.stderr.lower(), other.stderr
        store.ingest_envelopes(traffic[50:100])
        assert store.publish_snapshot(force=True)
        import duckdb

        with duckdb.connect(str(store.snapshot_path), read_only=True) as snap:
            row = snap.execute("SELECT count(*) FROM ingest_positions").fetchone()
            assert row is not None
    finally:
        store.close()
