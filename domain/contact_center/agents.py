"""Agents (座席, operatori): who they are, what they can do and what they are doing now.

An agent's *presence* is what they chose (available, not ready with a reason, logged
out); their *state* follows from presence and work: reserved (a contact is offered),
on contact, wrap-up (timed per queue), or else their presence. Every change of state is
recorded, so time in each state can be summed from the events alone: by a
``state_changed`` event, except when a reservation makes it: the ``reserved`` event then
carries the state it leads to (``state``, ``previous``), one event instead of two on the
router's hottest path. (Reservations recorded before this carry ``state: null`` and are
followed by a ``state_changed``.)

Voice is exclusive: an agent on (or offered, or wrapping up) a call takes nothing else,
and an agent with chats or emails is not offered a call. Non-voice media are taken up
to the agent's capacity. The aggregate refuses a second reservation it cannot hold:
this is what stops two routers (or a router and a grab) from double-assigning.
"""

from __future__ import annotations

import functools
import uuid
from datetime import date, datetime, timedelta
from typing import Any

from domain.base import Context, HotlineAggregate, InvalidCommand, InvalidTransition, derived_id
from domain.citizens.aggregate import check_language
from domain.contact_center.rules import DEFAULT_CAPACITY, MEDIA, check_skills

PRESENCES = ("logged_out", "available", "not_ready")
STATES = ("logged_out", "available", "not_ready", "reserved", "on_contact", "wrap_up")
NOT_READY_REASONS = ("break", "lunch", "training", "meeting", "after_call_work", "missed_offers", "login", "supervisor", "other")


@functools.lru_cache(maxsize=65_536)
def agent_uuid(agent_id: str) -> uuid.UUID:
    # Cached: a name-based UUID costs a SHA-1, and the router asks for each decision.
    return derived_id("agent", agent_id)


class AgentEvent(HotlineAggregate.Event):
    """Every agent event names the agent by its public id (login code)."""

    agent_id: str


