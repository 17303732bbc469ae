"""/readyz on the distributed stack (PostgreSQL, Kafka, relay and consumer processes):
503 within 5 s of the relay, the projection consumer or the broker going down, 200 within
5 s of each coming back; the analytics group behind is a warning, not a 503; and
/healthz, ``hotline status`` and ``hotline kafka-status`` telling the truth about
positions and lag."""

from __future__ import annotations

import json
import os
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from consumers.kafka_contract import KafkaLag, relay_position
from consumers.kafka_projections import position_visible
from domain.base import SystemClock
from infra.runtime import Hotline
from infra.settings import Settings
from tests.auth import SignedInClient
from tests.conftest import PG_HOST, PG_PORT, create_pg_database, drop_pg_database, load_catalogue, require_service
from tests.kafka.harness import KAFKA, ROOT, Proc, distributed_settings, wait_until

pytestmark = [pytest.mark.kafka, pytest.mark.postgres]
HEADERS = {"X-Actor-Id": "op1", "X-Actor-Role": "agent"}
BOUND = 5.0  # seconds: the goal, down and back


def _body(i: int) -> dict[str, object]:
    return {
        "kind": "action",
        "subtype": "complaint",
        "channel": "phone",
        "description": f"Street light {i} is out",
        "contact": {"name": f"Citizen {i}", "phone": f"+39 06 {3000000 + i % 30}"},
        "problem_code": "pothole",
    }


@pytest.fixture
def hotline(tmp_path: Path) -> Iterator[Hotline]:
    require_service("Kafka", "127.0.0.1", int(KAFKA.rsplit(":", 1)[1]))
    require_service("PostgreSQL", PG_HOST, PG_PORT)
    url = create_pg_database("t_ready")
    # Tight bounds, so that a stopped process shows within the test's 5 s.
    settings = distributed_settings(
        url,
        tmp_path / "data",
        readyz_stall_seconds=2.5,
        readyz_kafka_timeout_seconds=1.0,
        readyz_cache_seconds=0.25,
        timers_inprocess=False,
        metrics_base_port=0,
    )
    h = Hotline.start(settings, SystemClock())
    try:
        load_catalogue(h)
        yield h
    finally:
        h.close()
        drop_pg_database(url)


def _kafka_pid() -> int:
    services = Path(os.environ.get("HOTLINE_SERVICES_DIR", ROOT / ".services"))
    return int((services / "kafka" / "kafka.pid").read_text().strip())


class Probe:
    """Polls /readyz every 50 ms; ``until(ready)`` returns the seconds it took."""

    def __init__(self, client: TestClient) -> None:
        self.client = client
        self.last: dict[str, Any] = {}

    def ready(self) -> bool:
        answer = self.client.get("/readyz")
        assert answer.status_code in (200, 503), answer.text
        self.last = answer.json()
        assert (answer.status_code == 200) == (self.last["status"] == "ready") == (not self.last["problems"])
        return answer.status_code == 200

    def until(self, ready: bool, timeout: float) -> float:
        started = time.monotonic()
        while time.monotonic() - started < timeout:
            if self.ready() == ready:
                return time.monotonic() - started
            time.sleep(0.05)
        raise AssertionError(f"/readyz not {'ready' if ready else 'failing'} after {timeout}s: {self.last}")


