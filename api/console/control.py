"""The control office's screen (监督): cases awaiting an ownership ruling, supervised
(督办) cases, overdue and escalated work, and the reminders (催办) sent to departments.

A ruling, starting or ending supervision and extension decisions are forms posting to
the JSON API (``/requests/{ref}/ruling``, ``/supervision``, ``/extension/decision``).
"""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import sqlalchemy as sa
from fastapi import Request
from fastapi.responses import HTMLResponse

from api.console.reference import department_names, problem_names
from api.console.reference import departments as catalogue_departments
from api.console.session import page
from api.console.supervisor import deadline_class, pending_extensions
from api.console.web import render
from api.routing import HotlineRouter
from domain.access import Action
from domain.base import Actor, event_type_name
from domain.requests.aggregate import OPEN_STATES
from domain.requests.aggregate import ServiceRequest as R
from infra.runtime import Hotline
from projections import request_status, sla_breaches

router = HotlineRouter(include_in_schema=False)

SENT_FOR_RULING = event_type_name(R.SentForRuling)
RETURNED = event_type_name(R.ReturnedToDispatcher)
REMINDER_TYPES = {event_type_name(R.ReminderSent): "reminder", event_type_name(R.Escalated): "escalation"}
RECENT_REMINDERS = 50


def _details(value: Any) -> dict[str, Any]:
    return (json.loads(value) if isinstance(value, str) else value) or {}


def control_view(hotline: Hotline) -> dict[str, Any]:
    now = hotline.clock.now()
    rs, t = request_status.REQUESTS, request_status.TIMELINE
    with hotline.read_store.engine.connect() as conn:
        awaiting = [dict(r) for r in conn.execute(sa.select(rs).where(rs.c.status == "awaiting_ruling").order_by(rs.c.due_at)).mappings()]
        for row in awaiting:
            # Why it came here: the departments that returned it, with their reasons.
            steps = conn.execute(
                sa.select(t.c.type, t.c.details, t.c.at)
                .where(t.c.request_id == row["id"], t.c.type.in_([RETURNED, SENT_FOR_RULING]))
                .order_by(t.c.version)
            ).all()
            row["returns"] = [{**_details(s.details), "at": s.at} for s in steps if s.type == RETURNED]
            sent = [_details(s.details) for s in steps if s.type == SENT_FOR_RULING]
            row["involved"] = sent[-1].get("departments_involved", []) if sent else []
        open_supervised = sa.select(rs).where(rs.c.supervised.is_(True), rs.c.status.in_(OPEN_STATES)).order_by(rs.c.due_at)
        supervised = [dict(r) for r in conn.execute(open_supervised).mappings()]
        overdue = sla_breaches.breaches(conn, now, due_within=timedelta(0))["overdue"]
        reminders = [
            {**dict(r), "details": _details(r["details"]), "kind": REMINDER_TYPES[r["type"]]}
            for r in conn.execute(
                sa.select(t.c.request_id, t.c.type, t.c.at, t.c.details, rs.c.reference, rs.c.status)
                .select_from(t.join(rs, rs.c.id == t.c.request_id))
                .where(t.c.type.in_(list(REMINDER_TYPES)))
                .order_by(t.c.at.desc())
                .limit(RECENT_REMINDERS)
            ).mappings()
        ]
    for row in overdue:
        row["tone"] = deadline_class(row)
        row["escalated"] = bool(row.get("escalated"))
    # Overdue first the escalated ones (the control office already owns them), then the longest late.
    overdue.sort(key=lambda r: (not r["escalated"], -(r["overdue_hours"] or 0)))
    catalogue = catalogue_departments(hotline)
    return {
        "awaiting": awaiting,
        "supervised": supervised,
        "overdue": overdue,
        "reminders": reminders,
        "extensions": pending_extensions(hotline),
        "departments": department_names(hotline),
        "problems": problem_names(hotline),
        "dispatchable": [dep for dep, info in catalogue.items() if not info.get("is_control_office")],
        "at": now.isoformat(),
    }


@router.get("/console/control", response_class=HTMLResponse)
def control_page(request: Request, actor: Actor = page(Action.REQUESTS_OVERSEE)) -> HTMLResponse:
    return render(request, "control/control.html", actor, part="control/_board.html", **control_view(request.app.state.hotline))
