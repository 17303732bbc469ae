"""Checks of published messages against independent oracles: the CloudEvents 1.0 JSON Schema
(kept as test data, ``cloudevents/README.md``), the specification's rules for extension
attributes and the sequence extension, and the message schemas of the AsyncAPI document."""

from __future__ import annotations

import json
import re
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT7

CLOUDEVENTS_SCHEMA = Path(__file__).resolve().parent / "cloudevents" / "cloudevents.json"
DOCUMENT_URI = "urn:hotline:events"
# RFC 3339 date-time (the CloudEvents Timestamp type), strictly: jsonschema only checks the
# "date-time" format when an optional package is installed, so the check is made here.
RFC3339 = re.compile(r"^\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$")
EXTENSION_NAME = re.compile(r"^[a-z0-9]{1,20}$")  # lowercase a-z, 0-9; at most 20 characters (spec: SHOULD)
CORE = {"specversion", "id", "source", "type", "datacontenttype", "dataschema", "subject", "time"}
INT32 = (-(2**31), 2**31 - 1)


def _format_checker() -> jsonschema.FormatChecker:
    checker = jsonschema.FormatChecker()
    checker.checks("date-time")(lambda value: not isinstance(value, str) or bool(RFC3339.match(value)))
    return checker


@cache
def _cloudevents_validator() -> jsonschema.Draft7Validator:
    schema = json.loads(CLOUDEVENTS_SCHEMA.read_text(encoding="utf-8"))
    return jsonschema.Draft7Validator(schema, format_checker=_format_checker())


def cloudevent_problems(ce: dict[str, Any]) -> list[str]:
    """What in a structured-mode CloudEvents JSON document breaks the specification."""
    problems = [f"{'/'.join(map(str, e.path)) or '(root)'}: {e.message}" for e in _cloudevents_validator().iter_errors(ce)]
    for name, value in ce.items():
        if name in ("data", "data_base64"):
            continue
        if not EXTENSION_NAME.match(name):
            problems.append(f"attribute name {name!r}: lowercase a-z and 0-9, at most 20 characters")
        if value is None or isinstance(value, dict | list | float):
            problems.append(f"attribute {name!r} is {type(value).__name__}: attributes are String, Integer, Boolean, URI or Timestamp")
        elif isinstance(value, int) and not isinstance(value, bool) and not INT32[0] <= value <= INT32[1]:
            problems.append(f"attribute {name!r}: a CloudEvents Integer is a signed 32-bit integer")
    if "sequence" in ce and not (isinstance(ce["sequence"], str) and ce["sequence"]):
        problems.append("sequence extension: `sequence` is a non-empty String")
    return problems


class DocumentValidator:
    """Validates messages against their message's payload schema in an AsyncAPI document."""

    def __init__(self, document: dict[str, Any]) -> None:
        self.document = document
        self.registry: Registry[Any] = Registry().with_resource(
            DOCUMENT_URI, Resource.from_contents(document, default_specification=DRAFT7)
        )
        self._validators: dict[str, jsonschema.Draft7Validator] = {}

    def types(self) -> set[str]:
        return set(self.document["components"]["messages"])

    def problems(self, message: dict[str, Any]) -> list[str]:
        type_name = str(message.get("type"))
        if type_name not in self.document["components"]["messages"]:
            return [f"type {type_name!r} is not in the AsyncAPI document"]
        validator = self._validators.get(type_name)
        if validator is None:
            ref = {"$ref": f"{DOCUMENT_URI}#/components/messages/{type_name}/payload"}
            validator = self._validators[type_name] = jsonschema.Draft7Validator(
                ref, registry=self.registry, format_checker=_format_checker()
            )
        return [f"{type_name} {'/'.join(map(str, e.absolute_path)) or '(root)'}: {e.message}" for e in validator.iter_errors(message)]
