"""The AsyncAPI 2.6 document of the Kafka contract, generated from the event classes.

Every published aggregate is a topic (``hotline.<stream>s``); every event class it records
is a message whose payload is a CloudEvents 1.0 envelope (version ``ENVELOPE_VERSION`` of
``domain/envelope.py``) with ``type`` fixed to the event's public name and ``data``
described by a JSON Schema built from the event's fields.

What is published is decided by the relay's own rule: every event of a stream that is not
internal (``consumers.kafka_contract.INTERNAL_STREAMS``). Of an aggregate's event classes,
those it can record are the ones its class body declares (the event library re-parents
each under the aggregate's own ``Event`` and keeps the declared class as a base), and the
creation event the library would use for ``Aggregate(...)``. The library also derives a
``Created`` for every aggregate from ``HotlineAggregate.Created``; no aggregate records it
unless it declares it (``WorkOrder.Created``), so it is left out.

Descriptions come from the code: an event's is its class docstring; a field's is, in this
order, its attribute docstring (a string literal on the line after the field), its trailing
comment, the comment lines right above it, or the glossary of common field names
(``api/event_glossary.py``), which also gives the example values. Each message carries an
example built with the producer's own code (``Envelope.to_cloudevent``).

The committed ``api/asyncapi.json`` is checked against this generator by a test, and the
types the demo publishes to Kafka are checked against the document by another
(``tests/contracts/``): after changing an event, run ``hotline asyncapi --out api/asyncapi.json``.
"""

from __future__ import annotations

import ast
import dataclasses
import datetime as dt
import decimal
import enum
import functools
import inspect
import io
import json
import re
import sys
import tokenize
import types
import typing
import uuid
from pathlib import Path
from typing import Any

from api.event_glossary import EVENT_DESCRIPTIONS, EXAMPLE_ACTORS, EXAMPLE_TIME, GLOSSARY, PerEvent
from consumers.kafka_contract import INTERNAL_STREAMS
from domain.base import ROLES, HotlineAggregate, event_classes, event_name, event_type_name
from domain.envelope import CLOUDEVENTS_SOURCE, ENVELOPE_VERSION, META_ATTRIBUTES, SEQUENCE_WIDTH, Envelope

COMMITTED = Path(__file__).resolve().parent / "asyncapi.json"
BOOKKEEPING = {"originator_id", "originator_version", "timestamp", "originator_topic", "meta"}
MASK_NOTE = 'Published masked: every value is the string "***"; the event store keeps the original.'
DOCUMENT_VERSION = f"{ENVELOPE_VERSION}.0.0"  # the major version is the envelope's
META_DESCRIPTIONS = {
    "actor_id": "Who acted: a staff username (`op-anna`), an API key (`api-key:<id>`), a citizen (`citizen:<id>`) "
    "or a process of the hotline (`router`, `timers`, `notifier`, `channel:sms` …).",
    "actor_role": "The role the actor acted in.",
    "actor_name": "The actor's display name, when it has one (absent otherwise).",
    "correlation_id": "Shared by every event one command wrote, and by what it caused where the cause passed it on.",
    "causation_id": "What caused the event: the command's id, or `timer:<key>` for an SLA timer.",
}


# ----------------------------------------------------------------------------- the rule
def published_aggregates() -> dict[str, type[HotlineAggregate]]:
    """Every aggregate whose events the relay publishes, by stream (one topic each)."""
    import infra.wiring  # noqa: F401  (every context, so every aggregate class is defined)
    from domain.events import aggregates

    return {a.STREAM: a for a in aggregates() if a.STREAM not in INTERNAL_STREAMS}


def recorded_events(aggregate: type[HotlineAggregate]) -> list[type]:
    """The event classes an aggregate can record (see the module's docstring)."""
    from eventsourcing.domain import _created_event_classes

    creation = set(_created_event_classes.get(aggregate, ()))
    found = []
    for cls in event_classes(aggregate):
        originals = [b for b in cls.__mro__[1:] if b.__qualname__ == cls.__qualname__ and b.__module__ == cls.__module__]
        if originals or cls in creation:
            found.append(cls)
    return sorted(found, key=event_type_name)


