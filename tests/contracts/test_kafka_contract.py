"""The contract against what is really published: the demo runs on the distributed stack
(PostgreSQL event store, the outbox relay, Kafka), and every message on the topics must be
of a type the AsyncAPI document lists, valid against that message's schema, and a conforming
CloudEvent. The drift test (tests/kafka/test_asyncapi.py) only compares the committed file
with its generator; this one compares the document with the wire."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from argon2 import PasswordHasher

from api.asyncapi import committed
from api.demo import load_demo
from consumers.relay import Relay
from domain.base import SystemClock
from domain.envelope import ENVELOPE_VERSION, Envelope
from domain.requests import commands as c
from domain.work_orders import commands as woc
from infra.identity import secrets
from infra.runtime import Hotline
from infra.settings import Settings
from tests.conftest import PG_HOST, PG_PORT, create_pg_database, drop_pg_database, require_service
from tests.contracts.conformance import DocumentValidator, cloudevent_problems
from tests.kafka.harness import AGENT, KAFKA, ROADS, distributed_settings, published_events

pytestmark = [pytest.mark.kafka, pytest.mark.postgres, pytest.mark.slow]

# Two and a half hours of the demo's story (the catalogue, the knowledge base, staff, calls
# and chats through the router, a few requests), then one complaint's whole life through
# the bus, so that a run of seconds rather than minutes still covers every stream.
DEMO_DAYS = 0.1


def one_case(settings: Settings) -> None:
    """A pothole reported, dispatched, accepted, worked on as a work order, answered, closed."""
    h = Hotline.start(settings, SystemClock())
    try:
        ref = h.bus.execute(
            c.RegisterRequest(
                kind="action",
                subtype="complaint",
                channel="phone",
                description="Deep pothole in via Roma",
                contact=c.Contact(name="Mario Rossi", phone="+39 06 1234 5678"),
                problem_code="pothole",
            ),
            AGENT,
        ).result["reference"]
        h.bus.execute(c.AddNote(ref=ref, text="Caller says it is getting bigger"), AGENT)
        h.bus.execute(c.Dispatch(ref=ref), AGENT)
        h.bus.execute(c.Accept(ref=ref, department_id="transport"), ROADS)
        order = h.bus.execute(woc.CreateWorkOrder(ref=ref), AGENT).result["id"]
        h.bus.execute(woc.StartWorkOrder(order_id=order, crew="Crew 3"), ROADS)
        h.bus.execute(woc.CompleteWorkOrderTask(order_id=order, task_index=0), ROADS)
        h.bus.execute(woc.CompleteWorkOrder(order_id=order, outcome="Filled"), ROADS)
        h.bus.execute(c.FinalReply(ref=ref, message="The pothole was filled."), ROADS)
        h.bus.execute(c.Close(ref=ref), AGENT)
    finally:
        h.close()


@pytest.fixture
def kafka_settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Settings]:
    host, port = KAFKA.split(":")
    require_service("Kafka", host, int(port))
    require_service("PostgreSQL", PG_HOST, PG_PORT)
    # The demo enrols two dozen staff; argon2's production cost is a second each on a busy
    # machine. Hashes stay in an internal stream, never on Kafka: a cheap hasher changes nothing here.
    monkeypatch.setattr(secrets, "PasswordHasher", lambda: PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1))
    url = create_pg_database("t_contract")
    try:
        yield distributed_settings(url, tmp_path / "data")
    finally:
        drop_pg_database(url)


def last_noon(zone: str) -> datetime:
    """12:00 in the hotline's time zone, today if it has passed, else yesterday."""
    local = datetime.now(ZoneInfo(zone))
    noon = local.replace(hour=12, minute=0, second=0, microsecond=0)
    return (noon if noon <= local else noon - timedelta(days=1)).astimezone(UTC)


def test_every_message_the_demo_publishes_is_documented_and_valid(kafka_settings: Settings) -> None:
    # A fraction of a day, ending at the last noon: at night the demo's day has few calls.
    load_demo(kafka_settings, only_if_empty=False, days=DEMO_DAYS, now=last_noon(kafka_settings.time_zone))
    one_case(kafka_settings)
    relay = Relay(kafka_settings)
    try:
        relay.prepare()
        relay.run(until=lambda r: r.lag() == 0)
    finally:
        relay.close()
    messages = published_events(kafka_settings)
    assert len(messages) > 500

    document = committed()
    validator = DocumentValidator(document)
    seen = Counter(m["type"] for m in messages)
    undocumented = sorted(set(seen) - validator.types())
    assert undocumented == [], "published types missing from api/asyncapi.json"
    assert "hotline.workorder.created.v1" in seen, "the case makes a work order"
    assert len(seen) >= 30, sorted(seen)

    problems: list[str] = []
    for m in messages:
        kafka = m.pop("_kafka")
        problems += validator.problems(m)
        problems += cloudevent_problems(m)
        if kafka["key"].decode() != m["subject"]:
            problems.append(f"{m['id']}: Kafka key {kafka['key']!r} is not the subject")
        if kafka["topic"] != f"{kafka_settings.kafka_topic_prefix}.{Envelope.from_cloudevent(m).stream}s":
            problems.append(f"{m['id']}: on {kafka['topic']}")
        if m["hotlineenvelope"] != ENVELOPE_VERSION or int(m["sequence"]) < 1:
            problems.append(f"{m['id']}: envelope {m['hotlineenvelope']}, sequence {m['sequence']}")
    assert problems[:20] == []
