"""Bounds on what a request may carry before the application reads it: the body's size
(413) and the length of the headers the hotline stores or echoes (422), both answered
with the API's JSON error body (``api/errors.py``).

The body is counted as it arrives, so a chunked body without ``Content-Length`` is
refused at the limit too, and never held in memory whole: the server reads no further
than the application asks (uvicorn pauses the socket), and the application stops asking
at the limit. Routes that take files (attachments) have their own, larger limit here and
check the exact one themselves.
"""

from __future__ import annotations

import json
import re
from typing import Annotated, Any

from fastapi import FastAPI, Query
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.errors import error_body
from api.open311.formats import error_answer, open311_format
from domain.limits import HEADER_MAX, POSITION_MAX
from infra.settings import Settings

# Room for the multipart framing around an uploaded file (boundaries, part headers, fields).
UPLOAD_FRAMING = 64 * 1024
# Paths that take a file upload (api/routers/attachments.py): their body may be a file.
UPLOAD_PATHS = re.compile(r"^/(?:requests|work-orders)/[^/]+/attachments$")


def too_large_body(limit: int) -> dict[str, Any]:
    return error_body(413, "body_too_large", f"the request body is larger than {limit} bytes", {"max_bytes": limit})


def body_limit_for(settings: Settings, method: str, path: str) -> int:
    """The most bytes a request's body may have on this path."""
    if method == "POST" and UPLOAD_PATHS.match(path):
        return max(settings.max_body_bytes, settings.attachments_max_bytes + UPLOAD_FRAMING)
    return settings.max_body_bytes


class InputLimits:
    """Pure ASGI middleware (no request/response wrapping): refuses over-long headers and
    over-large bodies, counting the body's bytes as the application reads them."""

    def __init__(self, app: ASGIApp, settings: Settings) -> None:
        self.app = app
        self.settings = settings

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared: int | None = None
        for raw_name, raw_value in scope["headers"]:
            name = raw_name.decode("latin-1").lower()
            limit = HEADER_MAX.get(name)
            if limit is not None and len(raw_value) > limit:
                body = error_body(
                    422, "header_too_long", f"the {name} header is longer than {limit} characters", {"field": name, "max_length": limit}
                )
                await _json(send, 422, body, scope["path"])
                return
            if name == "content-length":
                declared = int(raw_value) if raw_value.isdigit() else None
        limit = body_limit_for(self.settings, scope["method"], scope["path"])
        if declared is not None and declared > limit:
            # Refused before a byte of the body is read.
            await _json(send, 413, too_large_body(limit), scope["path"])
            return

        received = 0
        started = refused = False

        async def counted() -> Message:
            # Past the limit the 413 goes out at once, and the application is told the
            # client has gone: whatever it was doing with the body stops, and what it
            # answers then is dropped (an exception would reach FastAPI's body reading
            # wrapped in a task group's exception group, and come out a 400).
            nonlocal received, refused
            if refused:
                return {"type": "http.disconnect"}
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    refused = True
                    if not started:
                        await _json(send, 413, too_large_body(limit), scope["path"])
                    return {"type": "http.disconnect"}
            return message

        async def tracked(message: Message) -> None:
            nonlocal started
            if refused:
                return
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        await self.app(scope, counted, tracked)


async def _json(send: Send, status: int, body: dict[str, Any], path: str = "") -> None:
    """A JSON answer sent straight to the server (an Open311 error list under /open311/,
    XML for a .xml path); the connection is closed after it (the rest of the body is never read)."""
    if (fmt := open311_format(path)) is not None:
        refused = error_answer(fmt, status, body["error"]["message"])
        content, media_type = bytes(refused.body), refused.headers["content-type"].encode()
    else:
        content, media_type = json.dumps(body, separators=(",", ":")).encode(), b"application/json"
    headers = [(b"content-type", media_type), (b"content-length", str(len(content)).encode()), (b"connection", b"close")]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": content})


def install(app: FastAPI, settings: Settings) -> None:
    """The middleware, outermost of the app's own: nothing reads a body before it counts."""
    app.add_middleware(InputLimits, settings=settings)


# A query's read-your-writes position: an event position, within the stores' BIGINT.
MinPosition = Annotated[int | None, Query(ge=0, le=POSITION_MAX, description="Wait until the read models have applied this event position")]
