"""A department's inbox: the cases dispatched to it (accept or return them, reply to the
citizen), its work orders with their tasks, and how close each deadline is.

Reads come from the read models with the API's own filters (``department_filter``: a
department user sees only their departments, whatever the URL asks); every action is a
form posting to the API's command endpoints, so the domain's rules and refusals are the
API's. The lists refresh when the live feed says one of the department's cases changed.

A case card also tells its deadline extension (asked, approved or refused: the supervisor
decides on the approvals screen) and whether the department is waiting for the citizen
(the deadline is paused, as the domain's ``waiting_citizen`` status stops the SLA clock).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from fastapi import Query, Request
from fastapi.responses import HTMLResponse
from sqlalchemy.engine import Connection

from api.auth import department_filter
from api.console.reference import department_names
from api.console.session import page
from api.console.web import N_, render
from api.routing import HotlineRouter
from domain.access import Action, Scope, allows, scopes
from domain.base import Actor, event_type_name
from domain.requests.aggregate import ServiceRequest as R
from domain.requests.sla import WAITING
from infra.runtime import Hotline
from projections import department_workload, request_status

router = HotlineRouter(include_in_schema=False)

# The inbox's sections: which statuses each lists (a department's open work).
SECTIONS: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    ("to-accept", N_("To accept"), ("dispatched",)),
    ("in-progress", N_("In progress"), ("in_progress", "waiting_citizen")),
    ("replied", N_("Replied"), ("replied",)),
)
OPEN_WORK_ORDERS = ("open", "in_progress")
LIMIT = 100
# A deadline turns amber when less than this share of its allowance is left (and at least WARN_FLOOR before it).
WARN_SHARE = 0.25
WARN_FLOOR = timedelta(hours=4)


def _aware(value: datetime | None) -> datetime | None:
    if value is None:
        return None
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def deadline(due_at: datetime | None, started_at: datetime | None, now: datetime) -> dict[str, Any] | None:
    """How close a deadline is: ``ok`` / ``warn`` / ``bad`` (overdue) and the time left or past."""
    due, start = _aware(due_at), _aware(started_at)
    if due is None:
        return None
    left = (due - now).total_seconds()
    if left <= 0:
        return {"state": "bad", "seconds": -left, "overdue": True}
    allowance = (due - start).total_seconds() if start is not None and start < due else left
    near = max(allowance * WARN_SHARE, WARN_FLOOR.total_seconds())
    return {"state": "warn" if left <= near else "ok", "seconds": left, "overdue": False}


# The steps of a case its card tells, read from the case's timeline (the read model's row
# keeps only whether an extension is pending): the extension's, and the last pause's.
EXTENSION_STEPS = {
    event_type_name(R.ExtensionRequested): "pending",
    event_type_name(R.ExtensionApproved): "approved",
    event_type_name(R.ExtensionRefused): "refused",
}
WAITING_STEP = event_type_name(R.WaitingForCitizen)


def _details(value: Any) -> dict[str, Any]:
    # A JSON column: a dict on PostgreSQL, text on SQLite.
    loaded = json.loads(value) if isinstance(value, str) else value
    return dict(loaded or {})


def case_steps(conn: Connection, request_ids: Iterable[str]) -> dict[str, dict[str, Any]]:
    """Per case: the last extension asked (``asked``), the decision on it if any
    (``decision``) and the last pause for the citizen (``waiting``); one query for a page."""
    ids = list(dict.fromkeys(request_ids))
    if not ids:
        return {}
    t = request_status.TIMELINE
    query = (
        sa.select(t.c.request_id, t.c.type, t.c.at, t.c.details)
        .where(t.c.request_id.in_(ids), t.c.type.in_([*EXTENSION_STEPS, WAITING_STEP]))
        .order_by(t.c.request_id, t.c.version)
    )
    steps: dict[str, dict[str, Any]] = {}
    for row in conn.execute(query).mappings():
        case = steps.setdefault(row["request_id"], {"asked": None, "decision": None, "waiting": None})
        details = _details(row["details"])
        state = EXTENSION_STEPS.get(row["type"])
        if state == "pending":
            case["asked"] = {"at": row["at"], "requested_due_at": details.get("requested_due_at"), "reason": details.get("reason")}
            case["decision"] = None  # a new request: the last decision was about an earlier one
        elif state is not None:
            # Approved: the deadline given (may differ from the one asked) and a comment; refused: the reason.
            note = details.get("comment") if state == "approved" else details.get("reason")
            case["decision"] = {"state": state, "at": row["at"], "due_at": details.get("due_at"), "note": note}
        else:
            case["waiting"] = {"since": row["at"], "reason": details.get("reason")}
    return steps


def extension_of(row: dict[str, Any], steps: dict[str, Any]) -> dict[str, Any] | None:
    """The card's extension: pending (the read model's flag decides), else the last decision."""
    asked, decision = steps.get("asked") or {}, steps.get("decision")
    shown = {"requested_due_at": asked.get("requested_due_at"), "reason": asked.get("reason"), "due_at": None, "note": None}
    if row.get("extension_pending"):
        return {**shown, "state": "pending", "at": asked.get("at")}
    if decision is not None:
        return {**shown, **decision}
    return None


def with_steps(rows: list[dict[str, Any]], steps: dict[str, dict[str, Any]]) -> None:
    """Adds to each card its extension, its pause and its deadline (paused while waiting)."""
    for row in rows:
        found = steps.get(row["id"], {})
        row["extension"] = extension_of(row, found)
        waiting = row["status"] == WAITING
        row["waiting"] = (found.get("waiting") or {"since": None, "reason": None}) if waiting else None
        if waiting:
            # The clock is stopped: the deadline moves by the pause when the citizen answers.
            row["deadline"] = {"state": "paused", "since": row["waiting"]["since"], "overdue": False}


def local_input(value: datetime | None, zone: ZoneInfo) -> str:
    """A moment as a ``datetime-local`` input reads it (the hotline's time zone, as the page
    shows times), a minute after it: the earliest new deadline to offer."""
    moment = _aware(value)
    if moment is None:
        return ""
    return (moment.astimezone(zone) + timedelta(minutes=1)).strftime("%Y-%m-%dT%H:%M")


def departments_shown(actor: Actor, chosen: str | None) -> tuple[str | None, list[str]]:
    """The department whose inbox is shown (None: all, for who reads every department), and
    the departments the user may pick from."""
    own = list(actor.departments)
    wanted = chosen or (own[0] if own else None)
    # Exactly the API's filter: a department user gets one of their own, or a refusal.
    return department_filter(actor, Action.REQUESTS_READ, wanted), own


def work_order_tasks(hotline: Hotline, order_id: str) -> list[dict[str, Any]]:
    """The order's tasks as its template named them, and which are done (the read model
    keeps only counts; the work order itself knows which)."""
    from eventsourcing.application import AggregateNotFoundError

    try:
        order: Any = hotline.store.repository.get(uuid.UUID(order_id))
    except (AggregateNotFoundError, ValueError):
        return []
    done: set[int] = set(order.tasks_done)
    return [{"index": i, "names": names, "done": i in done} for i, names in enumerate(order.template.get("tasks", []))]


def inbox_values(request: Request, actor: Actor, department: str | None) -> dict[str, Any]:
    hotline: Hotline = request.app.state.hotline
    now = hotline.clock.now()
    shown, own = departments_shown(actor, department)
    zone = ZoneInfo(hotline.settings.time_zone)
    sections = []
    with hotline.read_store.engine.connect() as conn:
        for key, label, statuses in SECTIONS:
            rows: list[dict[str, Any]] = []
            for status in statuses:
                rows.extend(request_status.search(conn, status=status, department_id=shown, limit=LIMIT))
            rows.sort(key=lambda r: _aware(r["due_at"]) or datetime.max.replace(tzinfo=UTC))
            for row in rows:
                row["deadline"] = deadline(row["due_at"], row["registered_at"], now)
                row["extend_from"] = local_input(row["due_at"], zone)
            with_steps(rows, case_steps(conn, (r["id"] for r in rows)))
            sections.append({"key": key, "label": label, "cases": rows})
        orders: list[dict[str, Any]] = []
        references: dict[str, str] = {}
        if allows(actor, Action.WORK_ORDERS_READ):
            wo_department = department_filter(actor, Action.WORK_ORDERS_READ, shown)
            for status in OPEN_WORK_ORDERS:
                orders.extend(department_workload.work_orders(conn, status=status, department_id=wo_department, limit=LIMIT))
            for order in orders:
                for request_id in order["request_ids"]:
                    linked = request_status.get(conn, request_id)
                    if linked is not None:
                        references[request_id] = linked["reference"]
    for order in orders:
        order["tasks"] = work_order_tasks(hotline, order["id"])
        order["references"] = [references[r] for r in order["request_ids"] if r in references]
    names = department_names(hotline)
    choices = own if own else ([] if Scope.ALL not in scopes(actor, Action.REQUESTS_READ) else sorted(names))
    return {
        "department": shown,
        "choices": choices,
        "department_names": names,
        "sections": sections,
        "orders": orders,
        "now": now,
        # The department's cases and its work orders (a task done changes no case).
        "topics": [f"{model}:department-{d}" for d in ([shown] if shown else own) for model in ("request_status", "department_workload")]
        or ["request_status"],
    }


@router.get("/console/inbox", response_class=HTMLResponse)
def inbox_page(
    request: Request, department: str | None = Query(None, max_length=64), actor: Actor = page(Action.WORK_ORDERS_READ)
) -> HTMLResponse:
    return render(request, "inbox/inbox.html", actor, part="inbox/_cases.html", **inbox_values(request, actor, department))
