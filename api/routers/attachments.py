"""Attachments: upload a photo or document to a request or a work order, list them,
download one.

An upload is ``multipart/form-data`` with one part ``file`` (and optionally ``source``:
``api`` or ``console``). Its bytes are checked (size, then the type read from the
content), stored content-addressed (``hotline.attachments``), and only then recorded by
the ``AttachFile`` command: an event never names bytes that are not there. Too large is
413 (``attachment_too_large``), a refused type 422 (``attachment_type``, with the type
found and the types allowed), both JSON as every error (``api/errors.py``). The body is
parsed here rather than declared with ``File()`` so that its length is refused before a
byte of it is read.

Who may read an attachment is who may read its subject: ``requests.read`` on the
request (a citizen their own, a department its own), ``work_orders.read`` on the work
order (the lists declare those; the download declares ``attachments.read``, their union,
and checks the subject's own rule on it). Who may add: ``attachments.add`` on a request
(a citizen to their own, a department to its own, integrators, agents); on a work order,
who works on it (``work_orders.work``: its department, supervisors, the hotline's processes).
"""

from __future__ import annotations

import uuid
from typing import Any, Literal
from urllib.parse import quote

from fastapi import Depends, HTTPException, Query, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import StreamingResponse
from starlette.datastructures import UploadFile

from api.auth import allow
from api.deps import CommandRoute, ReadYourWrites, add_command_routes, get_hotline, run_command
from api.errors import ErrorResponse
from api.responses import AttachmentView, CommandAnswer
from api.routing import HotlineRouter
from domain.access import Action, access_of, authorize
from domain.attachments import commands as c
from domain.attachments.aggregate import Attachment
from domain.base import Actor, InvalidCommand, NotFound
from domain.requests.aggregate import ServiceRequest, request_id_for
from domain.work_orders.aggregate import WorkOrder
from infra.attachments import too_large
from infra.runtime import Hotline
from projections import attachments as rm

router = HotlineRouter(tags=["attachments"])

# Room for the multipart framing around the file (boundaries, part headers, the source field).
FRAMING = 64 * 1024
# Types a browser may show in the page (everything else downloads).
INLINE = ("image/jpeg", "image/png", "image/webp", "application/pdf")

_UPLOAD_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["file"],
                    "additionalProperties": False,
                    "properties": {
                        "file": {"type": "string", "format": "binary"},
                        "source": {"type": "string", "enum": ["api", "console"], "default": "api"},
                    },
                }
            }
        },
    }
}


# ------------------------------------------------------------------------ subjects
def _aggregate(hotline: Hotline, aggregate_id: uuid.UUID, cls: type[Any], what: str) -> Any:
    found = hotline.store.read_reference(aggregate_id)  # the store, not a read model: no lag on who may see it
    if not isinstance(found, cls):
        raise NotFound(f"no {what}")
    return found


def _request(hotline: Hotline, ref: str) -> ServiceRequest:
    try:
        rid = uuid.UUID(ref)
    except ValueError:
        rid = request_id_for(ref)
    request: ServiceRequest = _aggregate(hotline, rid, ServiceRequest, f"request {ref}")
    return request


def _work_order(hotline: Hotline, order_id: str) -> WorkOrder:
    try:
        oid = uuid.UUID(order_id)
    except ValueError:
        raise NotFound(f"no work order {order_id}") from None
    order: WorkOrder = _aggregate(hotline, oid, WorkOrder, f"work order {order_id}")
    return order


def may_read(hotline: Hotline, actor: Actor, row: dict[str, Any]) -> None:
    """Whoever may read the attachment's subject may read the attachment (else 403)."""
    if row["request_id"]:
        authorize(actor, Action.REQUESTS_READ, access_of(_request(hotline, row["request_id"])))
    else:
        authorize(actor, Action.WORK_ORDERS_READ, access_of(_work_order(hotline, row["work_order_id"])))


# ------------------------------------------------------------------------ upload
async def _upload(
    hotline: Hotline, request: Request, response: Response, actor: Actor, request_ref: str | None = None, work_order_id: str | None = None
) -> dict[str, Any]:
    store = hotline.attachments
    length = request.headers.get("content-length")
    if length is None:
        raise HTTPException(411, "send the upload with a Content-Length")
    if not length.isdigit():
        raise InvalidCommand("Content-Length must be a number of bytes", field="Content-Length")
    if int(length) > store.max_bytes + FRAMING:
        raise too_large(None, store.max_bytes)
    if not request.headers.get("content-type", "").startswith("multipart/form-data"):
        raise InvalidCommand("upload the file as multipart/form-data, in a part named 'file'", field="file")
    async with request.form(max_files=1, max_fields=2) as form:
        part = form.get("file")
        if not isinstance(part, UploadFile):
            raise InvalidCommand("upload the file as multipart/form-data, in a part named 'file'", field="file")
        source: Literal["api", "console"]
        match form.get("source", "api"):  # absent: api; anything else but the two is refused
            case "api" | "console" as given:
                source = given
            case _:
                raise InvalidCommand("source is 'api' or 'console'", field="source")
        data = await part.read(store.max_bytes + 1)
        filename = part.filename
    blob = await run_in_threadpool(store.put, data, filename)
    cmd = c.AttachFile(
        request_ref=request_ref,
        work_order_id=work_order_id,
        sha256=blob.sha256,
        content_type=blob.content_type,
        size=blob.size,
        filename=blob.filename,
        source=source,
    )
    answer = await run_in_threadpool(run_command, hotline, cmd, actor, request=request, response=response)
    response.status_code = 201
    response.headers["Location"] = f"/attachments/{answer['id']}/content"
    return answer


