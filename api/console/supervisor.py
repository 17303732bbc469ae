"""The supervisor's screens: the live wallboard, the agents (force a state, move between
queues, monitor / whisper / barge in), deadlines (the SLA breach list and the
departments' workloads, with drill-down) and approvals (extensions waiting for a decision).

Reads go to the read models directly, with the rules the matching API reads apply;
every change is a form posting to the JSON API (``static/console.js``).
"""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import sqlalchemy as sa
from fastapi import Query, Request
from fastapi.responses import HTMLResponse

from api.auth import department_filter, row_access
from api.console.reference import department_names, problem_names, queue_names
from api.console.session import page
from api.console.web import N_, render
from api.routing import HotlineRouter
from domain.access import Access, Action, Scope, allows, scopes
from domain.base import Actor, event_type_name
from domain.contact_center.agents import NOT_READY_REASONS
from domain.requests.aggregate import OPEN_STATES
from domain.requests.aggregate import ServiceRequest as R
from infra.runtime import Hotline
from projections import agent_desk, department_workload, request_status, sla_breaches, wallboard

router = HotlineRouter(include_in_schema=False)

# A queue is in alarm when one of these is crossed (the wallboard's red tiles).
WAITING_ALARM = 5  # contacts waiting
AGENT_STATES = ("available", "reserved", "on_contact", "wrap_up", "not_ready")

# Not-ready reasons a supervisor may force (the domain's list, minus the ones the
# system itself sets).
FORCEABLE_REASONS = tuple(r for r in NOT_READY_REASONS if r not in ("after_call_work", "missed_offers", "login"))
SUPERVISE_MODES = {"monitor": N_("Monitor"), "whisper": N_("Whisper"), "barge": N_("Barge in")}

# Deadlines: how far ahead the list looks (hours), and when "due soon" turns amber.
WINDOWS = (4, 24, 72)
DEFAULT_WINDOW = 24
WARN_HOURS = 4.0


# How long, by its two largest units, floored: Babel's unit names and CLDR's list pattern.
def board_with_alarms(hotline: Hotline) -> dict[str, object]:
    with hotline.read_store.engine.connect() as conn:
        # "Today" is the hotline's local day, as every other time the console shows.
        board = wallboard.wallboard(conn, hotline.clock.now(), hotline.settings.time_zone)
    for q in board["queues"]:
        target = q["sl_target"]
        alarms = []
        if q["service_level_today"] is not None and target["percent"] and q["service_level_today"] * 100 < target["percent"]:
            alarms.append("service_level")
        if target["seconds"] and q["longest_wait_seconds"] > target["seconds"]:
            alarms.append("longest_wait")
        if q["waiting"] >= WAITING_ALARM:
            alarms.append("waiting")
        q["alarms"] = alarms
    return board


@router.get("/console/wallboard", response_class=HTMLResponse)
def wallboard_page(request: Request, actor: Actor = page(Action.CONTACT_CENTER_READ)) -> HTMLResponse:
    hotline: Hotline = request.app.state.hotline
    return render(
        request,
        "supervisor/wallboard.html",
        actor,
        part="supervisor/_board.html",
        board=board_with_alarms(hotline),
        states=AGENT_STATES,
    )


# ------------------------------------------------------------------------ agents
def agents_view(hotline: Hotline) -> dict[str, Any]:
    """Signed-in agents with their state, time in state, queues and live contact (if any)."""
    now = hotline.clock.now()
    with hotline.read_store.engine.connect() as conn:
        agents = wallboard.agents(conn, now)
        desk = agent_desk.DESK
        live = conn.execute(sa.select(desk.c.agent_id, desk.c.contact_id).where(desk.c.role == "active").order_by(desk.c.since))
        contact_of = {r.agent_id: r.contact_id for r in live}
    for a in agents:
        a["contact_id"] = contact_of.get(a["agent_id"])
    names = queue_names(hotline)  # the chips and the move list show queues by name
    return {"agents": agents, "queues": list(names), "queue_names": names, "at": now.isoformat()}


def _agents_values(hotline: Hotline) -> dict[str, Any]:
    return {**agents_view(hotline), "reasons": FORCEABLE_REASONS, "modes": SUPERVISE_MODES}


@router.get("/console/agents", response_class=HTMLResponse)
def agents_page(request: Request, actor: Actor = page(Action.CONTACT_CENTER_READ)) -> HTMLResponse:
    return render(request, "supervisor/agents.html", actor, part="supervisor/_agents.html", **_agents_values(request.app.state.hotline))


# ------------------------------------------------------------------------ deadlines
def deadline_class(row: dict[str, Any]) -> str:
    """ok / warn / bad: how close the deadline is (bad: passed)."""
    if row.get("overdue_hours") is not None:
        return "bad"
    return "warn" if (row.get("hours_left") or 0) <= WARN_HOURS else "ok"


