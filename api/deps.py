"""FastAPI dependencies: the running hotline and running a command (who acts: api/auth.py)."""

from __future__ import annotations

import inspect
import re
import time
from collections.abc import Callable, Iterable
from typing import Any, NamedTuple

from fastapi import APIRouter, Depends, Request, Response

from api.auth import allow
from api.limits import MinPosition
from domain.base import Actor, InvalidCommand, snake_case
from domain.handling import Command
from infra.bus import CommandResult
from infra.runtime import Hotline


async def get_hotline(request: Request) -> Hotline:
    # async: FastAPI runs a plain ``def`` dependency in its thread pool, and this one is in
    # nearly every route (a hand-off to a worker thread and back on every request for nothing).
    hotline: Hotline = request.app.state.hotline
    return hotline


def run_command(hotline: Hotline, cmd: Command, actor: Actor, *, request: Request, response: Response | None = None) -> dict[str, Any]:
    """Runs a command; adds ``position`` (for read-your-writes) to the answer.

    ``Idempotency-Key``: a retry with the same key and body returns the first answer and
    does nothing again. ``If-Match: "<version>"`` (the ETag a read returned) makes the
    write conditional, like ``expected_version`` in the body. ``X-Correlation-Id`` ties
    the command to a case.
    """
    key = request.headers.get("idempotency-key")
    if key is not None and not (1 <= len(key) <= 200):
        raise InvalidCommand("Idempotency-Key must be 1 to 200 characters")
    expected = expected_version(request.headers.get("if-match"))
    if expected is not None and cmd.expected_version is None:
        cmd.expected_version = expected
    started = time.perf_counter()
    result: CommandResult = hotline.bus.execute(
        cmd,
        actor,
        idempotency_key=key,
        idempotency_scope=f"{request.method} {request.url.path} {actor.id}",
        correlation_id=request.headers.get("x-correlation-id"),
    )
    request.state.command_ms = (time.perf_counter() - started) * 1000
    if response is not None:
        if result.replayed:
            response.headers["Idempotent-Replayed"] = "true"
        if result.position:
            response.headers["X-Event-Position"] = str(result.position)
    body = dict(result.result)
    body["position"] = result.position or body.get("position", 0)
    return body


# An entity tag as RFC 9110 writes it: optionally weak (W/), then a quoted string. A bare
# number is also taken (what this API documented before it sent ETags).
_ETAG = re.compile(r'(?:W/)?"(?P<quoted>[0-9]{1,18})"|(?P<bare>[0-9]{1,18})')


def etag(version: int) -> str:
    """The ETag of an aggregate's representation: its version, strong and quoted."""
    return f'"{version}"'


def set_etag(response: Response, version: int | None) -> None:
    if version is not None:
        response.headers["ETag"] = etag(version)


def expected_version(if_match: str | None) -> int | None:
    """The version an ``If-Match`` header asks for: ``"7"`` (the ETag a read returned; a
    weak ``W/"7"``, as a compressing proxy may turn it, names the same version) or ``7``;
    ``*`` (any) or no header: None."""
    if if_match is None or if_match.strip() == "*":
        return None
    found = _ETAG.fullmatch(if_match.strip())
    if found is None:
        raise InvalidCommand(
            f'If-Match must be one ETag of this API, the aggregate version in quotes ("7"), not {if_match!r}',
            field="If-Match",
        )
    return int(found["quoted"] or found["bare"])


class CommandRoute(NamedTuple):
    """A POST endpoint whose body is a command; the path's ``{parameters}`` fill the
    command's :data:`~domain.handling.Target` fields of the same names."""

    path: str  # under the base path of add_command_routes, e.g. "dispatch"; "" for the base itself
    model: type[Command]
    summary: str
    name: str | None = None  # the endpoint's name and OpenAPI operation id; the handler's name by default
    status_code: int | None = None
    body_optional: bool = False  # no body: the command with its defaults


def _command_endpoint(route: CommandRoute, params: list[str], name: str) -> Callable[..., dict[str, Any]]:
    def endpoint(**values: Any) -> dict[str, Any]:
        cmd = route.model() if values["cmd"] is None else values["cmd"]
        sent = sorted(set(params) & cmd.model_fields_set)
        if sent:
            raise InvalidCommand(f"{', '.join(sent)} comes from the URL path, not the body", fields=sent)
        cmd = cmd.model_copy(update={p: values[p] for p in params})
        return run_command(values["hotline"], cmd, values["actor"], request=values["request"], response=values["response"])

    # FastAPI reads the parameters (path, body, dependencies) from the signature.
    kw = inspect.Parameter.KEYWORD_ONLY
    endpoint.__signature__ = inspect.Signature(  # type: ignore[attr-defined]
        [inspect.Parameter(p, kw, annotation=route.model.model_fields[p].annotation) for p in params]
        + [
            inspect.Parameter("cmd", kw, annotation=route.model | None, default=None)
            if route.body_optional
            else inspect.Parameter("cmd", kw, annotation=route.model),
            inspect.Parameter("request", kw, annotation=Request),
            inspect.Parameter("response", kw, annotation=Response),
            inspect.Parameter("hotline", kw, default=Depends(get_hotline), annotation=Hotline),
            inspect.Parameter("actor", kw, default=allow(route.model.action), annotation=Actor),
        ],
        return_annotation=dict[str, Any],
    )
    endpoint.__name__ = endpoint.__qualname__ = name
    return endpoint


def add_command_routes(router: APIRouter, base: str, routes: Iterable[CommandRoute], response_model: Any = None) -> None:
    """Adds one typed POST endpoint per command at ``base/route.path`` (e.g. ``/{ref}/dispatch``).

    Each ``{parameter}`` of the path must be a :data:`~domain.handling.Target` field of the
    command (checked here, at start-up); the endpoint's signature names them and the
    command model, so /docs shows them as for a hand-written route.
    """
    for route in routes:
        path = f"{base}/{route.path}" if route.path else base
        params = re.findall(r"{(\w+)}", path)
        missing = set(params) - set(route.model.targets())
        if missing:
            raise TypeError(f"{route.model.__name__} has no target field for {sorted(missing)} of {path}")
        name = route.name or snake_case(route.model.__name__)
        endpoint = _command_endpoint(route, params, name)
        # Unset options keep FastAPI's defaults (200; the response model from the return annotation).
        options = {"status_code": route.status_code, "response_model": response_model}
        router.add_api_route(
            path, endpoint, methods=["POST"], summary=route.summary, name=name, **{k: v for k, v in options.items() if v is not None}
        )


async def wait_for_position(hotline: Hotline, position: int | None, timeout: float | None = None) -> None:
    """Read-your-writes: returns when the read models have applied ``position``, holding
    no worker thread while it waits (``api/read_your_writes.py``); 504 after ``timeout``
    (default ``HOTLINE_READ_YOUR_WRITES_TIMEOUT``, 5 s), 422 at once for a position beyond
    the end of the event store."""
    from api.read_your_writes import wait_for_position as wait

    await wait(hotline, position, timeout)


async def read_your_writes(request: Request, min_position: MinPosition = None) -> None:
    """The ``min_position`` query parameter: the route's body runs once the read models
    have applied it. A dependency, so a plain ``def`` route waits on the event loop before
    its body takes a worker thread. List it after the route's ``allow(...)``: refusals first."""
    await wait_for_position(request.app.state.hotline, min_position)


# A route's parameter ``_ryw: None = ReadYourWrites`` (read-your-writes).
ReadYourWrites = Depends(read_your_writes)