def published_event_classes() -> dict[str, list[type]]:
    """Stream → the event classes the relay can publish on its topic."""
    return {stream: recorded_events(aggregate) for stream, aggregate in sorted(published_aggregates().items())}


# ----------------------------------------------------------------------------- descriptions
def _clean(text: str) -> str:
    return " ".join(inspect.cleandoc(text).split())


@functools.cache
def _source_notes(module_name: str) -> dict[str, dict[str, str]]:
    """Per class (qualified name) and field: the field's attribute docstring, trailing
    comment or the comment lines right above it, as written in the module's source."""
    try:
        source = inspect.getsource(sys.modules[module_name])
    except (OSError, TypeError, KeyError):
        return {}
    lines = source.splitlines()
    trailing: dict[int, str] = {}
    full_line: dict[int, str] = {}
    for tok in tokenize.generate_tokens(io.StringIO(source).readline):
        if tok.type == tokenize.COMMENT:
            row, col = tok.start
            text = tok.string.lstrip("#").strip()
            if lines[row - 1][:col].strip():
                trailing[row] = text
            else:
                full_line[row] = text
    notes: dict[str, dict[str, str]] = {}

    def visit(body: list[ast.stmt], prefix: str) -> None:
        for node in body:
            if not isinstance(node, ast.ClassDef):
                continue
            qualname = f"{prefix}{node.name}"
            fields: dict[str, str] = {}
            for i, stmt in enumerate(node.body):
                if not (isinstance(stmt, ast.AnnAssign) and isinstance(stmt.target, ast.Name)):
                    continue
                after = node.body[i + 1] if i + 1 < len(node.body) else None
                if isinstance(after, ast.Expr) and isinstance(after.value, ast.Constant) and isinstance(after.value.value, str):
                    fields[stmt.target.id] = _clean(after.value.value)
                elif stmt.end_lineno in trailing:
                    fields[stmt.target.id] = trailing[stmt.end_lineno or 0]
                else:
                    above: list[str] = []
                    row = stmt.lineno - 1
                    while row in full_line:
                        above.insert(0, full_line[row])
                        row -= 1
                    if above:
                        fields[stmt.target.id] = " ".join(above)
            notes[qualname] = fields
            visit(node.body, qualname + ".")

    visit(ast.parse(source).body, "")
    return notes


_ALTERNATIVES = re.compile(r'^"?[\w-]+"?( / "?[\w-]+"?)+$')


def field_description(event_class: type, field: str) -> str | None:
    """A field's description (see the module's docstring); None when nothing describes it."""
    note = None
    for cls in event_class.__mro__:
        if field in getattr(cls, "__annotations__", {}):
            note = _source_notes(cls.__module__).get(cls.__qualname__, {}).get(field)
            if note:
                break
    general = GLOSSARY[field].description if field in GLOSSARY else None
    if note and _ALTERNATIVES.match(note):  # "cold / warm": the values, said on the glossary's line
        values = ", ".join(v.strip().strip('"') for v in note.split("/"))
        return f"{general} One of: {values}." if general else f"One of: {values}."
    if note:
        return note[0].upper() + note[1:] + ("" if note.endswith((".", ")")) else ".")
    return general


def event_description(event_class: type) -> str | None:
    """The event's class docstring (of the class its definition wrote)."""
    for cls in event_class.__mro__:
        if cls.__qualname__ != event_class.__qualname__:
            continue
        doc = vars(cls).get("__doc__")
        if doc and not doc.startswith(event_class.__name__ + "("):  # not the dataclass's signature
            return _clean(doc)
    return EVENT_DESCRIPTIONS.get(event_type_name(event_class))


# ----------------------------------------------------------------------------- schemas
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
    if origin is typing.Annotated:
        return schema_of(args[0])
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
            return _object_schema(tp, list(dataclasses.fields(tp)))
    return {}