def deadlines_view(hotline: Hotline, actor: Actor, department: str | None, within: float) -> dict[str, Any]:
    """The breach list (as ``GET /sla/breaches``), the workloads (as ``GET /departments/workloads``)
    and, for one department, its open cases."""
    department = department_filter(actor, Action.SLA_READ, department or None)
    now = hotline.clock.now()
    with hotline.read_store.engine.connect() as conn:
        found = sla_breaches.breaches(conn, now, due_within=timedelta(hours=within), department_id=department)
        loads = department_workload.workloads(conn)
        overdue = sla_breaches.overdue_by_department(conn, now)
        due_soon = sla_breaches.due_soon_by_department(conn, now, timedelta(hours=within))
        cases: list[dict[str, Any]] = []
        if department and allows(actor, Action.REQUESTS_READ, Access.of_department(department)):
            cases = [
                r
                for r in request_status.search(conn, department_id=department, limit=500)
                if r["status"] in OPEN_STATES and allows(actor, Action.REQUESTS_READ, row_access(r))
            ]
    workloads = []
    for dep in sorted(set(loads) | {d for d in overdue if d} | {d for d in due_soon if d}):
        if not allows(actor, Action.SLA_READ, Access.of_department(dep)):
            continue  # a department sees its own load only
        load = loads.get(dep, {"open": 0, "by_state": {}})
        workloads.append(
            {
                "department_id": dep,
                "open": load["open"],
                "by_state": load["by_state"],
                "overdue": overdue.get(dep, {}).get("overdue", 0),
                "due_soon": due_soon.get(dep, 0),
            }
        )
    for row in found["overdue"] + found["due_soon"]:
        row["tone"] = deadline_class(row)
    return {
        "overdue": found["overdue"],
        "due_soon": found["due_soon"],
        "workloads": workloads,
        "department": department,
        "cases": cases,
        "within": within,
        "windows": WINDOWS,
        "departments": department_names(hotline),
        "problems": problem_names(hotline),
        "at": now.isoformat(),
        "live_topics": live_topics(actor, department),
    }


def live_topics(actor: Actor, department: str | None) -> list[str]:
    """The whole lists for who reads them all; a department user, its own cases' changes."""
    if Scope.ALL in scopes(actor, Action.SLA_READ):
        return ["sla_breaches", "department_workload"]
    return [f"request_status:department-{department}"] if department else []


def _window(within: float | None) -> float:
    return within if within in WINDOWS else DEFAULT_WINDOW


@router.get("/console/sla", response_class=HTMLResponse)
def sla_page(
    request: Request,
    actor: Actor = page(Action.SLA_READ),
    department: str | None = None,
    within: float | None = Query(None),
) -> HTMLResponse:
    values = deadlines_view(request.app.state.hotline, actor, department, _window(within))
    return render(request, "supervisor/sla.html", actor, part="supervisor/_sla.html", **values)


# ------------------------------------------------------------------------ approvals
EXTENSION_REQUESTED = event_type_name(R.ExtensionRequested)


def pending_extensions(hotline: Hotline) -> list[dict[str, Any]]:
    """Open cases with an extension waiting, with what was asked (the last request's details)."""
    with hotline.read_store.engine.connect() as conn:
        rows = [
            dict(r)
            for r in conn.execute(
                sa.select(request_status.REQUESTS)
                .where(request_status.REQUESTS.c.extension_pending.is_(True), request_status.REQUESTS.c.status.in_(OPEN_STATES))
                .order_by(request_status.REQUESTS.c.due_at)
            ).mappings()
        ]
        t = request_status.TIMELINE
        for row in rows:
            asked = conn.execute(
                sa.select(t.c.details, t.c.at, t.c.actor_id)
                .where(t.c.request_id == row["id"], t.c.type == EXTENSION_REQUESTED)
                .order_by(t.c.version.desc())
                .limit(1)
            ).first()
            details = (json.loads(asked.details) if isinstance(asked.details, str) else asked.details) if asked else {}
            row["requested_due_at"] = details.get("requested_due_at")
            row["extension_reason"] = details.get("reason")
            row["asked_at"] = asked.at if asked else None
            row["asked_by"] = asked.actor_id if asked else None
    return rows


def _approvals_values(hotline: Hotline) -> dict[str, Any]:
    return {"extensions": pending_extensions(hotline), "departments": department_names(hotline)}


@router.get("/console/approvals", response_class=HTMLResponse)
def approvals_page(request: Request, actor: Actor = page(Action.REQUESTS_OVERSEE)) -> HTMLResponse:
    return render(
        request, "supervisor/approvals.html", actor, part="supervisor/_approvals.html", **_approvals_values(request.app.state.hotline)
    )
