"""Contact-center commands: typed, validated, transport-free (API bodies, CLI, PBX adapter,
simulator and router all build these)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from domain.access import Action
from domain.handling import Command, Target
from domain.limits import PRIORITY_MAX, SECONDS_MAX

ContactChannel = Literal["phone", "callback", "chat", "social", "sms", "email", "web"]
Media = Literal["voice", "chat", "email", "web"]
Strategy = Literal["longest_idle", "best_proficiency", "round_robin", "fewest_contacts", "ring_all"]


class Overflow(BaseModel):
    model_config = ConfigDict(extra="forbid")
    to: Literal["queue", "voicemail", "callback"]
    queue_id: str | None = None


class DefineQueue(Command):
    """Creates the queue, or changes the settings given (others keep their values)."""

    action = Action.QUEUES_MANAGE

    queue_id: str = Field(min_length=1, max_length=64)
    names: dict[str, str] = Field(default_factory=dict)
    media: Media | None = None
    required_skills: dict[str, int] | None = None
    priority: int | None = Field(default=None, ge=-PRIORITY_MAX, le=PRIORITY_MAX)
    strategy: Strategy | None = None
    sl_percent: float | None = Field(default=None, gt=0, le=100)
    sl_seconds: int | None = Field(default=None, ge=0, le=SECONDS_MAX)
    max_wait_seconds: int | None = Field(default=None, ge=0, le=SECONDS_MAX)
    overflow: Overflow | None = None
    opening_hours: dict[str, list[list[str]]] | None = None
    timezone: str | None = None
    grab: bool | None = None
    wrap_seconds: int | None = Field(default=None, ge=0, le=SECONDS_MAX)
    offer_timeout_seconds: int | None = Field(default=None, gt=0, le=SECONDS_MAX)
    max_missed_offers: int | None = Field(default=None, ge=1, le=1000)
    relaxation: list[list[Annotated[int, Field(ge=0, le=SECONDS_MAX)]]] | None = Field(default=None, max_length=100)
    ageing_per_minute: float | None = Field(default=None, ge=0, le=PRIORITY_MAX, allow_inf_nan=False)
    join_when_empty: bool | None = None
    language_relax_seconds: int | None = Field(
        default=None,
        ge=0,
        le=SECONDS_MAX,
        description="After this long waiting, a caller's language is no longer required: any agent of the queue may "
        "take them (the desk tells the agent, for the site's interpreter service); null (the default): only agents who "
        "speak it, however long",
    )
    callback_max_age_seconds: int | None = Field(
        default=None,
        gt=0,
        le=SECONDS_MAX,
        description="A callback no agent could take within this long of its place in line or due time is given up "
        "(reason max_age); default a day, null: never",
    )

    def config(self) -> dict[str, Any]:
        data = self.model_dump(exclude={"queue_id", "names", "expected_version"}, exclude_unset=True)
        if self.overflow is not None:
            data["overflow"] = self.overflow.model_dump(exclude_none=True)
        return data


class LoginAgent(Command):
    action = Action.AGENTS_SESSION

    agent_id: str = Field(min_length=1, max_length=64)
    name: str | None = None
    skills: dict[str, int] = Field(default_factory=dict)
    languages: list[str] = Field(default_factory=list)
    departments: list[str] = Field(default_factory=list)
    queues: list[str] = Field(default_factory=list)
    capacity: dict[str, Annotated[int, Field(ge=0, le=1000)]] | None = None
    ready: bool = Field(default=True, description="Available at once (else not ready, reason 'login')")


class AgentStateCommand(Command):
    """A command on one agent's state or settings, named by the agent's id."""

    agent_id: Target = ""


class LogoutAgent(AgentStateCommand):
    action = Action.AGENTS_SESSION


class SetPresence(AgentStateCommand):
    action = Action.AGENTS_SESSION

    presence: Literal["available", "not_ready"]
    reason: str | None = None


class MoveAgent(AgentStateCommand):
    action = Action.AGENTS_MANAGE

    queues: list[str]


class ChangeSkills(AgentStateCommand):
    action = Action.AGENTS_MANAGE

    skills: dict[str, int]
    languages: list[str]


class ContactArrives(Command):
    action = Action.CONTACTS_ARRIVE

    channel: ContactChannel
    queue_id: str
    language: str | None = None
    priority: int = Field(default=0, ge=-PRIORITY_MAX, le=PRIORITY_MAX)
    phone: str | None = Field(default=None, max_length=40, description="The citizen's number (personal data)")
    email: str | None = Field(default=None, max_length=254)
    direction: Literal["inbound", "outbound"] = "inbound"
    citizen_id: str | None = None
    external_id: str | None = Field(default=None, description="PBX channel / chat session id: makes arrival idempotent")
    subject: str | None = Field(default=None, max_length=500)
    skill: str | None = Field(
        default=None, max_length=64, description="The skill asked for (a voice-menu option): only agents with it are offered the contact"
    )


class ContactCommand(Command):
    """A command on one contact, named by its id (or the PBX channel id it arrived with)."""

    contact_id: Target = ""


class AgentCommand(ContactCommand):
    """What an agent does on a contact: ``agent_id`` is the agent acting."""

    action = Action.CONTACTS_HANDLE

    agent_id: str


class Answer(AgentCommand):
    pass


class Decline(AgentCommand):
    pass


class Grab(AgentCommand):
    pass


class OnHeldContact(ContactCommand):
    """What the agent on a contact does to it. ``agent_id`` may be left out: an agent (or
    expert) acts for themselves; a supervisor names the agent, else the contact's own."""

    action = Action.CONTACTS_HANDLE

    agent_id: str | None = Field(default=None, description="Default: the agent acting, or for a supervisor the contact's agent")


