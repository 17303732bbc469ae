"""Work-order commands: created from a request, duplicates linked, worked and completed."""

from __future__ import annotations

from pydantic import Field

from domain.access import Action
from domain.handling import Command, Target
from domain.requests.commands import RequestCommand


class CreateWorkOrder(RequestCommand):
    action = Action.REQUESTS_DISPATCH


class LinkDuplicate(RequestCommand):
    action = Action.REQUESTS_DISPATCH

    work_order_id: str


class WorkOrderCommand(Command):
    """A command on one work order, named by its id."""

    order_id: Target = ""


class StartWorkOrder(WorkOrderCommand):
    action = Action.WORK_ORDERS_WORK

    crew: str | None = None


class CompleteWorkOrderTask(WorkOrderCommand):
    action = Action.WORK_ORDERS_WORK

    task_index: int = Field(ge=0)
    note: str | None = None


class CompleteWorkOrder(WorkOrderCommand):
    action = Action.WORK_ORDERS_WORK

    outcome: str = Field(min_length=1)


class CancelWorkOrder(WorkOrderCommand):
    action = Action.WORK_ORDERS_CANCEL

    reason: str = Field(min_length=1)
