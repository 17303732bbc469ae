"""Notification handlers: the notifier's commands, and an operator's retry."""

from __future__ import annotations

from typing import Any

from domain.base import Context
from domain.citizens.handlers import sms_refused
from domain.handling import Handlers, UnitOfWork, parse_id
from domain.notifications import commands as c
from domain.notifications.aggregate import Notification, notification_id
from domain.privacy.aggregate import ERASED

handles = Handlers("notifications")
NOTIFIER = ("consumers.notifications",)


@handles(c.QueueNotification, issued_by=NOTIFIER)
def queue_notification(uow: UnitOfWork, ctx: Context, cmd: c.QueueNotification) -> dict[str, Any]:
    existing = uow.find(Notification, notification_id(cmd.message.key))
    if existing is not None:
        return {"id": str(existing.id), "queued": False, "status": existing.status}
    n = Notification.queue(cmd.message, ctx)
    uow.add(n)
    return {"id": str(n.id), "queued": True, "status": n.status}


@handles(c.StartAttempt, issued_by=NOTIFIER)
def start_attempt(uow: UnitOfWork, ctx: Context, cmd: c.StartAttempt) -> dict[str, Any]:
    n = uow.get(Notification, parse_id(cmd.notification_id, "notification"))
    # Checked at every attempt, not at queueing: a STOP received after the message was
    # queued (or between retries) is honoured too.
    refused = sms_refused(uow, n.to) if n.channel == "sms" else None
    if n.to == ERASED:  # the recipient was erased (their key destroyed): nobody to write to
        refused = "the recipient's personal data was erased: the address is gone"
    if refused is not None:
        n.suppress(refused, ctx)
        return {"id": str(n.id), "status": n.status, "suppressed": refused}
    attempt = n.start_attempt(ctx)
    return {"id": str(n.id), "attempt": attempt}


@handles(c.RecordOutcome, issued_by=NOTIFIER)
def record_outcome(uow: UnitOfWork, ctx: Context, cmd: c.RecordOutcome) -> dict[str, Any]:
    n = uow.get(Notification, parse_id(cmd.notification_id, "notification"))
    if cmd.delivered:
        n.record_sent(cmd.detail, ctx)
    else:
        n.record_failure(cmd.detail or "unknown error", cmd.permanent, cmd.retry, ctx)
    return {"id": str(n.id), "status": n.status, "next_attempt_at": n.next_attempt_at.isoformat() if n.next_attempt_at else None}


@handles(c.ResolveInDoubt, issued_by=NOTIFIER)
def resolve_in_doubt(uow: UnitOfWork, ctx: Context, cmd: c.ResolveInDoubt) -> dict[str, Any]:
    n = uow.get(Notification, parse_id(cmd.notification_id, "notification"))
    n.resolve_in_doubt(cmd.retry, ctx)
    return {"id": str(n.id), "status": n.status}


@handles(c.RetryNotification)
def retry_notification(uow: UnitOfWork, ctx: Context, cmd: c.RetryNotification) -> dict[str, Any]:
    n = uow.get(Notification, parse_id(cmd.notification_id, "notification"))
    n.retry(cmd.reason, ctx)
    return {"id": str(n.id), "status": n.status, "version": n.version}
