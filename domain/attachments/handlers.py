"""Attachment handlers: the subject is loaded, and who may add to it is checked on it."""

from __future__ import annotations

from typing import Any

from domain.access import Action, access_of, authorize
from domain.attachments import commands as c
from domain.attachments.aggregate import Attachment
from domain.base import Context, InvalidTransition, NotFound
from domain.handling import Handlers, UnitOfWork, parse_id
from domain.requests.handlers import load_request
from domain.work_orders.aggregate import WorkOrder

handles = Handlers("attachments")

# Requests and work orders take no new files once over (a closed request is reopened first).
_CLOSED_REQUEST = ("closed",)
_CLOSED_ORDER = ("cancelled",)


@handles(c.AttachFile, issued_by=("api.routers.attachments", "api.routers.open311", "consumers.email_in"))
def attach_file(uow: UnitOfWork, ctx: Context, cmd: c.AttachFile) -> dict[str, Any]:
    request = order = None
    if cmd.request_ref is not None and cmd.work_order_id is None:
        request = load_request(uow, cmd.request_ref)
        authorize(ctx.actor, cmd.action, access_of(request))
        if request.status in _CLOSED_REQUEST:
            raise InvalidTransition(f"request {request.reference} is closed: reopen it to add attachments")
    elif cmd.work_order_id is not None and cmd.request_ref is None:
        order = uow.read(WorkOrder, parse_id(cmd.work_order_id, "work order"))
        if order is None:
            raise NotFound(f"no work order {cmd.work_order_id}")
        # Photos of the job come from who works on it (its department, supervisors, processes).
        authorize(ctx.actor, cmd.action, access_of(order))
        authorize(ctx.actor, Action.WORK_ORDERS_WORK, access_of(order))
        if order.status in _CLOSED_ORDER:
            raise InvalidTransition(f"work order {order.id} is cancelled")
    attachment = Attachment.attach(
        request=(request.id, request.reference) if request is not None else None,
        work_order_id=order.id if order is not None else None,
        sha256=cmd.sha256,
        content_type=cmd.content_type,
        size=cmd.size,
        filename=cmd.filename,
        source=cmd.source,
        url=cmd.url,
        citizen_id=request.citizen_id if request is not None else None,
        ctx=ctx,
    )
    uow.add(attachment)
    return attachment.summary()


@handles(c.RemoveAttachment)
def remove_attachment(uow: UnitOfWork, ctx: Context, cmd: c.RemoveAttachment) -> dict[str, Any]:
    attachment = uow.get(Attachment, parse_id(cmd.attachment_id, "attachment"))
    attachment.expect_version(cmd.expected_version)
    attachment.remove(cmd.reason, ctx)
    return attachment.summary()
