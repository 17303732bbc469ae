"""Service requests: every contact's request, from intake to the citizen's rating.

Intake (受理) → classify → dispatch (派单) → accept (签收) or return (退单) → handling
(办理) → reply (回复) → resolve / close (办结) → rating (评价). Supervision (督办),
extensions (延期), interim replies and notes may happen along the way. A case
returned twice goes to the control office, whose ruling cannot be returned again.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from domain.access import Access
from domain.base import (
    Context,
    HotlineAggregate,
    InvalidCommand,
    InvalidTransition,
    derived_id,
)
from domain.catalogue.aggregate import URGENCIES
from domain.deadlines import WorkingTime, compute_due, deadline_rule
from domain.requests.intake import check_collected
from domain.requests.sla import APPROACHING, CALLBACK, ESCALATION, INTERIM_DUE, MISSED, REMINDER, WAITING, Timer, resume_due

KINDS = ("information", "action", "feedback")
SUBTYPES = {
    "consultation": "information",
    "complaint": "action",
    "application": "action",
    "suggestion": "feedback",
    "praise": "feedback",
}
# voicemail: a message left in the voice menu (seed 000's voice-message channel).
CHANNELS = ("phone", "web", "email", "sms", "chat", "walk_in", "social", "voicemail")
REPLY_CHANNELS = ("phone", "email", "sms")
OPEN_STATES = ("registered", "dispatched", "in_progress", "returned", "awaiting_ruling", "replied", WAITING)
# States from which a request may wait for the citizen (the SLA clock stops meanwhile).
PAUSABLE_STATES = ("registered", "dispatched", "in_progress", "returned")
STATES = (*OPEN_STATES, "resolved", "closed")
# After this many returns the control office rules on ownership (no endless ping-pong).
RETURNS_BEFORE_RULING = 2


def request_id_for(reference: str) -> uuid.UUID:
    return derived_id("request", reference)


class ServiceRequest(HotlineAggregate):
    STREAM = "request"
    CASE = True  # its events carry its case's correlation id

    # ------------------------------------------------------------------ events
    class Registered(HotlineAggregate.Created):
        """A request was registered (受理): the case exists, with its reference, what the citizen reported and its first deadline."""

        # The citizen's own words: sealed with their key when the policy says so
        # (Settings.encrypt_citizen_text, infra/transcoder.py); "[erased]" after an erasure.
        CITIZEN_TEXT = ("description",)
        reference: str
        kind: str
        subtype: str | None
        channel: str
        description: str
        location: dict[str, Any] | None
        urgency: str
        citizen_id: str | None
        personal: dict[str, Any] | None
        """The citizen's contact details as given (name, phone, email, address); null when anonymous."""
        contact_hidden: bool
        language: str
        reply_channel: str | None
        due_at: datetime
        contact_id: str | None

    class Classified(HotlineAggregate.Event):
        """The request was classified under a problem code, with what it collected and its deadline."""

        problem_code: str
        category_id: str
        provider_id: str
        department_id: str
        collected: dict[str, Any]
        due_at: datetime

        def apply(self, r: ServiceRequest) -> None:
            r.problem_code = self.problem_code
            r.category_id = self.category_id
            r.suggested_department_id = self.department_id
            r.suggested_provider_id = self.provider_id
            r.collected = dict(self.collected)
            r.due_at = self.due_at

    class KindChanged(HotlineAggregate.Event):
        """The request's kind (information, action, feedback) was corrected."""

        kind: str
        subtype: str | None
        reason: str

        def apply(self, r: ServiceRequest) -> None:
            r.kind, r.subtype = self.kind, self.subtype

    class Dispatched(HotlineAggregate.Event):
        """The request was dispatched (派单) to a department, with its deadline."""

        department_id: str
        provider_id: str | None
        instructions: str | None
        due_at: datetime
        ruled: bool  # dispatched by the control office's ruling: cannot be returned

        def apply(self, r: ServiceRequest) -> None:
            r.status = "dispatched"
            r.dispatched_at = self.timestamp
            if self.due_at != r.due_at:
                r._window_start = self.timestamp  # re-dispatch gave a fresh allowance
            r.department_id, r.provider_id = self.department_id, self.provider_id
            r.due_at = self.due_at
            r.ruled = self.ruled
            r.dispatch_count += 1

    class Accepted(HotlineAggregate.Event):
        """The department accepted the request (签收): handling starts."""

        department_id: str

        def apply(self, r: ServiceRequest) -> None:
            r.status = "in_progress"
            r.accepted_at = self.timestamp

    class ReturnedToDispatcher(HotlineAggregate.Event):
        """The department returned the request (退单), saying why."""

        department_id: str
        reason: str
        return_count: int

        def apply(self, r: ServiceRequest) -> None:
            r.status = "returned"
            r.return_count = self.return_count
            r.returned_by.append(self.department_id)

    class SentForRuling(HotlineAggregate.Event):
        """Returned too often: the control office decides who owns the case."""

        control_office_id: str | None
        departments_involved: list[str]

        def apply(self, r: ServiceRequest) -> None:
            r.status = "awaiting_ruling"

    class OwnershipRuled(HotlineAggregate.Event):
        """The control office ruled which department owns the case; a Dispatched event follows."""

        department_id: str
        provider_id: str | None
        reason: str

        def apply(self, r: ServiceRequest) -> None:
            pass  # the Dispatched event that follows carries the state change

    class InterimReplied(HotlineAggregate.Event):
        """The citizen got an interim reply: why the answer is late and when it is expected."""

        message: str
        delay_reason: str
        expected_at: datetime
        channel: str

        def apply(self, r: ServiceRequest) -> None:
            r.interim_replies += 1
            r.expected_at = self.expected_at
            r.first_response_at = r.first_response_at or self.timestamp

    class FinalReplied(HotlineAggregate.Event):
        """The citizen got the final reply (回复)."""

        message: str
        channel: str

        def apply(self, r: ServiceRequest) -> None:
            r.status = "replied"
            r.final_answer = self.message
            r.first_response_at = r.first_response_at or self.timestamp

    class Resolved(HotlineAggregate.Event):
        """The request was resolved."""

        resolution: str

        def apply(self, r: ServiceRequest) -> None:
            r.status = "resolved"
            r.resolved_at = self.timestamp

    class Closed(HotlineAggregate.Event):
        """The request was closed (办结)."""

        on_time: bool

        def apply(self, r: ServiceRequest) -> None:
            r.status = "closed"
            r.closed_at = self.timestamp
            r.rated = False

    class Reopened(HotlineAggregate.Event):
        """A resolved or closed request was reopened, with a new deadline."""

        reason: str
        status: str
        due_at: datetime

        def apply(self, r: ServiceRequest) -> None:
            r.status = self.status
            r.final_answer = None
            r.resolved_at = r.closed_at = None
            r.due_at = self.due_at
            r._window_start = self.timestamp
            r.reopen_count += 1
            r.rated, r.rating = False, None  # a rating belongs to one closure
            if r.work_order_outcome is not None:  # that work is done: the reopened case may get new work
                r.work_order_id, r.work_order_outcome, r.duplicate_of_work_order = None, None, False

    class Rated(HotlineAggregate.Event):
        """The citizen rated how the request was handled (评价)."""

        score: int
        comment: str | None

        def apply(self, r: ServiceRequest) -> None:
            r.rated = True
            r.rating = self.score

    class ExtensionRequested(HotlineAggregate.Event):
        """The department asked for a later deadline (延期)."""

        requested_due_at: datetime
        reason: str

        def apply(self, r: ServiceRequest) -> None:
            r.pending_extension = {"requested_due_at": self.requested_due_at, "reason": self.reason}

    class ExtensionApproved(HotlineAggregate.Event):
        """The extension was approved: the request has a new deadline."""

        due_at: datetime
        comment: str | None

        def apply(self, r: ServiceRequest) -> None:
            r.pending_extension = None
            r.due_at = self.due_at
            r.extensions += 1

    class ExtensionRefused(HotlineAggregate.Event):
        """The extension was refused: the deadline stays."""

        reason: str

        def apply(self, r: ServiceRequest) -> None:
            r.pending_extension = None

    class SupervisionStarted(HotlineAggregate.Event):
        """The control office took the case under supervision (督办)."""

        reason: str

        def apply(self, r: ServiceRequest) -> None:
            r.supervised = True

    class SupervisionEnded(HotlineAggregate.Event):
        """The supervision of the case ended."""

        reason: str

        def apply(self, r: ServiceRequest) -> None:
            r.supervised = False

    class NoteAdded(HotlineAggregate.Event):
        """A note was added to the case (internal: staff only)."""

        text: str
        internal: bool

        def apply(self, r: ServiceRequest) -> None:
            r.notes += 1

    class CitizenWrote(HotlineAggregate.Event):
        """The citizen wrote about the case (an email reply, an SMS, the portal): kept on
        the case for whoever handles it, with what came with it."""

        CITIZEN_TEXT = ("text",)  # as Registered.description
        text: str
        channel: str
        attachment_ids: list[str]
        raw_message_sha256: str | None

        def apply(self, r: ServiceRequest) -> None:
            r.citizen_messages += 1

    class WorkOrderLinked(HotlineAggregate.Event):
        """The request was linked to a work order (a new one, or an open one as a duplicate)."""

        work_order_id: str
        as_duplicate: bool

        def apply(self, r: ServiceRequest) -> None:
            r.work_order_id = self.work_order_id
            r.duplicate_of_work_order = self.as_duplicate

    class WorkOrderOutcomeRecorded(HotlineAggregate.Event):
        """The linked work order finished: the citizen is to be told its outcome."""

        work_order_id: str
        outcome: str
        completed: bool

        def apply(self, r: ServiceRequest) -> None:
            r.work_order_outcome = self.outcome

    # ------------------------------------------------------------ SLA clock and timers
    class WaitingForCitizen(HotlineAggregate.Event):
        """The request needs something from the citizen: the SLA clock stops."""

        reason: str
        resume_status: str

        def apply(self, r: ServiceRequest) -> None:
            r.status = WAITING
            r.status_before_pause = self.resume_status
            r.paused_since = self.timestamp

    class CitizenResponded(HotlineAggregate.Event):
        """The clock runs again; the deadline moved by the pause (on its own basis)."""

        CITIZEN_TEXT = ("note",)  # what the citizen answered (their message's text, quoted)
        note: str | None
        paused_seconds: float
        due_at: datetime

        def apply(self, r: ServiceRequest) -> None:
            r.status = r.status_before_pause or "registered"
            r.pauses.append((r.paused_since or self.timestamp, self.timestamp))
            r.paused_since = None
            r.status_before_pause = None
            r.due_at = self.due_at

    class TimersScheduled(HotlineAggregate.Event):
        """The request's timer plan changed (see ``domain/sla.py``)."""

        timers: list[dict[str, Any]]

        def apply(self, r: ServiceRequest) -> None:
            r.timers_scheduled = {t["key"]: t for t in self.timers}

    class TimerFired(HotlineAggregate.Event):
        """Base of the timer events: each names the timer key it fired, at most once."""

        timer_key: str
        due_at: datetime  # the request deadline the timer belongs to
        detail: int | None
        department_id: str | None

        def apply(self, r: ServiceRequest) -> None:
            r.timers_fired.add(self.timer_key)

    class DeadlineApproaching(TimerFired):
        """警戒提示: a warning point of the allowed time passed (detail: percent)."""

    class DeadlineMissed(TimerFired):
        """The request's deadline passed with the case still open."""

    class ReminderSent(TimerFired):
        """催办: the department is reminded of overdue work (detail: reminder number)."""

    class Escalated(TimerFired):
        """Overdue for N working days (detail): the control office takes it under supervision."""

        def apply(self, r: ServiceRequest) -> None:
            r.timers_fired.add(self.timer_key)
            r.escalated = True
            r.supervised = True

    class InterimReplyDue(TimerFired):
        """The full answer will be late: the citizen is owed an interim reply."""

    class SatisfactionCallbackDue(TimerFired):
        """回访: the day after closure the citizen is called for a rating."""

    # ------------------------------------------------------------------ state
    def access(self) -> Access:
        """For the policy: the department it is dispatched to, the citizen it belongs to."""
        return Access.of_department(self.department_id, self.citizen_id)

    def __init__(
        self,
        reference: str,
        kind: str,
        subtype: str | None,
        channel: str,
        description: str,
        location: dict[str, Any] | None,
        urgency: str,
        citizen_id: str | None,
        personal: dict[str, Any] | None,
        contact_hidden: bool,
        language: str,
        reply_channel: str | None,
        due_at: datetime,
        contact_id: str | None,
    ) -> None:
        self.reference = reference
        self.kind, self.subtype, self.channel = kind, subtype, channel
        self.description, self.location, self.urgency = description, location, urgency
        self.citizen_id = citizen_id
        self.personal = personal
        self.contact_hidden = contact_hidden
        self.language = language
        self.reply_channel = reply_channel
        self.due_at = due_at
        self.contact_id = contact_id
        self.status = "registered"
        self.problem_code: str | None = None
        self.category_id: str | None = None
        self.suggested_department_id: str | None = None
        self.suggested_provider_id: str | None = None
        self.collected: dict[str, Any] = {}
        self.department_id: str | None = None
        self.provider_id: str | None = None
        self.ruled = False
        self.dispatch_count = 0
        self.return_count = 0
        self.returned_by: list[str] = []
        self.accepted_at: datetime | None = None
        self.first_response_at: datetime | None = None
        self.interim_replies = 0
        self.expected_at: datetime | None = None
        self.final_answer: str | None = None
        self.resolved_at: datetime | None = None
        self.closed_at: datetime | None = None
        self.reopen_count = 0
        self.rated = False
        self.rating: int | None = None
        self.pending_extension: dict[str, Any] | None = None
        self.extensions = 0
        self.supervised = False
        self.notes = 0
        self.citizen_messages = 0
        self.work_order_id: str | None = None
        self.duplicate_of_work_order = False
        self.work_order_outcome: str | None = None
        # SLA clock and timers (domain/sla.py)
        self.dispatched_at: datetime | None = None
        self._window_start: datetime | None = None
        self.paused_since: datetime | None = None
        self.status_before_pause: str | None = None
        self.pauses: list[tuple[datetime, datetime]] = []
        self.timers_scheduled: dict[str, dict[str, Any]] = {}
        self.timers_fired: set[str] = set()
        self.escalated = False

    @property
    def registered_at(self) -> datetime:
        return self.created_on

    @property
    def window_start(self) -> datetime:
        """When the current allowance started: registration, re-dispatch or reopening."""
        return self._window_start or self.created_on

    @property
    def is_open(self) -> bool:
        return self.status in OPEN_STATES

    # ------------------------------------------------------------------ commands
    @classmethod
    def register(
        cls,
        *,
        reference: str,
        kind: str,
        subtype: str | None,
        channel: str,
        description: str,
        location: dict[str, Any] | None,
        urgency: str,
        citizen_id: uuid.UUID | None,
        personal: dict[str, Any] | None,
        contact_hidden: bool,
        language: str,
        reply_channel: str | None,
        ctx: Context,
        calendar: WorkingTime | None = None,
        contact_id: str | None = None,
    ) -> ServiceRequest:
        if kind not in KINDS:
            raise InvalidCommand(f"kind {kind!r} must be one of {list(KINDS)}", field="kind")
        if subtype is not None:
            if subtype not in SUBTYPES:
                raise InvalidCommand(f"subtype {subtype!r} must be one of {list(SUBTYPES)}", field="subtype")
            if SUBTYPES[subtype] != kind:
                raise InvalidCommand(f"a {subtype} is a kind of {SUBTYPES[subtype]} request, not {kind}", field="subtype")
        if channel not in CHANNELS:
            raise InvalidCommand(f"channel {channel!r} must be one of {list(CHANNELS)}", field="channel")
        if urgency not in URGENCIES:
            raise InvalidCommand(f"urgency {urgency!r} must be one of {list(URGENCIES)}", field="urgency")
        if not description or not description.strip():
            raise InvalidCommand("a description of the problem is required", field="description")
        if len(description) > 10_000:
            raise InvalidCommand("the description is longer than 10,000 characters", field="description")
        if reply_channel is not None:
            check_reply_channel(reply_channel, personal)
        due_at = compute_due(ctx.now, deadline_rule(urgency, None), calendar)
        return cls._start(
            cls.Registered,
            request_id_for(reference),
            ctx,
            reference=reference,
            kind=kind,
            subtype=subtype,
            channel=channel,
            description=description.strip(),
            location=location,
            urgency=urgency,
            citizen_id=str(citizen_id) if citizen_id else None,
            personal=personal,
            contact_hidden=contact_hidden,
            language=language,
            reply_channel=reply_channel,
            due_at=due_at,
            contact_id=contact_id,
        )

    def _require_state(self, *states: str, action: str) -> None:
        if self.status not in states:
            raise InvalidTransition(
                f"cannot {action} request {self.reference}: it is {self.status}",
                status=self.status,
                allowed_in=list(states),
            )

    def classify(
        self,
        problem_code: str,
        problem: dict[str, Any],
        route: dict[str, str],
        collected: dict[str, Any] | None,
        ctx: Context,
        calendar: WorkingTime | None = None,
    ) -> None:
        self._require_state("registered", "returned", "dispatched", "in_progress", "awaiting_ruling", action="classify")
        if self.work_order_id is not None and problem_code != self.problem_code:
            raise InvalidTransition(
                f"request {self.reference} is linked to work order {self.work_order_id} "
                f"for {self.problem_code}: it cannot change problem code"
            )
        collected = check_collected(problem_code, problem["fields_to_collect"], collected)
        due = compute_due(self.registered_at, deadline_rule(self.urgency, problem), calendar)
        self._record(
            self.Classified,
            ctx,
            problem_code=problem_code,
            collected=collected,
            due_at=due,
            **route,
        )

    def change_kind(self, kind: str, subtype: str | None, reason: str, ctx: Context) -> None:
        """An information request becomes an action request when the citizen asks for something to be done."""
        self._require_state(*OPEN_STATES, action="change the kind of")
        if kind not in KINDS:
            raise InvalidCommand(f"kind {kind!r} must be one of {list(KINDS)}")
        if subtype is not None and SUBTYPES.get(subtype) != kind:
            raise InvalidCommand(f"subtype {subtype!r} does not belong to kind {kind!r}")
        if kind == self.kind and subtype == self.subtype:
            raise InvalidCommand(f"request {self.reference} is already {kind}")
        if self.work_order_id is not None and kind != "action":
            raise InvalidTransition("a request with a work order stays an action request")
        require_reason(reason)
        self._record(self.KindChanged, ctx, kind=kind, subtype=subtype, reason=reason)

    def dispatch(
        self,
        department_id: str,
        provider_id: str | None,
        instructions: str | None,
        ctx: Context,
        calendar: WorkingTime | None = None,
        problem: dict[str, Any] | None = None,
    ) -> None:
        self._require_state("registered", "returned", action="dispatch")
        if self.problem_code is None:
            raise InvalidTransition(
                f"request {self.reference} must be classified with a problem code before dispatch", code="problem_code_needed"
            )
        if self.kind == "information" and self.work_order_id is None:
            # Information requests are answered by the hotline; if the citizen wants
            # something done, change the kind first.
            raise InvalidTransition(
                "an information request is answered, not dispatched: change its kind to action first", code="information_not_dispatched"
            )
        self._record(
            self.Dispatched,
            ctx,
            department_id=department_id,
            provider_id=provider_id,
            instructions=instructions,
            due_at=self._due_on_dispatch(department_id, ctx, calendar, problem),
            ruled=False,
        )

    def _due_on_dispatch(self, department_id: str, ctx: Context, calendar: WorkingTime | None, problem: dict[str, Any] | None) -> datetime:
        """Re-dispatched to another department: it gets the full allowance from now
        (the deadline is recalculated); the citizen's deadline is never shortened."""
        if self.dispatch_count == 0 or department_id == self.department_id:
            return self.due_at
        fresh = compute_due(ctx.now, deadline_rule(self.urgency, problem), calendar)
        return max(self.due_at, fresh)

    def accept(self, department_id: str, ctx: Context) -> None:
        self._require_state("dispatched", action="accept")
        self._require_owner(department_id)
        self._record(self.Accepted, ctx, department_id=department_id)

    def return_to_dispatcher(self, department_id: str, reason: str, ctx: Context, control_office_id: str | None) -> None:
        self._require_state("dispatched", "in_progress", action="return")
        self._require_owner(department_id)
        require_reason(reason)
        if self.ruled:
            raise InvalidTransition(
                f"the control office ruled that {self.department_id} owns request {self.reference}: it cannot be returned"
            )
        count = self.return_count + 1
        self._record(self.ReturnedToDispatcher, ctx, department_id=department_id, reason=reason, return_count=count)
        if count >= RETURNS_BEFORE_RULING:
            self._record(
                self.SentForRuling,
                ctx,
                control_office_id=control_office_id,
                departments_involved=sorted(set(self.returned_by)),
            )

    def rule_ownership(
        self,
        department_id: str,
        provider_id: str | None,
        reason: str,
        ctx: Context,
        calendar: WorkingTime | None = None,
        problem: dict[str, Any] | None = None,
    ) -> None:
        self._require_state("awaiting_ruling", "returned", action="rule on ownership of")
        require_reason(reason)
        self._record(self.OwnershipRuled, ctx, department_id=department_id, provider_id=provider_id, reason=reason)
        self._record(
            self.Dispatched,
            ctx,
            department_id=department_id,
            provider_id=provider_id,
            instructions=reason,
            due_at=self._due_on_dispatch(department_id, ctx, calendar, problem),
            ruled=True,
        )

    def interim_reply(self, message: str, delay_reason: str, expected_at: datetime, channel: str, ctx: Context) -> None:
        self._require_state("registered", "dispatched", "in_progress", "returned", "awaiting_ruling", action="send an interim reply to")
        require_reason(message, "message")
        require_reason(delay_reason, "delay reason")
        check_reply_channel(channel, self.personal)
        if expected_at <= ctx.now:
            raise InvalidCommand("the new expected date must be in the future", code="expected_not_future", field="expected_at")
        self._record(self.InterimReplied, ctx, message=message, delay_reason=delay_reason, expected_at=expected_at, channel=channel)

    def final_reply(self, message: str, channel: str, ctx: Context) -> None:
        self._require_state("registered", "dispatched", "in_progress", action="give the final reply to")
        if self.status != "in_progress" and self.kind == "action" and self.dispatch_count > 0:
            raise InvalidTransition("the department must accept the request before the final reply", code="not_accepted_yet")
        require_reason(message, "message")
        check_reply_channel(channel, self.personal)
        self._record(self.FinalReplied, ctx, message=message, channel=channel)

    def resolve(self, resolution: str, ctx: Context) -> None:
        self._require_state("replied", action="resolve")
        require_reason(resolution, "resolution")
        self._record(self.Resolved, ctx, resolution=resolution)

    def close(self, ctx: Context) -> None:
        self._require_state("replied", "resolved", action="close")
        if not self.final_answer:
            raise InvalidTransition("a request is closed only after the final reply", code="final_reply_first")
        self._record(self.Closed, ctx, on_time=ctx.now <= self.due_at)

    def reopen(self, reason: str, ctx: Context, calendar: WorkingTime | None = None, problem: dict[str, Any] | None = None) -> None:
        self._require_state("resolved", "closed", action="reopen")
        require_reason(reason)
        status = "in_progress" if self.department_id else "registered"
        # A reopened case gets a fresh allowance from now, by its urgency's rule.
        due = compute_due(ctx.now, deadline_rule(self.urgency, problem), calendar)
        self._record(self.Reopened, ctx, reason=reason, status=status, due_at=due)

    def rate(self, score: int, comment: str | None, ctx: Context) -> None:
        self._require_state("closed", action="rate")
        if self.rated:
            raise InvalidTransition(f"request {self.reference} has already been rated since it was closed")
        if not isinstance(score, int) or not 1 <= score <= 5:
            raise InvalidCommand("the satisfaction score must be a whole number from 1 to 5", field="score")
        self._record(self.Rated, ctx, score=score, comment=comment)

    def request_extension(self, requested_due_at: datetime, reason: str, department_id: str | None, ctx: Context) -> None:
        self._require_state("dispatched", "in_progress", action="request an extension for")
        if department_id is not None:
            self._require_owner(department_id)
        require_reason(reason)
        if self.pending_extension is not None:
            raise InvalidTransition("an extension request is already waiting for approval", code="extension_pending")
        if ctx.now >= self.due_at:
            raise InvalidTransition(
                "an extension must be requested before the deadline",
                code="extension_too_late",
                due_at=self.due_at.isoformat(),
            )
        if requested_due_at <= self.due_at:
            raise InvalidCommand(
                "the requested deadline must be later than the current one",
                code="deadline_not_later",
                field="requested_due_at",
                due_at=self.due_at.isoformat(),
            )
        self._record(self.ExtensionRequested, ctx, requested_due_at=requested_due_at, reason=reason)

    def approve_extension(self, comment: str | None, ctx: Context, due_at: datetime | None = None) -> None:
        if self.pending_extension is None:
            raise InvalidTransition("no extension request is waiting")
        new_due = due_at or self.pending_extension["requested_due_at"]
        if new_due <= self.due_at:
            raise InvalidCommand("an approved extension must move the deadline later", code="deadline_not_later", field="due_at")
        self._record(self.ExtensionApproved, ctx, due_at=new_due, comment=comment)

    def refuse_extension(self, reason: str, ctx: Context) -> None:
        if self.pending_extension is None:
            raise InvalidTransition("no extension request is waiting")
        require_reason(reason)
        self._record(self.ExtensionRefused, ctx, reason=reason)

    def start_supervision(self, reason: str, ctx: Context) -> None:
        self._require_state(*OPEN_STATES, action="supervise")
        if self.supervised:
            raise InvalidTransition(f"request {self.reference} is already under supervision")
        require_reason(reason)
        self._record(self.SupervisionStarted, ctx, reason=reason)

    def end_supervision(self, reason: str, ctx: Context) -> None:
        if not self.supervised:
            raise InvalidTransition(f"request {self.reference} is not under supervision")
        require_reason(reason)
        self._record(self.SupervisionEnded, ctx, reason=reason)

    def add_note(self, text: str, internal: bool, ctx: Context) -> None:
        require_reason(text, "note")
        self._record(self.NoteAdded, ctx, text=text, internal=internal)

    def add_citizen_message(self, text: str, channel: str, attachment_ids: list[str], raw_message_sha256: str | None, ctx: Context) -> None:
        """Any time, closed cases included: what a citizen writes is never dropped (a message
        after closure is how a reopening starts). Resuming a paused clock is the handler's."""
        if not text.strip() and not attachment_ids:
            raise InvalidCommand("a citizen's message needs text or an attachment", field="text")
        self._record(
            self.CitizenWrote, ctx, text=text, channel=channel, attachment_ids=attachment_ids, raw_message_sha256=raw_message_sha256
        )

    def link_work_order(self, work_order_id: uuid.UUID, work_order_problem_code: str, as_duplicate: bool, ctx: Context) -> None:
        if as_duplicate:  # at intake, or by the department holding it: the same problem already in work
            self._require_state("registered", "dispatched", "in_progress", action="link to an open work order")
        else:  # new work is for the department the case was dispatched to, while it holds it
            self._require_state("dispatched", "in_progress", action="create a work order for")
        if self.kind != "action":
            raise InvalidTransition("only action requests get work orders")
        if self.problem_code is None:
            raise InvalidTransition("a problem code is required to create or link a work order")
        if self.work_order_id is not None:
            raise InvalidTransition(f"request {self.reference} already has work order {self.work_order_id}")
        if work_order_problem_code != self.problem_code:
            raise InvalidCommand(f"work order is for {work_order_problem_code}, the request for {self.problem_code}: not a duplicate")
        self._record(self.WorkOrderLinked, ctx, work_order_id=str(work_order_id), as_duplicate=as_duplicate)

    def record_work_order_outcome(self, work_order_id: uuid.UUID, outcome: str, completed: bool, ctx: Context) -> None:
        if self.work_order_id != str(work_order_id):
            raise InvalidTransition(f"work order {work_order_id} is not linked to request {self.reference}")
        self._record(self.WorkOrderOutcomeRecorded, ctx, work_order_id=str(work_order_id), outcome=outcome, completed=completed)

    # ------------------------------------------------------------ SLA clock and timers
    def wait_for_citizen(self, reason: str, ctx: Context) -> None:
        """Stop the clock: the case needs information or an action from the citizen."""
        self._require_state(*PAUSABLE_STATES, action="pause")
        require_reason(reason)
        self._record(self.WaitingForCitizen, ctx, reason=reason, resume_status=self.status)

    def citizen_responded(
        self, note: str | None, ctx: Context, calendar: WorkingTime | None = None, problem: dict[str, Any] | None = None
    ) -> None:
        """Restart the clock; the deadline moves by the pause on the deadline's basis."""
        self._require_state(WAITING, action="resume")
        assert self.paused_since is not None
        basis = deadline_rule(self.urgency, problem).get("basis", "clock")
        due = resume_due(self.due_at, self.paused_since, ctx.now, basis, calendar)
        paused = (ctx.now - self.paused_since).total_seconds()
        self._record(self.CitizenResponded, ctx, note=note, paused_seconds=paused, due_at=due)

    def schedule_timers(self, timers: list[Timer], ctx: Context) -> None:
        self._record(self.TimersScheduled, ctx, timers=[t.to_dict() for t in timers])

    def fire_timer(self, key: str, ctx: Context) -> bool:
        """Records the timer's event once; False when it fired already or was replanned."""
        if key in self.timers_fired:
            return False
        spec = self.timers_scheduled.get(key)
        if spec is None:
            return False  # the deadline moved or the request left the state: obsolete
        timer = Timer.from_dict(spec)
        if ctx.now < timer.at:
            raise InvalidTransition(f"timer {key} of request {self.reference} is not due before {timer.at.isoformat()}")
        self._record(TIMER_EVENTS[timer.kind], ctx, **timer_event_fields(timer))
        return True

    def _require_owner(self, department_id: str) -> None:
        if department_id != self.department_id:
            raise InvalidTransition(
                f"request {self.reference} is with {self.department_id}, not {department_id}",
                code="not_owner",
            )


