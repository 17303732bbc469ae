"""The relay and the projection consumers against a real broker and PostgreSQL."""

from __future__ import annotations

import json
import shutil
import subprocess
import threading
import time
from pathlib import Path

import pytest

from consumers.kafka_projections import ProjectionConsumer, position_visible
from consumers.relay import Relay
from domain.envelope import sequence_of
from domain.events import stream_of
from infra.runtime import Hotline
from tests.conftest import IN_CI
from tests.kafka.harness import (
    Proc,
    Workload,
    diff_snapshots,
    public_positions,
    published_events,
    rebuilt_snapshot,
    snapshot,
    wait_until,
)

pytestmark = [pytest.mark.kafka, pytest.mark.postgres, pytest.mark.slow]


def _relay_position(h: Hotline) -> int:
    import sqlalchemy as sa

    from consumers.kafka_contract import relay_positions

    with h.read_store.engine.connect() as conn:
        try:
            return int(conn.execute(sa.select(relay_positions.c.position)).scalar() or 0)
        except sa.exc.ProgrammingError:
            return 0


def test_events_reach_kafka_as_cloudevents_and_projections_match(distributed: Hotline, tmp_path: Path) -> None:
    h = distributed
    work = Workload(h, seed=3)
    for _ in range(60):
        work.step()
    relay = Relay(h.settings)
    try:
        relay.run(until=lambda r: r.lag() == 0)
    finally:
        relay.close()
    consumer = ProjectionConsumer(h.settings)
    try:
        wait_until(lambda: consumer.poll_once() >= 0 and position_visible(h.read_store, h.store.max_position()), 60, "projections")
        assert consumer.total_lag() == 0
    finally:
        consumer.close()
    assert diff_snapshots(snapshot(h.read_store), rebuilt_snapshot(h, tmp_path)) == []

    events = published_events(h.settings)
    assert {e["sequence"] for e in events} == {sequence_of(p) for p in public_positions(h)}
    for e in events:
        assert e["specversion"] == "1.0" and e["type"].startswith("hotline.") and e["type"].endswith(".v1")
        assert e["_kafka"]["key"].decode() == e["subject"]
        assert e["_kafka"]["topic"] == f"{h.settings.kafka_topic_prefix}.{stream_of(e['type'])}s"
        assert "+39" not in json.dumps({k: v for k, v in e.items() if k != "_kafka"}), "personal data must be masked"
    citizens = [e for e in events if e["type"] == "hotline.citizen.registered.v1"]
    assert citizens and all(set(e["data"]["personal"].values()) == {"***"} for e in citizens)
    # ... while the CRM read model, fed from the same topics, has the real phone numbers.
    with h.read_store.engine.connect() as conn:
        phones = {r[0] for r in conn.exec_driver_sql("SELECT phone FROM rm_citizens")}
    assert phones and all(p.startswith("+39") for p in phones)


def test_relay_killed_mid_burst_loses_nothing(distributed: Hotline, tmp_path: Path) -> None:
    h = distributed
    work = Workload(h, seed=7)
    stop = threading.Event()

    def burst() -> None:
        while not stop.is_set() and work.commands < 400:
            work.step()

    writer = threading.Thread(target=burst)
    relay = Proc("relay", h.settings, tmp_path)
    writer.start()
    try:
        wait_until(lambda: _relay_position(h) > 50, 60, "the relay to publish")
        relay.kill()  # SIGKILL in the middle of the burst
        assert not relay.alive()
        time.sleep(0.5)
        relay = Proc("relay", h.settings, tmp_path)
        writer.join(120)
        assert not writer.is_alive()
        wait_until(lambda: _relay_position(h) >= h.store.max_position(), 90, "the restarted relay to catch up")
    finally:
        stop.set()
        writer.join(10)
        relay.stop()
    events = published_events(h.settings)
    assert {e["sequence"] for e in events} == {sequence_of(p) for p in public_positions(h)}, "every event reaches Kafka at least once"
    consumers = [Proc("consume projections", h.settings, tmp_path) for _ in range(2)]
    try:
        wait_until(lambda: position_visible(h.read_store, h.store.max_position()), 120, "the consumers")
    finally:
        for p in consumers:
            p.stop()
    assert diff_snapshots(snapshot(h.read_store), rebuilt_snapshot(h, tmp_path)) == []


def test_consumer_killed_between_transaction_and_offset_commit(distributed: Hotline, tmp_path: Path) -> None:
    h = distributed
    work = Workload(h, seed=11)
    for _ in range(250):
        work.step()
    relay = Relay(h.settings, batch=40)
    try:
        relay.run(until=lambda r: r.lag() == 0)
    finally:
        relay.close()
    # Small batches so the kill lands in the middle; the process dies after its 3rd
    # transaction, before committing that batch's offsets.
    crashing = Proc("consume projections", h.settings, tmp_path, "--max-records", "50", HOTLINE_FAULT_KILL_BEFORE_COMMIT="3")
    try:
        wait_until(lambda: not crashing.alive(), 60, "the injected crash")
    finally:
        crashing.stop()
    assert crashing.proc.returncode == -9, crashing.output()[-2000:]
    assert "fault injection" in crashing.output()
    # The crashed batch is in the read models but its offsets are not committed: Kafka will redeliver it.
    from kafka import KafkaAdminClient

    admin = KafkaAdminClient(bootstrap_servers=h.settings.kafka_bootstrap_servers)
    try:
        committed = sum(o.offset for o in admin.list_consumer_group_offsets(h.settings.kafka_consumer_group).values())
    finally:
        admin.close()
    assert committed < len(published_events(h.settings))
    survivor = Proc("consume projections", h.settings, tmp_path)
    try:
        wait_until(lambda: position_visible(h.read_store, h.store.max_position()), 90, "the second consumer")
    finally:
        survivor.stop()
    assert diff_snapshots(snapshot(h.read_store), rebuilt_snapshot(h, tmp_path)) == []


@pytest.mark.skipif(shutil.which("kcat") is None and not IN_CI, reason="kcat not installed (apt-get install kcat)")
def test_kcat_reads_valid_cloudevents(distributed: Hotline) -> None:
    import jsonschema

    from api.asyncapi import generate

    h = distributed
    work = Workload(h, seed=5)
    for _ in range(30):
        work.step()
    relay = Relay(h.settings)
    try:
        relay.run(until=lambda r: r.lag() == 0)
    finally:
        relay.close()
    topic = f"{h.settings.kafka_topic_prefix}.requests"
    out = subprocess.run(
        [
            "kcat",
            "-C",
            "-b",
            h.settings.kafka_bootstrap_servers or "",
            "-t",
            topic,
            "-o",
            "beginning",
            "-e",
            "-q",
            "-f",
            "%k\t%s\n",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout
    doc = generate()
    lines = [line for line in out.splitlines() if line]
    assert len(lines) == len(public_positions(h)) - _non_request_events(h)
    for line in lines:
        key, value = line.split("\t", 1)
        event = json.loads(value)
        schema = dict(doc["components"]["messages"][event["type"]]["payload"])
        schema["components"] = doc["components"]
        jsonschema.validate(event, schema)
        assert key == event["subject"]


def _non_request_events(h: Hotline) -> int:
    from consumers.kafka_contract import INTERNAL_STREAMS

    return sum(1 for e in h.store.iter_envelopes(0) if e.stream not in INTERNAL_STREAMS and e.stream != "request")
