"""Broker outage while the API keeps taking commands; read-your-writes through the API."""

from __future__ import annotations

import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from consumers.kafka_projections import position_visible
from domain.envelope import sequence_of
from infra.runtime import Hotline
from tests.auth import SignedInClient
from tests.kafka.harness import (
    ROOT,
    Proc,
    diff_snapshots,
    public_positions,
    published_events,
    rebuilt_snapshot,
    snapshot,
    wait_until,
)

pytestmark = [pytest.mark.kafka, pytest.mark.postgres, pytest.mark.slow]
HEADERS = {"X-Actor-Id": "op1", "X-Actor-Role": "agent"}


def _body(i: int) -> dict[str, object]:
    return {
        "kind": "action",
        "subtype": "complaint",
        "channel": "phone",
        "description": f"Street light {i} is out",
        "contact": {"name": f"Citizen {i}", "phone": f"+39 06 {2000000 + i % 30}"},
        "problem_code": "pothole",
    }


@pytest.fixture
def client(distributed: Hotline) -> Iterator[TestClient]:
    with SignedInClient(create_app(hotline=distributed)) as c:
        yield c


def test_operator_sees_own_registration_at_once(distributed: Hotline, client: TestClient, tmp_path: Path) -> None:
    relay = Proc("relay", distributed.settings, tmp_path)
    consumers = [Proc("consume projections", distributed.settings, tmp_path) for _ in range(2)]
    try:
        first = client.post("/requests", json=_body(0), headers=HEADERS)
        assert first.status_code == 201
        # Give the group time to form, then measure the normal path.
        # (a consumer group can take several seconds to form on a busy machine).
        wait_until(
            lambda: client.get("/requests", params={"min_position": first.json()["position"]}, headers=HEADERS).status_code == 200,
            60,
            "the consumer group to form and apply the first registration",
        )
        for i in range(1, 15):
            answer = client.post("/requests", json=_body(i), headers=HEADERS).json()
            listed = client.get(
                "/requests", params={"min_position": answer["position"], "citizen_id": answer["citizen_id"]}, headers=HEADERS
            )
            assert listed.status_code == 200, listed.text
            assert answer["reference"] in {r["reference"] for r in listed.json()["items"]}
    finally:
        relay.stop()
        for c in consumers:
            c.stop()
    # Without the relay nothing new becomes visible: the wait times out with a clear 504.
    late = client.post("/requests", json=_body(99), headers=HEADERS).json()
    assert not position_visible(distributed.read_store, late["position"])


def _kafka(cmd: str) -> None:
    subprocess.run(["bash", str(ROOT / "infra" / "kafka.sh"), cmd], check=True, timeout=120, capture_output=True)


def test_broker_down_for_ten_seconds(distributed: Hotline, client: TestClient, tmp_path: Path) -> None:
    h = distributed
    relay = Proc("relay", h.settings, tmp_path)
    consumer = Proc("consume projections", h.settings, tmp_path)
    statuses: list[int] = []
    stop = threading.Event()

    def traffic() -> None:
        i = 0
        while not stop.is_set():
            i += 1
            statuses.append(client.post("/requests", json=_body(i), headers=HEADERS).status_code)
            time.sleep(0.05)

    writer = threading.Thread(target=traffic)
    try:
        first = client.post("/requests", json=_body(0), headers=HEADERS).json()
        wait_until(lambda: position_visible(h.read_store, first["position"]), 60, "the pipeline to run")
        writer.start()
        time.sleep(2)
        _kafka("stop")
        try:
            down_from = len(statuses)
            time.sleep(10)
            during = statuses[down_from:]
        finally:
            _kafka("start")
        time.sleep(2)
        stop.set()
        writer.join(30)
        assert len(during) > 20 and set(during) == {201}, "the API keeps accepting commands while Kafka is down"
        assert set(statuses) == {201}
        wait_until(lambda: position_visible(h.read_store, h.store.max_position()), 180, "the relay and consumer to catch up")
        assert relay.alive() and consumer.alive()
    finally:
        stop.set()
        relay.stop()
        consumer.stop()
    assert {e["sequence"] for e in published_events(h.settings)} == {sequence_of(p) for p in public_positions(h)}
    assert diff_snapshots(snapshot(h.read_store), rebuilt_snapshot(h, tmp_path)) == []