TIMER_EVENTS: dict[str, type[ServiceRequest.TimerFired]] = {
    APPROACHING: ServiceRequest.DeadlineApproaching,
    MISSED: ServiceRequest.DeadlineMissed,
    REMINDER: ServiceRequest.ReminderSent,
    ESCALATION: ServiceRequest.Escalated,
    INTERIM_DUE: ServiceRequest.InterimReplyDue,
    CALLBACK: ServiceRequest.SatisfactionCallbackDue,
}


def timer_event_fields(timer: Timer) -> dict[str, Any]:
    return {"timer_key": timer.key, "due_at": timer.deadline, "detail": timer.detail, "department_id": timer.department_id}


def require_reason(text: str | None, what: str = "reason") -> str:
    if not text or not str(text).strip():
        raise InvalidCommand(f"a {what} is required", code="text_required", field=what.replace(" ", "_"))
    return text


def check_reply_channel(channel: str, personal: dict[str, Any] | None) -> None:
    if channel not in REPLY_CHANNELS:
        raise InvalidCommand(f"reply channel {channel!r} must be one of {list(REPLY_CHANNELS)}", field="reply_channel")
    needs = {"phone": "phone", "sms": "phone", "email": "email"}[channel]
    if not (personal or {}).get(needs):
        raise InvalidCommand(f"a reply by {channel} needs the citizen's {needs}", field="reply_channel")
