"""Contacts: one interaction with a citizen (call, chat, email, web session, callback).

Life of a contact::

    arrived → queued ⇄ offered → connected (⇄ held) → wrap_up → closed
                 │         └→ (offer timed out / declined: back to its old place)
                 ├→ abandoned            (caller hung up while waiting)
                 ├→ overflowed → another queue │ voicemail │ callback (keeps the place)
    scheduled (callback due) → offered → dialing → connected │ scheduled again │ failed

A contact is offered to at most one agent at a time and handled by one primary agent;
consulted experts and conference members join as participants. It ends in exactly one
terminal state: closed, abandoned, voicemail or failed. Waits, talk and hold times are
computed from the injected clock and stored in the events.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any, Literal

from domain.base import Context, HotlineAggregate, InvalidCommand, InvalidTransition, derived_id
from domain.contact_center.rules import QueueRules, media_of

TERMINAL = ("closed", "abandoned", "voicemail", "failed")
WAITING = ("queued", "scheduled")
# Where an agent has talked with the citizen: requests registered then may be linked.
LINKABLE = ("connected", "wrap_up", "closed")
DIRECTIONS = ("inbound", "outbound")
OFFER_KINDS = ("route", "transfer", "consult", "conference")
# A caller who chose a callback instead of waiting ("virtual hold"): dial attempts.
# A caller who hangs up within this many seconds of arriving most likely misdialled: the
# service level and the abandonment rate leave such calls out (wallboard and reports alike).
SHORT_ABANDON_SECONDS = 5.0
VIRTUAL_HOLD_ATTEMPTS = 3
VIRTUAL_HOLD_RETRY = 300


def contact_uuid_for(external_id: str) -> uuid.UUID:
    """A contact's id from the PBX channel / chat session id: a re-delivered StasisStart
    creates nothing twice."""
    return derived_id("contact", external_id)


def _seconds(a: datetime, b: datetime) -> float:
    return round(max(0.0, (b - a).total_seconds()), 3)


class Contact(HotlineAggregate):
    STREAM = "contact"
    CASE = True  # its events carry its case's correlation id

    class Arrived(HotlineAggregate.Created):
        """A call, chat or message reached the hotline (or an outbound contact started): the contact exists."""

        channel: str
        media: str
        queue_id: str
        language: str | None
        priority: int
        personal: dict[str, Any] | None
        """The citizen's phone number or address as the channel gave it (personal data); null when none."""
        direction: str
        citizen_id: str | None
        external_id: str | None
        subject: str | None
        skill: str | None = None
        """The skill the citizen asked for (a voice-menu option): only agents with it are offered
        the contact; null when any agent of the queue will do (and in events stored before)."""

    class Queued(HotlineAggregate.Event):
        """The contact waits in a queue for an agent."""

        queue_id: str
        priority: int
        since: datetime  # the place in line: kept when an offer fails or a callback waits
        reason: str  # arrival / transfer / overflow / callback_answered

        def apply(self, c: Contact) -> None:
            c.status, c.queue_id, c.priority, c.since = "queued", self.queue_id, self.priority, self.since
            if self.reason == "transfer":
                c.path = [self.queue_id]  # an agent chose this queue: a new leg, overflows may start again
            else:
                c._waited_in(self.queue_id)

    class Offered(HotlineAggregate.Event):
        """The router offered the contact to an agent."""

        agent_id: str
        queue_id: str
        kind: str  # route / transfer / consult / conference

        def apply(self, c: Contact) -> None:
            c.offered_to, c.offer_kind = self.agent_id, self.kind
            if self.kind in ("route", "transfer"):
                c.status = "offered"

    class OfferTimedOut(HotlineAggregate.Event):
        """The agent did not accept the offer in time: the contact goes back to its place in line."""

        agent_id: str

        def apply(self, c: Contact) -> None:
            c._offer_failed()

    class OfferDeclined(HotlineAggregate.Event):
        """The agent declined the offer: the contact goes back to its place in line."""

        agent_id: str

        def apply(self, c: Contact) -> None:
            c._offer_failed()

    class Answered(HotlineAggregate.Event):
        """An agent answered the contact."""

        agent_id: str
        queue_id: str
        wait_seconds: float
        grabbed: bool

        def apply(self, c: Contact) -> None:
            c.status, c.agent_id, c.answered_at = "connected", self.agent_id, self.timestamp
            c.participants = {self.agent_id: "primary"}
            c.offered_to = c.offer_kind = None
            c._handled(self.agent_id)

    class Held(HotlineAggregate.Event):
        """The agent put the citizen on hold."""

        agent_id: str

        def apply(self, c: Contact) -> None:
            c.held_since = self.timestamp

    class Resumed(HotlineAggregate.Event):
        """The agent took the citizen off hold."""

        agent_id: str
        hold_seconds: float

        def apply(self, c: Contact) -> None:
            c.held_since = None
            c.hold_seconds += self.hold_seconds

    class Transferred(HotlineAggregate.Event):
        """The contact was transferred to a queue or an agent, cold (at once) or warm (after a consult)."""

        from_agent_id: str
        to_queue_id: str | None
        to_agent_id: str | None
        mode: str  # cold / warm
        expert: bool
        talk_seconds: float  # the transferring agent's leg (cold transfers)

        def apply(self, c: Contact) -> None:
            if self.mode == "cold":
                # Between legs the contact waits again: for the named agent or a queue.
                c.participants.pop(self.from_agent_id, None)
                c.agent_id = None
                c.legs_talk += self.talk_seconds
                c.answered_at = None
                c.status, c.since = "queued", self.timestamp
                if self.to_queue_id is not None:
                    c.skill = None  # the agent chose the queue: any agent of it will do

    class ParticipantJoined(HotlineAggregate.Event):
        """Another agent joined the contact, for a consult or a conference."""

        agent_id: str
        role: str  # consult / conference

        def apply(self, c: Contact) -> None:
            c.participants[self.agent_id] = self.role
            c.offered_to = c.offer_kind = None
            c._handled(self.agent_id)

    class ParticipantLeft(HotlineAggregate.Event):
        """A participant left the contact."""

        agent_id: str
        new_primary: str | None  # a warm transfer completed: the expert now handles it

        def apply(self, c: Contact) -> None:
            c.participants.pop(self.agent_id, None)
            if self.new_primary:
                c.agent_id = self.new_primary
                c.participants[self.new_primary] = "primary"

    class Abandoned(HotlineAggregate.Event):
        """The citizen hung up while waiting, before an agent answered."""

        queue_id: str
        wait_seconds: float
        offered_to: str | None

        def apply(self, c: Contact) -> None:
            c.status, c.offered_to = "abandoned", None

    class Overflowed(HotlineAggregate.Event):
        """The contact left its queue for another queue, voicemail or a callback (waited too long, queue closed, no agents)."""

        from_queue_id: str
        to: str  # queue / voicemail / callback
        to_queue_id: str | None
        wait_seconds: float
        reason: str  # max_wait / closed / no_agents

        def apply(self, c: Contact) -> None:
            if self.to == "voicemail":
                c.status = "voicemail"
            elif self.to == "callback":
                c.virtual = True  # the caller hangs up; the contact keeps its place
                c.callback = {"attempt": 1, "max_attempts": VIRTUAL_HOLD_ATTEMPTS, "retry_seconds": VIRTUAL_HOLD_RETRY}
            else:
                c.queue_id = self.to_queue_id or c.queue_id
                c.skill = None  # the overflow queue is the fallback: any of its agents will do
                c._waited_in(c.queue_id)

    class Ended(HotlineAggregate.Event):
        """The conversation ended."""

        agent_id: str | None
        talk_seconds: float
        hold_seconds: float
        ended_by: str  # citizen / agent / supervisor / system
        participants: list[str]

        def apply(self, c: Contact) -> None:
            c.status, c.held_since = "wrap_up", None
            c.hold_seconds = self.hold_seconds
            c.ended_at = self.timestamp

    class WrappedUp(HotlineAggregate.Event):
        """After-call work on the contact ended, with the disposition the agent chose."""

        agent_id: str | None
        wrap_seconds: float
        disposition: str | None
        timed_out: bool

        def apply(self, c: Contact) -> None:
            c.status, c.disposition = "closed", self.disposition

    class RequestLinked(HotlineAggregate.Event):
        """A service request was registered from this contact, or linked to it."""

        request_id: str

        def apply(self, c: Contact) -> None:
            c.request_ids.append(self.request_id)

    class CallbackScheduled(HotlineAggregate.Event):
        """The hotline will call the citizen back: an attempt is scheduled."""

        queue_id: str
        due_at: datetime
        attempt: int  # the attempt this schedules (1 = first)
        max_attempts: int
        retry_seconds: int
        reason: str  # answer / survey / virtual_hold / retry
        request_id: str | None

        def apply(self, c: Contact) -> None:
            c.status, c.queue_id, c.due_at, c.since = "scheduled", self.queue_id, self.due_at, self.due_at
            c._waited_in(self.queue_id)
            c.callback = {"attempt": self.attempt, "max_attempts": self.max_attempts, "retry_seconds": self.retry_seconds}
            c.virtual = True
            c.offered_to = c.offer_kind = None

    class CallbackAttempted(HotlineAggregate.Event):
        """The agent accepted the callback: the citizen is being dialled."""

        attempt: int
        agent_id: str

        def apply(self, c: Contact) -> None:
            c.status, c.agent_id = "dialing", self.agent_id
            c.offered_to = c.offer_kind = None
            c._handled(self.agent_id)

    class CallbackUnanswered(HotlineAggregate.Event):
        """A callback attempt did not reach the citizen."""

        attempt: int
        agent_id: str
        outcome: str  # no_answer / busy / failed

        def apply(self, c: Contact) -> None:
            c.agent_id = None

    class CallbackConnected(HotlineAggregate.Event):
        """A callback reached the citizen and an agent."""

        agent_id: str
        queue_id: str
        wait_seconds: float
        attempt: int

        def apply(self, c: Contact) -> None:
            c.status, c.answered_at = "connected", self.timestamp
            c.participants = {self.agent_id: "primary"}

    class CallbackGaveUp(HotlineAggregate.Event):
        """The hotline stopped trying to call the citizen back: no attempt reached them, or no
        agent could take the callback before the queue's maximum age."""

        attempts: int
        reason: Literal["attempts", "max_age"] = "attempts"
        """Why: attempts (the last attempt failed) or max_age (no agent could take it in time)."""

        def apply(self, c: Contact) -> None:
            c.status = "failed"

    class IvrSessionRecorded(HotlineAggregate.Event):
        """The voice menu the caller went through on this call: which IVR flow and which
        published version of it (stream ``ivr_flow``), in which language, how it ended."""

        flow_id: str
        """The IVR flow's name (stream ``ivr_flow``)."""
        flow_version: int | None
        """The published version of the flow the caller met (None: an unpublished file tried)."""
        flow_sha256: str
        """SHA-256 of that version's document."""
        language: str
        """The language the caller heard at the end."""
        outcome: str
        """How the session ended: handover, callback, hangup, caller_hung_up, limit or unfinished."""
        steps: int
        """Nodes of the flow the caller went through."""
        request_reference: str | None
        """The request a message left in the IVR became, if any."""

        def apply(self, c: Contact) -> None:
            pass  # a fact for the audit; the contact's state does not change

    class SupervisorJoined(HotlineAggregate.Event):
        """A supervisor joined the contact to monitor, whisper to the agent, or barge in."""

        supervisor_id: str
        mode: str  # monitor / whisper / barge

        def apply(self, c: Contact) -> None:
            c.supervisors[self.supervisor_id] = self.mode

    class SupervisorLeft(HotlineAggregate.Event):
        """The supervisor left the contact."""

        supervisor_id: str

        def apply(self, c: Contact) -> None:
            c.supervisors.pop(self.supervisor_id, None)

    class TakenOver(HotlineAggregate.Event):
        """A supervisor took the contact over from the agent."""

        supervisor_id: str
        from_agent_id: str | None

        def apply(self, c: Contact) -> None:
            c.participants.pop(self.from_agent_id or "", None)
            c.participants[self.supervisor_id] = "primary"
            c.agent_id = self.supervisor_id
            c.supervisors.pop(self.supervisor_id, None)
            c.taken_over = True
            c._handled(self.supervisor_id)

    class RecordingDemanded(HotlineAggregate.Event):
        """The agent on the call (or a supervisor for them) asked to record it: the PBX adapter
        plays the queue's announcement and records the call's bridge (reason agent_demand)."""

        agent_id: str
        """The agent on the call the recording is for: the one who asked, or the one a supervisor named."""
        requested_by: str
        """Who asked: the agent themselves, or the supervisor acting for them."""
        queue_id: str
        """The contact's queue, whose recording policy allowed the demand."""
        mode: str
        """That queue's recording policy when asked (on_demand, or sample for a call outside the sample)."""
        announcement: str | None
        """The prompt played to the call before recording (an ARI media URI, the queue's policy)."""

        def apply(self, c: Contact) -> None:
            c.recording_demanded_for = c.answered_at  # one demand per answered leg of the call

    # ------------------------------------------------------------------ state
    def __init__(
        self,
        channel: str,
        media: str,
        queue_id: str,
        language: str | None,
        priority: int,
        personal: dict[str, Any] | None,
        direction: str,
        citizen_id: str | None,
        external_id: str | None,
        subject: str | None,
        skill: str | None = None,
    ) -> None:
        self.skill = skill  # asked for on arrival; dropped when the contact moves to another queue
        self.channel, self.media, self.queue_id, self.language = channel, media, queue_id, language
        self.priority, self.personal, self.direction = priority, personal, direction
        self.citizen_id, self.external_id, self.subject = citizen_id, external_id, subject
        self.status = "arrived"
        self.since: datetime | None = None
        self.offered_to: str | None = None
        self.offer_kind: str | None = None
        self.agent_id: str | None = None
        self.participants: dict[str, str] = {}
        self.supervisors: dict[str, str] = {}
        self.answered_at: datetime | None = None
        self.ended_at: datetime | None = None
        self.held_since: datetime | None = None
        self.hold_seconds = 0.0
        self.legs_talk = 0.0
        self.disposition: str | None = None
        self.request_ids: list[str] = []
        self.virtual = False  # no citizen on the line: a callback is due instead
        self.due_at: datetime | None = None
        self.callback: dict[str, int] | None = None
        self.taken_over = False
        # Everyone who has been the contact's agent or a participant (answered it, was
        # dialling it, joined it, took it over): they may still be told its state.
        self.handled_by: list[str] = []
        # The queues the contact waited in since it arrived (or an agent transferred it to
        # a queue): an overflow never leads back to one of them, so a cycle of overflow
        # queues cannot bounce a contact for ever.
        self.path: list[str] = [queue_id]

    def _handled(self, agent_id: str) -> None:
        if agent_id not in self.handled_by:
            self.handled_by.append(agent_id)

    def _waited_in(self, queue_id: str) -> None:
        if queue_id not in self.path:
            self.path.append(queue_id)

    def _offer_failed(self) -> None:
        if self.offer_kind in ("route", "transfer"):
            # Back to the queue at its old place (``since`` is unchanged).
            self.status = "queued"
        self.offered_to = self.offer_kind = None

    @property
    def is_terminal(self) -> bool:
        return self.status in TERMINAL

    @property
    def is_callback(self) -> bool:
        return self.virtual

    def wait_seconds(self, now: datetime) -> float:
        return _seconds(self.since or self.created_on, now)

    # ------------------------------------------------------------------ creation
    @classmethod
    def arrive(
        cls,
        *,
        channel: str,
        queue_id: str,
        language: str | None,
        priority: int,
        personal: dict[str, Any] | None,
        direction: str,
        citizen_id: str | None,
        external_id: str | None,
        subject: str | None,
        ctx: Context,
        skill: str | None = None,
    ) -> Contact:
        if direction not in DIRECTIONS:
            raise InvalidCommand(f"direction must be one of {DIRECTIONS}")
        if not -100 <= priority <= 100:
            raise InvalidCommand("priority must be between -100 and 100")
        media = media_of(channel)
        contact_id = contact_uuid_for(external_id) if external_id else uuid.uuid4()
        return cls._start(
            cls.Arrived,
            contact_id,
            ctx,
            channel=channel,
            media=media,
            queue_id=queue_id,
            language=language,
            priority=priority,
            personal=personal,
            direction=direction,
            citizen_id=citizen_id,
            external_id=external_id,
            subject=subject,
            skill=skill,
        )

    def enqueue(
        self, queue_id: str, ctx: Context, *, reason: str = "arrival", priority: int | None = None, keep_place: bool = False
    ) -> None:
        if self.status not in ("arrived", "connected", "dialing") and not (reason == "overflow" and self.status == "queued"):
            raise InvalidTransition(f"contact {self.id} is {self.status}: it cannot join a queue")
        since = self.since if keep_place and self.since else ctx.now
        self._record(
            self.Queued,
            ctx,
            queue_id=queue_id,
            priority=self.priority if priority is None else priority,
            since=since,
            reason=reason,
        )

    # ------------------------------------------------------------------ routing
    def why_not_skilled(self, agent_id: str, skills: dict[str, int], rules: QueueRules, now: datetime) -> str | None:
        """Why an agent with these skills may not take this contact (None: they may): a
        skill the queue requires missing altogether (relaxation lowers levels, it never
        waives a skill), or the skill the citizen asked for, until the queue drops it.
        The router never makes such a choice; an offer or a grab is checked all the same,
        as a router with a stale view, or an agent's own pick, could."""
        if rules.margin(skills) is None:
            return f"agent {agent_id} lacks the skills queue {self.queue_id} requires"
        if self.skill and skills.get(self.skill, 0) < 1 and not rules.skill_dropped(self.wait_seconds(now)):
            return f"contact {self.id} asked for the skill {self.skill!r}, which agent {agent_id} lacks"
        return None

    def why_not_offer(self, now: datetime) -> str | None:
        if self.offered_to is not None:
            return f"contact {self.id} is already offered to {self.offered_to}"
        if self.status == "scheduled":
            if self.due_at is not None and self.due_at > now:
                return f"callback {self.id} is due at {self.due_at.isoformat()}"
            return None
        if self.status != "queued":
            return f"contact {self.id} is {self.status}, not waiting"
        return None

    def offer(self, agent_id: str, ctx: Context, *, kind: str = "route") -> None:
        if kind in ("route", "transfer"):
            why = self.why_not_offer(ctx.now)
            if why:
                raise InvalidTransition(why, code="not_offerable")
        else:
            if self.status != "connected":
                raise InvalidTransition(f"contact {self.id} is {self.status}: only a connected contact can be shared")
            if self.offered_to is not None:
                raise InvalidTransition(f"contact {self.id} is already offered to {self.offered_to}", code="not_offerable")
            if agent_id in self.participants:
                raise InvalidTransition(f"agent {agent_id} is already on contact {self.id}")
        self._record(self.Offered, ctx, agent_id=agent_id, queue_id=self.queue_id, kind=kind)

    def fail_offer(self, agent_id: str, outcome: str, ctx: Context) -> None:
        if self.offered_to != agent_id:
            raise InvalidTransition(f"contact {self.id} is not offered to agent {agent_id}", code="not_offered")
        self._record(self.OfferTimedOut if outcome == "timed_out" else self.OfferDeclined, ctx, agent_id=agent_id)

    def accept(self, agent_id: str, ctx: Context) -> str:
        """The offered agent takes it. Returns how: 'answered', 'dialing' or 'joined'."""
        if self.offered_to != agent_id:
            raise InvalidTransition(f"contact {self.id} is not offered to agent {agent_id}", code="not_offered")
        if self.offer_kind in ("consult", "conference"):
            self._record(self.ParticipantJoined, ctx, agent_id=agent_id, role=self.offer_kind)
            return "joined"
        if self.virtual:
            attempt = (self.callback or {}).get("attempt", 1)
            self._record(self.CallbackAttempted, ctx, attempt=attempt, agent_id=agent_id)
            return "dialing"
        self._record(self.Answered, ctx, agent_id=agent_id, queue_id=self.queue_id, wait_seconds=self.wait_seconds(ctx.now), grabbed=False)
        return "answered"

    def grab(self, agent_id: str, grab_allowed: bool, ctx: Context) -> str:
        """An agent picks waiting work themselves (grab mode); first one wins."""
        if not grab_allowed:
            raise InvalidTransition(f"queue {self.queue_id} does not let agents pick work", code="grab_not_allowed")
        why = self.why_not_offer(ctx.now)
        if why:
            raise InvalidTransition(why, code="not_offerable")
        if self.virtual:
            attempt = (self.callback or {}).get("attempt", 1)
            self._record(self.CallbackAttempted, ctx, attempt=attempt, agent_id=agent_id)
            return "dialing"
        self._record(self.Answered, ctx, agent_id=agent_id, queue_id=self.queue_id, wait_seconds=self.wait_seconds(ctx.now), grabbed=True)
        return "answered"

    # ------------------------------------------------------------------ callbacks
    def schedule_callback(
        self,
        queue_id: str,
        due_at: datetime,
        max_attempts: int,
        retry_seconds: int,
        reason: str,
        request_id: str | None,
        ctx: Context,
    ) -> None:
        if self.status not in ("arrived", "queued"):
            raise InvalidTransition(f"contact {self.id} is {self.status}: a callback cannot be scheduled")
        if max_attempts < 1 or retry_seconds < 0:
            raise InvalidCommand("max_attempts >= 1 and retry_seconds >= 0")
        self._record(
            self.CallbackScheduled,
            ctx,
            queue_id=queue_id,
            due_at=max(due_at, ctx.now),
            attempt=1,
            max_attempts=max_attempts,
            retry_seconds=retry_seconds,
            reason=reason,
            request_id=request_id,
        )

    def callback_outcome(self, outcome: str, ctx: Context) -> str:
        """The dialled citizen answered or not. Returns the contact's new status."""
        if self.status != "dialing" or self.agent_id is None:
            raise InvalidTransition(f"contact {self.id} is {self.status}: no callback is being dialled")
        cb = self.callback or {"attempt": 1, "max_attempts": 3, "retry_seconds": 300}
        agent_id = self.agent_id
        if outcome == "answered":
            self._record(
                self.CallbackConnected,
                ctx,
                agent_id=agent_id,
                queue_id=self.queue_id,
                wait_seconds=self.wait_seconds(ctx.now),
                attempt=cb["attempt"],
            )
            return self.status
        if outcome not in ("no_answer", "busy", "failed"):
            raise InvalidCommand("callback outcome is answered, no_answer, busy or failed")
        self._record(self.CallbackUnanswered, ctx, attempt=cb["attempt"], agent_id=agent_id, outcome=outcome)
        if cb["attempt"] >= cb["max_attempts"]:
            self._record(self.CallbackGaveUp, ctx, attempts=cb["attempt"], reason="attempts")
        else:
            self._record(
                self.CallbackScheduled,
                ctx,
                queue_id=self.queue_id,
                due_at=ctx.now + timedelta(seconds=cb["retry_seconds"]),
                attempt=cb["attempt"] + 1,
                max_attempts=cb["max_attempts"],
                retry_seconds=cb["retry_seconds"],
                reason="retry",
                request_id=None,
            )
        return self.status

    def give_up_callback(self, rules: QueueRules, reason: Literal["max_age"], ctx: Context) -> None:
        """A waiting callback is given up: with ``max_age``, once no agent took it within the
        queue's maximum age of its place in line (virtual hold) or its due time."""
        if not self.virtual or self.status not in WAITING or self.offered_to is not None:
            raise InvalidTransition(f"contact {self.id} is {self.status}: no callback waits to be given up")
        if not rules.callback_expired(self.wait_seconds(ctx.now)):
            raise InvalidTransition(f"callback {self.id} is not older than queue {self.queue_id}'s maximum age", code="not_expired")
        attempts = (self.callback or {}).get("attempt", 1) - 1  # the attempt waiting was never made
        self._record(self.CallbackGaveUp, ctx, attempts=attempts, reason=reason)

    # ------------------------------------------------------------------ leaving the queue
    def abandon(self, ctx: Context) -> str | None:
        """The waiting caller hung up. Returns the agent whose offer is withdrawn, if any."""
        if self.status not in ("queued", "offered") or self.virtual:
            raise InvalidTransition(f"contact {self.id} is {self.status}: only a waiting caller can abandon")
        offered_to = self.offered_to if self.offer_kind in ("route", "transfer") else None
        self._record(self.Abandoned, ctx, queue_id=self.queue_id, wait_seconds=self.wait_seconds(ctx.now), offered_to=offered_to)
        return offered_to

    def overflow(self, to: str, to_queue_id: str | None, reason: str, ctx: Context) -> None:
        if self.status != "queued" or self.offered_to is not None:
            raise InvalidTransition(f"contact {self.id} is {self.status}: only a waiting, unoffered contact overflows")
        if to == "callback" and self.virtual:
            raise InvalidTransition(f"contact {self.id} already waits for a callback")
        if to == "queue" and to_queue_id in self.path:
            # Overflow queues that lead back to each other: the contact stays where it is.
            raise InvalidTransition(
                f"contact {self.id} has waited in queue {to_queue_id} already: it stays in queue {self.queue_id}",
                code="overflow_cycle",
                path=list(self.path),
            )
        if to == "callback" and not (self.personal or {}).get("phone"):
            to = "voicemail"  # no number to call back: leave a message instead
        self._record(
            self.Overflowed,
            ctx,
            from_queue_id=self.queue_id,
            to=to,
            to_queue_id=to_queue_id if to == "queue" else None,
            wait_seconds=self.wait_seconds(ctx.now),
            reason=reason,
        )

    # ------------------------------------------------------------------ handling
    def _require_handler(self, agent_id: str) -> None:
        if self.status != "connected":
            raise InvalidTransition(f"contact {self.id} is {self.status}, not connected")
        if self.agent_id != agent_id:
            raise InvalidTransition(f"agent {agent_id} is not handling contact {self.id}", code="not_handler")

    def hold(self, agent_id: str, ctx: Context) -> None:
        self._require_handler(agent_id)
        if self.held_since is not None:
            raise InvalidTransition(f"contact {self.id} is already on hold")
        self._record(self.Held, ctx, agent_id=agent_id)

    def resume(self, agent_id: str, ctx: Context) -> None:
        self._require_handler(agent_id)
        if self.held_since is None:
            raise InvalidTransition(f"contact {self.id} is not on hold")
        self._record(self.Resumed, ctx, agent_id=agent_id, hold_seconds=_seconds(self.held_since, ctx.now))

    def _talk(self, now: datetime) -> float:
        held = self.hold_seconds + (_seconds(self.held_since, now) if self.held_since else 0.0)
        connected = _seconds(self.answered_at, now) if self.answered_at else 0.0
        return round(max(0.0, connected - held), 3)

    def transfer(
        self, from_agent_id: str, *, to_queue_id: str | None, to_agent_id: str | None, mode: str, expert: bool, ctx: Context
    ) -> None:
        self._require_handler(from_agent_id)
        if (to_queue_id is None) == (to_agent_id is None):
            raise InvalidCommand("transfer to a queue or to an agent (exactly one)")
        if mode not in ("cold", "warm"):
            raise InvalidCommand("transfer mode is cold or warm")
        if mode == "warm" and to_agent_id is None:
            raise InvalidCommand("a warm transfer consults an agent first: name the agent or expert seat")
        if to_agent_id == from_agent_id:
            raise InvalidCommand("an agent cannot transfer to themselves")
        if self.offered_to is not None:
            raise InvalidTransition(f"contact {self.id} already has a pending offer to {self.offered_to}")
        if self.held_since is not None and mode == "cold":
            self._record(self.Resumed, ctx, agent_id=from_agent_id, hold_seconds=_seconds(self.held_since, ctx.now))
        talk = self._talk(ctx.now) if mode == "cold" else 0.0
        self._record(
            self.Transferred,
            ctx,
            from_agent_id=from_agent_id,
            to_queue_id=to_queue_id,
            to_agent_id=to_agent_id,
            mode=mode,
            expert=expert,
            talk_seconds=talk,
        )
        if mode == "cold" and to_queue_id is not None:
            self._record(self.Queued, ctx, queue_id=to_queue_id, priority=self.priority, since=ctx.now, reason="transfer")
        elif mode == "cold":
            self._record(self.Offered, ctx, agent_id=to_agent_id, queue_id=self.queue_id, kind="transfer")
        else:
            self._record(self.Offered, ctx, agent_id=to_agent_id, queue_id=self.queue_id, kind="consult")

    def invite(self, by_agent_id: str, agent_id: str, ctx: Context) -> None:
        """Conference: another agent joins the contact."""
        self._require_handler(by_agent_id)
        self.offer(agent_id, ctx, kind="conference")

    def complete_transfer(self, agent_id: str, ctx: Context) -> str:
        """Warm transfer: the consulted agent takes over and the first one leaves."""
        self._require_handler(agent_id)
        consulted = [a for a, role in self.participants.items() if role == "consult"]
        if not consulted:
            raise InvalidTransition(f"contact {self.id} has no consulted agent to hand over to")
        self._record(self.ParticipantLeft, ctx, agent_id=agent_id, new_primary=consulted[0])
        return consulted[0]

    def leave(self, agent_id: str, ctx: Context) -> None:
        """A consulted or conferenced agent leaves; the primary agent stays."""
        if self.status != "connected" or agent_id not in self.participants or self.participants[agent_id] == "primary":
            raise InvalidTransition(f"agent {agent_id} is not a participant who can leave contact {self.id}")
        self._record(self.ParticipantLeft, ctx, agent_id=agent_id, new_primary=None)

    def end(self, ended_by: str, ctx: Context) -> list[str]:
        """The conversation ends. Returns every agent on it (they all go to wrap-up)."""
        if self.status == "dialing":
            raise InvalidTransition(f"contact {self.id} is being dialled: report the callback outcome instead")
        if self.status != "connected":
            raise InvalidTransition(f"contact {self.id} is {self.status}, not connected")
        participants = list(self.participants)
        hold = self.hold_seconds + (_seconds(self.held_since, ctx.now) if self.held_since else 0.0)
        self._record(
            self.Ended,
            ctx,
            agent_id=self.agent_id,
            talk_seconds=self._talk(ctx.now),
            hold_seconds=round(hold, 3),
            ended_by=ended_by,
            participants=participants,
        )
        return participants

    def wrap_up(self, agent_id: str | None, disposition: str | None, ctx: Context, *, timed_out: bool = False) -> None:
        if self.status != "wrap_up":
            raise InvalidTransition(f"contact {self.id} is {self.status}, not in wrap-up")
        if agent_id is not None and self.agent_id is not None and agent_id != self.agent_id:
            raise InvalidTransition(f"agent {agent_id} did not handle contact {self.id}", code="not_handler")
        wrap = _seconds(self.ended_at, ctx.now) if self.ended_at else 0.0
        self._record(self.WrappedUp, ctx, agent_id=self.agent_id, wrap_seconds=wrap, disposition=disposition, timed_out=timed_out)

    def link_request(self, request_id: str, ctx: Context, *, scheduling: bool = False) -> None:
        """A request registered during the contact: while it is live or in wrap-up, waiting
        again after an agent handled it (a transfer), or once closed (with no wrap-up time a
        call closes as it ends, while its agent is still registering the request). A
        callback links the request it answers when scheduled."""
        linkable = self.status in LINKABLE or (self.handled_by and not self.is_terminal)
        if not scheduling and not linkable:
            raise InvalidTransition(
                f"contact {self.id} is {self.status}: requests are linked to contacts an agent handled", code="not_linkable"
            )
        if request_id in self.request_ids:
            return
        self._record(self.RequestLinked, ctx, request_id=request_id)

    def record_ivr_session(self, ctx: Context, **session: Any) -> None:
        """The IVR flow and version this call met (any state: before a queue, or instead of one)."""
        self._record(self.IvrSessionRecorded, ctx, **session)

    # ------------------------------------------------------------------ supervisors
    def supervise(self, supervisor_id: str, mode: str, ctx: Context) -> None:
        if mode not in ("monitor", "whisper", "barge"):
            raise InvalidCommand("supervision mode is monitor, whisper or barge")
        if self.status != "connected":
            raise InvalidTransition(f"contact {self.id} is {self.status}: only a live contact can be supervised")
        if self.supervisors.get(supervisor_id) != mode:
            self._record(self.SupervisorJoined, ctx, supervisor_id=supervisor_id, mode=mode)

    def stop_supervising(self, supervisor_id: str, ctx: Context) -> None:
        if supervisor_id not in self.supervisors:
            raise InvalidTransition(f"{supervisor_id} is not supervising contact {self.id}")
        self._record(self.SupervisorLeft, ctx, supervisor_id=supervisor_id)

    def take_over(self, supervisor_id: str, ctx: Context) -> str | None:
        if self.status != "connected":
            raise InvalidTransition(f"contact {self.id} is {self.status}: only a live contact can be taken over")
        previous = self.agent_id
        self._record(self.TakenOver, ctx, supervisor_id=supervisor_id, from_agent_id=previous)
        return previous

    # ------------------------------------------------------------------ recording on demand
    # When the call was answered (its current leg: a cold transfer answers it again, in a new
    # bridge) at the last RecordingDemanded; None before any.
    recording_demanded_for: datetime | None = None

    def demand_recording(
        self, agent_id: str, requested_by: str, mode: str, recorded_anyway: bool, announcement: str | None, ctx: Context
    ) -> None:
        """An agent on the live call asks to record it. The queue's policy (``mode``) decides:
        ``none`` forbids recording even on demand; a call the policy records already
        (``all``, or in its sample: ``recorded_anyway``) needs no demand, nor does a leg
        already demanded (the recording runs until the call's bridge goes)."""
        if self.status != "connected":
            raise InvalidTransition(f"contact {self.id} is {self.status}: only a connected call can be recorded", code="not_connected")
        if agent_id not in self.participants:
            raise InvalidTransition(f"agent {agent_id} is not on contact {self.id}", code="not_on_contact")
        if mode == "none":
            raise InvalidTransition(f"queue {self.queue_id} records no call, not even on demand", code="recording_not_allowed", mode=mode)
        if recorded_anyway or (self.answered_at is not None and self.recording_demanded_for == self.answered_at):
            raise InvalidTransition(f"contact {self.id} is recorded already", code="already_recording", mode=mode)
        self._record(
            self.RecordingDemanded,
            ctx,
            agent_id=agent_id,
            requested_by=requested_by,
            queue_id=self.queue_id,
            mode=mode,
            announcement=announcement,
        )

    def summary(self) -> dict[str, Any]:
        return {
            "id": str(self.id),
            "status": self.status,
            "queue_id": self.queue_id,
            "agent_id": self.agent_id,
            "offered_to": self.offered_to,
            "version": self.version,
        }
