"""Notifications read model: every message's state, and the queue the sender works from
(queued, or failed and due for a retry, or in doubt), ordered by when to try next."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from domain.envelope import Envelope
from domain.notifications.aggregate import Notification as N
from domain.privacy.aggregate import ERASED, PersonalDataErasure
from projections.base import Projection, Rows, UtcDateTime

projection = Projection("notifications")
MESSAGES = projection.table(
    "notifications",
    sa.Column("id", sa.String(36), primary_key=True),
    sa.Column("key", sa.String(200), nullable=False),
    sa.Column("purpose", sa.String(40)),
    sa.Column("channel", sa.String(20)),
    sa.Column("language", sa.String(5)),
    sa.Column("subject", sa.Text),
    sa.Column("request_id", sa.String(36), index=True),
    sa.Column("status", sa.String(20), nullable=False),
    sa.Column("attempts", sa.Integer, nullable=False),
    sa.Column("next_attempt_at", UtcDateTime, nullable=True),
    sa.Column("last_error", sa.Text),
    sa.Column("provider_ref", sa.String(200)),
    sa.Column("queued_at", UtcDateTime),
    sa.Column("updated_at", UtcDateTime),
    sa.Column("version", sa.Integer),
)
sa.Index("ix_rm_notifications_queue", MESSAGES.c.status, MESSAGES.c.next_attempt_at)
M = MESSAGES.name


@projection.on(N.Queued)
def queued(env: Envelope, rows: Rows) -> None:
    d = env.data
    rows.put(
        M,
        {
            "id": env.aggregate_id,
            "key": d["key"],
            "purpose": d["purpose"],
            "channel": d["channel"],
            "language": d["language"],
            "subject": d["subject"],
            "request_id": d["request_id"],
            "status": "queued",
            "attempts": 0,
            "next_attempt_at": env.time,
            "last_error": None,
            "provider_ref": None,
            "queued_at": env.time,
            "updated_at": env.time,
            "version": env.version,
        },
    )


def _set(env: Envelope, rows: Rows, **changes: Any) -> None:
    row = rows.get(M, env.aggregate_id)
    if row is not None:
        row.update(changes, updated_at=env.time, version=env.version)
        rows.put(M, row)


@projection.on(N.AttemptStarted)
def attempt_started(env: Envelope, rows: Rows) -> None:
    _set(env, rows, status="sending", attempts=env.data["attempt"])


@projection.on(N.Sent)
def sent(env: Envelope, rows: Rows) -> None:
    _set(env, rows, status="sent", provider_ref=env.data["provider_ref"], next_attempt_at=None)


@projection.on(N.AttemptFailed)
def failed(env: Envelope, rows: Rows) -> None:
    retry = env.data["retry_at"]
    _set(env, rows, status="failed", last_error=env.data["error"], next_attempt_at=datetime.fromisoformat(retry) if retry else None)


@projection.on(N.DeadLettered)
def dead_lettered(env: Envelope, rows: Rows) -> None:
    _set(env, rows, status="dead_lettered", last_error=env.data["reason"], next_attempt_at=None)


@projection.on(N.Suppressed)
def suppressed(env: Envelope, rows: Rows) -> None:
    _set(env, rows, status="suppressed", last_error=env.data["reason"], next_attempt_at=None)


@projection.on(N.RetryRequested)
def retried(env: Envelope, rows: Rows) -> None:
    _set(env, rows, status="queued", next_attempt_at=env.time)


@projection.on(PersonalDataErasure.Erased)
def erased(env: Envelope, rows: Rows) -> None:
    """A provider's error may name the recipient ("550 <mario@…> unknown"): the erased
    citizen's messages keep their state and times, not the error's text."""
    for subject in env.data["subjects"]:
        row = rows.get(M, subject)
        if row is not None and row.get("last_error"):
            rows.put(M, {**row, "last_error": ERASED})


# ------------------------------------------------------------------------ queries
def due(conn: Connection, now: datetime, limit: int = 100) -> list[dict[str, Any]]:
    """Messages to work on: queued or due for a retry, and those in doubt (sending)."""
    q = (
        sa.select(MESSAGES)
        .where(
            sa.or_(
                sa.and_(MESSAGES.c.status.in_(("queued", "failed")), MESSAGES.c.next_attempt_at <= now),
                MESSAGES.c.status == "sending",
            )
        )
        .order_by(MESSAGES.c.next_attempt_at)
        .limit(limit)
    )
    return [dict(r) for r in conn.execute(q).mappings()]


def listing(conn: Connection, *, status: str | None = None, request_id: str | None = None, limit: int = 100) -> list[dict[str, Any]]:
    q = sa.select(MESSAGES)
    if status:
        q = q.where(MESSAGES.c.status == status)
    if request_id:
        q = q.where(MESSAGES.c.request_id == request_id)
    return [dict(r) for r in conn.execute(q.order_by(MESSAGES.c.queued_at.desc()).limit(limit)).mappings()]


def counts(conn: Connection) -> dict[str, int]:
    q = sa.select(MESSAGES.c.status, sa.func.count()).group_by(MESSAGES.c.status)
    return {status: n for status, n in conn.execute(q)}


OUTBOX_PREFIX = "outbox:"  # provider_ref of a message written to the local outbox (infra/outbox.py)
UNDELIVERED = ("failed", "dead_lettered")


def for_request(conn: Connection, request_id: str) -> dict[str, Any]:
    """A request's messages, oldest first, with their state and last error; ``undelivered``
    counts those whose last attempt failed (``failed``: to be retried; ``dead_lettered``:
    given up, an operator may retry), which a screen shows on the case."""
    q = sa.select(MESSAGES).where(MESSAGES.c.request_id == request_id).order_by(MESSAGES.c.queued_at, MESSAGES.c.id)
    messages = []
    for r in conn.execute(q).mappings():
        row = dict(r)
        ref = row.get("provider_ref") or ""
        row["outbox"] = ref[len(OUTBOX_PREFIX) :] if row["status"] == "sent" and ref.startswith(OUTBOX_PREFIX) else None
        messages.append(row)
    counts: dict[str, int] = {}
    for row in messages:
        counts[row["status"]] = counts.get(row["status"], 0) + 1
    return {
        "counts": counts,
        "undelivered": sum(counts.get(s, 0) for s in UNDELIVERED),
        "messages": messages,
    }


def ids_for_request(conn: Connection, request_id: str) -> set[str]:
    return {str(i) for i in conn.execute(sa.select(MESSAGES.c.id).where(MESSAGES.c.request_id == request_id)).scalars()}
