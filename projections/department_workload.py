"""Department workloads: how many requests each department and provider holds, by state,
and the work orders they run. Overdue counts come from the SLA breach list at query time."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from domain.envelope import Envelope
from domain.events import events_of
from domain.requests.aggregate import ServiceRequest as R
from domain.work_orders.aggregate import WorkOrder as WO
from projections.base import Projection, Rows, UtcDateTime

# Version 2: a case returned to the dispatcher leaves the department's load.
projection = Projection("department_workload", version=2)
COUNTS = projection.table(
    "workload_counts",
    sa.Column("department_id", sa.String(64), primary_key=True),
    sa.Column("provider_id", sa.String(64), primary_key=True),  # "" when none
    sa.Column("state", sa.String(30), primary_key=True),
    sa.Column("count", sa.Integer, nullable=False),
)
# Where each request currently counts, so a state change moves exactly one unit.
PLACES = projection.table(
    "workload_places",
    sa.Column("item_id", sa.String(36), primary_key=True),
    sa.Column("department_id", sa.String(64)),
    sa.Column("provider_id", sa.String(64)),
    sa.Column("state", sa.String(30)),
    sa.Column("resume_state", sa.String(30), nullable=True),  # while waiting for the citizen
)
WORK_ORDERS = projection.table(
    "work_orders",
    sa.Column("id", sa.String(36), primary_key=True),
    sa.Column("problem_code", sa.String(64), index=True),
    sa.Column("department_id", sa.String(64), index=True),
    sa.Column("provider_id", sa.String(64)),
    sa.Column("status", sa.String(20), index=True),
    sa.Column("title", sa.JSON),
    sa.Column("request_ids", sa.JSON),
    sa.Column("tasks_total", sa.Integer),
    sa.Column("tasks_done", sa.Integer),
    sa.Column("outcome", sa.Text),
    sa.Column("created_at", UtcDateTime),
    sa.Column("updated_at", UtcDateTime),
    sa.Column("version", sa.Integer),
)
N, P, WT = COUNTS.name, PLACES.name, WORK_ORDERS.name
REQUEST_STATES: dict[type, str | None] = {
    R.Dispatched: "dispatched",
    R.Accepted: "in_progress",
    R.ReturnedToDispatcher: None,  # the dispatcher holds it now, not the department that returned it
    R.SentForRuling: "awaiting_ruling",
    R.FinalReplied: "replied",
    R.Resolved: None,
    R.Closed: None,
}


def _bump(rows: Rows, department: str, provider: str | None, state: str, delta: int) -> None:
    key = (department, provider or "", state)
    row = rows.get(N, *key) or {"department_id": department, "provider_id": provider or "", "state": state, "count": 0}
    row["count"] += delta
    if row["count"] == 0:
        rows.delete(N, *key)
    else:
        rows.put(N, row)


def _move(rows: Rows, item_id: str, department: str, provider: str | None, state: str | None) -> None:
    """Moves an item's one unit of work to (department, provider, state); None: done."""
    place = rows.get(P, item_id)
    if place is not None and place["state"] is not None:
        _bump(rows, place["department_id"], place["provider_id"], place["state"], -1)
    # A finished item keeps its place (state None) so that reopening finds its department.
    rows.put(P, {"item_id": item_id, "department_id": department, "provider_id": provider, "state": state})
    if department is not None and state is not None:
        _bump(rows, department, provider, state, +1)


@projection.on(R.Dispatched)
def dispatched(env: Envelope, rows: Rows) -> None:
    _move(rows, env.aggregate_id, env.data["department_id"], env.data["provider_id"], "dispatched")


@projection.on(R.Accepted, R.ReturnedToDispatcher, R.SentForRuling, R.FinalReplied, R.Resolved, R.Closed)
def request_state(env: Envelope, rows: Rows) -> None:
    place = rows.get(P, env.aggregate_id)
    if place is None:
        return  # never dispatched: the hotline's own work, not a department's
    _move(rows, env.aggregate_id, place["department_id"], place["provider_id"], REQUEST_STATES[env.event_class])


@projection.on(R.WaitingForCitizen)
def waiting_for_citizen(env: Envelope, rows: Rows) -> None:
    place = rows.get(P, env.aggregate_id)
    if place is None or place["state"] is None:
        return
    resume = place["state"]
    _move(rows, env.aggregate_id, place["department_id"], place["provider_id"], "waiting_citizen")
    moved = rows.get(P, env.aggregate_id) or {}
    moved["resume_state"] = resume
    rows.put(P, moved)


@projection.on(R.CitizenResponded)
def citizen_responded(env: Envelope, rows: Rows) -> None:
    place = rows.get(P, env.aggregate_id)
    if place is None or place["state"] != "waiting_citizen":
        return
    _move(rows, env.aggregate_id, place["department_id"], place["provider_id"], place.get("resume_state") or "dispatched")


@projection.on(R.Reopened)
def reopened(env: Envelope, rows: Rows) -> None:
    place = rows.get(P, env.aggregate_id)
    if place is not None and env.data["status"] == "in_progress":
        _move(rows, env.aggregate_id, place["department_id"], place["provider_id"], "in_progress")


def work_order_created(env: Envelope, row: dict[str, Any]) -> None:
    d = env.data
    row.update(
        id=env.aggregate_id,
        problem_code=d["problem_code"],
        department_id=d["department_id"],
        provider_id=d["provider_id"],
        status="open",
        title=d["template"].get("title"),
        request_ids=[d["request_id"]],
        tasks_total=len(d["template"].get("tasks", [])),
        tasks_done=0,
        outcome=None,
        created_at=env.time,
    )


