"""Asterisk's ARI data model (Swagger 1.1/1.2 ``rest-api/api-docs/*.json``) as checks.

Two oracles the stand-in and the tests use, both read from Asterisk's own files:

* :meth:`AriModel.check` validates a JSON value against a model (``Channel``,
  ``StasisStart`` …): required properties, primitive types, ``List[...]``, nested model
  references, ``allowableValues`` (LIST and RANGE) and the ``Message`` discriminator
  (``type`` names the event's own model, whose properties are checked together with its
  parents' ``Event`` and ``Message``).
* :meth:`AriModel.operation` finds the ARI operation a request names (method and path
  template) and :meth:`AriModel.check_request` its required parameters, their data types
  and allowable values: a request ARI would refuse, or that names no operation, is an error.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

_LIST = re.compile(r"^List\[(.+)\]$")
_TRUE = ("true", "false", "1", "0", "yes", "no")


@dataclass(frozen=True)
class Operation:
    method: str
    path: str  # the template: /channels/{channelId}/play
    nickname: str
    resource: str  # the api-docs file it is declared in
    parameters: tuple[dict[str, Any], ...]
    error_codes: tuple[int, ...]
    response_class: str  # the model answered: Channel, List[Bridge], void
    pattern: re.Pattern[str] = field(compare=False, repr=False)
    literal_segments: int = 0  # more literal segments win over a template (/channels/create)

    def match(self, path: str) -> dict[str, str] | None:
        m = self.pattern.match(path)
        return m.groupdict() if m else None


class AriModel:
    """Models and operations of the ARI api-docs files found in ``folder``."""

    def __init__(self, folder: Path) -> None:
        self.models: dict[str, dict[str, Any]] = {}
        self.operations: list[Operation] = []
        self.files: list[str] = []
        for path in sorted(folder.glob("*.json")):
            doc = json.loads(path.read_text("utf-8"))
            if "apis" not in doc:
                continue
            self.files.append(path.name)
            self.models.update(doc.get("models", {}))
            for api in doc["apis"]:
                for op in api.get("operations", []):
                    self.operations.append(_operation(api["path"], op, path.stem))
        self.operations.sort(key=lambda o: -o.literal_segments)
        # A subtype's parents (Swagger 1.2 "subTypes"): StasisStart → Event → Message.
        self.parent: dict[str, str] = {}
        for name, model in self.models.items():
            for sub in model.get("subTypes", []):
                self.parent[sub] = name

    # ------------------------------------------------------------------ models
    def properties(self, name: str) -> dict[str, dict[str, Any]]:
        """A model's properties with those it inherits."""
        props: dict[str, dict[str, Any]] = {}
        chain = [name]
        while chain[-1] in self.parent:
            chain.append(self.parent[chain[-1]])
        for model in reversed(chain):
            props.update(self.models[model]["properties"])
        return props

    def check_event(self, message: dict[str, Any]) -> list[str]:
        """A message of the event WebSocket: its ``type`` names its model (discriminator)."""
        kind = message.get("type") if isinstance(message, dict) else None
        if not isinstance(kind, str) or kind not in self.models:
            return [f"message type {kind!r} is not an ARI model"]
        if self.parent.get(kind) != "Event" and kind != "MissingParams":
            return [f"{kind} is not an event"]
        return self.check(kind, message)

    def check(self, model: str, value: Any, where: str = "") -> list[str]:
        where = where or model
        if model not in self.models:
            return [f"{where}: unknown model {model}"]
        if not isinstance(value, dict):
            return [f"{where}: expected a {model} object, got {type(value).__name__}"]
        errors: list[str] = []
        props = self.properties(model)
        for name, prop in props.items():
            if name not in value:
                if prop.get("required"):
                    errors.append(f"{where}.{name}: required")
                continue
            errors += self._check_value(prop["type"], value[name], f"{where}.{name}", prop.get("allowableValues"))
        for name in value:
            if name not in props:
                errors.append(f"{where}.{name}: not a property of {model}")
        return errors

    def _check_value(self, type_: str, value: Any, where: str, allowable: dict[str, Any] | None = None) -> list[str]:
        m = _LIST.match(type_)
        if m:
            if not isinstance(value, list):
                return [f"{where}: expected a list"]
            out: list[str] = []
            for i, item in enumerate(value):
                out += self._check_value(m.group(1), item, f"{where}[{i}]", allowable)
            return out
        if type_ in self.models:
            return self.check(type_, value, where)
        error = _primitive(type_, value)
        if error:
            return [f"{where}: {error}"]
        return _allowed(allowable, value, where)

    # ------------------------------------------------------------------ operations
    def operation(self, method: str, path: str) -> tuple[Operation, dict[str, str]] | None:
        """The operation a request names (``path`` relative to ``/ari``), with its path
        parameters; None when ARI has no such operation."""
        for op in self.operations:
            if op.method != method.upper():
                continue
            params = op.match(path)
            if params is not None:
                return op, params
        return None

    def check_request(self, method: str, path: str, query: dict[str, Any], body: Any = None) -> list[str]:
        """What ARI would refuse in this request (empty: a valid request)."""
        found = self.operation(method, path)
        if found is None:
            return [f"{method} {path}: no such ARI operation"]
        op, path_params = found
        errors: list[str] = []
        known = {p["name"] for p in op.parameters}
        body_params = body if isinstance(body, dict) else {}
        for p in op.parameters:
            name, kind = p["name"], p["paramType"]
            if kind == "path":
                value: Any = path_params.get(name)
            elif kind == "body":
                value = body_params.get(name)
            else:
                value = query.get(name, body_params.get(name))  # ARI reads body keys as query params too
            if value is None:
                if p.get("required"):
                    errors.append(f"{op.nickname}: parameter {name} is required")
                continue
            values = value if isinstance(value, list) else [value]
            if kind == "query" and p.get("allowMultiple") and isinstance(value, str):
                values = value.split(",")
            for v in values:
                error = _param_type(p["dataType"], v)
                if error:
                    errors.append(f"{op.nickname}: parameter {name}: {error}")
                else:
                    errors += _allowed(p.get("allowableValues"), _coerce(p["dataType"], v), f"{op.nickname}: parameter {name}")
        for name in query:
            if name not in known and name != "api_key":
                errors.append(f"{op.nickname}: unknown parameter {name}")
        return errors