def test_readyz_follows_relay_consumer_and_broker(hotline: Hotline, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """One stack for both parts (process starts dominate the time): first the positions and
    lag when caught up, then /readyz while each part goes down and comes back."""
    settings = hotline.settings
    stop = threading.Event()
    statuses: list[int] = []
    relay = Proc("relay", settings, tmp_path)
    consumer = Proc("consume projections", settings, tmp_path)
    kafka_paused = False
    with SignedInClient(create_app(hotline=hotline)) as client:

        def traffic() -> None:  # commands keep coming: a stopped process shows as lag that stops moving
            i = 100
            while not stop.is_set():
                i += 1
                statuses.append(client.post("/requests", json=_body(i), headers=HEADERS).status_code)
                time.sleep(0.05)

        writer = threading.Thread(target=traffic, daemon=True)
        probe = Probe(client)
        timings: dict[str, float] = {}
        try:
            _caught_up(hotline, client, monkeypatch)
            writer.start()
            probe.until(True, 20)
            # No analytics consumer runs here: its group falls behind, which warns (reports
            # go stale) but leaves this process ready.
            analytics = probe.last["checks"]["analytics"]
            assert analytics["ok"] and analytics["group"] == settings.kafka_analytics_group and analytics["lag"] > 0, analytics
            wait_until(lambda: probe.ready() and any(w.startswith("analytics:") for w in probe.last["warnings"]), 10, "the warning")
            metrics = client.get("/metrics").text
            assert 'hotline_readiness_consumer_lag_messages{group="' + settings.kafka_analytics_group in metrics
            assert 'hotline_ready_warning{check="analytics"} 1.0' in metrics

            # The relay dies: what is stored is no longer published.
            relay.kill()
            timings["relay down"] = probe.until(False, BOUND)
            assert any(p.startswith("relay:") for p in probe.last["problems"]), probe.last
            relay = Proc("relay", settings, tmp_path)
            timings["relay back"] = _recovery(probe, lambda: _relay_moved(hotline))

            # The consumer dies: the group's committed offsets stop while the end offsets grow.
            consumer.kill()
            timings["consumer down"] = probe.until(False, BOUND)
            assert any(p.startswith("consumers:") for p in probe.last["problems"]), probe.last
            consumer = Proc("consume projections", settings, tmp_path)
            timings["consumer back"] = _recovery(probe, lambda: _group_committed(settings))

            # The broker hangs (paused, as a stuck broker or a partition looks to a client).
            os.kill(_kafka_pid(), signal.SIGSTOP)
            kafka_paused = True
            timings["kafka down"] = probe.until(False, BOUND)
            assert any(p.startswith("kafka:") for p in probe.last["problems"]), probe.last
            # It answers fast while Kafka hangs: the offsets are fetched off the request path.
            started = time.monotonic()
            assert not probe.ready() and time.monotonic() - started < 0.5
            os.kill(_kafka_pid(), signal.SIGCONT)
            kafka_paused = False
            timings["kafka back"] = probe.until(True, BOUND)
        finally:
            if kafka_paused:
                os.kill(_kafka_pid(), signal.SIGCONT)
            stop.set()
            writer.join(10)
            relay.stop()
            consumer.stop()
            reader = _seen.pop("reader", None)
            if reader is not None:
                reader.close()
    print("readyz timings (s):", {k: round(v, 2) for k, v in timings.items()})
    assert set(statuses) == {201}
    assert all(v <= BOUND for v in timings.values()), timings


def _caught_up(hotline: Hotline, client: TestClient, monkeypatch: pytest.MonkeyPatch) -> None:
    """Caught up, every projection is at the store's head with lag 0 (/healthz, ``hotline
    status``, /metrics), and the group's lag from committed offsets reaches 0 once the
    consumer is idle (``hotline kafka-status``)."""
    from typer.testing import CliRunner

    import api.cli.core
    import api.cli.kafka
    import infra.settings

    for i in range(12):
        assert client.post("/requests", json=_body(i), headers=HEADERS).status_code == 201
    head = hotline.store.max_position()
    wait_until(lambda: position_visible(hotline.read_store, head), 90, "the relay and consumer to apply everything")
    health = client.get("/healthz").json()
    assert health["position"] == head
    assert {name: p["lag"] for name, p in health["projections"].items()} == {p.name: 0 for p in hotline.read_store.projections}
    assert {p["position"] for p in health["projections"].values()} == {head}
    assert 'hotline_projection_lag_events{projection="request_status"} 0.0' in client.get("/metrics").text
    # The CLI in this process, on these settings (subprocesses cost seconds each).
    monkeypatch.setattr(api.cli.core, "get_settings", lambda: hotline.settings)
    monkeypatch.setattr(infra.settings, "get_settings", lambda: hotline.settings)
    runner = CliRunner()
    out = runner.invoke(api.cli.core.commands, ["status"])
    assert out.exit_code == 0, out.output
    shown = json.loads(out.output[out.output.index("{") :])
    assert shown["event_store_position"] == head
    assert {(p["position"], p["lag"]) for p in shown["projections"].values()} == {(head, 0)}
    # Idle: the consumer commits what it applied, so the standard lag reaches 0.
    group = hotline.settings.kafka_consumer_group
    reader = KafkaLag(hotline.settings)
    try:
        wait_until(lambda: reader.group_lags([group])[group].total == 0, 10, "the idle consumer to commit its offsets")
    finally:
        reader.close()
    out = runner.invoke(api.cli.kafka.commands, ["kafka-status", "--group", group])
    assert out.exit_code == 0, out.output
    report = json.loads(out.output[out.output.index("{") :])
    assert report["consumer_groups"][group]["lag"] == 0
    assert report["relays"]["kafka"] == {"position": head, "lag": 0}
    assert sum(p["end"] for p in report["consumer_groups"][group]["partitions"]) > 0


_seen: dict[str, Any] = {}


def _relay_moved(h: Hotline) -> bool:
    with h.read_store.engine.connect() as conn:
        now = relay_position(conn)
    before = _seen.setdefault("relay", now)
    return now > before


def _group_committed(settings: Settings) -> bool:
    """The restarted consumer has committed offsets beyond those the killed one left."""
    reader = _seen.get("reader") or _seen.setdefault("reader", KafkaLag(settings))
    committed = reader.group_lags([settings.kafka_consumer_group])[settings.kafka_consumer_group].committed()
    before = _seen.setdefault("committed", committed)
    return committed != before


def _recovery(probe: Probe, recovered: Any, timeout: float = 120) -> float:
    """Waits for the process to be back at work (``recovered``), then returns how long
    /readyz took from there to answer 200."""
    _seen.pop("relay", None)
    _seen.pop("committed", None)
    recovered()  # the baseline
    wait_until(recovered, timeout, "the restarted process to work", every=0.05)
    return probe.until(True, BOUND)
