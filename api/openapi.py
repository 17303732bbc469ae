"""The OpenAPI document, made to say everything a client meets.

FastAPI documents each operation's success and a 422 body this API never sends
(``{"detail": …}``). :func:`install` replaces ``app.openapi`` with a version that, for
every operation, derives from the route itself (its dependencies, parameters and body,
not a hand list per route):

* the statuses it can answer, each with the one error body of ``api/errors.py``
  (:class:`~api.errors.ErrorResponse`): a rule from ``allow()`` → 401 and 403, a public
  action → 429 (rate limited), input → 422, a body → 413 (a JSON one → 415), a path parameter → 404, a
  command → 404, 409 and 422, ``min_position`` → 504 (read-your-writes timed out), and
  every route → 503 (the store unavailable: api/errors.py ``STORE_UNAVAILABLE``);
* the headers it reads: ``Idempotency-Key``, ``If-Match`` and ``X-Correlation-Id`` on
  commands, the credentials as security schemes (bearer token, ``X-API-Key``, the
  console's session cookie, a trusted gateway's ``X-Actor-*``);
* the headers it answers with (``X-Event-Position``, ``Idempotent-Replayed``,
  ``WWW-Authenticate``, ``Retry-After``);
* a typed answer for commands (:class:`~api.responses.CommandAnswer`) where the route
  itself declares none.

A route adds what only it can answer with ``responses=`` in its decorator; those win.
"""

from __future__ import annotations

import copy
import inspect
from collections.abc import Iterator
from typing import Any

import fastapi.routing
from fastapi import FastAPI
from fastapi.params import Form as FormBody
from fastapi.routing import APIRoute
from pydantic import BaseModel

from api.auth import rule_of
from api.deps import run_command
from api.errors import ErrorResponse
from api.responses import CommandAnswer
from domain.access import PUBLIC
from domain.handling import Command
from domain.limits import HEADER_MAX

REF = "#/components/schemas/{model}"
ERROR_SCHEMA = {"$ref": "#/components/schemas/ErrorResponse"}

# Each status an operation may answer for a reason common to many routes: what it means
# and an example body (the codes are those api/errors.py and the domain use).
COMMON: dict[int, tuple[str, str, str]] = {
    401: ("No valid credentials: sign in first (the answer carries WWW-Authenticate)", "unauthenticated", "sign in to take this action"),
    403: ("The caller may not take this action, or not on this resource; details.permission names it", "forbidden", "not allowed"),
    404: ("Nothing with that id or reference (or not visible to the caller)", "not_found", "no request 000000000000"),
    409: (
        "The command makes no sense in the current state (invalid_state), or somebody changed it first (version_conflict: If-Match)",
        "invalid_state",
        "the request is closed: it cannot be dispatched",
    ),
    413: ("The body is larger than the server accepts", "body_too_large", "the request body is larger than 1048576 bytes"),
    415: (
        "The body is not sent as application/json",
        "unsupported_media_type",
        "send the body as application/json (it came as text/plain)",
    ),
    422: ("Invalid input: details.problems names each field and what is wrong", "invalid_request", "urgency: Input should be 'normal'"),
    429: ("Too many requests from this caller: retry after Retry-After seconds", "rate_limited", "too many requests: retry in 30 s"),
    503: (
        "The data store cannot answer now (unreachable, at its connection limit, busy): retry after Retry-After seconds",
        "store_unavailable",
        "the data store cannot answer now (unreachable or busy): retry shortly",
    ),
    504: (
        "Read-your-writes: the read models did not reach min_position in time; retry shortly",
        "projection_lagging",
        "the read models have applied position 41, not yet 42; retry shortly",
    ),
}

LIVENESS = ("/healthz",)

HEADERS: dict[int, dict[str, Any]] = {
    401: {"WWW-Authenticate": {"description": 'Bearer realm="hotline"', "schema": {"type": "string"}}},
    429: {"Retry-After": {"description": "Seconds to wait before retrying", "schema": {"type": "string"}}},
    503: {"Retry-After": {"description": "Seconds to wait before retrying", "schema": {"type": "string"}}},
}

COMMAND_HEADERS: list[dict[str, Any]] = [
    {
        "name": "Idempotency-Key",
        "in": "header",
        "required": False,
        "description": "Makes a retry harmless: a retry with the same key (and body) answers the first answer and does nothing again.",
        "schema": {"type": "string", "minLength": 1, "maxLength": HEADER_MAX["idempotency-key"]},
        "example": "3f6c1a52-register-1",
    },
    {
        "name": "If-Match",
        "in": "header",
        "required": False,
        "description": 'A conditional write: the ETag a read returned ("7", the aggregate version); 409 version_conflict if it changed.',
        "schema": {"type": "string", "maxLength": HEADER_MAX["if-match"], "pattern": r'^(\*|(W/)?"[0-9]{1,18}"|[0-9]{1,18})$'},
        "example": '"7"',
    },
    {
        "name": "X-Correlation-Id",
        "in": "header",
        "required": False,
        "description": "Ties the command's events to a case or conversation (the audit trail's correlation id).",
        "schema": {"type": "string", "maxLength": HEADER_MAX["x-correlation-id"]},
        "example": "case-2026-000123",
    },
]

