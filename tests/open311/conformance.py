"""The Open311 test oracle: the reference JSON Schemas (``schemas/``, see its README), a
format checker for their ``date-time`` and ``uri`` (an offset is required), and an XML
reader that turns a GeoReport v2 XML document into the JSON shape the schema describes,
so that the XML answers are validated against the same schemas.

The reader is independent of the server's writer: it knows XML only through the
schemas (which properties are numbers, booleans, integers, lists).
"""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from datetime import datetime
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from jsonschema import Draft202012Validator, FormatChecker
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

SCHEMAS = Path(__file__).resolve().parent / "schemas"
# RFC 3339 date-time: the offset (Z or ±hh:mm) is part of it.
_RFC3339 = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$")

# Not in the reference schemas: the request-updates extension (FixMyStreet's) and the
# tokens answer, written from their documentation; and the errors list of the spec.
UPDATES: dict[str, Any] = {
    "type": "array",
    "items": {
        "type": "object",
        "required": ["update_id", "service_request_id", "status", "updated_datetime", "description"],
        "properties": {
            "update_id": {"type": "string", "minLength": 1},
            "service_request_id": {"type": "string", "minLength": 1},
            "status": {"type": "string", "enum": ["open", "closed"]},
            "updated_datetime": {"type": "string", "format": "date-time"},
            "description": {"anyOf": [{"type": "string"}, {"type": "null"}]},
            "media_url": {"anyOf": [{"type": "string", "format": "uri"}, {"type": "null"}]},
        },
    },
}
TOKENS: dict[str, Any] = {
    "type": "array",
    "minItems": 1,
    "items": {
        "type": "object",
        "required": ["service_request_id", "token"],
        "properties": {"service_request_id": {"type": "string"}, "token": {"type": "string"}},
    },
}
ERRORS: dict[str, Any] = {
    "type": "array",
    "minItems": 1,
    "items": {
        "type": "object",
        "required": ["code", "description"],
        "properties": {"code": {"type": "integer"}, "description": {"type": "string", "minLength": 1}},
    },
}
LOCAL = {"updates.json": UPDATES, "tokens.json": TOKENS, "errors.json": ERRORS}

checker = FormatChecker()


@checker.checks("date-time", raises=ValueError)
def _date_time(value: object) -> bool:
    if not isinstance(value, str):
        return True
    if not _RFC3339.match(value):
        raise ValueError(f"{value!r} is not an RFC 3339 date-time with its offset")
    datetime.fromisoformat(value.replace("Z", "+00:00"))
    return True


@checker.checks("uri", raises=ValueError)
def _uri(value: object) -> bool:
    if isinstance(value, str):
        parts = urlsplit(value)
        if not parts.scheme or not parts.netloc:
            raise ValueError(f"{value!r} is not an absolute URI")
    return True


@cache
def _schema(name: str) -> dict[str, Any]:
    if name in LOCAL:
        return LOCAL[name]
    loaded: dict[str, Any] = json.loads((SCHEMAS / name).read_text("utf-8"))
    return loaded


@cache
def _registry() -> Registry:  # type: ignore[type-arg]
    resources = [(p.name, Resource.from_contents(_schema(p.name), default_specification=DRAFT202012)) for p in SCHEMAS.glob("*.json")]
    return Registry().with_resources(resources)


def validate(name: str, instance: Any) -> None:
    """Raises unless ``instance`` is valid against the schema ``name`` (``requests.json`` …)."""
    validator = Draft202012Validator(_schema(name), registry=_registry(), format_checker=checker)
    errors = sorted(validator.iter_errors(instance), key=lambda e: list(e.path))
    assert not errors, f"{name}: " + "; ".join(f"{list(e.path)}: {e.message}" for e in errors[:5])


# ------------------------------------------------------------------------ XML → JSON
def _resolve(schema: dict[str, Any]) -> dict[str, Any]:
    ref = schema.get("$ref")
    return _resolve(_schema(ref)) if ref else schema


def _types(schema: dict[str, Any]) -> set[str]:
    schema = _resolve(schema)
    if "anyOf" in schema:
        return set().union(*(_types(s) for s in schema["anyOf"]))
    kind = schema.get("type")
    return {kind} if isinstance(kind, str) else set(kind or ["string"])


def _value(element: ET.Element, schema: dict[str, Any]) -> Any:
    schema = _resolve(schema)
    types = _types(schema)
    if "array" in types:
        return [_value(child, schema.get("items", {})) for child in element]
    if "object" in types or "properties" in schema:
        properties = schema.get("properties", {})
        return {child.tag: _value(child, properties.get(child.tag, {})) for child in element}
    text = element.text
    if text is None or text == "":
        return None if "null" in types else ""
    if "boolean" in types:
        assert text in ("true", "false"), f"<{element.tag}> is {text!r}, not a boolean"
        return text == "true"
    if "integer" in types:
        return int(text)
    if "number" in types:
        return float(text)
    return text


def xml_as_json(body: bytes, root: str, schema: str) -> Any:
    """The XML document as the JSON value of ``schema`` (its root element must be ``root``)."""
    assert body.startswith(b"<?xml"), body[:60]
    document = ET.fromstring(body)
    assert document.tag == root, f"root <{document.tag}>, expected <{root}>"
    return _value(document, _schema(schema))