class Agent(HotlineAggregate):
    STREAM = "agent"

    class Enrolled(HotlineAggregate.Created):
        """An agent joined the contact center (created with their staff username and display name)."""

        agent_id: str
        name: str | None

    class LoggedIn(AgentEvent):
        """The agent signed in to the queues, with the skills, languages, departments and capacity they work with."""

        skills: dict[str, int]
        languages: list[str]
        departments: list[str]
        queues: list[str]
        capacity: dict[str, int]

        def apply(self, a: Agent) -> None:
            a.skills, a.languages, a.departments = dict(self.skills), list(self.languages), list(self.departments)
            a.queues, a.capacity = list(self.queues), dict(self.capacity)
            a.missed_offers = 0  # the StateChanged that follows sets the presence

    class LoggedOut(AgentEvent):
        """The agent signed out of every queue (or a supervisor signed them out)."""

        forced_by: str | None

        def apply(self, a: Agent) -> None:
            pass  # the StateChanged that follows sets the presence

    class StateChanged(AgentEvent):
        """The agent's state changed: the presence they chose or what they are doing now."""

        state: str
        """What the agent is doing now, derived from their presence and contacts (available, reserved, busy, wrap_up, not_ready …)."""
        previous: str
        presence: str
        """The presence the agent chose: available, not_ready or logged_out."""
        reason: str | None
        forced_by: str | None

        def apply(self, a: Agent) -> None:
            a.state, a.presence, a.reason, a.forced_by = self.state, self.presence, self.reason, self.forced_by
            if self.state == "available":
                a.idle_since = self.timestamp

    class Reserved(AgentEvent):
        """The router reserved the agent for a contact it is offering them."""

        contact_id: str
        queue_id: str | None
        media: str
        # The agent's state after the reservation and before it (None in reservations
        # recorded before they carried it: a StateChanged event followed those).
        state: str | None = None
        previous: str | None = None

        def apply(self, a: Agent) -> None:
            a.offers[self.contact_id] = self.media
            if self.state is not None:
                a.state = self.state

    class OfferLost(AgentEvent):
        """An offered contact did not reach the agent: the offer timed out, was declined or was withdrawn."""

        contact_id: str
        outcome: str  # timed_out / declined / withdrawn
        missed: int

        def apply(self, a: Agent) -> None:
            a.offers.pop(self.contact_id, None)
            a.missed_offers = self.missed

    class ContactStarted(AgentEvent):
        """The agent started handling a contact (answered an offer, grabbed it from a queue, joined a consult or took it directly)."""

        contact_id: str
        media: str
        queue_id: str | None
        how: str  # offer / grab / consult / direct

        def apply(self, a: Agent) -> None:
            a.offers.pop(self.contact_id, None)
            a.active[self.contact_id] = self.media
            a.missed_offers = 0
            today = self.timestamp.date()
            if today != a.day:
                a.day, a.contacts_today = today, 0
            a.contacts_today += 1

    class ContactFinished(AgentEvent):
        """The agent's part in a contact ended: after-call work runs until ``wrap_until`` at the latest."""

        contact_id: str
        wrap_until: datetime

        def apply(self, a: Agent) -> None:
            media = a.active.pop(self.contact_id, "voice")
            if self.wrap_until > self.timestamp:
                a.wrapping[self.contact_id] = (media, self.wrap_until)

    class WrapUpCompleted(AgentEvent):
        """The agent finished the after-call work of a contact (or its time ran out)."""

        contact_id: str
        timed_out: bool
        disposition: str | None = None
        """The disposition the agent chose for their own part of the contact (an agent who
        transferred it, a consulted expert); null when none was given (and in events stored before)."""

        def apply(self, a: Agent) -> None:
            a.wrapping.pop(self.contact_id, None)

    class QueuesChanged(AgentEvent):
        """The queues the agent takes contacts from changed."""

        queues: list[str]
        changed_by: str | None

        def apply(self, a: Agent) -> None:
            a.queues = list(self.queues)

    class SkillsChanged(AgentEvent):
        """The agent's skill levels or languages changed."""

        skills: dict[str, int]
        languages: list[str]

        def apply(self, a: Agent) -> None:
            a.skills, a.languages = dict(self.skills), list(self.languages)

    # ------------------------------------------------------------------ state
    def __init__(self, agent_id: str, name: str | None) -> None:
        self.agent_id = agent_id
        self.name = name
        self.skills: dict[str, int] = {}
        self.languages: list[str] = []
        self.departments: list[str] = []
        self.queues: list[str] = []
        self.capacity: dict[str, int] = dict(DEFAULT_CAPACITY)
        self.presence = "logged_out"
        self.state = "logged_out"
        self.reason: str | None = None
        self.forced_by: str | None = None  # who set the current presence, if not the agent
        self.offers: dict[str, str] = {}
        self.active: dict[str, str] = {}
        self.wrapping: dict[str, tuple[str, datetime]] = {}
        self.missed_offers = 0
        self.idle_since: datetime | None = None
        self.day: date | None = None
        self.contacts_today = 0

    @classmethod
    def enrol(cls, agent_id: str, name: str | None, ctx: Context) -> Agent:
        if not agent_id or len(agent_id) > 64:
            raise InvalidCommand("an agent id (login code) is 1-64 characters")
        return cls._start(cls.Enrolled, agent_uuid(agent_id), ctx, agent_id=agent_id, name=name)

    # ------------------------------------------------------------------ derived
    def derived_state(self) -> str:
        if self.presence == "logged_out":
            return "logged_out"
        if self.active:
            return "on_contact"
        if self.offers:
            return "reserved"
        if self.wrapping:
            return "wrap_up"
        return self.presence

    def load(self) -> dict[str, int]:
        """Contacts per medium on the desk: offered, active and wrapping up."""
        counts: dict[str, int] = {}
        for media in (*self.offers.values(), *self.active.values(), *(m for m, _ in self.wrapping.values())):
            counts[media] = counts.get(media, 0) + 1
        return counts

    def why_not(self, media: str) -> str | None:
        """Why this agent cannot take a contact of this medium now (None: it can)."""
        if self.presence != "available":
            return f"agent {self.agent_id} is {self.presence}"
        load = self.load()
        if load.get("voice"):
            return f"agent {self.agent_id} is busy with a call"
        if media == "voice" and load:
            return f"agent {self.agent_id} has other contacts: voice is exclusive"
        if load.get(media, 0) >= self.capacity.get(media, 0):
            return f"agent {self.agent_id} has no free {media} capacity"
        return None

    def can_take(self, media: str) -> bool:
        return self.why_not(media) is None

    def _settle(self, ctx: Context, reason: str | None = None, forced_by: str | None = None, *, presence: str | None = None) -> None:
        """Record a state change if presence or work changed what the agent is doing."""
        if presence is None:
            # Work changed, not the presence: its reason (a break) and who forced it stay.
            reason = self.reason if reason is None else reason
            forced_by = self.forced_by if forced_by is None else forced_by
        new_presence = presence or self.presence
        saved = self.presence
        self.presence = new_presence
        state = self.derived_state()
        self.presence = saved
        new_reason = reason if new_presence == "not_ready" else None
        if state != self.state or new_presence != self.presence or (new_presence == "not_ready" and new_reason != self.reason):
            self._record(
                self.StateChanged,
                ctx,
                agent_id=self.agent_id,
                state=state,
                previous=self.state,
                presence=new_presence,
                reason=new_reason,
                forced_by=forced_by,
            )

    # ------------------------------------------------------------------ commands
    def log_in(
        self,
        *,
        skills: dict[str, int],
        languages: list[str],
        departments: list[str],
        queues: list[str],
        capacity: dict[str, int] | None,
        ready: bool,
        ctx: Context,
    ) -> None:
        if self.presence != "logged_out":
            raise InvalidTransition(f"agent {self.agent_id} is already logged in")
        cap = dict(DEFAULT_CAPACITY)
        for media, n in (capacity or {}).items():
            if media not in MEDIA or not isinstance(n, int) or n < 0:
                raise InvalidCommand(f"capacity: {media!r} must be one of {MEDIA} with a count >= 0")
            cap[media] = n
        cap["voice"] = min(cap.get("voice", 1), 1)  # voice is exclusive
        self._record(
            self.LoggedIn,
            ctx,
            agent_id=self.agent_id,
            skills=check_skills(skills),
            languages=[check_language(lang) for lang in languages],
            departments=list(departments),
            queues=list(dict.fromkeys(queues)),
            capacity=cap,
        )
        self._settle(ctx, None if ready else "login", presence="available" if ready else "not_ready")

    def log_out(self, ctx: Context, forced_by: str | None = None) -> None:
        if self.presence == "logged_out":
            raise InvalidTransition(f"agent {self.agent_id} is not logged in")
        if self.offers or self.active or self.wrapping:
            raise InvalidTransition(f"agent {self.agent_id} still has contacts: finish them first", code="agent_busy")
        self._record(self.LoggedOut, ctx, agent_id=self.agent_id, forced_by=forced_by)
        self._settle(ctx, None, forced_by, presence="logged_out")

    def set_presence(self, presence: str, reason: str | None, ctx: Context, forced_by: str | None = None) -> None:
        if presence not in ("available", "not_ready"):
            raise InvalidCommand("presence is 'available' or 'not_ready' (log out to leave)")
        if self.presence == "logged_out":
            raise InvalidTransition(f"agent {self.agent_id} is logged out: log in first")
        if presence == "not_ready":
            reason = reason or "other"
            if reason not in NOT_READY_REASONS:
                raise InvalidCommand(f"not-ready reason must be one of {NOT_READY_REASONS}")
        if presence == self.presence and (presence != "not_ready" or reason == self.reason):
            return
        self._settle(ctx, reason, forced_by, presence=presence)

    def reserve(self, contact_id: str, queue_id: str | None, media: str, ctx: Context) -> None:
        if contact_id in self.offers or contact_id in self.active:
            raise InvalidTransition(f"contact {contact_id} is already with agent {self.agent_id}", code="already_assigned")
        why = self.why_not(media)
        if why:
            raise InvalidTransition(why, code="agent_unavailable")
        # The state the reservation leads to (what ``derived_state`` gives once the offer
        # is on the desk: the agent is available, so on contact if busy, else reserved),
        # recorded in the same event rather than in a StateChanged after it.
        state = "on_contact" if self.active else "reserved"
        self._record(
            self.Reserved,
            ctx,
            agent_id=self.agent_id,
            contact_id=contact_id,
            queue_id=queue_id,
            media=media,
            state=state,
            previous=self.state,
        )
        self._settle(ctx)  # records nothing (the state is already right): a safety net

    def lose_offer(self, contact_id: str, outcome: str, max_missed: int, ctx: Context) -> None:
        if contact_id not in self.offers:
            raise InvalidTransition(f"agent {self.agent_id} has no offer of contact {contact_id}")
        missed = self.missed_offers + 1 if outcome == "timed_out" else self.missed_offers
        self._record(self.OfferLost, ctx, agent_id=self.agent_id, contact_id=contact_id, outcome=outcome, missed=missed)
        if outcome == "timed_out" and missed >= max_missed and self.presence == "available":
            # Asterisk's autopause: an agent who lets offers ring out stops receiving them.
            self._settle(ctx, "missed_offers", "system", presence="not_ready")
        else:
            self._settle(ctx)

    def start_contact(self, contact_id: str, media: str, queue_id: str | None, how: str, ctx: Context) -> None:
        if contact_id in self.active:
            raise InvalidTransition(f"agent {self.agent_id} is already on contact {contact_id}")
        if how == "offer" or (how == "consult" and contact_id in self.offers):
            if contact_id not in self.offers:
                raise InvalidTransition(f"contact {contact_id} is not offered to agent {self.agent_id}", code="not_offered")
        else:
            why = self.why_not(media)
            if why:
                raise InvalidTransition(why, code="agent_unavailable")
        self._record(self.ContactStarted, ctx, agent_id=self.agent_id, contact_id=contact_id, media=media, queue_id=queue_id, how=how)
        self._settle(ctx)

    def finish_contact(self, contact_id: str, wrap_seconds: int, ctx: Context) -> None:
        if contact_id not in self.active:
            raise InvalidTransition(f"agent {self.agent_id} is not on contact {contact_id}")
        wrap_until = ctx.now + timedelta(seconds=wrap_seconds)
        self._record(self.ContactFinished, ctx, agent_id=self.agent_id, contact_id=contact_id, wrap_until=wrap_until)
        self._settle(ctx)

    def complete_wrap_up(self, contact_id: str, ctx: Context, *, timed_out: bool = False, disposition: str | None = None) -> None:
        if contact_id not in self.wrapping:
            raise InvalidTransition(f"agent {self.agent_id} is not wrapping up contact {contact_id}")
        self._record(self.WrapUpCompleted, ctx, agent_id=self.agent_id, contact_id=contact_id, timed_out=timed_out, disposition=disposition)
        self._settle(ctx)

    def wrap_due(self, contact_id: str) -> datetime | None:
        entry = self.wrapping.get(contact_id)
        return entry[1] if entry else None

    def change_queues(self, queues: list[str], ctx: Context, changed_by: str | None = None) -> None:
        queues = list(dict.fromkeys(queues))
        if queues != self.queues:
            self._record(self.QueuesChanged, ctx, agent_id=self.agent_id, queues=queues, changed_by=changed_by)

    def change_skills(self, skills: dict[str, int], languages: list[str], ctx: Context) -> None:
        langs = [check_language(lang) for lang in languages]
        self._record(self.SkillsChanged, ctx, agent_id=self.agent_id, skills=check_skills(skills), languages=langs)

    def summary(self) -> dict[str, Any]:
        return {
            "agent_id": self.agent_id,
            "state": self.state,
            "presence": self.presence,
            "reason": self.reason,
            "offers": sorted(self.offers),
            "contacts": sorted(self.active),
            "wrapping": sorted(self.wrapping),
            "version": self.version,
        }