def _object_schema(cls: type, fields: list[dataclasses.Field[Any]]) -> dict[str, Any]:
    props: dict[str, Any] = {}
    for f in fields:
        schema = schema_of(_resolve(f.type, cls))
        if f.name == "personal":
            schema = {"anyOf": [{"type": "object", "additionalProperties": {"const": "***"}}, {"type": "null"}]}
        described = field_description(cls, f.name)
        if f.name == "personal":
            described = f"{described} {MASK_NOTE}" if described else MASK_NOTE
        props[f.name] = {"description": described, **schema} if described else schema
    return {"type": "object", "properties": props, "required": list(props), "additionalProperties": False}


def event_fields(event_class: type) -> list[dataclasses.Field[Any]]:
    return [f for f in dataclasses.fields(event_class) if f.name not in BOOKKEEPING]


def event_data_schema(event_class: type) -> dict[str, Any]:
    schema = _object_schema(event_class, event_fields(event_class))
    doc = event_description(event_class)
    if doc:
        schema["description"] = doc
    return schema


def cloudevent_schema(type_name: str, data_ref: str) -> dict[str, Any]:
    """The envelope of one message type: CloudEvents 1.0 attributes, every one a flat scalar."""
    meta = {
        attribute: {"type": "string", "minLength": 1, "description": META_DESCRIPTIONS[key]} for key, attribute in META_ATTRIBUTES.items()
    }
    meta[META_ATTRIBUTES["actor_role"]] = {"enum": list(ROLES), "description": META_DESCRIPTIONS["actor_role"]}
    optional = {META_ATTRIBUTES["actor_name"]}
    props: dict[str, Any] = {
        "specversion": {"const": "1.0", "description": "CloudEvents specification version."},
        "id": {"type": "string", "minLength": 1, "description": "Unique per event: '<aggregate id>/<version>'. Deduplicate on it."},
        "source": {"const": CLOUDEVENTS_SOURCE, "description": "The hotline's event store."},
        "type": {"const": type_name, "description": "The event type; its `v<n>` suffix versions `data`."},
        "subject": {"type": "string", "minLength": 1, "description": "The aggregate id (also the Kafka key)."},
        "time": {"type": "string", "format": "date-time", "description": "Business time of the event (RFC 3339)."},
        "datacontenttype": {"const": "application/json", "description": "`data` is JSON."},
        "hotlineenvelope": {
            "const": ENVELOPE_VERSION,
            "description": f"Version of this envelope (the attributes around `data`). Absent: version 1. Now {ENVELOPE_VERSION}.",
        },
        "sequence": {
            "type": "string",
            "pattern": f"^[0-9]{{{SEQUENCE_WIDTH}}}$",
            "description": f"Global position in the event store, zero-padded to {SEQUENCE_WIDTH} digits (CloudEvents sequence "
            "extension): string order is event order. Read it with int().",
        },
        "aggregateversion": {
            "type": "integer",
            "minimum": 1,
            "maximum": 2147483647,
            "description": "Version of the aggregate after the event: 1, 2, 3 … per subject.",
        },
        **meta,
        "data": {"$ref": data_ref},
    }
    return {
        "type": "object",
        "required": [name for name in props if name not in optional],
        "properties": props,
        "additionalProperties": False,
    }


# ----------------------------------------------------------------------------- examples
def _derived_example(schema: dict[str, Any]) -> Any:
    if "const" in schema:
        return schema["const"]
    if "enum" in schema:
        return schema["enum"][0]
    if "anyOf" in schema:
        return _derived_example(schema["anyOf"][0])
    kind = schema.get("type")
    if kind == "string":
        return {"date-time": EXAMPLE_TIME, "date": EXAMPLE_TIME[:10], "uuid": str(uuid.UUID(int=1))}.get(schema.get("format", ""), "text")
    if kind == "integer":
        return 1
    if kind == "number":
        return 1.0
    if kind == "boolean":
        return False
    if kind == "array":
        return []
    if kind == "object":
        return {}
    return None


def _fits(value: Any, schema: dict[str, Any]) -> bool:
    import jsonschema

    return not any(jsonschema.Draft7Validator(schema).iter_errors(value))