class Hold(OnHeldContact):
    pass


class Resume(OnHeldContact):
    pass


class Transfer(AgentCommand):
    to_queue_id: str | None = None
    to_agent_id: str | None = None
    mode: Literal["cold", "warm"] = "cold"
    expert: bool = Field(default=False, description="The target is an expert seat (专家坐席)")


class Invite(AgentCommand):
    invitee_id: str


class CompleteTransfer(AgentCommand):
    pass


class Leave(AgentCommand):
    pass


class End(ContactCommand):
    action = Action.CONTACTS_HANDLE

    agent_id: str | None = None
    ended_by: Literal["citizen", "agent", "supervisor", "system"] = "agent"


class WrapUp(ContactCommand):
    action = Action.CONTACTS_HANDLE

    agent_id: str | None = None
    disposition: str | None = Field(default=None, max_length=100)
    timed_out: bool = False


class Abandon(ContactCommand):
    action = Action.CONTACTS_ROUTE


class OverflowContact(ContactCommand):
    action = Action.CONTACTS_ROUTE

    reason: Literal["max_wait", "closed", "no_agents", "supervisor"] = "max_wait"


class LinkRequest(ContactCommand):
    action = Action.CONTACTS_HANDLE

    request_id: str


class ScheduleCallback(Command):
    action = Action.CONTACTS_ARRIVE

    queue_id: str
    phone: str = Field(min_length=3, max_length=40)
    due_at: AwareDatetime
    reason: Literal["answer", "survey", "virtual_hold", "other"] = "answer"
    request_id: str | None = None
    language: str | None = None
    priority: int = Field(default=0, ge=-PRIORITY_MAX, le=PRIORITY_MAX)
    max_attempts: int = Field(default=3, ge=1, le=10)
    retry_seconds: int = Field(default=600, ge=0, le=SECONDS_MAX)
    citizen_id: str | None = None
    external_id: str | None = None
    skill: str | None = Field(default=None, max_length=64, description="The skill the callback needs (as ContactArrives.skill)")


class CallbackOutcome(ContactCommand):
    action = Action.CONTACTS_HANDLE

    outcome: Literal["answered", "no_answer", "busy", "failed"]


class RecordIvrSession(ContactCommand):
    """The IVR session of this call, for the audit: the flow and published version the
    caller met (the telephony adapter issues it when the session ends)."""

    action = Action.CONTACTS_ROUTE

    flow_id: str = Field(min_length=1, max_length=64)
    flow_version: int | None = Field(default=None, ge=1)
    flow_sha256: str = Field(default="", max_length=64)
    language: str = Field(min_length=2, max_length=5)
    outcome: Literal["handover", "callback", "hangup", "caller_hung_up", "limit", "unfinished"]
    steps: int = Field(ge=0, le=100_000)
    request_reference: str | None = Field(default=None, max_length=32)


class Supervise(ContactCommand):
    action = Action.CONTACTS_SUPERVISE

    supervisor_id: str | None = Field(
        default=None,
        min_length=1,
        max_length=64,
        description="The supervisor joining, leaving or taking over: the signed-in supervisor (the default); naming anyone else is refused",
    )
    mode: Literal["monitor", "whisper", "barge", "stop", "take_over"]


# -------------------------------------------------------------------- the router's decisions
class OfferContact(ContactCommand):
    """A supervisor assigns a waiting contact to an agent: reserve the agent and offer the
    contact, both or neither."""

    action = Action.CONTACTS_ROUTE

    agent_id: str


class OfferContacts(Command):
    """The router's batch of decisions, (contact id, agent id) pairs, in one transaction."""

    action = Action.CONTACTS_ROUTE

    decisions: list[tuple[str, str]] = Field(max_length=10_000)


class GiveUpCallback(ContactCommand):
    """The router gives up a callback no agent could take before the queue's maximum age."""

    action = Action.CONTACTS_ROUTE

    reason: Literal["max_age"] = "max_age"


class TimeOutOffer(Command):
    """Nobody answered the offer in time."""

    action = Action.CONTACTS_ROUTE

    contact_id: str
    agent_id: str
