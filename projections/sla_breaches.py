"""SLA breach list: open requests with their deadline, so supervisors and the control
office see what is due soon and what is overdue, by department.

The projection keeps one row per open request; "overdue" and "due soon" are decided at
query time against the clock, so the list is right without any timer having fired.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from domain.envelope import Envelope
from domain.requests.aggregate import ServiceRequest as R
from projections.base import Projection, Rows, UtcDateTime

projection = Projection("sla_breaches")
WATCH = projection.table(
    "sla_watch",
    sa.Column("request_id", sa.String(36), primary_key=True),
    sa.Column("reference", sa.String(32)),
    sa.Column("status", sa.String(20)),
    sa.Column("urgency", sa.String(20)),
    sa.Column("problem_code", sa.String(64)),
    sa.Column("department_id", sa.String(64), index=True),
    sa.Column("provider_id", sa.String(64)),
    sa.Column("registered_at", UtcDateTime),
    sa.Column("due_at", UtcDateTime, index=True),
    sa.Column("supervised", sa.Boolean),
    sa.Column("extension_pending", sa.Boolean),
    # Waiting for the citizen: the clock is stopped, so the row is neither due nor overdue.
    sa.Column("paused_since", UtcDateTime, nullable=True),
    sa.Column("status_before_pause", sa.String(20), nullable=True),
    sa.Column("escalated", sa.Boolean, nullable=True),
)
W = WATCH.name
# What a closed request was, so a reopened one reappears with its department.
MEMO = projection.table(
    "sla_closed_memo",
    sa.Column("request_id", sa.String(36), primary_key=True),
    sa.Column("reference", sa.String(32)),
    sa.Column("urgency", sa.String(20)),
    sa.Column("problem_code", sa.String(64)),
    sa.Column("department_id", sa.String(64)),
    sa.Column("provider_id", sa.String(64)),
)


# Ageing buckets past the deadline, in hours (the last is open-ended).
OVERDUE_BUCKETS = ((0, 24), (24, 72), (72, 168), (168, None))


def _parse(value: str) -> datetime:
    return datetime.fromisoformat(value)


def _set(env: Envelope, rows: Rows, **changes: Any) -> None:
    row = rows.get(W, env.aggregate_id)
    if row is not None:
        row.update(changes)
        rows.put(W, row)


@projection.on(R.Registered)
def registered(env: Envelope, rows: Rows) -> None:
    d = env.data
    rows.put(
        W,
        {
            "request_id": env.aggregate_id,
            "reference": d["reference"],
            "status": "registered",
            "urgency": d["urgency"],
            "problem_code": None,
            "department_id": None,
            "provider_id": None,
            "registered_at": env.time,
            "due_at": _parse(d["due_at"]),
            "supervised": False,
            "extension_pending": False,
            "paused_since": None,
            "status_before_pause": None,
            "escalated": False,
        },
    )


@projection.on(R.Classified)
def classified(env: Envelope, rows: Rows) -> None:
    _set(env, rows, problem_code=env.data["problem_code"], due_at=_parse(env.data["due_at"]))


@projection.on(R.Dispatched)
def dispatched(env: Envelope, rows: Rows) -> None:
    d = env.data
    _set(env, rows, status="dispatched", department_id=d["department_id"], provider_id=d["provider_id"], due_at=_parse(d["due_at"]))


# The request's status after each of these events.
STATUS_AFTER: dict[type, str] = {
    R.Accepted: "in_progress",
    R.ReturnedToDispatcher: "returned",
    R.SentForRuling: "awaiting_ruling",
    R.FinalReplied: "replied",
}


@projection.on(*STATUS_AFTER)
def status(env: Envelope, rows: Rows) -> None:
    _set(env, rows, status=STATUS_AFTER[env.event_class])


@projection.on(R.ExtensionRequested, R.ExtensionRefused)
def extension_pending(env: Envelope, rows: Rows) -> None:
    _set(env, rows, extension_pending=env.event_class is R.ExtensionRequested)


@projection.on(R.ExtensionApproved)
def extension_approved(env: Envelope, rows: Rows) -> None:
    _set(env, rows, extension_pending=False, due_at=_parse(env.data["due_at"]))


@projection.on(R.SupervisionStarted, R.SupervisionEnded)
def supervision(env: Envelope, rows: Rows) -> None:
    _set(env, rows, supervised=env.event_class is R.SupervisionStarted)


@projection.on(R.WaitingForCitizen)
def waiting(env: Envelope, rows: Rows) -> None:
    _set(env, rows, status="waiting_citizen", paused_since=env.time, status_before_pause=env.data["resume_status"])


@projection.on(R.CitizenResponded)
def resumed(env: Envelope, rows: Rows) -> None:
    row = rows.get(W, env.aggregate_id)
    if row is not None:
        status = row.get("status_before_pause") or "registered"
        _set(env, rows, status=status, paused_since=None, status_before_pause=None, due_at=_parse(env.data["due_at"]))


@projection.on(R.Escalated)
def escalated(env: Envelope, rows: Rows) -> None:
    _set(env, rows, escalated=True, supervised=True)


@projection.on(R.Reopened)
def reopened(env: Envelope, rows: Rows) -> None:
    # The row left the list at resolution; the memo brings back its department.
    rows.put(
        W,
        {
            "request_id": env.aggregate_id,
            "reference": None,
            "status": env.data["status"],
            "urgency": None,
            "problem_code": None,
            "department_id": None,
            "provider_id": None,
            "registered_at": env.time,
            "due_at": _parse(env.data["due_at"]),
            "supervised": False,
            "extension_pending": False,
            "paused_since": None,
            "status_before_pause": None,
            "escalated": False,
        },
    )
    _remember(env, rows)


def _remember(env: Envelope, rows: Rows) -> None:
    memo = rows.get(MEMO.name, env.aggregate_id)
    if memo is not None:
        _set(env, rows, **{k: memo[k] for k in ("reference", "urgency", "problem_code", "department_id", "provider_id")})


@projection.on(R.Resolved, R.Closed)
def done_and_remembered(env: Envelope, rows: Rows) -> None:
    row = rows.get(W, env.aggregate_id)
    if row is not None:
        rows.put(MEMO.name, {k: row[k] for k in ("request_id", "reference", "urgency", "problem_code", "department_id", "provider_id")})
        rows.delete(W, env.aggregate_id)


# ------------------------------------------------------------------------ queries
def breaches(
    conn: Connection,
    now: datetime,
    *,
    due_within: timedelta = timedelta(hours=4),
    department_id: str | None = None,
    limit: int = 500,
) -> dict[str, list[dict[str, Any]]]:
    q = sa.select(WATCH).where(WATCH.c.due_at <= now + due_within, _running())
    if department_id:
        q = q.where(WATCH.c.department_id == department_id)
    q = q.order_by(WATCH.c.due_at).limit(limit)
    overdue, due_soon = [], []
    for r in conn.execute(q).mappings():
        row = dict(r)
        due = row["due_at"] if row["due_at"].tzinfo else row["due_at"].replace(tzinfo=now.tzinfo)
        row["due_at"] = due
        if due < now:
            row["overdue_hours"] = round((now - due).total_seconds() / 3600, 2)
            overdue.append(row)
        else:
            row["hours_left"] = round((due - now).total_seconds() / 3600, 2)
            due_soon.append(row)
    return {"overdue": overdue, "due_soon": due_soon}


def overdue_by_department(conn: Connection, now: datetime) -> dict[str | None, dict[str, int]]:
    """Overdue counts per department, in ageing buckets (hours past the deadline)."""
    result: dict[str | None, dict[str, int]] = {}
    for r in conn.execute(sa.select(WATCH.c.department_id, WATCH.c.due_at).where(WATCH.c.due_at < now, _running())):
        due = r.due_at if r.due_at.tzinfo else r.due_at.replace(tzinfo=now.tzinfo)
        hours = (now - due).total_seconds() / 3600
        dep = result.setdefault(r.department_id, {_bucket_name(b): 0 for b in OVERDUE_BUCKETS} | {"overdue": 0})
        dep["overdue"] += 1
        for b in OVERDUE_BUCKETS:
            if hours >= b[0] and (b[1] is None or hours < b[1]):
                dep[_bucket_name(b)] += 1
    return result


def due_soon_by_department(conn: Connection, now: datetime, within: timedelta) -> dict[str | None, int]:
    q = (
        sa.select(WATCH.c.department_id, sa.func.count())
        .where(WATCH.c.due_at >= now, WATCH.c.due_at < now + within, _running())
        .group_by(WATCH.c.department_id)
    )
    return {dep: n for dep, n in conn.execute(q)}


def _bucket_name(bucket: tuple[int, int | None]) -> str:
    low, high = bucket
    return f"overdue_{low}h_plus" if high is None else f"overdue_{low}_{high}h"


def _running() -> sa.ColumnElement[bool]:
    """Rows whose clock runs: a request waiting for the citizen is neither due nor late."""
    return WATCH.c.paused_since.is_(None)


# Buckets ahead of the deadline, in hours left (due soon), then the overdue ones above.
DUE_BUCKETS: tuple[tuple[int, int | None], ...] = ((0, 4), (4, 24), (24, 72))


def ageing(conn: Connection, now: datetime, *, by: str = "provider") -> list[dict[str, Any]]:
    """Due-soon and overdue open work per department (and provider), in ageing buckets.

    ``by="department"`` groups by department only. Paused requests are counted apart
    (``waiting_citizen``): their clock is stopped. Buckets are computed at query time,
    so the answer is right across pauses, extensions and re-dispatches without timers."""
    cols = [WATCH.c.department_id] + ([WATCH.c.provider_id] if by == "provider" else [])
    q = sa.select(*cols, WATCH.c.due_at, WATCH.c.paused_since, WATCH.c.escalated)
    groups: dict[tuple[Any, ...], dict[str, Any]] = {}
    names = [_due_name(b) for b in DUE_BUCKETS] + [_bucket_name(b) for b in OVERDUE_BUCKETS]
    for r in conn.execute(q):
        key = tuple(r[: len(cols)])
        g = groups.setdefault(
            key,
            {
                "department_id": key[0],
                **({"provider_id": key[1]} if by == "provider" else {}),
                "open": 0,
                "waiting_citizen": 0,
                "overdue": 0,
                "due_soon": 0,
                "escalated": 0,
            }
            | {n: 0 for n in names},
        )
        g["open"] += 1
        if r.escalated:
            g["escalated"] += 1
        if r.paused_since is not None:
            g["waiting_citizen"] += 1
            continue
        hours = (r.due_at - now).total_seconds() / 3600
        if hours < 0:
            g["overdue"] += 1
            g[_bucket_name(_pick(OVERDUE_BUCKETS, -hours))] += 1
        else:
            bucket = _pick(DUE_BUCKETS, hours)
            if bucket is not None:
                g["due_soon"] += 1
                g[_due_name(bucket)] += 1
    return sorted(groups.values(), key=lambda g: (-g["overdue"], -g["due_soon"], str(g["department_id"])))


def _pick(buckets: tuple[tuple[int, int | None], ...], hours: float) -> Any:
    for b in buckets:
        if hours >= b[0] and (b[1] is None or hours < b[1]):
            return b
    return None


def _due_name(bucket: tuple[int, int | None]) -> str:
    return f"due_in_{bucket[0]}_{bucket[1]}h"
