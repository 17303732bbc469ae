"""The Kafka half of issue 13's erasure test (tests/audit/test_erasure.py is the rest):
the topics never carry a citizen's personal data, before or after an erasure; the
erasure event reaches the projection consumers, which blank what they had, and the read
models then equal a rebuild from the store."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from consumers.kafka_projections import ProjectionConsumer, position_visible
from consumers.relay import Relay
from domain.base import Actor
from domain.privacy.aggregate import ERASED
from domain.requests import commands as c
from infra.privacy import erase_citizen
from infra.runtime import Hotline
from tests.kafka.harness import diff_snapshots, published_events, rebuilt_snapshot, snapshot, wait_until

pytestmark = [pytest.mark.kafka, pytest.mark.postgres]

AGENT = Actor("op1", "agent")
NAME, PHONE, EMAIL = "Zenobia Marchetti-Valdès", "+39 06 7777 1234", "zenobia.valdes@example.org"
WORD = "Quixotrembla"  # in what the citizen wrote: their own text is personal data here too
NEEDLES = ("Zenobia", "Marchetti", "+390677771234", "0677771234", EMAIL, WORD)


def _publish_and_apply(h: Hotline) -> None:
    relay = Relay(h.settings)
    try:
        relay.run(until=lambda r: r.lag() == 0)
    finally:
        relay.close()
    consumer = ProjectionConsumer(h.settings)
    try:
        wait_until(lambda: consumer.poll_once() >= 0 and position_visible(h.read_store, h.store.max_position()), 60, "projections")
    finally:
        consumer.close()


def _dump(url: str) -> str:
    return subprocess.run(["pg_dump", "--data-only", url], capture_output=True, check=True, text=True).stdout


def test_topics_never_carry_personal_data_and_consumers_apply_the_erasure(distributed: Hotline, tmp_path: Path) -> None:
    h = distributed
    citizen_id = None
    for channel in ("phone", "web", "email"):
        out = h.bus.execute(
            c.RegisterRequest(
                kind="information",
                channel=channel,
                description=f"When does the registry office open? Ask for {WORD}.",
                contact=c.Contact(name=NAME, phone=PHONE, email=EMAIL),
            ),
            AGENT,
        ).result
        citizen_id = out["citizen_id"]
    assert citizen_id is not None
    _publish_and_apply(h)
    with h.read_store.engine.connect() as conn:
        names = {r[0] for r in conn.exec_driver_sql("SELECT name FROM rm_citizens")}
        descriptions = {r[0] for r in conn.exec_driver_sql("SELECT description FROM rm_requests")}
    assert NAME in names  # the consumers completed the masked fields from the store
    assert any(WORD in (d or "") for d in descriptions)  # and the citizen's masked text
    before = json.dumps([{k: v for k, v in e.items() if k != "_kafka"} for e in published_events(h.settings)], ensure_ascii=False)
    assert [n for n in NEEDLES if n.lower() in before.lower()] == []  # the topics never carried them

    erase_citizen(h, citizen_id, "the citizen asked", Actor("admin", "administrator"))
    _publish_and_apply(h)

    events = published_events(h.settings)
    assert any(e["type"] == "hotline.erasure.erased.v1" and e["data"]["citizen_id"] == citizen_id for e in events)
    text = json.dumps([{k: v for k, v in e.items() if k != "_kafka"} for e in events], ensure_ascii=False)
    assert [n for n in NEEDLES if n.lower() in text.lower()] == []
    with h.read_store.engine.connect() as conn:
        row = conn.exec_driver_sql("SELECT name, phone, email FROM rm_citizens WHERE id = %s", (citizen_id,)).one()
    assert tuple(row) == (ERASED, ERASED, ERASED)
    assert h.settings.database_url is not None
    dump = _dump(h.settings.database_url)
    assert [n for n in NEEDLES if n.lower() in dump.lower()] == []
    assert diff_snapshots(snapshot(h.read_store), rebuilt_snapshot(h, tmp_path)) == []
