"""What citizens and departments were sent: the local outbox, and a request's messages.

``/outbox`` shows the messages the notifier wrote to the local outbox (no SMTP server or
SMS gateway configured: infra/outbox.py), exactly as their recipients would have got
them. ``/requests/{ref}/notifications`` shows every message a request caused, however it
was sent, with its state and last error: a reply that could not be delivered is seen on
the case, not only in a log.
"""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

from fastapi import Depends, Query
from fastapi.responses import FileResponse

from api.auth import allow, row_access
from api.deps import ReadYourWrites, get_hotline
from api.responses import OutboxList, OutboxMessage, RequestNotifications
from api.routing import HotlineRouter
from domain.access import Action, authorize
from domain.base import Actor, InvalidCommand, NotFound
from domain.notifications.aggregate import CHANNELS
from infra import outbox
from infra.runtime import Hotline
from projections import notifications as notes
from projections import request_status

router = HotlineRouter(tags=["notifications"])
MEDIA_TYPES = {".eml": "message/rfc822", ".json": "application/json"}


def _request_row(hotline: Hotline, ref: str) -> dict[str, Any]:
    with hotline.read_store.engine.connect() as conn:
        row = request_status.by_reference(conn, ref) or request_status.get(conn, ref)
    if row is None:
        raise NotFound(f"no request {ref}")
    return row


def _message_path(hotline: Hotline, notification_id: str) -> Path:
    try:
        nid = uuid.UUID(notification_id)
    except ValueError:
        raise NotFound(f"no message {notification_id} in the outbox") from None
    path = outbox.path_of(outbox.outbox_root(hotline.settings), nid)
    if path is None:
        raise NotFound(f"no message {notification_id} in the outbox")
    return path


@router.get(
    "/outbox",
    response_model=OutboxList,
    summary="Messages delivered to the local outbox (no SMTP server or SMS gateway configured), newest first",
    responses={404: {"description": "No request with that reference or id"}},
)
def list_outbox(
    hotline: Hotline = Depends(get_hotline),
    _: Actor = allow(Action.NOTIFICATIONS_READ),
    channel: str | None = Query(None, description=f"One of {', '.join(CHANNELS)}"),
    request: str | None = Query(None, description="Only the messages of this request (reference or id)"),
    limit: int = Query(100, ge=1, le=1000),
) -> dict[str, Any]:
    if channel is not None and channel not in CHANNELS:
        raise InvalidCommand(f"channel {channel!r} must be one of {list(CHANNELS)}", field="channel", allowed=list(CHANNELS))
    ids = None
    if request is not None:
        row = _request_row(hotline, request)
        with hotline.read_store.engine.connect() as conn:
            ids = notes.ids_for_request(conn, row["id"])
    root = outbox.outbox_root(hotline.settings)
    total, messages = outbox.listing(root, channel=channel, ids=ids, limit=limit)
    # The reference citizens quote, beside the request's id.
    with hotline.read_store.engine.connect() as conn:
        references: dict[str, str | None] = {}
        for m in messages:
            rid = m.get("request_id")
            if rid and rid not in references:
                found = request_status.get(conn, rid)
                references[rid] = found["reference"] if found else None
            m["reference"] = references.get(rid) if rid else None
    return {"folder": str(root), "total": total, "messages": messages}


@router.get("/outbox/{notification_id}", response_model=OutboxMessage, summary="One message in the outbox, as its recipient got it")
def get_outbox_message(
    notification_id: str, hotline: Hotline = Depends(get_hotline), _: Actor = allow(Action.NOTIFICATIONS_READ)
) -> dict[str, Any]:
    return outbox.read(_message_path(hotline, notification_id))


@router.get(
    "/outbox/{notification_id}/raw",
    summary="The message's file: the RFC 5322 email (message/rfc822) or the gateway's JSON",
    response_class=FileResponse,
    responses={
        200: {
            "description": "The file as it was delivered",
            "content": {"message/rfc822": {"schema": {"type": "string"}}, "application/json": {"schema": {"type": "object"}}},
        },
        404: {"description": "No such message in the outbox"},
    },
)
def get_outbox_file(
    notification_id: str, hotline: Hotline = Depends(get_hotline), _: Actor = allow(Action.NOTIFICATIONS_READ)
) -> FileResponse:
    path = _message_path(hotline, notification_id)
    return FileResponse(path, media_type=MEDIA_TYPES.get(path.suffix, "application/octet-stream"), filename=path.name)


@router.get(
    "/requests/{ref}/notifications",
    response_model=RequestNotifications,
    summary="The messages a request caused (replies, alerts) with their state and last error; undelivered ones counted",
)
def request_notifications(
    ref: str,
    hotline: Hotline = Depends(get_hotline),
    actor: Actor = allow(Action.REQUESTS_READ_INTERNAL),
    _ryw: None = ReadYourWrites,
) -> dict[str, Any]:
    row = _request_row(hotline, ref)
    # Staff who may read the case's internals (a department only its own cases).
    authorize(actor, Action.REQUESTS_READ_INTERNAL, row_access(row))
    with hotline.read_store.engine.connect() as conn:
        found = notes.for_request(conn, row["id"])
    return {"request_id": row["id"], "reference": row["reference"], **found}
