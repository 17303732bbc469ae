"""Commands: what users ask the hotline to do. Typed, validated, transport-free.

The API takes these as request bodies; the CLI, the telephony adapter and the simulator
build them directly. The aggregate a command targets comes from outside (the URL path),
and ``expected_version`` makes the write conditional (optimistic concurrency).
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

Urgency = Literal["urgent", "control", "normal"]
Kind = Literal["information", "action", "feedback"]
Subtype = Literal["consultation", "complaint", "application", "suggestion", "praise"]
Channel = Literal["phone", "web", "email", "sms", "chat", "walk_in", "social"]
ReplyChannel = Literal["phone", "email", "sms"]
Language = Literal["zh", "ar", "it", "en"]


class Command(BaseModel):
    model_config = ConfigDict(extra="forbid")
    expected_version: int | None = Field(default=None, description="Refuse with 409 unless the aggregate is at this version")


class Contact(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str | None = Field(default=None, max_length=200)
    phone: str | None = Field(default=None, max_length=40)
    email: str | None = Field(default=None, max_length=254)
    address: str | None = Field(default=None, max_length=500)


class Location(BaseModel):
    model_config = ConfigDict(extra="forbid")
    address: str | None = Field(default=None, max_length=500)
    district: str | None = Field(default=None, max_length=100)
    lat: float | None = Field(default=None, ge=-90, le=90)
    lon: float | None = Field(default=None, ge=-180, le=180)


class RegisterRequest(Command):
    kind: Kind
    subtype: Subtype | None = None
    channel: Channel
    description: str = Field(min_length=1, max_length=10_000)
    contact: Contact | None = None
    anonymous: bool = Field(default=False, description="Ask for the contact to be hidden (only where the jurisdiction allows it)")
    location: Location | None = None
    urgency: Urgency = "normal"
    language: Language | None = None
    reply_channel: ReplyChannel | None = None
    problem_code: str | None = Field(default=None, description="Classify at once")
    collected: dict[str, Any] | None = None
    contact_id: str | None = Field(default=None, description="The call/chat during which it was registered")


class Classify(Command):
    problem_code: str
    collected: dict[str, Any] | None = None


class ChangeKind(Command):
    kind: Kind
    subtype: Subtype | None = None
    reason: str


class Dispatch(Command):
    department_id: str | None = Field(default=None, description="Default: the problem code's department")
    provider_id: str | None = None
    instructions: str | None = None


class Accept(Command):
    department_id: str


class ReturnToDispatcher(Command):
    department_id: str
    reason: str = Field(min_length=1)


class RuleOwnership(Command):
    department_id: str
    provider_id: str | None = None
    reason: str = Field(min_length=1)


class InterimReply(Command):
    message: str = Field(min_length=1)
    delay_reason: str = Field(min_length=1)
    expected_at: datetime
    channel: ReplyChannel | None = None


class FinalReply(Command):
    message: str = Field(min_length=1)
    channel: ReplyChannel | None = None


class Resolve(Command):
    resolution: str = Field(min_length=1)


class Close(Command):
    pass


class Reopen(Command):
    reason: str = Field(min_length=1)


class Rate(Command):
    score: int = Field(ge=1, le=5)
    comment: str | None = Field(default=None, max_length=2000)


class RequestExtension(Command):
    requested_due_at: datetime
    reason: str = Field(min_length=1)
    department_id: str | None = None


class DecideExtension(Command):
    approve: bool
    comment: str | None = None
    due_at: datetime | None = Field(default=None, description="Approve a different date than requested")


class Supervise(Command):
    supervised: bool = True
    reason: str = Field(min_length=1)


class AddNote(Command):
    text: str = Field(min_length=1, max_length=10_000)
    internal: bool = True


class CreateWorkOrder(Command):
    pass


class LinkDuplicate(Command):
    work_order_id: str


class StartWorkOrder(Command):
    crew: str | None = None


class CompleteWorkOrderTask(Command):
    task_index: int = Field(ge=0)
    note: str | None = None


class CompleteWorkOrder(Command):
    outcome: str = Field(min_length=1)


class CancelWorkOrder(Command):
    reason: str = Field(min_length=1)


class UpdateCitizen(Command):
    contact: Contact | None = None
    language: Language | None = None


# -------------------------------------------------------------------- SLA clock and timers
class WaitForCitizen(Command):
    reason: str = Field(min_length=1, description="What the citizen must provide; the SLA clock stops meanwhile")


class CitizenResponded(Command):
    note: str | None = Field(default=None, max_length=10_000)


class DueTimer(BaseModel):
    model_config = ConfigDict(extra="forbid")
    request_id: str
    key: str


class FireTimers(Command):
    timers: list[DueTimer] = Field(max_length=10_000)


class ChangeCalendar(Command):
    definition: dict[str, Any] | None = Field(default=None, description="A whole calendar, as in calendars.yaml")
    declare_holidays: list[date] = Field(default_factory=list)
    withdraw_holidays: list[date] = Field(default_factory=list)
    declare_makeup_days: list[date] = Field(default_factory=list)
    withdraw_makeup_days: list[date] = Field(default_factory=list)
    makeup_hours: list[list[str]] | None = Field(default=None, description="Default: Monday's hours")
    reason: str | None = None


# -------------------------------------------------------------------- catalogue
class Names(BaseModel):
    model_config = ConfigDict(extra="forbid")
    zh: str
    ar: str
    it: str
    en: str


class AddDepartment(Command):
    id: str
    names: Names
    is_control_office: bool = False


class AddProvider(Command):
    id: str
    department_id: str
    names: Names


class AddCategory(Command):
    id: str
    provider_id: str
    names: Names


class AddProblemCode(Command):
    code: str
    category_id: str
    names: Names
    work_order_template: dict[str, Any]
    fields_to_collect: list[dict[str, Any]] = Field(default_factory=list)
    deadlines: dict[str, Any] | None = None


class ReviseProblemCode(Command):
    work_order_template: dict[str, Any] | None = None
    fields_to_collect: list[dict[str, Any]] | None = None
    deadlines: dict[str, Any] | None = None


class RenameEntry(Command):
    names: Names


class RetireEntry(Command):
    reason: str = Field(min_length=1)
