"""Work-order handlers: a request's work order, duplicates linked to it, its progress."""

from __future__ import annotations

from typing import Any

from domain.base import Context, InvalidTransition
from domain.catalogue.handlers import load_catalogue
from domain.handling import Handlers, UnitOfWork, on_aggregate, parse_id
from domain.requests.aggregate import ServiceRequest
from domain.requests.handlers import load_request, request_summary
from domain.work_orders import commands as c
from domain.work_orders.aggregate import WorkOrder

handles = Handlers("work_orders")


@handles(c.CreateWorkOrder)
def create_work_order(uow: UnitOfWork, ctx: Context, cmd: c.CreateWorkOrder) -> dict[str, Any]:
    request = load_request(uow, cmd.ref)
    request.expect_version(cmd.expected_version)
    if request.problem_code is None:
        raise InvalidTransition("a problem code is required to create a work order")
    catalogue = load_catalogue(uow, ctx.deps)
    problem = catalogue.problem_code(request.problem_code)
    route = catalogue.route_of(request.problem_code)
    order = WorkOrder.create(
        problem_code=request.problem_code,
        template=problem["work_order_template"],
        department_id=request.department_id or route["department_id"],
        provider_id=request.provider_id or route["provider_id"],
        details=request.collected,
        location=request.location,
        request_id=request.id,
        ctx=ctx,
    )
    request.link_work_order(order.id, order.problem_code, False, ctx)
    uow.add(order)
    return {"id": str(order.id), "version": order.version, "request": request_summary(request)}


@handles(c.LinkDuplicate)
def link_duplicate(uow: UnitOfWork, ctx: Context, cmd: c.LinkDuplicate) -> dict[str, Any]:
    request = load_request(uow, cmd.ref)
    request.expect_version(cmd.expected_version)
    order = uow.get(WorkOrder, parse_id(cmd.work_order_id, "work order"))
    if request.problem_code is None:
        raise InvalidTransition("classify the request before linking it to a work order")
    order.link_duplicate(request.id, request.problem_code, ctx)
    request.link_work_order(order.id, order.problem_code, True, ctx)
    return {**request_summary(request), "work_order_id": str(order.id), "work_order_version": order.version}


def _load_order(uow: UnitOfWork, cmd: c.WorkOrderCommand) -> WorkOrder:
    return uow.get(WorkOrder, parse_id(cmd.order_id, "work order"))


# An action on the work order ``cmd.order_id`` names.
on_work_order = on_aggregate(_load_order, lambda order: {"id": str(order.id), "status": order.status, "version": order.version})


@handles(c.StartWorkOrder)
@on_work_order
def start_work_order(uow: UnitOfWork, ctx: Context, order: WorkOrder, cmd: c.StartWorkOrder) -> None:
    order.start(cmd.crew, ctx)


@handles(c.CompleteWorkOrderTask)
@on_work_order
def complete_work_order_task(uow: UnitOfWork, ctx: Context, order: WorkOrder, cmd: c.CompleteWorkOrderTask) -> None:
    order.complete_task(cmd.task_index, cmd.note, ctx)


@handles(c.CompleteWorkOrder)
@on_work_order
def complete_work_order(uow: UnitOfWork, ctx: Context, order: WorkOrder, cmd: c.CompleteWorkOrder) -> None:
    order.complete(cmd.outcome, ctx)
    _tell_linked_requests(uow, ctx, order, cmd.outcome, completed=True)


@handles(c.CancelWorkOrder)
@on_work_order
def cancel_work_order(uow: UnitOfWork, ctx: Context, order: WorkOrder, cmd: c.CancelWorkOrder) -> None:
    order.cancel(cmd.reason, ctx)
    _tell_linked_requests(uow, ctx, order, cmd.reason, completed=False)


def _tell_linked_requests(uow: UnitOfWork, ctx: Context, order: WorkOrder, outcome: str, *, completed: bool) -> None:
    # Every citizen attached to the order, duplicates included, is told its outcome.
    for request_id in order.request_ids:
        request = uow.get(ServiceRequest, parse_id(request_id, "request"))
        request.record_work_order_outcome(order.id, outcome, completed, ctx)
