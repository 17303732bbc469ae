"""Work orders: the department's job, made from the problem code's standard template.

One work order may serve several requests: when a second citizen reports the same
problem, their request is linked to the open order as a duplicate and they are told its
outcome too. All requests of one order share its problem code.
"""

from __future__ import annotations

import uuid
from typing import Any

from domain.access import Access
from domain.base import Context, HotlineAggregate, InvalidCommand, InvalidTransition
from domain.requests.aggregate import require_reason

WORK_ORDER_OPEN = ("open", "in_progress")


class WorkOrder(HotlineAggregate):
    STREAM = "workorder"
    CASE = True  # its events carry its case's correlation id

    class Created(HotlineAggregate.Created):
        """A work order was made for a request from its problem code's template and sent to the department."""

        problem_code: str
        department_id: str
        provider_id: str | None
        template: dict[str, Any]
        details: dict[str, Any]
        location: dict[str, Any] | None
        request_id: str

    class DuplicateLinked(HotlineAggregate.Event):
        """Another citizen's request about the same problem was linked to the work order."""

        request_id: str

        def apply(self, w: WorkOrder) -> None:
            w.request_ids.append(self.request_id)

    class Started(HotlineAggregate.Event):
        """Work started on the order."""

        crew: str | None

        def apply(self, w: WorkOrder) -> None:
            w.status = "in_progress"

    class TaskDone(HotlineAggregate.Event):
        """One task of the work order was done."""

        task_index: int
        note: str | None

        def apply(self, w: WorkOrder) -> None:
            w.tasks_done.add(self.task_index)

    class Completed(HotlineAggregate.Event):
        """The work order was completed, with its outcome."""

        outcome: str

        def apply(self, w: WorkOrder) -> None:
            w.status = "completed"
            w.outcome = self.outcome

    class Cancelled(HotlineAggregate.Event):
        """The work order was cancelled."""

        reason: str

        def apply(self, w: WorkOrder) -> None:
            w.status = "cancelled"
            w.outcome = self.reason

    class Reassigned(HotlineAggregate.Event):
        """The work order was moved to another department or provider."""

        department_id: str
        provider_id: str | None

        def apply(self, w: WorkOrder) -> None:
            w.department_id, w.provider_id = self.department_id, self.provider_id

    def access(self) -> Access:
        return Access.of_department(self.department_id)

    def __init__(
        self,
        problem_code: str,
        department_id: str,
        provider_id: str | None,
        template: dict[str, Any],
        details: dict[str, Any],
        location: dict[str, Any] | None,
        request_id: str,
    ) -> None:
        self.problem_code = problem_code
        self.department_id = department_id
        self.provider_id = provider_id
        self.template = template
        self.details = details
        self.location = location
        self.request_ids = [request_id]
        self.status = "open"
        self.tasks_done: set[int] = set()
        self.outcome: str | None = None

    @property
    def is_open(self) -> bool:
        return self.status in WORK_ORDER_OPEN

    @classmethod
    def create(
        cls,
        *,
        problem_code: str,
        template: dict[str, Any],
        department_id: str,
        provider_id: str | None,
        details: dict[str, Any],
        location: dict[str, Any] | None,
        request_id: uuid.UUID,
        ctx: Context,
    ) -> WorkOrder:
        if not template:
            raise InvalidCommand(f"problem code {problem_code} has no work-order template")
        return cls._start(
            cls.Created,
            uuid.uuid4(),
            ctx,
            problem_code=problem_code,
            department_id=department_id,
            provider_id=provider_id,
            template=template,
            details=details,
            location=location,
            request_id=str(request_id),
        )

    def link_duplicate(self, request_id: uuid.UUID, request_problem_code: str, ctx: Context) -> None:
        if not self.is_open:
            raise InvalidTransition(f"work order {self.id} is {self.status}: duplicates link to open orders only")
        if request_problem_code != self.problem_code:
            raise InvalidCommand(f"the request is for {request_problem_code}, the work order for {self.problem_code}: not a duplicate")
        if str(request_id) in self.request_ids:
            raise InvalidTransition(f"request {request_id} is already linked to work order {self.id}")
        self._record(self.DuplicateLinked, ctx, request_id=str(request_id))

    def start(self, crew: str | None, ctx: Context) -> None:
        if self.status != "open":
            raise InvalidTransition(f"work order {self.id} is {self.status}: only an open order can start")
        self._record(self.Started, ctx, crew=crew)

    def complete_task(self, task_index: int, note: str | None, ctx: Context) -> None:
        if self.status != "in_progress":
            raise InvalidTransition(f"work order {self.id} is {self.status}: start it first")
        if not 0 <= task_index < len(self.template.get("tasks", [])):
            raise InvalidCommand(f"the template has no task {task_index}")
        if task_index in self.tasks_done:
            raise InvalidTransition(f"task {task_index} is already done")
        self._record(self.TaskDone, ctx, task_index=task_index, note=note)

    def complete(self, outcome: str, ctx: Context) -> None:
        if self.status != "in_progress":
            raise InvalidTransition(f"work order {self.id} is {self.status}: only an order in progress can complete")
        require_reason(outcome, "outcome")
        self._record(self.Completed, ctx, outcome=outcome)

    def cancel(self, reason: str, ctx: Context) -> None:
        if not self.is_open:
            raise InvalidTransition(f"work order {self.id} is already {self.status}")
        require_reason(reason)
        self._record(self.Cancelled, ctx, reason=reason)

    def reassign(self, department_id: str, provider_id: str | None, ctx: Context) -> None:
        if not self.is_open:
            raise InvalidTransition(f"work order {self.id} is {self.status}")
        if department_id == self.department_id and provider_id == self.provider_id:
            return
        self._record(self.Reassigned, ctx, department_id=department_id, provider_id=provider_id)