def example_data(event_class: type, type_name: str) -> dict[str, Any]:
    """``data`` of an example message: the glossary's example of each field where it fits
    the field's schema, else a value derived from the schema."""
    schema = event_data_schema(event_class)
    short = type_name.removeprefix("hotline.").rsplit(".", 1)[0]
    out = {}
    for name, prop in schema["properties"].items():
        entry = GLOSSARY.get(name)
        value = entry.example if entry is not None else None
        if isinstance(value, PerEvent):
            value = value.for_event(short)
        if name == "personal" and isinstance(value, dict):
            value = {k: "***" for k in value}
        out[name] = value if entry is not None and _fits(value, prop) else _derived_example(prop)
    return out


def example_message(stream: str, event_class: type) -> dict[str, Any]:
    """A message as the relay publishes it, made by the producer's own code."""
    type_name = event_type_name(event_class)
    version = 1 if issubclass(event_class, HotlineAggregate.Created) else 3
    actor = EXAMPLE_ACTORS.get(stream, EXAMPLE_ACTORS["*"])
    aggregate_id = str(uuid.uuid5(uuid.NAMESPACE_URL, f"urn:hotline:example:{stream}"))
    envelope = Envelope(
        type=type_name,
        stream=stream,
        aggregate_id=aggregate_id,
        version=version,
        position=1234 + version,
        time=dt.datetime.fromisoformat(EXAMPLE_TIME),
        data=example_data(event_class, type_name),
        meta={
            "actor_id": actor[0],
            "actor_role": actor[1],
            "actor_name": actor[2],
            "correlation_id": str(uuid.uuid5(uuid.NAMESPACE_URL, f"urn:hotline:example:{type_name}:correlation")),
            "causation_id": str(uuid.uuid5(uuid.NAMESPACE_URL, f"urn:hotline:example:{type_name}:causation")),
        },
    )
    return envelope.to_cloudevent(mask_personal=True)


# ----------------------------------------------------------------------------- document
def generate() -> dict[str, Any]:
    channels: dict[str, Any] = {}
    messages: dict[str, Any] = {}
    schemas: dict[str, Any] = {}
    for stream, classes in published_event_classes().items():
        aggregate = published_aggregates()[stream]
        topic = f"hotline.{stream}s"
        refs = []
        for cls in classes:
            name = event_type_name(cls)
            schemas[name] = event_data_schema(cls)
            description = schemas[name].get("description")
            message: dict[str, Any] = {
                "name": name,
                "title": f"{aggregate.__name__}.{cls.__name__}",
                "summary": (description or event_name(cls)).split(": ")[0].split(". ")[0].rstrip("."),
                "contentType": "application/json",
                "bindings": {"kafka": {"key": {"type": "string", "description": f"{aggregate.__name__} id (the CloudEvents subject)"}}},
                "payload": cloudevent_schema(name, f"#/components/schemas/{name}"),
                "examples": [{"name": event_name(cls), "payload": example_message(stream, cls)}],
            }
            if description:
                message["description"] = description
            messages[name] = message
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
            "version": DOCUMENT_VERSION,
            "description": (
                "Events of the citizen-service hotline, published to Kafka by the outbox relay as CloudEvents 1.0 "
                "JSON (structured mode). Delivery is at-least-once: deduplicate by the CloudEvents id. Order is kept "
                "per aggregate (Kafka key = aggregate id). Personal data of citizens is masked. Topic names carry a "
                "configurable prefix (HOTLINE_KAFKA_TOPIC_PREFIX, default 'hotline'). "
                f"Envelope version {ENVELOPE_VERSION} (attribute `hotlineenvelope`): every attribute is a flat scalar; "
                f"`sequence` is a string of {SEQUENCE_WIDTH} digits; who acted and why are the attributes "
                + ", ".join(f"`{a}`" for a in META_ATTRIBUTES.values())
                + " (version 1 had an integer `sequence` and a `hotlinemeta` object). `data` is versioned by each type's "
                "`.v<n>` suffix. Internal streams not published: " + ", ".join(sorted(INTERNAL_STREAMS)) + "."
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
