"""One active relay (issue 18, item 4): two ``hotline relay`` processes on one store while
commands flow; only the leader publishes (0 duplicates on Kafka while both run); the
leader is SIGKILLed and the standby publishes within seconds, re-sending at most what the
dead leader sent but had not recorded (the README's at-least-once). Each relay's own
``/metrics`` says which one leads and what it published."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections import Counter
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa

from consumers.kafka_contract import relay_position
from infra.runtime import Hotline
from tests.kafka.conftest import distributed, kafka_settings  # noqa: F401 (fixtures)
from tests.kafka.harness import Proc, Workload, public_positions, published_events, wait_until

pytestmark = [pytest.mark.kafka, pytest.mark.postgres]
TAKEOVER_BOUND = 5.0  # seconds from the leader's death to the standby's first recorded batch


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _metrics(port: int) -> dict[str, float]:
    """The relay's /metrics as {'name{labels}': value}; empty while it does not answer."""
    try:
        text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=2).text
    except httpx.HTTPError:
        return {}
    out = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, _, value = line.rpartition(" ")
            out[name] = float(value)
    return out


def _published(metrics: dict[str, float]) -> float:
    return sum(v for k, v in metrics.items() if k.startswith("hotline_relay_published_messages_total"))


def _recorded(h: Hotline) -> int:
    with h.read_store.engine.connect() as conn:
        try:
            return relay_position(conn, "kafka")
        except sa.exc.ProgrammingError:
            return 0


def _published_so_far(h: Hotline) -> Counter[int]:
    """How often each position is on Kafka, reading every partition up to its end offset
    now (traffic goes on: reading until the topics fall quiet would not end)."""
    from kafka import KafkaConsumer, TopicPartition

    consumer = KafkaConsumer(bootstrap_servers=h.settings.kafka_bootstrap_servers, group_id=None, enable_auto_commit=False)
    try:
        prefix = h.settings.kafka_topic_prefix + "."
        parts = [TopicPartition(t, p) for t in consumer.topics() if t.startswith(prefix) for p in consumer.partitions_for_topic(t) or ()]
        consumer.assign(parts)
        consumer.seek_to_beginning(*parts)
        ends = consumer.end_offsets(parts)
        begins = consumer.beginning_offsets(parts)
        todo = {tp for tp in parts if ends[tp] > begins[tp]}
        seen: Counter[int] = Counter()
        deadline = time.monotonic() + 30
        while todo:
            assert time.monotonic() < deadline, f"could not read {sorted(todo)} to their end offsets"
            for tp, records in consumer.poll(timeout_ms=500).items():
                seen.update(int(json.loads(r.value)["sequence"]) for r in records if r.offset < ends[tp])
                if records and records[-1].offset + 1 >= ends[tp]:
                    todo.discard(tp)
        return seen
    finally:
        consumer.close()


def test_one_relay_leads_and_a_standby_takes_over(distributed: Hotline, tmp_path: Path) -> None:  # noqa: F811
    h = distributed
    work = Workload(h, seed=18)
    stop = threading.Event()

    def traffic() -> None:
        while not stop.is_set():
            work.step()
            time.sleep(0.002)

    ports = [_free_port(), _free_port()]
    relays = [Proc("relay", h.settings, tmp_path, HOTLINE_METRICS_PORT=str(p)) for p in ports]
    writer = threading.Thread(target=traffic, daemon=True)
    writer.start()
    try:
        wait_until(lambda: all(_metrics(p) for p in ports), 60, "both relays' /metrics")
        wait_until(lambda: _recorded(h) > 100, 60, "the leader to publish")
        states = [_metrics(p) for p in ports]
        assert sorted(s["hotline_relay_leader"] for s in states) == [0.0, 1.0], "exactly one relay leads"
        lead = 0 if states[0]["hotline_relay_leader"] == 1.0 else 1
        leader, standby = relays[lead], relays[1 - lead]
        standby_port = ports[1 - lead]

        # Both run, traffic flows: every message on Kafka once, all of them from the leader.
        wait_until(lambda: _recorded(h) > 300, 60, "more traffic through the leader")
        so_far = _published_so_far(h)
        assert len(so_far) > 300 and max(so_far.values()) == 1, "a message published twice while both relays run"
        leader_metrics, standby_metrics = _metrics(ports[lead]), _metrics(standby_port)
        assert _published(leader_metrics) > 0 and leader_metrics["hotline_relay_batch_entries_count"] > 0
        assert _published(standby_metrics) == 0 and standby_metrics["hotline_relay_leader"] == 0
        assert "hotline_relay_lag_events" in standby_metrics and "hotline_relay_position" in leader_metrics

        leader.kill()
        killed_at = time.monotonic()
        last_recorded = _recorded(h)  # the dead leader's last record: nobody else writes it yet
        wait_until(lambda: _recorded(h) > last_recorded, TAKEOVER_BOUND + 5, "the standby to publish")
        takeover = time.monotonic() - killed_at
        assert standby.alive() and _metrics(standby_port)["hotline_relay_leader"] == 1.0
        assert takeover < TAKEOVER_BOUND, f"the standby took {takeover:.1f}s to publish"

        stop.set()
        writer.join(30)
        wait_until(lambda: _recorded(h) >= h.store.max_position(), 60, "the new leader to catch up")
    finally:
        stop.set()
        writer.join(30)
        for r in relays:
            r.stop()
    events = published_events(h.settings)
    positions = Counter(int(e["sequence"]) for e in events)
    assert set(positions) == public_positions(h), "every event reaches Kafka"
    resent = sorted(p for p, n in positions.items() if n > 1)
    # At takeover only the batch the dead leader sent but had not recorded goes out again.
    assert all(p > last_recorded for p in resent), f"re-sent below the recorded position {last_recorded}: {resent[:5]}"
    assert all(n == 2 for p, n in positions.items() if n > 1)
    print(f"takeover {takeover:.2f}s; {len(resent)} messages re-sent at takeover; {len(positions)} published")
