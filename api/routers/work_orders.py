"""/work-orders: the departments' jobs."""

from __future__ import annotations

from typing import Any

from fastapi import Depends, Query, Response

from api.auth import allow, department_filter, row_access
from api.deps import CommandRoute, ReadYourWrites, add_command_routes, get_hotline, set_etag
from api.routing import HotlineRouter
from api.schemas import Accepted, WorkOrderView
from domain.access import Action, authorize
from domain.base import Actor, NotFound
from domain.work_orders import commands as c
from infra.runtime import Hotline
from projections import department_workload

router = HotlineRouter(prefix="/work-orders", tags=["work orders"])


@router.get("", response_model=list[WorkOrderView])
def list_work_orders(
    hotline: Hotline = Depends(get_hotline),
    actor: Actor = allow(Action.WORK_ORDERS_READ),
    status: str | None = None,
    department_id: str | None = None,
    problem_code: str | None = None,
    limit: int = Query(100, ge=1, le=1000),
    _ryw: None = ReadYourWrites,
) -> list[dict[str, Any]]:
    department_id = department_filter(actor, Action.WORK_ORDERS_READ, department_id)
    with hotline.read_store.engine.connect() as conn:
        return department_workload.work_orders(conn, status=status, department_id=department_id, problem_code=problem_code, limit=limit)


@router.get("/{order_id}", response_model=WorkOrderView)
def get_work_order(
    order_id: str,
    response: Response,
    hotline: Hotline = Depends(get_hotline),
    actor: Actor = allow(Action.WORK_ORDERS_READ),
    _ryw: None = ReadYourWrites,
) -> dict[str, Any]:
    with hotline.read_store.engine.connect() as conn:
        row = department_workload.work_order(conn, order_id)
    if row is None:
        raise NotFound(f"no work order {order_id}")
    authorize(actor, Action.WORK_ORDERS_READ, row_access(row))
    set_etag(response, row["version"])
    return row


add_command_routes(
    router,
    "/{order_id}",
    [
        CommandRoute("start", c.StartWorkOrder, "Start work"),
        CommandRoute("tasks", c.CompleteWorkOrderTask, "Mark a template task done"),
        CommandRoute("complete", c.CompleteWorkOrder, "Complete: every linked request is told the outcome"),
        CommandRoute("cancel", c.CancelWorkOrder, "Cancel"),
    ],
    response_model=Accepted,
)
