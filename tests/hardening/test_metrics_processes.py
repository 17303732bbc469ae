"""/metrics in every long-running process: each process started as operators start it, its
scrape parsed with prometheus_client's own parser, and the families it must show checked;
then the example Prometheus configuration and alert rules (infra/prometheus/) against
what the processes really expose."""

from __future__ import annotations

import re
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from api.app import create_app
from domain.base import SystemClock
from infra.metrics import PROCESS_PORT_OFFSETS, metrics_port
from infra.runtime import Hotline
from infra.settings import Settings
from tests.auth import SignedInClient
from tests.conftest import PG_HOST, PG_PORT, create_pg_database, drop_pg_database, load_catalogue, require_service
from tests.kafka.harness import KAFKA, ROOT, Proc, distributed_settings, wait_until

pytestmark = [pytest.mark.kafka, pytest.mark.postgres]
HEADERS = {"X-Actor-Id": "op1", "X-Actor-Role": "agent"}
PROMETHEUS = ROOT / "infra" / "prometheus"

# What each process must show (family names as the parser reports them: counters without _total).
EXPECTED = {
    "consume projections": {
        "hotline_consumer_events",
        "hotline_consumer_batch_events",
        "hotline_consumer_apply_duration_seconds",
        "hotline_consumer_lag_messages",
        "hotline_consumer_offset_commits",
        "hotline_projection_position",
        "hotline_projection_lag_events",
        "hotline_event_store_position",
        "process_cpu_seconds",
    },
    "consume analytics": {
        "hotline_analytics_events",
        "hotline_analytics_batches",
        "hotline_analytics_lag_messages",
        "hotline_analytics_scrape_ok",
    },
    "router": {
        "hotline_router_leader",
        "hotline_router_decisions",
        "hotline_router_offers",
        "hotline_router_queue_depth",
        "hotline_router_view_position",
        "hotline_commands",
        "hotline_group_commit_batch_commands",
    },
    "timers": {"hotline_timers_fired", "hotline_timer_backlog", "hotline_timers_errors", "hotline_timers_scrape_ok"},
    "notify": {"hotline_notifications", "hotline_notification_dead_letters", "hotline_notification_messages", "hotline_notifier_scrape_ok"},
}
API_EXPECTED = {
    "hotline_commands",
    "hotline_command_duration_seconds",
    "hotline_group_commit_batch_commands",
    "hotline_http_request_duration_seconds",
    "hotline_projection_position",
    "hotline_projection_lag_events",
    "hotline_ready",
    "hotline_ready_check",
    "hotline_ready_warning",
    "hotline_readiness_relay_lag_events",
    "hotline_readiness_consumer_lag_messages",
}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _families(text: str) -> dict[str, set[str]]:
    """Family name -> the names of its samples (parsed by prometheus_client, not by us)."""
    return {f.name: {s.name for s in f.samples} for f in text_string_to_metric_families(text)}


@pytest.fixture
def hotline(tmp_path: Path) -> Iterator[Hotline]:
    require_service("Kafka", "127.0.0.1", int(KAFKA.rsplit(":", 1)[1]))
    require_service("PostgreSQL", PG_HOST, PG_PORT)
    url = create_pg_database("t_metrics")
    settings = distributed_settings(url, tmp_path / "data", router_inprocess=False, timers_inprocess=False, metrics_base_port=0)
    h = Hotline.start(settings, SystemClock())
    try:
        load_catalogue(h)
        yield h
    finally:
        h.close()
        drop_pg_database(url)