COMMAND_ANSWER_HEADERS = {
    "X-Event-Position": {"description": "The position of the command's last event: pass it as min_position", "schema": {"type": "string"}},
    "Idempotent-Replayed": {
        "description": "true when the answer is the replay of an earlier one (same Idempotency-Key)",
        "schema": {"type": "string"},
    },
}

SECURITY_SCHEMES: dict[str, Any] = {
    "ApiKey": {
        "type": "apiKey",
        "in": "header",
        "name": "X-API-Key",
        "description": "An integrator's API key (hk_…); also taken as a bearer token",
    },
    "ConsoleSession": {
        "type": "apiKey",
        "in": "cookie",
        "name": "hotline_session",
        "description": "The console's sign-in cookie; a change sent with it must carry the page's X-CSRF-Token header",
    },
    "TrustedGateway": {
        "type": "apiKey",
        "in": "header",
        "name": "X-Actor-Role",
        "description": "Only with HOTLINE_TRUSTED_GATEWAY=true behind an authenticating proxy: X-Actor-Id, X-Actor-Role, X-Actor-Roles, "
        "X-Actor-Name, X-Actor-Departments and X-Actor-Citizen say who acts",
    },
}
SIGNED_IN: list[dict[str, list[str]]] = [{"HTTPBearer": []}, {"ApiKey": []}, {"ConsoleSession": []}, {"TrustedGateway": []}]


def install(app: FastAPI) -> None:
    """Serve the completed document as ``app.openapi()`` (and so at /openapi.json)."""

    def openapi() -> dict[str, Any]:
        doc = FastAPI.openapi(app)  # cached by FastAPI until the routes change
        if getattr(app.state, "openapi_completed", None) is not doc:
            complete(app, doc)
            app.state.openapi_completed = doc
        return doc

    app.openapi = openapi  # type: ignore[method-assign]


def routes(app: FastAPI) -> Iterator[Any]:
    """The app's API routes (newer FastAPI keeps included routers as wrappers, which
    answer for the route they wrap)."""
    iterate: Any = getattr(fastapi.routing, "iter_route_contexts", None)
    for route in list(iterate(app.routes)) if iterate is not None else list(app.routes):
        if isinstance(getattr(route, "original_route", route), APIRoute) and getattr(route, "include_in_schema", True):
            yield route


def complete(app: FastAPI, doc: dict[str, Any]) -> None:
    schemas = doc.setdefault("components", {}).setdefault("schemas", {})
    for model in (ErrorResponse, CommandAnswer):
        add_model(schemas, model)
    doc["components"].setdefault("securitySchemes", {}).update(SECURITY_SCHEMES)
    for route in routes(app):
        item = doc.get("paths", {}).get(route.path_format)
        if item is None:
            continue
        for method in route.methods or ():
            op = item.get(method.lower())
            if op is not None:
                complete_operation(route, op)
    # FastAPI's own validation error schemas: nothing refers to them any more.
    for name in ("HTTPValidationError", "ValidationError"):
        schemas.pop(name, None)


def add_model(schemas: dict[str, Any], model: type[BaseModel]) -> None:
    schema = model.model_json_schema(ref_template=REF)
    for name, definition in schema.pop("$defs", {}).items():
        schemas.setdefault(name, definition)
    schemas[model.__name__] = schema


def is_command(route: APIRoute) -> bool:
    """A route that runs a command: its body is a command, or its endpoint calls run_command."""
    body = route.body_field.field_info.annotation if route.body_field is not None else None
    for candidate in getattr(body, "__args__", (body,)):
        if isinstance(candidate, type) and issubclass(candidate, Command):
            return True
    code = getattr(route.endpoint, "__code__", None)
    return code is not None and run_command.__name__ in code.co_names


def statuses(route: APIRoute) -> set[int]:
    """The common statuses a route can answer, from what it depends on."""
    # Every route reads or writes a store (api/errors.py STORE_UNAVAILABLE), but for the
    # liveness probe, which reports a store's failure in its 200.
    found: set[int] = set() if route.path in LIVENESS else {503}
    declared, action = rule_of(route.dependant)
    if declared and action is not None:
        found |= {401, 403}  # credentials refused (401), the action or the resource's scope refused (403)
        if action in PUBLIC:
            found.add(429)  # the public face is rate-limited per caller
    path, query, other = parameters(route.dependant)
    params = path + query + other
    has_body = route.body_field is not None or "requestBody" in (route.openapi_extra or {})
    if params or has_body:
        found.add(422)
    if has_body:
        found.add(413)
    if route.body_field is not None and not isinstance(route.body_field.field_info, FormBody):
        found.add(415)  # a JSON body sent as something else (api/errors.py)
    if path:
        found.add(404)
    if is_command(route):
        found |= {404, 409, 422}
    if any(p.name == "min_position" for p in query):
        found.add(504)
    return found


