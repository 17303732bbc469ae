"""Envelope version 2: CloudEvents attributes are flat scalars, ``sequence`` a zero-padded
string (the sequence extension), and readers take versions 1 and 2 alike."""

from __future__ import annotations

import random
import uuid
from datetime import UTC, datetime

from domain.base import SYSTEM, Actor, Context
from domain.envelope import ENVELOPE_VERSION, META_ATTRIBUTES, SEQUENCE_WIDTH, Envelope, sequence_of
from tests.contracts.conformance import cloudevent_problems

AT = datetime(2026, 11, 16, 9, 5, tzinfo=UTC)


def envelope(position: int = 1234, actor: Actor = SYSTEM) -> Envelope:
    ctx = Context(actor=actor, now=AT, correlation_id="case-42", causation_id="cmd-7")
    return Envelope(
        type="hotline.request.accepted.v1",
        stream="request",
        aggregate_id=str(uuid.UUID(int=7)),
        version=3,
        position=position,
        time=AT,
        data={"department_id": "transport"},
        meta=ctx.meta(),
    )


def test_attributes_are_flat_scalars_named_by_the_rules() -> None:
    ce = envelope(actor=Actor("op-anna", "agent", "Anna")).to_cloudevent()
    assert cloudevent_problems(ce) == []
    assert ce["hotlineenvelope"] == ENVELOPE_VERSION == 2
    assert ce["sequence"] == "00000000000000001234" and len(ce["sequence"]) == SEQUENCE_WIDTH
    assert (ce["hotlineactor"], ce["hotlinerole"], ce["hotlineactorname"]) == ("op-anna", "agent", "Anna")
    assert (ce["correlationid"], ce["causationid"]) == ("case-42", "cmd-7")
    assert "hotlinemeta" not in ce
    assert all(not isinstance(v, dict | list) for k, v in ce.items() if k != "data")


def test_an_unset_attribute_is_absent_not_null() -> None:
    ce = envelope(actor=Actor("op-anna", "agent")).to_cloudevent()
    assert "hotlineactorname" not in ce
    assert None not in ce.values()


def test_every_meta_key_has_its_attribute() -> None:
    assert set(Context(actor=SYSTEM, now=AT).meta()) == set(META_ATTRIBUTES)


def test_string_order_of_sequence_is_position_order() -> None:
    rng = random.Random(5)
    positions = [rng.randrange(1, 2**63) for _ in range(2000)] + [1, 9, 10, 99, 100, 2**63 - 1]
    assert sorted(positions, key=sequence_of) == sorted(positions)
    assert all(int(sequence_of(p)) == p for p in positions)


def test_readers_take_version_2_and_version_1() -> None:
    original = envelope()
    v2 = original.to_cloudevent()
    v1 = {k: v for k, v in v2.items() if k not in {"hotlineenvelope", *META_ATTRIBUTES.values()}}
    v1["sequence"] = original.position  # version 1: an integer, and the meta as one object
    v1["hotlinemeta"] = original.meta
    for ce in (v2, v1):
        read = Envelope.from_cloudevent(ce)
        assert (read.position, read.version, read.aggregate_id, read.time, read.data) == (1234, 3, original.aggregate_id, AT, original.data)
        assert {k: v for k, v in read.meta.items() if v is not None} == {k: v for k, v in original.meta.items() if v is not None}
