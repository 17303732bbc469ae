"""Request status: what a citizen, an operator, the IVR or Open311 sees of one request,
and its timeline (every step, who and when)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from domain.base import event_classes
from domain.envelope import Envelope
from domain.requests.aggregate import ServiceRequest as R
from projections.base import Handler, Projection, Rows, UtcDateTime

projection = Projection("request_status")
REQUESTS = projection.table(
    "requests",
    sa.Column("id", sa.String(36), primary_key=True),
    sa.Column("reference", sa.String(32), nullable=False, unique=True),
    sa.Column("kind", sa.String(20)),
    sa.Column("subtype", sa.String(20)),
    sa.Column("channel", sa.String(20)),
    sa.Column("status", sa.String(20), index=True),
    sa.Column("urgency", sa.String(20)),
    sa.Column("description", sa.Text),
    sa.Column("location", sa.JSON),
    sa.Column("language", sa.String(5)),
    sa.Column("citizen_id", sa.String(36), index=True),
    sa.Column("contact_hidden", sa.Boolean),
    sa.Column("reply_channel", sa.String(10)),
    sa.Column("problem_code", sa.String(64)),
    sa.Column("category_id", sa.String(64)),
    sa.Column("department_id", sa.String(64), index=True),
    sa.Column("provider_id", sa.String(64)),
    sa.Column("registered_at", UtcDateTime),
    sa.Column("due_at", UtcDateTime),
    sa.Column("accepted_at", UtcDateTime),
    sa.Column("first_response_at", UtcDateTime),
    sa.Column("expected_at", UtcDateTime),
    sa.Column("resolved_at", UtcDateTime),
    sa.Column("closed_at", UtcDateTime),
    sa.Column("closed_on_time", sa.Boolean),
    sa.Column("return_count", sa.Integer),
    sa.Column("reopen_count", sa.Integer),
    sa.Column("supervised", sa.Boolean),
    sa.Column("escalated", sa.Boolean),
    sa.Column("paused_from", sa.String(20)),  # the status a request waiting for the citizen returns to
    sa.Column("deadline_missed", sa.Boolean),
    sa.Column("extension_pending", sa.Boolean),
    sa.Column("rating", sa.Integer),
    sa.Column("work_order_id", sa.String(36)),
    sa.Column("final_reply", sa.Text),
    sa.Column("work_order_outcome", sa.Text),
    sa.Column("version", sa.Integer),
    sa.Column("position", sa.BigInteger),
    sa.Column("updated_at", UtcDateTime),
)
TIMELINE = projection.table(
    "request_timeline",
    sa.Column("request_id", sa.String(36), primary_key=True),
    sa.Column("version", sa.Integer, primary_key=True),
    sa.Column("type", sa.String(80)),
    sa.Column("at", UtcDateTime),
    sa.Column("actor_id", sa.String(100)),
    sa.Column("actor_role", sa.String(30)),
    sa.Column("correlation_id", sa.String(64)),
    sa.Column("details", sa.JSON),
)
T = REQUESTS.name


def _ts(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


def _update(env: Envelope, rows: Rows, **changes: Any) -> None:
    row = rows.get(T, env.aggregate_id)
    if row is None:
        return
    row.update(changes, version=env.version, position=env.position, updated_at=env.time)
    rows.put(T, row)


@projection.on(*event_classes(R))
def on_any(env: Envelope, rows: Rows) -> None:
    # Timeline first: every event of a request is a step the auditor and the citizen see.
    details = {k: v for k, v in env.data.items() if k not in ("personal", "description")}
    rows.put(
        TIMELINE.name,
        {
            "request_id": env.aggregate_id,
            "version": env.version,
            "type": env.type,
            "at": env.time,
            "actor_id": env.meta.get("actor_id"),
            "actor_role": env.meta.get("actor_role"),
            "correlation_id": env.meta.get("correlation_id"),
            "details": details,
        },
    )
    handler = _STATE.get(env.event_class)
    if handler is not None:
        handler(env, rows)


def _registered(env: Envelope, rows: Rows) -> None:
    d = env.data
    rows.put(
        T,
        {
            "id": env.aggregate_id,
            "reference": d["reference"],
            "kind": d["kind"],
            "subtype": d["subtype"],
            "channel": d["channel"],
            "status": "registered",
            "urgency": d["urgency"],
            "description": d["description"],
            "location": d["location"],
            "language": d["language"],
            "citizen_id": d["citizen_id"],
            "contact_hidden": d["contact_hidden"],
            "reply_channel": d["reply_channel"],
            "registered_at": env.time,
            "due_at": _ts(d["due_at"]),
            "return_count": 0,
            "reopen_count": 0,
            "supervised": False,
            "extension_pending": False,
            "version": env.version,
            "position": env.position,
            "updated_at": env.time,
        },
    )


def _reopened(env: Envelope, rows: Rows) -> None:
    row = rows.get(T, env.aggregate_id) or {}
    _update(
        env,
        rows,
        status=env.data["status"],
        due_at=_ts(env.data["due_at"]),
        final_reply=None,
        resolved_at=None,
        closed_at=None,
        closed_on_time=None,
        rating=None,
        reopen_count=(row.get("reopen_count") or 0) + 1,
    )


# What each event changes in the request's row (besides its timeline entry).
_STATE: dict[type, Handler] = {
    R.Registered: _registered,
    R.Classified: lambda e, r: _update(
        e, r, problem_code=e.data["problem_code"], category_id=e.data["category_id"], due_at=_ts(e.data["due_at"])
    ),
    R.KindChanged: lambda e, r: _update(e, r, kind=e.data["kind"], subtype=e.data["subtype"]),
    R.Dispatched: lambda e, r: _update(
        e, r, status="dispatched", department_id=e.data["department_id"], provider_id=e.data["provider_id"], due_at=_ts(e.data["due_at"])
    ),
    R.Accepted: lambda e, r: _update(e, r, status="in_progress", accepted_at=e.time),
    R.ReturnedToDispatcher: lambda e, r: _update(e, r, status="returned", return_count=e.data["return_count"]),
    R.SentForRuling: lambda e, r: _update(e, r, status="awaiting_ruling"),
    R.InterimReplied: lambda e, r: _first_response(e, r, expected_at=_ts(e.data["expected_at"])),
    R.FinalReplied: lambda e, r: _first_response(e, r, status="replied", final_reply=e.data["message"]),
    R.Resolved: lambda e, r: _update(e, r, status="resolved", resolved_at=e.time),
    R.Closed: lambda e, r: _update(e, r, status="closed", closed_at=e.time, closed_on_time=e.data["on_time"]),
    R.Reopened: _reopened,
    R.Rated: lambda e, r: _update(e, r, rating=e.data["score"]),
    R.ExtensionRequested: lambda e, r: _update(e, r, extension_pending=True),
    R.ExtensionApproved: lambda e, r: _update(e, r, extension_pending=False, due_at=_ts(e.data["due_at"])),
    R.ExtensionRefused: lambda e, r: _update(e, r, extension_pending=False),
    R.SupervisionStarted: lambda e, r: _update(e, r, supervised=True),
    R.SupervisionEnded: lambda e, r: _update(e, r, supervised=False),
    R.WorkOrderLinked: lambda e, r: _update(e, r, work_order_id=e.data["work_order_id"]),
    R.WorkOrderOutcomeRecorded: lambda e, r: _update(e, r, work_order_outcome=e.data["outcome"]),
    R.WaitingForCitizen: lambda e, r: _update(e, r, status="waiting_citizen", paused_from=e.data["resume_status"]),
    R.CitizenResponded: lambda e, r: _resumed(e, r),
    R.DeadlineMissed: lambda e, r: _update(e, r, deadline_missed=True),
    R.Escalated: lambda e, r: _update(e, r, escalated=True, supervised=True),
}


def _resumed(env: Envelope, rows: Rows) -> None:
    row = rows.get(T, env.aggregate_id)
    if row is not None:
        _update(env, rows, status=row.get("paused_from") or "registered", paused_from=None, due_at=_ts(env.data["due_at"]))


def _first_response(env: Envelope, rows: Rows, **changes: Any) -> None:
    row = rows.get(T, env.aggregate_id)
    if row is not None and row.get("first_response_at") is None:
        changes["first_response_at"] = env.time
    _update(env, rows, **changes)


# ------------------------------------------------------------------------ queries
def get(conn: Connection, request_id: str) -> dict[str, Any] | None:
    row = conn.execute(sa.select(REQUESTS).where(REQUESTS.c.id == request_id)).mappings().first()
    return dict(row) if row else None


def by_reference(conn: Connection, reference: str) -> dict[str, Any] | None:
    row = conn.execute(sa.select(REQUESTS).where(REQUESTS.c.reference == reference)).mappings().first()
    return dict(row) if row else None


def timeline(conn: Connection, request_id: str) -> list[dict[str, Any]]:
    rows = conn.execute(sa.select(TIMELINE).where(TIMELINE.c.request_id == request_id).order_by(TIMELINE.c.version)).mappings()
    return [dict(r) for r in rows]


@projection.signals
def case_of(env: Envelope, rows: Rows) -> list[str]:
    """A case's change is announced to its department's inbox, its citizen's page and
    the case page itself."""
    row = rows.get(REQUESTS.name, env.aggregate_id)
    if row is None:
        return []
    keys = [f"request-{row['id']}"]
    if row.get("department_id"):
        keys.append(f"department-{row['department_id']}")
    if row.get("citizen_id"):
        keys.append(f"citizen-{row['citizen_id']}")
    return keys


def search(
    conn: Connection,
    *,
    status: str | None = None,
    department_id: str | None = None,
    citizen_id: str | None = None,
    problem_code: str | None = None,
    limit: int = 50,
    offset: int = 0,
) -> list[dict[str, Any]]:
    q = sa.select(REQUESTS)
    if status:
        q = q.where(REQUESTS.c.status == status)
    if department_id:
        q = q.where(REQUESTS.c.department_id == department_id)
    if citizen_id:
        q = q.where(REQUESTS.c.citizen_id == citizen_id)
    if problem_code:
        q = q.where(REQUESTS.c.problem_code == problem_code)
    q = q.order_by(REQUESTS.c.registered_at.desc()).limit(limit).offset(offset)
    return [dict(r) for r in conn.execute(q).mappings()]
