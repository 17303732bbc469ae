"""Every error a user can cause is JSON that says what is wrong.

This module is the one place that decides which HTTP status answers which refusal:
the domain raises what happened (:class:`~domain.base.Forbidden`, ``NotFound`` …) and
knows nothing of HTTP.
"""

from __future__ import annotations

import logging
import sqlite3
from typing import Any

import eventsourcing.persistence
import psycopg
import psycopg_pool
import sqlalchemy.exc
from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ConfigDict, Field
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import BaseRoute, Match

from analytics.reports import ReportError
from api.open311.formats import error_answer, open311_format
from domain.attachments.aggregate import TooLarge
from domain.base import ConcurrencyConflict, DomainError, Forbidden, InvalidCommand, InvalidTransition, NotFound
from domain.identity.sign_in import TooManyAttempts
from infra.rate_limits import LimitExceeded

log = logging.getLogger("hotline.api")


class Unauthenticated(DomainError):
    """No credentials where they are needed, or ones we do not accept (HTTP 401)."""

    code = "unauthenticated"


class DeliveryFailed(DomainError):
    """A message we had to send now (a sign-in code) could not be sent (HTTP 503)."""

    code = "delivery_failed"


class ProjectionLagging(DomainError):
    """Read-your-writes: the read models have not applied the position asked for in time."""

    code = "projection_lagging"


class PositionBeyondEnd(InvalidCommand):
    """Read-your-writes asked for a position no command has been answered with yet: the
    event store ends before it, so waiting cannot help (HTTP 422, like any invalid input)."""

    code = "position_beyond_end"


# The most specific class in an error's MRO decides.
STATUS: dict[type[DomainError], int] = {
    Unauthenticated: 401,
    Forbidden: 403,
    LimitExceeded: 429,
    TooManyAttempts: 429,
    NotFound: 404,
    TooLarge: 413,
    InvalidTransition: 409,
    ConcurrencyConflict: 409,
    InvalidCommand: 422,
    ProjectionLagging: 504,
    DeliveryFailed: 503,
    DomainError: 422,
}


# The stores cannot give an answer now: PostgreSQL down, at its connection limit or in a
# deadlock, a connection pool exhausted, SQLite locked beyond its timeout. Nothing the caller
# sent is wrong and a retry may well succeed: 503 with Retry-After, not a bare 500. (The
# event store's recorders wrap the driver's errors in eventsourcing's own classes.)
STORE_UNAVAILABLE: tuple[type[Exception], ...] = (
    sqlalchemy.exc.OperationalError,
    sqlalchemy.exc.TimeoutError,
    psycopg.OperationalError,
    psycopg_pool.PoolTimeout,
    sqlite3.OperationalError,
    eventsourcing.persistence.OperationalError,
    eventsourcing.persistence.InterfaceError,
)
STORE_RETRY_AFTER = 1  # seconds
STORE_UNAVAILABLE_MESSAGE = "the data store cannot answer now (unreachable or busy): retry shortly"
# PostgreSQL's SQLSTATEs that say "not now" (connection exceptions, insufficient resources
# such as too many connections, operator intervention, system errors, a serialisation
# failure, a deadlock, a lock not available); psycopg files some bugs under
# OperationalError too (a program limit exceeded, a routine's error), which stay 500.
_TRANSIENT_CLASSES = ("08", "53", "57", "58")
_TRANSIENT_STATES = ("40001", "40P01", "55P03")


def store_unavailable(exc: BaseException) -> bool:
    """Whether ``exc`` (one of STORE_UNAVAILABLE) says the store cannot answer now, not that
    the query is wrong: SQLite raises OperationalError for a syntax error or a missing table
    as well as for a locked database, and those are bugs (500)."""
    cause: BaseException = exc
    while True:  # down to the driver's own error (SQLAlchemy's .orig, eventsourcing's __cause__)
        inner = getattr(cause, "orig", None) or cause.__cause__
        if not isinstance(inner, BaseException) or inner is cause:
            break
        cause = inner
    if isinstance(cause, sqlite3.Error):
        text = str(cause).lower()
        return any(word in text for word in ("locked", "busy", "unable to open", "disk i/o"))
    if isinstance(cause, psycopg.Error):
        state = cause.sqlstate
        return state is None or state.startswith(_TRANSIENT_CLASSES) or state in _TRANSIENT_STATES
    return True


def status_of(exc: DomainError) -> int:
    for cls in type(exc).__mro__:
        if cls in STATUS:
            return STATUS[cls]  # type: ignore[index]
    return 422


class ErrorDetail(BaseModel):
    """What went wrong: the HTTP status again, a stable machine-readable code, a sentence."""

    status: int = Field(description="The HTTP status of the answer", examples=[422])
    code: str = Field(
        description="Stable and machine-readable: invalid_request, not_found, forbidden, invalid_state …", examples=["invalid_state"]
    )
    message: str = Field(
        description="What is wrong, in a sentence for a person", examples=["the request is closed: it cannot be dispatched"]
    )
    details: dict[str, Any] | None = Field(
        None,
        description="More about it: ``problems`` (field, problem, type) for invalid input, ``permission`` for a refusal, ``retry_after`` …",
    )


