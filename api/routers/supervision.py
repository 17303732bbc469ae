"""Supervisors' and the control office's views: department workloads and the SLA breach list."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from fastapi import Depends, Query

from api.auth import allow, department_filter
from api.deps import ReadYourWrites, get_hotline
from api.routing import HotlineRouter, quick_read
from api.schemas import BreachList, DepartmentWorkload
from domain.access import Access, Action, allows
from domain.base import Actor
from infra.runtime import Hotline
from projections import department_workload, sla_breaches

router = HotlineRouter(tags=["supervision"])
# What counts as "due soon" by default on each list (the auditor's "as of" replays of them
# take the same: api/routers/audit.py).
WORKLOADS_DUE_WITHIN_HOURS = 24
BREACHES_DUE_WITHIN_HOURS = 4


@router.get("/departments/workloads", response_model=list[DepartmentWorkload], summary="Work held by each department")
def workloads(
    hotline: Hotline = Depends(get_hotline),
    actor: Actor = allow(Action.SLA_READ),
    due_within_hours: float = Query(WORKLOADS_DUE_WITHIN_HOURS, gt=0, le=24 * 30),
    _ryw: None = ReadYourWrites,
) -> list[dict[str, Any]]:
    with hotline.read_store.engine.connect() as conn:
        # A department sees its own load.
        return department_loads(
            conn,
            hotline.clock.now(),
            timedelta(hours=due_within_hours),
            lambda dep: allows(actor, Action.SLA_READ, Access.of_department(dep)),
        )


def department_loads(conn: sa.Connection, now: datetime, due_within: timedelta, keep: Callable[[str], bool]) -> list[dict[str, Any]]:
    """Each department's open work, overdue and due-soon counts at ``now`` (those ``keep``
    accepts): what ``GET /departments/workloads`` answers, and the auditor's view of it then."""
    loads = department_workload.workloads(conn)
    overdue = sla_breaches.overdue_by_department(conn, now)
    due_soon = sla_breaches.due_soon_by_department(conn, now, due_within)
    result = []
    for dep in sorted(set(loads) | {d for d in overdue if d} | {d for d in due_soon if d}):
        if not keep(dep):
            continue
        load = loads.get(dep, {"department_id": dep, "open": 0, "by_state": {}, "providers": {}})
        result.append(
            {
                "department_id": dep,
                "open": load["open"],
                "by_state": load["by_state"],
                "providers": load["providers"],
                "work_orders": load.get("work_orders", {}),
                "overdue": overdue.get(dep, {"overdue": 0}),
                "due_soon": due_soon.get(dep, 0),
            }
        )
    return result


@router.get("/sla/breaches", response_model=BreachList, summary="Overdue and due-soon requests (警戒提示)")
@quick_read  # a list under its limit (500 by default)
def breaches(
    hotline: Hotline = Depends(get_hotline),
    actor: Actor = allow(Action.SLA_READ),
    department_id: str | None = None,
    due_within_hours: float = Query(BREACHES_DUE_WITHIN_HOURS, gt=0, le=24 * 30),
    limit: int = Query(500, ge=1, le=5000),
    _ryw: None = ReadYourWrites,
) -> dict[str, Any]:
    department_id = department_filter(actor, Action.SLA_READ, department_id)
    now = hotline.clock.now()
    with hotline.read_store.engine.connect() as conn:
        found = sla_breaches.breaches(conn, now, due_within=timedelta(hours=due_within_hours), department_id=department_id, limit=limit)
    return {"as_of": now, "due_within_hours": due_within_hours, **found}
