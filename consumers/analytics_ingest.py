"""Distributed mode: a Kafka consumer that feeds the analytics database.

It reads the CloudEvents JSON the relay publishes (``hotline.requests``,
``hotline.contacts``, ``hotline.agents`` …) in batches and hands the raw documents to
:class:`analytics.ingest.AnalyticsStore`, which parses them inside DuckDB.

Exactly-once effect on top of at-least-once delivery: the offsets of each batch are
stored in DuckDB in the same transaction as its rows, and on (re)assignment the consumer
seeks to them, so a crash never applies a batch twice; events the relay published twice
(with different offsets) are dropped by their event id. Offsets are also committed to
Kafka, only so that ordinary tools can show the group's lag.

    hotline consume analytics      # uses HOTLINE_KAFKA_BOOTSTRAP_SERVERS
"""

from __future__ import annotations

import logging
import re
import signal
import threading
import time
from pathlib import Path
from typing import Any

import duckdb
from kafka import ConsumerRebalanceListener, KafkaConsumer, TopicPartition

from analytics.ingest import AnalyticsStore
from consumers.kafka_contract import public_aggregates

log = logging.getLogger("hotline.analytics_ingest")


class _SeekToStored(ConsumerRebalanceListener):  # type: ignore[misc]
    def __init__(self, owner: AnalyticsConsumer) -> None:
        self.owner = owner

    def on_partitions_revoked(self, revoked: Any) -> None:
        pass

    def on_partitions_assigned(self, assigned: Any) -> None:
        stored = self.owner.store.positions()
        for tp in assigned:
            offset = stored.get((tp.topic, tp.partition))
            if offset is not None:
                self.owner.consumer.seek(tp, offset + 1)


class AnalyticsConsumer:
    def __init__(
        self,
        bootstrap_servers: str,
        duckdb_path: Path | str,
        topics: tuple[str, ...] | list[str],
        group_id: str,
        snapshot_interval: float = 5.0,
        max_records: int = 10_000,
    ) -> None:
        self.store = AnalyticsStore(duckdb_path, snapshot_interval=snapshot_interval)
        self.topics = list(topics)
        self.max_records = max_records
        self.rejected = 0
        self.ingested = 0  # events added (for /metrics)
        self.batches = 0
        self.lags: dict[str, int] = {}  # per "topic/partition", refreshed by the run loop (/metrics)
        self._lag_at = 0.0
        self.consumer = KafkaConsumer(
            bootstrap_servers=bootstrap_servers,
            group_id=group_id,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            max_poll_records=max_records,
            fetch_max_bytes=64 * 1024 * 1024,
            max_partition_fetch_bytes=16 * 1024 * 1024,
            client_id="hotline-analytics-ingest",
        )
        self.consumer.subscribe(topics=self.topics, listener=_SeekToStored(self))

    def poll_once(self, timeout_ms: int = 1000) -> int:
        """One batch: ingest, record offsets (same transaction), commit to Kafka. Returns events added."""
        batches = self.consumer.poll(timeout_ms=timeout_ms, max_records=self.max_records)
        if not batches:
            self.store.publish_snapshot()
            return 0
        values: list[bytes] = []
        offsets: dict[tuple[str, int], int] = {}
        for tp, records in batches.items():
            for r in records:
                if r.value is not None:
                    values.append(r.value)
            offsets[(tp.topic, tp.partition)] = records[-1].offset
        try:
            added = self.store.ingest_cloudevents(values, offsets)
        except duckdb.Error as e:
            # A malformed message must not stop the pipeline: apply the batch one by one
            # and skip (and count) what cannot be read.
            log.warning("batch failed (%s); retrying message by message", e)
            added = 0
            for v in values:
                try:
                    added += self.store.ingest_cloudevents([v])
                except duckdb.Error as one:
                    self.rejected += 1
                    log.error("rejected an unreadable event: %s: %.200r", one, v)
            self.store.ingest_cloudevents([], offsets)
        self.consumer.commit()
        self.store.publish_snapshot()
        self.ingested += added
        self.batches += 1
        return added

    def lag(self) -> dict[str, int]:
        assigned = list(self.consumer.assignment())
        if not assigned:
            return {}
        ends = self.consumer.end_offsets(assigned)
        stored = self.store.positions()
        return {f"{tp.topic}/{tp.partition}": ends[tp] - (stored.get((tp.topic, tp.partition), -1) + 1) for tp in assigned}

    def run(self, stop: threading.Event, lag_every: float = 2.0) -> None:
        while not stop.is_set():
            self.poll_once()
            if time.monotonic() - self._lag_at >= lag_every:
                # Here, on the consumer's thread (a KafkaConsumer is not thread-safe): the
                # scrape reads the result.
                self._lag_at = time.monotonic()
                try:
                    self.lags = self.lag()
                except Exception as exc:
                    log.warning("analytics lag not read: %s", exc)

    def close(self) -> None:
        try:
            self.consumer.close()
        finally:
            self.store.close()


def analytics_metrics(consumer: AnalyticsConsumer, group: str) -> Any:
    """The ingest's figures for /metrics, read at scrape time."""
    from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

    from infra.metrics import StatsCollector

    def build() -> Any:
        yield CounterMetricFamily("hotline_analytics_events", "Events added to DuckDB (duplicates dropped)", value=consumer.ingested)
        yield CounterMetricFamily("hotline_analytics_batches", "Batches ingested (one DuckDB transaction each)", value=consumer.batches)
        yield CounterMetricFamily("hotline_analytics_rejected", "Messages that could not be read and were skipped", value=consumer.rejected)
        lag = GaugeMetricFamily(
            "hotline_analytics_lag_messages", "Messages of an assigned partition not ingested yet", labels=["group", "topic", "partition"]
        )
        for key, n in sorted(consumer.lags.items()):
            topic, partition = key.rsplit("/", 1)
            lag.add_metric([group, topic, partition], n)
        yield lag

    return StatsCollector("hotline_analytics", build)


def topics_for(prefix: str = "hotline") -> list[str]:
    """Every published stream's topic (``<prefix>.requests`` …): analytics shows them all,
    the KPIs' streams in typed tables and the others in their generated views."""
    return [f"{prefix}.{stream}s" for stream in public_aggregates()]


def main(group: str | None = None) -> None:  # pragma: no cover - a process entry point
    """The ``hotline consume analytics`` process (the CLI has configured logging)."""
    from infra.settings import get_settings

    settings = get_settings()
    group = group or settings.kafka_analytics_group
    if not settings.kafka_bootstrap_servers:
        raise SystemExit("HOTLINE_KAFKA_BOOTSTRAP_SERVERS is not set: in the embedded mode the API ingests in-process")
    topics = topics_for(settings.kafka_topic_prefix)
    consumer = AnalyticsConsumer(settings.kafka_bootstrap_servers, settings.duckdb_path, topics, group_id=group)
    from infra.metrics import start_process_metrics

    start_process_metrics(settings, "analytics", analytics_metrics(consumer, group))
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    try:
        consumer.run(stop)
    finally:
        consumer.close()


_ = (re, TopicPartition)