class ErrorResponse(BaseModel):
    """Every error this API answers (4xx and 5xx alike): ``{"error": {...}}``."""

    model_config = ConfigDict(
        json_schema_extra={"examples": [{"error": {"status": 404, "code": "not_found", "message": "no request 000000000000"}}]}
    )

    error: ErrorDetail


def error_body(status: int, code: str, message: str, details: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"error": {"status": status, "code": code, "message": message, **({"details": details} if details else {})}}


def log_unavailable(request: Request, exc: BaseException) -> None:
    """One line per request (an outage may mean thousands), not a traceback each."""
    log.error("store unavailable: %s %s: %s", request.method, request.url.path, exc)


def internal_error() -> JSONResponse:
    return JSONResponse(error_body(500, "internal_error", "an unexpected error on the server: it is logged"), status_code=500)


def retry_after(exc: DomainError) -> dict[str, str]:
    """A refusal's Retry-After header, when it says when to retry (a rate limit's 429),
    for the API's error body and Open311's error list alike."""
    if status_of(exc) == 429 and "retry_after" in exc.details:
        return {"Retry-After": str(exc.details["retry_after"])}
    return {}


def install(app: FastAPI) -> None:
    @app.exception_handler(DomainError)
    async def domain_error(_: Request, exc: DomainError) -> JSONResponse:
        status = status_of(exc)
        headers = retry_after(exc)
        if status == 401:
            headers["WWW-Authenticate"] = 'Bearer realm="hotline"'
        body = jsonable_encoder(error_body(status, exc.code, exc.message, exc.details))
        return JSONResponse(body, status_code=status, headers=headers)

    @app.exception_handler(ReportError)
    async def report_error(_: Request, exc: ReportError) -> JSONResponse:
        # The analytics layer says how a report failed (no data yet 404, busy 503, invalid 422).
        return JSONResponse(error_body(exc.status, exc.code, exc.message), status_code=exc.status)

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = list(exc.errors())
        sent = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if sent != "application/json" and any(tuple(e["loc"]) == ("body",) and e["type"] != "missing" for e in errors):
            # A JSON body sent as text/plain or a form: say so, rather than "not a dictionary".
            message = f"send the body as application/json (it came as {sent or 'no content type'})"
            return JSONResponse(error_body(415, "unsupported_media_type", message, {"content_type": sent or None}), status_code=415)
        problems = [_problem(e) for e in errors]
        summary = "; ".join(f"{p['field'] or 'body'}: {p['problem']}" for p in problems)
        return JSONResponse(error_body(422, "invalid_request", summary, {"problems": problems}), status_code=422)

    def _problem(e: Any) -> dict[str, Any]:
        if e["type"] == "json_invalid":  # its loc is ("body", <character offset>): no field
            at = e["loc"][1] if len(e["loc"]) > 1 else None
            return {"field": "", "problem": f"the body is not valid JSON (at character {at})", "type": e["type"]}
        return {"field": ".".join(str(p) for p in e["loc"] if p != "body"), "problem": e["msg"], "type": e["type"]}

    async def unavailable(request: Request, exc: Exception) -> JSONResponse:
        # Answered here, so not re-raised to the server's log: logged here instead.
        if not store_unavailable(exc):
            log.error("store error: %s %s", request.method, request.url.path, exc_info=exc)
            return internal_error()
        log_unavailable(request, exc)
        body = error_body(503, "store_unavailable", STORE_UNAVAILABLE_MESSAGE)
        return JSONResponse(body, status_code=503, headers={"Retry-After": str(STORE_RETRY_AFTER)})

    for cls in STORE_UNAVAILABLE:
        app.add_exception_handler(cls, unavailable)

    @app.exception_handler(Exception)
    async def unexpected(_: Request, exc: Exception) -> JSONResponse:
        # The one error body for a bug too (Starlette's own is plain text); the server
        # still logs the exception with its traceback.
        return internal_error()

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        if exc.status_code == 400:
            # The framework's answer to a body it cannot read (not UTF-8, a broken or
            # oversized form): invalid input like any other, so the same 422 and error body.
            return JSONResponse(error_body(422, "invalid_request", f"the body could not be read: {exc.detail}"), status_code=422)
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
        headers = dict(getattr(exc, "headers", None) or {})
        if exc.status_code == 405:
            # Every method of the path (RFC 9110), where Starlette names the first route's only.
            allowed = {m for route in request.app.router.routes if route.matches(request.scope)[0] != Match.NONE for m in _methods(route)}
            if allowed:
                headers["Allow"] = ", ".join(sorted(allowed))
        if (fmt := open311_format(request.url.path)) is not None:  # an Open311 client reads its own error list
            refused = error_answer(fmt, exc.status_code, str(exc.detail))
            refused.headers.update(headers)
            return refused
        return JSONResponse(error_body(exc.status_code, code, str(exc.detail)), status_code=exc.status_code, headers=headers or None)


def _methods(route: BaseRoute) -> set[str]:
    methods = getattr(route, "methods", None)
    return set(methods) if methods else set()
