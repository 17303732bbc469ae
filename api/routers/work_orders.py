"""/work-orders: the departments' jobs."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Query, Request, Response

from api.deps import get_actor, get_hotline, run_command, wait_for_position
from api.schemas import Accepted, WorkOrderView
from domain import commands as c
from domain import services as s
from domain.base import Actor, NotFound
from infra.runtime import Hotline
from projections import department_workload

router = APIRouter(prefix="/work-orders", tags=["work orders"])


@router.get("", response_model=list[WorkOrderView])
def list_work_orders(
    hotline: Hotline = Depends(get_hotline),
    status: str | None = None,
    department_id: str | None = None,
    problem_code: str | None = None,
    limit: int = Query(100, ge=1, le=1000),
    min_position: int | None = None,
) -> list[dict[str, Any]]:
    wait_for_position(hotline, min_position)
    with hotline.read_store.engine.connect() as conn:
        return department_workload.work_orders(conn, status=status, department_id=department_id, problem_code=problem_code, limit=limit)


@router.get("/{order_id}", response_model=WorkOrderView)
def get_work_order(order_id: str, hotline: Hotline = Depends(get_hotline), min_position: int | None = None) -> dict[str, Any]:
    wait_for_position(hotline, min_position)
    with hotline.read_store.engine.connect() as conn:
        row = department_workload.work_order(conn, order_id)
    if row is None:
        raise NotFound(f"no work order {order_id}")
    return row


def _route(path: str, handler: Any, model: type, summary: str) -> None:
    def endpoint(
        order_id: str,
        cmd: Any,
        request: Request,
        response: Response,
        hotline: Hotline = Depends(get_hotline),
        actor: Actor = Depends(get_actor),
    ) -> dict[str, Any]:
        return run_command(hotline, handler, actor, order_id, cmd, request=request, response=response)

    endpoint.__annotations__["cmd"] = model
    endpoint.__name__ = handler.__name__
    router.add_api_route(f"/{{order_id}}/{path}", endpoint, methods=["POST"], response_model=Accepted, summary=summary)


for _p, _h, _m, _s in [
    ("start", s.start_work_order, c.StartWorkOrder, "Start work"),
    ("tasks", s.complete_work_order_task, c.CompleteWorkOrderTask, "Mark a template task done"),
    ("complete", s.complete_work_order, c.CompleteWorkOrder, "Complete: every linked request is told the outcome"),
    ("cancel", s.cancel_work_order, c.CancelWorkOrder, "Cancel"),
]:
    _route(_p, _h, _m, _s)
