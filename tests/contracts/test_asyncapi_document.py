"""The AsyncAPI document says everything: every published type, a description of every
event and field, and an example per message that the message's own schema accepts."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from api.asyncapi import cloudevent_schema, committed, generate, published_event_classes
from domain.base import event_type_name
from domain.envelope import META_ATTRIBUTES
from domain.work_orders.aggregate import WorkOrder
from tests.contracts.conformance import DocumentValidator, cloudevent_problems


@pytest.fixture(scope="module")
def doc() -> dict[str, Any]:
    return generate()


def test_every_event_the_aggregates_record_is_a_message(doc: dict[str, Any]) -> None:
    expected = {event_type_name(c) for classes in published_event_classes().values() for c in classes}
    assert set(doc["components"]["messages"]) == expected
    assert event_type_name(WorkOrder.Created) == "hotline.workorder.created.v1"
    assert "hotline.workorder.created.v1" in doc["components"]["messages"]
    # The Created the event library derives for every aggregate is recorded by none of them.
    assert "hotline.request.created.v1" not in doc["components"]["messages"]
    assert "hotline.agent.created.v1" not in doc["components"]["messages"]
    channel_refs = {ref["$ref"].rsplit("/", 1)[1] for ch in doc["channels"].values() for ref in ch["subscribe"]["message"]["oneOf"]}
    assert channel_refs == expected


def test_every_event_and_every_field_has_a_description(doc: dict[str, Any]) -> None:
    undescribed_events = [name for name, schema in doc["components"]["schemas"].items() if not schema.get("description")]
    undescribed_fields = [
        f"{name}.{field}"
        for name, schema in doc["components"]["schemas"].items()
        for field, prop in schema["properties"].items()
        if not prop.get("description")
    ]
    assert undescribed_events == [], "write the event class's docstring"
    assert undescribed_fields == [], "write an attribute docstring under the field, or a glossary entry (api/event_glossary.py)"
    for message in doc["components"]["messages"].values():
        assert message["description"] and message["summary"]
        attributes = message["payload"]["properties"]
        assert all(attributes[a].get("description") for a in attributes if a != "data")


def test_every_example_is_a_valid_message_and_a_valid_cloudevent() -> None:
    doc = committed()
    validator = DocumentValidator(doc)
    for name, message in doc["components"]["messages"].items():
        assert len(message["examples"]) == 1
        example = message["examples"][0]["payload"]
        assert example["type"] == name
        assert validator.problems(example) == []
        assert cloudevent_problems(example) == []


def test_the_schemas_refuse_what_the_envelope_does_not_send() -> None:
    """The validator is not vacuous: the old envelope, a wrong field type, an unknown field
    and an unknown type are each refused."""
    doc = committed()
    validator = DocumentValidator(doc)
    good = doc["components"]["messages"]["hotline.request.registered.v1"]["examples"][0]["payload"]
    old = copy.deepcopy(good)
    old["sequence"] = 1235
    old["hotlinemeta"] = {"actor_id": "op-anna"}
    assert validator.problems(old) and cloudevent_problems(old)
    for change in (
        lambda m: m["data"].update(urgency=3),
        lambda m: m["data"].update(surprise=True),
        lambda m: m["data"].pop("reference"),
        lambda m: m["data"].update(personal={"name": "Mario Rossi"}),
        lambda m: m.update(sequence="1235"),
        lambda m: m.pop("hotlineactor"),
        lambda m: m.update(time="16/11/2026 09:05"),
        lambda m: m.update(type="hotline.request.invented.v1"),
    ):
        bad = copy.deepcopy(good)
        change(bad)
        assert validator.problems(bad), bad


def test_attributes_are_named_by_the_extension_rules() -> None:
    schema = cloudevent_schema("hotline.request.registered.v1", "#/x")
    example = {name: "x" for name in schema["properties"]}
    assert cloudevent_problems({**example, "specversion": "1.0", "time": "2026-11-16T09:05:00Z", "source": "urn:x"}) == []
    assert set(META_ATTRIBUTES.values()) <= set(schema["properties"])