def _operation(path: str, op: dict[str, Any], resource: str) -> Operation:
    segments = path.strip("/").split("/")
    regex = "".join("/" + (f"(?P<{s[1:-1]}>[^/]+)" if s.startswith("{") else re.escape(s)) for s in segments)
    return Operation(
        method=op["httpMethod"].upper(),
        path=path,
        nickname=op["nickname"],
        resource=resource,
        parameters=tuple(op.get("parameters", [])),
        error_codes=tuple(int(e["code"]) for e in op.get("errorResponses", [])),
        response_class=op.get("responseClass", "void"),
        pattern=re.compile(f"^{regex}$"),
        literal_segments=sum(not s.startswith("{") for s in segments),
    )


def _primitive(type_: str, value: Any) -> str | None:
    if type_ == "string":
        return None if isinstance(value, str) else "expected a string"
    if type_ in ("int", "long"):
        return None if isinstance(value, int) and not isinstance(value, bool) else "expected an integer"
    if type_ in ("double", "float"):
        return None if isinstance(value, (int, float)) and not isinstance(value, bool) else "expected a number"
    if type_ == "boolean":
        return None if isinstance(value, bool) else "expected a boolean"
    if type_ == "Date":
        if not isinstance(value, str):
            return "expected a date string"
        try:  # Asterisk writes 2024-01-01T10:00:00.000+0000
            datetime.strptime(value, "%Y-%m-%dT%H:%M:%S.%f%z")
        except ValueError:
            return f"{value!r} is not an ARI date"
        return None
    if type_ == "object":
        return None if isinstance(value, dict) else "expected an object"
    return f"unknown type {type_}"


def _param_type(data_type: str, value: Any) -> str | None:
    """Query parameters arrive as strings: is this one readable as its data type?"""
    text = value if isinstance(value, str) else json.dumps(value) if isinstance(value, bool) else str(value)
    if data_type in ("int", "long"):
        return None if re.fullmatch(r"-?\d+", text) else f"{text!r} is not an integer"
    if data_type == "boolean":
        return None if text.lower() in _TRUE else f"{text!r} is not a boolean"
    if data_type in ("string",):
        return None
    if data_type in ("containers", "object"):
        return None if isinstance(value, dict) else "expected an object"
    return None


def _coerce(data_type: str, value: Any) -> Any:
    if data_type in ("int", "long") and not isinstance(value, int):
        return int(value)
    return value


def _allowed(allowable: dict[str, Any] | None, value: Any, where: str) -> list[str]:
    if not allowable:
        return []
    if allowable["valueType"] == "LIST":
        return [] if value in allowable["values"] else [f"{where}: {value!r} is not one of {allowable['values']}"]
    if allowable["valueType"] == "RANGE" and isinstance(value, (int, float)):
        low, high = allowable.get("min"), allowable.get("max")
        if (low is not None and value < low) or (high is not None and value > high):
            return [f"{where}: {value} is outside [{low}, {high}]"]
    return []
