"""Typed response models of the API (request bodies are the commands in domain/commands.py)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict


class Accepted(BaseModel):
    """A command's answer: what changed, and the event position to wait for when reading."""

    model_config = ConfigDict(extra="allow")
    id: str
    version: int
    position: int


class RequestAccepted(Accepted):
    reference: str
    status: str
    due_at: datetime
    citizen_id: str | None = None
    # "name_differs": a known phone or email came with another name; the request carries the
    # name given, is attached to the citizen on record, and has an internal note for the operator.
    # "not_linked": a citizen's phone or email came beside a detail not theirs from a channel
    # nobody checked; the request has a citizen of its own and the note. Both, and
    # citizen_id, only to staff who read every citizen's data (a citizen sees their own id).
    identity_check: str | None = None
    # An information request: the knowledge base's articles for it, and the recorded search.
    suggestions: list[dict[str, Any]] | None = None
    search_id: str | None = None


class RequestView(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: str
    reference: str
    kind: str | None
    subtype: str | None
    channel: str | None
    status: str
    urgency: str | None
    description: str | None
    location: dict[str, Any] | None
    language: str | None
    citizen_id: str | None
    contact_hidden: bool | None
    reply_channel: str | None
    problem_code: str | None
    category_id: str | None
    department_id: str | None
    provider_id: str | None
    registered_at: datetime | None
    due_at: datetime | None
    accepted_at: datetime | None
    first_response_at: datetime | None
    expected_at: datetime | None
    resolved_at: datetime | None
    closed_at: datetime | None
    closed_on_time: bool | None
    return_count: int | None
    reopen_count: int | None
    supervised: bool | None
    escalated: bool | None = None
    deadline_missed: bool | None = None
    extension_pending: bool | None
    rating: int | None
    work_order_id: str | None
    final_reply: str | None
    work_order_outcome: str | None
    version: int
    position: int
    updated_at: datetime | None


class RequestPage(BaseModel):
    """One page of a search: the requests, how many match in all, and the cursor of the next
    page (None on the last; pass it back as ``cursor`` with the same filters and sort)."""

    items: list[RequestView]
    total: int | None
    next_cursor: str | None


class TimelineEntry(BaseModel):
    version: int
    type: str
    at: datetime
    actor_id: str | None
    actor_role: str | None
    correlation_id: str | None
    details: dict[str, Any]


class RequestDetail(RequestView):
    timeline: list[TimelineEntry]


class WorkOrderView(BaseModel):
    id: str
    problem_code: str
    department_id: str
    provider_id: str | None
    status: str
    title: dict[str, str] | None
    request_ids: list[str]
    tasks_total: int
    tasks_done: int
    outcome: str | None
    created_at: datetime
    updated_at: datetime
    version: int


class CitizenView(BaseModel):
    id: str
    name: str | None
    phone: str | None
    email: str | None
    address: str | None
    language: str | None
    first_seen: datetime | None
    last_seen: datetime | None
    requests: int
    open_requests: int
    channels: list[str]
    version: int | None = None  # the Citizen aggregate's (the ETag of GET /citizens/{id})


class HistoryEntry(BaseModel):
    at: datetime
    request_id: str | None
    reference: str | None
    type: str
    channel: str | None
    summary: str


class CitizenDetail(CitizenView):
    history: list[HistoryEntry]


class BreachEntry(BaseModel):
    model_config = ConfigDict(extra="allow")
    request_id: str
    reference: str | None
    status: str | None
    urgency: str | None
    problem_code: str | None
    department_id: str | None
    provider_id: str | None
    due_at: datetime
    supervised: bool | None
    extension_pending: bool | None
    overdue_hours: float | None = None
    hours_left: float | None = None


class BreachList(BaseModel):
    as_of: datetime
    due_within_hours: float
    overdue: list[BreachEntry]
    due_soon: list[BreachEntry]


class DepartmentWorkload(BaseModel):
    department_id: str | None
    open: int
    by_state: dict[str, int]
    providers: dict[str, dict[str, int]]
    work_orders: dict[str, int]
    overdue: dict[str, int]
    due_soon: int


class Health(BaseModel):
    status: str
    mode: str
    event_store: str
    position: int
    projections: dict[str, dict[str, int]]