def parameters(dependant: Any) -> tuple[list[Any], list[Any], list[Any]]:
    """The path, query and other (header, cookie) parameters a route reads, its
    dependencies' included (``ReadYourWrites`` reads ``min_position``)."""
    path, query = list(dependant.path_params), list(dependant.query_params)
    other = [*dependant.header_params, *dependant.cookie_params]
    for dep in dependant.dependencies:
        p, q, o = parameters(dep)
        path, query, other = path + p, query + q, other + o
    return path, query, other


def error_response(status: int, description: str | None = None) -> dict[str, Any]:
    text, code, message = COMMON.get(status, ("An error", "error", "an error"))
    answer: dict[str, Any] = {
        "description": description or text,
        "content": {
            "application/json": {
                "schema": ERROR_SCHEMA,
                "example": {"error": {"status": status, "code": code, "message": message}},
            }
        },
    }
    if status in HEADERS:
        answer["headers"] = copy.deepcopy(HEADERS[status])
    return answer


def complete_operation(route: APIRoute, op: dict[str, Any]) -> None:
    responses: dict[str, Any] = op.setdefault("responses", {})
    own = {str(s) for s in route.responses}  # what the decorator (or its router) declared itself
    # A route class may answer errors its own way (Open311: its statuses and error list).
    original = getattr(route, "original_route", route)
    status_map: dict[int, int] = getattr(original, "status_map", {})
    make_error = getattr(original, "error_response", None)
    for status in sorted(statuses(route)):
        key = str(status_map.get(status, status))
        if status_map.get(status, status) != status and str(status) not in own:
            responses.pop(str(status), None)  # answered as another status
        if key in own:
            continue  # the route described it itself (the body schema is added below)
        description = COMMON.get(int(key), ("An error",))[0]
        responses[key] = make_error(int(key), description) if make_error else error_response(int(key))
    # Statuses the route declared without a body schema (or FastAPI's 422): the error body.
    for key, answer in responses.items():
        if not key.startswith(("4", "5")):
            continue
        if make_error is None:
            content = answer.setdefault("content", {})
            media = content.setdefault("application/json", {})
            if media.get("schema", {}).get("$ref", "").endswith("HTTPValidationError") or "schema" not in media:
                media["schema"] = ERROR_SCHEMA
                media.setdefault("example", error_response(int(key))["content"]["application/json"]["example"])
            if answer.get("description") in (None, "", "Validation Error", "Additional Response"):
                answer["description"] = COMMON.get(int(key), ("An error",))[0]
        # Headers whatever the body's format (Open311's error lists carry Retry-After too).
        if key not in own:  # a route's own answer (/readyz's 503) says its own headers
            answer.setdefault("headers", {}).update(copy.deepcopy(HEADERS.get(int(key), {})))
        if "headers" in answer and not answer["headers"]:
            del answer["headers"]

    declared, action = rule_of(route.dependant)
    if declared and action is not None:
        op["security"] = ([{}] if action in PUBLIC else []) + SIGNED_IN

    if is_command(route):
        body = route.body_field.field_info.annotation if route.body_field is not None else None
        doc = next((c.__doc__ for c in getattr(body, "__args__", (body,)) if isinstance(c, type) and issubclass(c, Command)), None)
        if doc and not op.get("description") and doc != Command.__doc__:
            op["description"] = inspect.cleandoc(doc)  # the command's own words
        names = {p.get("name", "").lower() for p in op.get("parameters", [])}
        op.setdefault("parameters", []).extend(copy.deepcopy(h) for h in COMMAND_HEADERS if h["name"].lower() not in names)
        for key, answer in responses.items():
            if key.startswith("2"):
                answer.setdefault("headers", {}).update(copy.deepcopy(COMMAND_ANSWER_HEADERS))
                media = answer.setdefault("content", {}).setdefault("application/json", {})
                if untyped(media.get("schema")):
                    media["schema"] = {"$ref": REF.format(model="CommandAnswer")}


def untyped(schema: dict[str, Any] | None) -> bool:
    """A schema that says nothing: ``{}`` or any object."""
    if not schema:
        return True
    rest = {k: v for k, v in schema.items() if k not in ("title", "description")}
    return rest in ({"type": "object"}, {"type": "object", "additionalProperties": True})
