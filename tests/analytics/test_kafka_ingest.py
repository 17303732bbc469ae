"""The Kafka analytics consumer against the real broker (infra/kafka.sh), on its own topics."""

from __future__ import annotations

import json
import time
import uuid
from datetime import timedelta
from pathlib import Path

import pytest

from analytics import kpis
from analytics.ingest import AnalyticsStore
from analytics.reports import connect_reader
from domain.envelope import Envelope
from tests.analytics.conftest import DAY
from tests.conftest import KAFKA_BOOTSTRAP, require_service

pytestmark = pytest.mark.kafka


def _produce(prefix: str, envelopes: list[Envelope]) -> None:
    from kafka import KafkaProducer

    producer = KafkaProducer(bootstrap_servers=KAFKA_BOOTSTRAP, acks="all", linger_ms=5)
    for e in envelopes:
        producer.send(prefix + e.topic, key=e.aggregate_id.encode(), value=json.dumps(e.to_cloudevent()).encode())
    producer.flush()
    producer.close()


def _create_topics(prefix: str) -> list[str]:
    from kafka.admin import KafkaAdminClient, NewTopic

    from consumers.analytics_ingest import topics_for

    topics = topics_for(prefix + "hotline")  # the relay's topics, under a prefix of this test's own
    admin = KafkaAdminClient(bootstrap_servers=KAFKA_BOOTSTRAP)
    admin.create_topics([NewTopic(t, num_partitions=3, replication_factor=1) for t in topics])
    admin.close()
    return topics


def _drain(consumer: object, want: int, store_count: object, timeout: float = 60) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        consumer.poll_once(500)  # type: ignore[attr-defined]
        if store_count() >= want:  # type: ignore[operator]
            return
    raise AssertionError(f"only {store_count()} of {want} events arrived")  # type: ignore[operator]


def test_kafka_ingest_is_idempotent_and_resumes(tmp_path: Path, traffic: list[Envelope]) -> None:
    require_service("Kafka", "127.0.0.1", int(KAFKA_BOOTSTRAP.rsplit(":", 1)[1]))
    from consumers.analytics_ingest import AnalyticsConsumer

    prefix = f"t_analytics_{uuid.uuid4().hex[:8]}."
    topics = _create_topics(prefix)
    path = tmp_path / "kafka.duckdb"
    half = len(traffic) // 2
    _produce(prefix, traffic[:half])

    consumer = AnalyticsConsumer(KAFKA_BOOTSTRAP, path, topics, group_id=prefix + "g", snapshot_interval=0, max_records=700)

    def count() -> int:
        return consumer.store.counts()["events"]

    _drain(consumer, half, count)
    assert count() == half
    # The relay republishes a stretch (at-least-once) and new events follow.
    _produce(prefix, traffic[half - 300 : half] + traffic[half:])
    _drain(consumer, len(traffic), count)
    for _ in range(3):
        consumer.poll_once(300)
    assert count() == len(traffic)
    assert consumer.lag() and all(v == 0 for v in consumer.lag().values())
    consumer.close()

    # A restart under a new group id (Kafka offsets lost) resumes from DuckDB's offsets.
    again = AnalyticsConsumer(KAFKA_BOOTSTRAP, path, topics, group_id=prefix + "other", snapshot_interval=0)
    for _ in range(4):
        again.poll_once(500)
    assert again.store.counts()["events"] == len(traffic)
    _produce(prefix, [])
    again.close()

    # The KPIs equal those of the in-process path.
    local = AnalyticsStore(tmp_path / "local.duckdb")
    local.ingest_envelopes(traffic)
    local.publish_snapshot(force=True)
    local.close()
    a, b = connect_reader(path), connect_reader(tmp_path / "local.duckdb")
    try:
        end = DAY + timedelta(days=2)
        for fn in (kpis.contact_kpis, kpis.request_kpis):
            got, want = fn(a, DAY, end, "day"), fn(b, DAY, end, "day")
            assert len(got) == len(want) == 2
            for g, w in zip(got, want, strict=True):
                assert g.pop("bucket") == w.pop("bucket")
                assert g == pytest.approx(w, rel=1e-9)  # summation order may differ
    finally:
        a.close()
        b.close()


def test_a_malformed_message_is_skipped_not_fatal(tmp_path: Path, traffic: list[Envelope]) -> None:
    require_service("Kafka", "127.0.0.1", int(KAFKA_BOOTSTRAP.rsplit(":", 1)[1]))
    from kafka import KafkaProducer

    from consumers.analytics_ingest import AnalyticsConsumer

    prefix = f"t_analytics_{uuid.uuid4().hex[:8]}."
    topics = _create_topics(prefix)
    _produce(prefix, traffic[:50])
    p = KafkaProducer(bootstrap_servers=KAFKA_BOOTSTRAP)
    p.send(prefix + "hotline.contacts", value=b"{not json")
    p.flush()
    p.close()
    _produce(prefix, traffic[50:100])
    consumer = AnalyticsConsumer(KAFKA_BOOTSTRAP, tmp_path / "k.duckdb", topics, group_id=prefix + "g", snapshot_interval=0)
    try:
        _drain(consumer, 100, lambda: consumer.store.counts()["events"])
        for _ in range(2):
            consumer.poll_once(300)
        assert consumer.rejected == 1
        assert consumer.store.counts()["events"] == 100
    finally:
        consumer.close()
