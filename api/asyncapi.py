"""The AsyncAPI 2.6 document of the Kafka contract, generated from the event classes.

Every public aggregate is a topic (``hotline.<stream>s``); every nested event class is a
message whose payload is a CloudEvents 1.0 envelope with ``type`` fixed to the event's
public name and ``data`` described by a JSON Schema built from the event's fields. The
committed ``api/asyncapi.json`` is checked against this generator by a test, so the
document cannot drift from the code: after changing an event, run
``hotline asyncapi --out api/asyncapi.json``.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import decimal
import enum
import json
import sys
import types
import typing
import uuid
from pathlib import Path
from typing import Any

from consumers.kafka_contract import INTERNAL_STREAMS, public_aggregates
from domain.base import event_classes, event_type_name
from domain.envelope import CLOUDEVENTS_SOURCE

COMMITTED = Path(__file__).resolve().parent / "asyncapi.json"
BOOKKEEPING = {"originator_id", "originator_version", "timestamp", "originator_topic", "meta"}
MASK_NOTE = 'Citizen personal data. Published masked: every value is the string "***"; the event store keeps the original.'


def _resolve(annotation: Any, cls: type) -> Any:
    if not isinstance(annotation, str):
        return annotation
    module = sys.modules[cls.__module__]
    namespace: dict[str, Any] = {**vars(typing), **vars(module)}
    for part in cls.__qualname__.split(".")[:-1]:
        owner = namespace.get(part) if part in namespace else None
        if owner is not None:
            namespace.update(vars(owner))
    return eval(annotation, namespace)


def schema_of(tp: Any) -> dict[str, Any]:
    """JSON Schema of a Python type as it appears in the JSON payload (see domain.envelope.to_jsonable)."""
    if tp is Any or tp is object:
        return {}
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if origin in (typing.Union, types.UnionType):
        options = [a for a in args if a is not type(None)]
        inner = schema_of(options[0]) if len(options) == 1 else {"anyOf": [schema_of(a) for a in options]}
        if type(None) in args:
            return {"anyOf": [inner, {"type": "null"}]} if inner else {}
        return inner
    if origin is typing.Literal:
        return {"enum": list(args)}
    if origin in (list, tuple, set, frozenset) or tp in (list, tuple, set, frozenset):
        item = args[0] if args else Any
        return {"type": "array", "items": schema_of(item)}
    if origin is dict or tp is dict:
        value = args[1] if len(args) == 2 else Any
        out: dict[str, Any] = {"type": "object"}
        value_schema = schema_of(value)
        if value_schema:
            out["additionalProperties"] = value_schema
        return out
    if isinstance(tp, type):
        if issubclass(tp, bool):
            return {"type": "boolean"}
        if issubclass(tp, enum.Enum):
            return {"enum": [m.value for m in tp]}
        if issubclass(tp, int):
            return {"type": "integer"}
        if issubclass(tp, float):
            return {"type": "number"}
        if issubclass(tp, str):
            return {"type": "string"}
        if issubclass(tp, dt.datetime):
            return {"type": "string", "format": "date-time"}
        if issubclass(tp, dt.date):
            return {"type": "string", "format": "date"}
        if issubclass(tp, uuid.UUID):
            return {"type": "string", "format": "uuid"}
        if issubclass(tp, decimal.Decimal):
            return {"type": "string", "pattern": "^-?[0-9]+(\\.[0-9]+)?$"}
        if dataclasses.is_dataclass(tp):
            return _object_schema(tp, [f for f in dataclasses.fields(tp)])
    return {}


def _object_schema(cls: type, fields: list[dataclasses.Field[Any]]) -> dict[str, Any]:
    props: dict[str, Any] = {}
    for f in fields:
        schema = schema_of(_resolve(f.type, cls))
        if f.name == "personal":
            schema = {
                "description": MASK_NOTE,
                "anyOf": [{"type": "object", "additionalProperties": {"const": "***"}}, {"type": "null"}],
            }
        props[f.name] = schema
    return {"type": "object", "properties": props, "required": list(props), "additionalProperties": False}


def event_data_schema(event_class: type) -> dict[str, Any]:
    fields = [f for f in dataclasses.fields(event_class) if f.name not in BOOKKEEPING]
    schema = _object_schema(event_class, fields)
    doc = (event_class.__doc__ or "").strip()
    if doc and not doc.startswith(event_class.__name__ + "("):
        schema["description"] = " ".join(doc.split())
    return schema


def cloudevent_schema(type_name: str, data_ref: str) -> dict[str, Any]:
    return {
        "type": "object",
        "required": ["specversion", "id", "source", "type", "subject", "time", "sequence", "aggregateversion", "data"],
        "properties": {
            "specversion": {"const": "1.0"},
            "id": {"type": "string", "description": "Unique per event: '<aggregate id>/<version>'. Deduplicate on it."},
            "source": {"const": CLOUDEVENTS_SOURCE},
            "type": {"const": type_name},
            "subject": {"type": "string", "description": "The aggregate id (also the Kafka key)."},
            "time": {"type": "string", "format": "date-time", "description": "Business time of the event."},
            "datacontenttype": {"const": "application/json"},
            "sequence": {"type": "integer", "minimum": 1, "description": "Global position in the event store."},
            "aggregateversion": {"type": "integer", "minimum": 1, "description": "Version of the aggregate after the event."},
            "hotlinemeta": {
                "type": "object",
                "description": "Who acted (actor_id, actor_role), correlation_id and causation_id.",
            },
            "data": {"$ref": data_ref},
        },
    }


def generate() -> dict[str, Any]:
    channels: dict[str, Any] = {}
    messages: dict[str, Any] = {}
    schemas: dict[str, Any] = {}
    for stream, aggregate in public_aggregates().items():
        topic = f"hotline.{stream}s"
        refs = []
        for cls in sorted(event_classes(aggregate), key=event_type_name):
            name = event_type_name(cls)
            schemas[name] = event_data_schema(cls)
            messages[name] = {
                "name": name,
                "title": f"{aggregate.__name__}.{cls.__name__}",
                "contentType": "application/json",
                "headers": {"type": "object"},
                "bindings": {"kafka": {"key": {"type": "string", "description": f"{aggregate.__name__} id"}}},
                "payload": cloudevent_schema(name, f"#/components/schemas/{name}"),
            }
            refs.append({"$ref": f"#/components/messages/{name}"})
        channels[topic] = {
            "description": f"Every event of every {aggregate.__name__}, in order per {aggregate.__name__} (key = its id).",
            "subscribe": {"operationId": f"on_{stream}", "message": {"oneOf": refs}},
            "bindings": {"kafka": {"topic": topic}},
        }
    return {
        "asyncapi": "2.6.0",
        "id": "urn:hotline:events",
        "info": {
            "title": "Hotline events",
            "version": "1.0.0",
            "description": (
                "Events of the citizen-service hotline, published to Kafka by the outbox relay as CloudEvents 1.0 "
                "JSON (structured mode). Delivery is at-least-once: deduplicate by the CloudEvents id. Order is kept "
                "per aggregate (Kafka key = aggregate id). Personal data of citizens is masked. Topic names carry a "
                "configurable prefix (HOTLINE_KAFKA_TOPIC_PREFIX, default 'hotline'). Internal streams not published: "
                + ", ".join(sorted(INTERNAL_STREAMS))
                + "."
            ),
        },
        "defaultContentType": "application/json",
        "servers": {"local": {"url": "127.0.0.1:59092", "protocol": "kafka", "description": "infra/kafka.sh"}},
        "channels": channels,
        "components": {"messages": messages, "schemas": schemas},
    }


def render() -> str:
    return json.dumps(generate(), indent=2, ensure_ascii=False) + "\n"


def committed() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(COMMITTED.read_text(encoding="utf-8"))
    return data