def test_every_process_serves_its_metrics(hotline: Hotline, tmp_path: Path) -> None:
    ports = {name: _free_port() for name in EXPECTED}
    procs = {
        name: Proc(
            name, hotline.settings, tmp_path, HOTLINE_METRICS_PORT=str(port), HOTLINE_DATA_DIR=str(tmp_path / name.replace(" ", "-"))
        )
        for name, port in ports.items()
    }
    relay = Proc("relay", hotline.settings, tmp_path)
    scraped: dict[str, dict[str, set[str]]] = {}
    try:
        with SignedInClient(create_app(hotline=hotline)) as client:
            for i in range(5):
                body = {
                    "kind": "action",
                    "subtype": "complaint",
                    "channel": "phone",
                    "description": f"Bench {i} broken",
                    "contact": {"name": f"Citizen {i}", "phone": f"+39 06 {4000000 + i}"},
                    "problem_code": "pothole",
                }
                assert client.post("/requests", json=body, headers=HEADERS).status_code == 201
            scraped["api"] = _families(client.get("/metrics").text)

            def scrape(name: str) -> bool:
                try:
                    answer = httpx.get(f"http://127.0.0.1:{ports[name]}/metrics", timeout=2)
                except httpx.HTTPError:
                    assert procs[name].alive(), procs[name].output()[-3000:]
                    return False
                families = _families(answer.text)
                scraped[name] = families
                return EXPECTED[name] <= set(families)

            deadline = time.monotonic() + 180
            for name in EXPECTED:
                wait_until(lambda name=name: scrape(name), max(1.0, deadline - time.monotonic()), f"{name}'s /metrics")  # type: ignore[misc]
            # The consumer's lag per partition, with its labels, once it has applied something.
            wait_until(
                lambda: scrape("consume projections") and bool(scraped["consume projections"]["hotline_consumer_lag_messages"]), 60, "lag"
            )
            scraped["api"] = _families(client.get("/metrics").text)
    finally:
        for proc in (*procs.values(), relay):
            proc.stop()
    for name, families in scraped.items():
        missing = (API_EXPECTED if name == "api" else EXPECTED[name]) - set(families)
        assert not missing, f"{name} lacks {missing}"
    consumer = scraped["consume projections"]
    assert {"hotline_consumer_batch_events_count", "hotline_consumer_batch_events_bucket"} <= consumer["hotline_consumer_batch_events"]
    assert "hotline_commands_total" in scraped["api"]["hotline_commands"]
    _check_alerts(scraped)


def _check_alerts(scraped: dict[str, dict[str, set[str]]]) -> None:
    """Every metric an alert names is exposed by some process (a sample, or a family whose
    samples carry the suffix: _total, _count, _bucket, _sum)."""
    names: set[str] = set()
    for families in scraped.values():
        for family, samples in families.items():
            names.add(family)
            names.update(samples)
            names.update(f"{family}{suffix}" for suffix in ("_total", "_count", "_bucket", "_sum"))
    rules = yaml.safe_load((PROMETHEUS / "alerts.yml").read_text())
    alerts = [rule for group in rules["groups"] for rule in group["rules"]]
    assert len(alerts) >= 6 and all({"alert", "expr"} <= set(rule) for rule in alerts)
    wanted = {
        "HotlineNotReady",
        "HotlineRelayLag",
        "HotlineConsumerLag",
        "HotlineDeadLetters",
        "HotlineTimerBacklog",
        "HotlineCommandErrors",
    }
    assert wanted <= {rule["alert"] for rule in alerts}
    for rule in alerts:
        used = set(re.findall(r"\bhotline_[a-z0-9_]+", rule["expr"]))
        assert used or "up{" in rule["expr"], rule
        assert used <= names, f"{rule['alert']} names {used - names}, which no process exposes"


def test_prometheus_config_scrapes_every_process() -> None:
    """The example scrape configuration parses and points at each process's default port."""
    config = yaml.safe_load((PROMETHEUS / "prometheus.yml").read_text())
    assert config["rule_files"] == ["alerts.yml"]
    targets = {job["job_name"]: job["static_configs"][0]["targets"] for job in config["scrape_configs"]}
    defaults = Settings()
    assert targets["hotline-api"] == [f"127.0.0.1:{defaults.port}"]
    jobs = {"consumer": "hotline-consumer", "analytics": "hotline-analytics", "router": "hotline-router", "timers": "hotline-timers"}
    jobs |= {"notify": "hotline-notify", "relay": "hotline-relay"}
    assert set(jobs) == set(PROCESS_PORT_OFFSETS)
    for process, job in jobs.items():
        assert targets[job] == [f"127.0.0.1:{metrics_port(defaults, process)}"], job
    assert len(set(map(str, targets.values()))) == len(targets), "two jobs scrape one port"