def duplicate_linked(env: Envelope, row: dict[str, Any]) -> None:
    row["request_ids"] = [*row["request_ids"], env.data["request_id"]]


def wo_started(env: Envelope, row: dict[str, Any]) -> None:
    row["status"] = "in_progress"


def wo_task(env: Envelope, row: dict[str, Any]) -> None:
    row["tasks_done"] += 1


WORK_ORDER_FINISHED: dict[type, str] = {WO.Completed: "completed", WO.Cancelled: "cancelled"}


def wo_finished(env: Envelope, row: dict[str, Any]) -> None:
    row.update(status=WORK_ORDER_FINISHED[env.event_class], outcome=env.data.get("outcome") or env.data.get("reason"))


def wo_reassigned(env: Envelope, row: dict[str, Any]) -> None:
    row.update(department_id=env.data["department_id"], provider_id=env.data["provider_id"])


# What each event of a work order changes on its row; an event not listed (one added
# later) changes nothing shown but still moves the version.
WORK_ORDER_STATE: dict[type, Callable[[Envelope, dict[str, Any]], None]] = {
    WO.Created: work_order_created,
    WO.DuplicateLinked: duplicate_linked,
    WO.Started: wo_started,
    WO.TaskDone: wo_task,
    WO.Completed: wo_finished,
    WO.Cancelled: wo_finished,
    WO.Reassigned: wo_reassigned,
}


@projection.on(*events_of(WO))
def work_order_event(env: Envelope, rows: Rows) -> None:
    row = rows.get(WT, env.aggregate_id)
    if row is None and env.event_class is not WO.Created:
        return  # its creation was never seen: nothing to show (as before)
    row = row or {}
    change = WORK_ORDER_STATE.get(env.event_class)
    if change is not None:
        change(env, row)
    # Every event of the work order's stream: the row is at the aggregate's version after
    # it, so If-Match with the version read succeeds.
    row.update(updated_at=env.time, version=env.version)
    rows.put(WT, row)


# ------------------------------------------------------------------------ queries
@projection.signals
def department_of(env: Envelope, rows: Rows) -> list[str]:
    """A department's work changed: its inbox and its line on the workloads follow. (The
    row the handler just touched: a work order's, or a request's place.)"""
    row = rows.get(WT if env.event_class in WORK_ORDER_EVENTS else P, env.aggregate_id)
    return [f"department-{row['department_id']}"] if row and row.get("department_id") else []


WORK_ORDER_EVENTS = frozenset(events_of(WO))


def workloads(conn: Connection) -> dict[str, dict[str, Any]]:
    result: dict[str, dict[str, Any]] = {}
    for r in conn.execute(sa.select(COUNTS)).mappings():
        dep = result.setdefault(r["department_id"], {"department_id": r["department_id"], "by_state": {}, "providers": {}, "open": 0})
        dep["by_state"][r["state"]] = dep["by_state"].get(r["state"], 0) + r["count"]
        dep["open"] += r["count"]
        if r["provider_id"]:
            prov = dep["providers"].setdefault(r["provider_id"], {})
            prov[r["state"]] = prov.get(r["state"], 0) + r["count"]
    q = sa.select(WORK_ORDERS.c.department_id, WORK_ORDERS.c.status, sa.func.count()).group_by(
        WORK_ORDERS.c.department_id, WORK_ORDERS.c.status
    )
    for dep_id, status, n in conn.execute(q):
        dep = result.setdefault(dep_id, {"department_id": dep_id, "by_state": {}, "providers": {}, "open": 0})
        dep.setdefault("work_orders", {})[status] = n
    return result


def work_order(conn: Connection, order_id: str) -> dict[str, Any] | None:
    row = conn.execute(sa.select(WORK_ORDERS).where(WORK_ORDERS.c.id == order_id)).mappings().first()
    return dict(row) if row else None


def work_orders(
    conn: Connection, *, status: str | None = None, department_id: str | None = None, problem_code: str | None = None, limit: int = 100
) -> list[dict[str, Any]]:
    q = sa.select(WORK_ORDERS)
    if status:
        q = q.where(WORK_ORDERS.c.status == status)
    if department_id:
        q = q.where(WORK_ORDERS.c.department_id == department_id)
    if problem_code:
        q = q.where(WORK_ORDERS.c.problem_code == problem_code)
    return [dict(r) for r in conn.execute(q.order_by(WORK_ORDERS.c.created_at.desc()).limit(limit)).mappings()]


def workloads_with_deadlines(conn: Connection, now: Any) -> dict[str, dict[str, Any]]:
    """Workloads per department and provider, with due-soon / overdue ageing buckets
    (from the SLA breach list, computed at ``now``: right across pauses and extensions)."""
    from projections.sla_breaches import ageing

    result = workloads(conn)
    for g in ageing(conn, now, by="department"):
        if g["department_id"] is None:
            continue
        dep = result.setdefault(g["department_id"], {"department_id": g["department_id"], "by_state": {}, "providers": {}, "open": 0})
        dep["deadlines"] = {k: v for k, v in g.items() if k != "department_id"}
    for g in ageing(conn, now, by="provider"):
        if g["department_id"] is None:
            continue
        dep = result[g["department_id"]]
        dep.setdefault("provider_deadlines", {})[g["provider_id"] or ""] = {
            k: v for k, v in g.items() if k not in ("department_id", "provider_id")
        }
    return result
