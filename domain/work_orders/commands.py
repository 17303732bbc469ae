"""Work-order commands: created from a request, duplicates linked, worked and completed."""

from __future__ import annotations

from pydantic import Field

from domain.handling import Command, Target
from domain.requests.commands import RequestCommand


class CreateWorkOrder(RequestCommand):
    pass


class LinkDuplicate(RequestCommand):
    work_order_id: str


class WorkOrderCommand(Command):
    """A command on one work order, named by its id."""

    order_id: Target = ""


class StartWorkOrder(WorkOrderCommand):
    crew: str | None = None


class CompleteWorkOrderTask(WorkOrderCommand):
    task_index: int = Field(ge=0)
    note: str | None = None


class CompleteWorkOrder(WorkOrderCommand):
    outcome: str = Field(min_length=1)


class CancelWorkOrder(WorkOrderCommand):
    reason: str = Field(min_length=1)
