"""Request commands: what users ask of a service request (受理 → 派单 → 签收 → 回复 → 办结)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import AwareDatetime, BaseModel, BeforeValidator, ConfigDict, Field

from domain.access import Action
from domain.handling import Command, Target
from domain.limits import COMMAND_TEXT_MAX, ID_MAX, SHORT_TEXT_MAX, TEXT_MAX

Urgency = Literal["urgent", "control", "normal"]
Kind = Literal["information", "action", "feedback"]
Subtype = Literal["consultation", "complaint", "application", "suggestion", "praise"]
Channel = Literal["phone", "web", "email", "sms", "chat", "walk_in", "social", "voicemail"]
ReplyChannel = Literal["phone", "email", "sms"]
Language = Literal["zh", "ar", "it", "en"]


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
    # Every text field has a maximum (domain/limits.py): this one where none is named.
    model_config = ConfigDict(extra="forbid", str_max_length=COMMAND_TEXT_MAX)
    action = Action.REQUESTS_REGISTER

    kind: Kind
    subtype: Subtype | None = None
    channel: Channel
    description: str = Field(min_length=1, max_length=TEXT_MAX)
    contact: Contact | None = None
    anonymous: bool = Field(default=False, description="Ask for the contact to be hidden (only where the jurisdiction allows it)")
    location: Location | None = None
    urgency: Urgency = "normal"
    language: Language | None = None
    reply_channel: ReplyChannel | None = None
    problem_code: str | None = Field(default=None, max_length=ID_MAX, description="Classify at once")
    collected: dict[str, Any] | None = Field(default=None, description="The problem code's details (its fields_to_collect)")
    contact_id: str | None = Field(default=None, max_length=ID_MAX, description="The call/chat during which it was registered")


class RequestCommand(Command):
    """A command on one request, named by reference number (what citizens quote) or id."""

    model_config = ConfigDict(extra="forbid", str_max_length=COMMAND_TEXT_MAX)
    ref: Target = ""


class Classify(RequestCommand):
    action = Action.REQUESTS_TRIAGE

    problem_code: str = Field(max_length=ID_MAX)
    collected: dict[str, Any] | None = None


class ChangeKind(RequestCommand):
    action = Action.REQUESTS_TRIAGE

    kind: Kind
    subtype: Subtype | None = None
    reason: str = Field(max_length=SHORT_TEXT_MAX)


class Dispatch(RequestCommand):
    action = Action.REQUESTS_DISPATCH

    department_id: str | None = Field(default=None, max_length=ID_MAX, description="Default: the problem code's department")
    provider_id: str | None = Field(default=None, max_length=ID_MAX)
    instructions: str | None = Field(default=None, max_length=TEXT_MAX)


class Accept(RequestCommand):
    action = Action.REQUESTS_ACCEPT

    department_id: str | None = Field(
        default=None, max_length=ID_MAX, description="The department acting (default: the one the request is with)"
    )


class ReturnToDispatcher(RequestCommand):
    action = Action.REQUESTS_ACCEPT

    department_id: str | None = Field(
        default=None, max_length=ID_MAX, description="The department acting (default: the one the request is with)"
    )
    reason: str = Field(min_length=1, max_length=SHORT_TEXT_MAX)


class RuleOwnership(RequestCommand):
    action = Action.REQUESTS_OVERSEE

    department_id: str = Field(max_length=ID_MAX)
    provider_id: str | None = Field(default=None, max_length=ID_MAX)
    reason: str = Field(min_length=1, max_length=SHORT_TEXT_MAX)


class InterimReply(RequestCommand):
    action = Action.REQUESTS_REPLY

    message: str = Field(min_length=1)
    delay_reason: str = Field(min_length=1, max_length=SHORT_TEXT_MAX)
    expected_at: AwareDatetime
    channel: ReplyChannel | None = None


class FinalReply(RequestCommand):
    action = Action.REQUESTS_REPLY

    message: str = Field(min_length=1)
    channel: ReplyChannel | None = None


class Resolve(RequestCommand):
    action = Action.REQUESTS_REPLY

    resolution: str = Field(min_length=1)


class Close(RequestCommand):
    action = Action.REQUESTS_CLOSE


class Reopen(RequestCommand):
    action = Action.REQUESTS_REOPEN

    reason: str = Field(min_length=1, max_length=SHORT_TEXT_MAX)


def _not_a_boolean(value: Any) -> Any:
    """JSON's true would pass for 1 (Python's bool is an int); 2.0 is still 2."""
    if isinstance(value, bool):
        raise ValueError("a score is a whole number from 1 to 5, not true or false")
    return value


class Rate(RequestCommand):
    action = Action.REQUESTS_RATE

    score: Annotated[int, BeforeValidator(_not_a_boolean)] = Field(ge=1, le=5)
    comment: str | None = Field(default=None, max_length=2000)


class RequestExtension(RequestCommand):
    action = Action.REQUESTS_EXTEND

    requested_due_at: AwareDatetime
    reason: str = Field(min_length=1, max_length=SHORT_TEXT_MAX)
    department_id: str | None = Field(default=None, max_length=ID_MAX)


class DecideExtension(RequestCommand):
    action = Action.REQUESTS_OVERSEE

    approve: bool
    comment: str | None = Field(default=None, max_length=SHORT_TEXT_MAX)
    due_at: AwareDatetime | None = Field(default=None, description="Approve a different date than requested")


class Supervise(RequestCommand):
    action = Action.REQUESTS_OVERSEE

    supervised: bool = True
    reason: str = Field(min_length=1, max_length=SHORT_TEXT_MAX)


class AddNote(RequestCommand):
    action = Action.REQUESTS_NOTE

    text: str = Field(min_length=1, max_length=TEXT_MAX)
    internal: bool = True


class WaitForCitizen(RequestCommand):
    action = Action.REQUESTS_FOLLOW_UP

    reason: str = Field(min_length=1, max_length=SHORT_TEXT_MAX, description="What the citizen must provide; the SLA clock stops meanwhile")


class CitizenResponded(RequestCommand):
    action = Action.REQUESTS_CITIZEN_RESPONDED

    note: str | None = Field(default=None, max_length=TEXT_MAX)


class AddCitizenMessage(RequestCommand):
    """What the citizen wrote about the case, from any channel; a clock paused for the
    citizen runs again."""

    action = Action.REQUESTS_CITIZEN_MESSAGE

    text: str = Field(default="", max_length=100_000)
    channel: Channel
    attachment_ids: list[Annotated[str, Field(max_length=ID_MAX)]] = Field(
        default_factory=list, max_length=50, description="Attachments already stored (POST …/attachments)"
    )
    raw_message_sha256: str | None = Field(
        default=None, pattern="^[0-9a-f]{64}$", description="The raw message as received (email), kept for the auditor"
    )


class DueTimer(BaseModel):
    model_config = ConfigDict(extra="forbid")
    request_id: str
    key: str


class FireTimers(Command):
    action = Action.REQUESTS_FIRE_TIMERS

    timers: list[DueTimer] = Field(max_length=10_000)