@router.post(
    "/requests/{ref}/attachments",
    summary="Attach a photo or document to a request (multipart: file)",
    response_model=CommandAnswer,
    status_code=201,
    openapi_extra=_UPLOAD_BODY,
    responses={409: {"description": "The request is closed (invalid_state): reopen it to add files", "model": ErrorResponse}},
)
async def upload_to_request(
    ref: str,
    request: Request,
    response: Response,
    hotline: Hotline = Depends(get_hotline),
    actor: Actor = allow(Action.ATTACHMENTS_ADD),
) -> dict[str, Any]:
    # Who may add is checked before the bytes are stored (and again by the command).
    target = await run_in_threadpool(_request, hotline, ref)
    authorize(actor, Action.ATTACHMENTS_ADD, access_of(target))
    return await _upload(hotline, request, response, actor, request_ref=ref)


@router.post(
    "/work-orders/{order_id}/attachments",
    summary="Attach a photo or document to a work order (multipart: file)",
    response_model=CommandAnswer,
    status_code=201,
    openapi_extra=_UPLOAD_BODY,
    responses={409: {"description": "The work order is cancelled (invalid_state)", "model": ErrorResponse}},
)
async def upload_to_work_order(
    order_id: str,
    request: Request,
    response: Response,
    hotline: Hotline = Depends(get_hotline),
    actor: Actor = allow(Action.WORK_ORDERS_WORK),
) -> dict[str, Any]:
    target = await run_in_threadpool(_work_order, hotline, order_id)
    authorize(actor, Action.WORK_ORDERS_WORK, access_of(target))
    return await _upload(hotline, request, response, actor, work_order_id=order_id)


# ------------------------------------------------------------------------ lists
@router.get("/requests/{ref}/attachments", response_model=list[AttachmentView], summary="A request's attachments")
def request_attachments(
    ref: str,
    hotline: Hotline = Depends(get_hotline),
    actor: Actor = allow(Action.REQUESTS_READ),
    include_removed: bool = False,
    _ryw: None = ReadYourWrites,
) -> list[dict[str, Any]]:
    target = _request(hotline, ref)
    authorize(actor, Action.REQUESTS_READ, access_of(target))
    with hotline.read_store.engine.connect() as conn:
        return rm.of_request(conn, str(target.id), include_removed=include_removed)


@router.get("/work-orders/{order_id}/attachments", response_model=list[AttachmentView], summary="A work order's attachments")
def work_order_attachments(
    order_id: str,
    hotline: Hotline = Depends(get_hotline),
    actor: Actor = allow(Action.WORK_ORDERS_READ),
    include_removed: bool = False,
    _ryw: None = ReadYourWrites,
) -> list[dict[str, Any]]:
    target = _work_order(hotline, order_id)
    authorize(actor, Action.WORK_ORDERS_READ, access_of(target))
    with hotline.read_store.engine.connect() as conn:
        return rm.of_work_order(conn, str(target.id), include_removed=include_removed)


# ------------------------------------------------------------------------ content
def content_disposition(kind: Literal["inline", "attachment"], filename: str | None, fallback: str) -> str:
    """RFC 6266: an ASCII name for old clients and the UTF-8 one (RFC 8187) for the rest."""
    name = filename or fallback
    ascii_name = "".join(ch if 32 <= ord(ch) < 127 and ch not in '"\\;' else "_" for ch in name)
    return f"{kind}; filename=\"{ascii_name}\"; filename*=UTF-8''{quote(name, safe='')}"


@router.get(
    "/attachments/{attachment_id}/content",
    summary="An attachment's bytes, with its type (who may read its subject)",
    response_class=StreamingResponse,
    responses={
        200: {
            "description": "The bytes, with the type read from them at upload",
            "content": {"*/*": {"schema": {"type": "string", "format": "binary"}}},
        }
    },
)
def attachment_content(
    attachment_id: str,
    hotline: Hotline = Depends(get_hotline),
    actor: Actor = allow(Action.ATTACHMENTS_READ),
    disposition: Literal["attachment", "inline"] = Query("attachment", description="inline: shown in the page (images and PDF only)"),
) -> StreamingResponse:
    try:
        aid = uuid.UUID(attachment_id)
    except ValueError:
        raise NotFound(f"no attachment {attachment_id}") from None
    a: Attachment = _aggregate(hotline, aid, Attachment, f"attachment {attachment_id}")
    may_read(hotline, actor, {"request_id": a.request_id, "work_order_id": a.work_order_id})
    if a.removed:
        raise NotFound(f"attachment {attachment_id} was removed")
    if a.sha256 is None or a.content_type is None:
        raise NotFound(f"attachment {attachment_id} is kept by reference, not here", url=a.url)
    chunks = hotline.attachments.open(a.sha256)
    first = next(chunks, b"")  # a missing blob is a 404 now, not a broken stream later
    kind: Literal["inline", "attachment"] = "inline" if disposition == "inline" and a.content_type in INLINE else "attachment"
    media_type = a.content_type + ("; charset=utf-8" if a.content_type == "text/plain" else "")
    headers = {
        "Content-Disposition": content_disposition(kind, a.personal.get("filename"), f"attachment-{a.id}"),
        "Content-Length": str(a.size),
        "X-Content-Type-Options": "nosniff",
        # Even opened directly, the file runs nothing and loads nothing in the hotline's origin.
        "Content-Security-Policy": "default-src 'none'; sandbox",
        "Cache-Control": "private, max-age=3600",
        "ETag": f'"{a.sha256}"',
    }

    def stream() -> Any:
        yield first
        yield from chunks

    return StreamingResponse(stream(), media_type=media_type, headers=headers)


add_command_routes(
    router, "/attachments/{attachment_id}", [CommandRoute("remove", c.RemoveAttachment, "Take an attachment off its subject")]
)
