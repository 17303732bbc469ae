"""The router's in-memory view and matching: pure code, fed by event envelopes.

The router keeps which agents are free (per queue, language and skill margin) and which
contacts wait (per queue and language), in heaps, so a decision costs O(log n) however
many agents are logged in and contacts wait:

* ``free[(queue, skill, language, margin)]``: agents who could take one more contact of the
  queue's medium, keyed by the queue's strategy (longest idle, best proficiency, round
  robin, fewest contacts today). ``margin`` is how far the agent's weakest required
  skill exceeds the queue's minimum; skill relaxation widens the margins accepted as a
  contact waits (bullseye routing).
* ``waiting[(queue, skill, language)]``: contacts, keyed by effective priority. Ageing adds
  ``rate × wait`` to every contact of a queue alike, so within one queue the order is
  fixed at insertion (key ``priority − rate × queued_at``) and heaps stay valid. A queue
  may drop the language after ``language_relax_seconds``: the contact then waits under
  ``ANY_LANGUAGE``, where every agent of the queue looks, a speaker first.

A contact may ask for a skill (a voice-menu option: "taxes"): it is offered only to agents
of its queue who have that skill (level 1 or more), besides the queue's own requirement.
Such contacts wait in a pool of their own, ``(queue, skill)``; the plain pool's skill is
``""``. Agents are indexed in the plain pool of each queue and, once a contact of the
queue has asked for a skill they have, in that skill's pool too (``skill_pools``: the
skills asked for per queue, a handful, so a view without skill contacts does exactly
the work it did before). After the queue's last relaxation step a skill contact joins
the plain pool: any agent of the queue may then take it (:meth:`QueueRules.skill_dropped`).

Entries are invalidated lazily: each agent and contact has a token that changes when
its routing state does; stale heap entries are discarded when they reach the top.

The view never decides alone what *is*: a decision is tentative until the router has
written it (Contact and Agent aggregates refuse a second assignment) and read the
events back. Timers (offer timeouts, wrap-up ends, maximum waits, relaxation steps,
callbacks falling due, callbacks too old) come out of :meth:`RoutingView.due` as actions for
the router.
"""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, tzinfo
from typing import Any

from domain.base import event_type_name
from domain.contact_center.agents import Agent
from domain.contact_center.contacts import Contact
from domain.contact_center.queues import Queue
from domain.contact_center.rules import DEFAULT_CAPACITY, QueueRules, queue_rules
from domain.envelope import Envelope

ANY_LANGUAGE = "*"
NO_SKILL = ""  # the pool of contacts that asked for no skill (or whose skill was dropped)
PLAIN = (NO_SKILL,)  # an agent's pools in a queue where no contact asked for a skill
DEEPEST_LOOK = 8  # how many waiting contacts of one bucket an agent may look past
MARGINS = range(4, -5, -1)


def ts(moment: datetime | str) -> float:
    if isinstance(moment, str):
        moment = datetime.fromisoformat(moment)
    return moment.timestamp()


@dataclass
class AgentView:
    agent_id: str
    skills: dict[str, int] = field(default_factory=dict)
    languages: tuple[str, ...] = ()
    queues: tuple[str, ...] = ()
    capacity: dict[str, int] = field(default_factory=lambda: dict(DEFAULT_CAPACITY))
    presence: str = "logged_out"
    state: str = "logged_out"
    reason: str | None = None
    offers: dict[str, str] = field(default_factory=dict)
    active: dict[str, str] = field(default_factory=dict)
    wrapping: dict[str, tuple[str, float]] = field(default_factory=dict)
    pending: dict[str, str] = field(default_factory=dict)  # decided here, not yet written
    idle_since: float = 0.0
    day: str | None = None
    contacts_today: int = 0
    last_offer: dict[str, int] = field(default_factory=dict)  # round robin memory per queue
    token: int = 0

    def load(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for media in (
            *self.offers.values(),
            *self.active.values(),
            *(m for m, _ in self.wrapping.values()),
            *self.pending.values(),
        ):
            counts[media] = counts.get(media, 0) + 1
        return counts

    def can_take(self, media: str) -> bool:
        """Mirrors :meth:`Agent.why_not`; also counts this router's pending decisions."""
        if self.presence != "available":
            return False
        if not (self.offers or self.active or self.wrapping or self.pending):
            return self.capacity.get(media, 0) > 0  # an idle agent: the common case, kept cheap
        # Busy: voice on the desk excludes everything, any contact excludes voice, else
        # count this medium (without building the per-medium counts of :meth:`load`).
        same = 0
        for held in (*self.offers.values(), *self.active.values(), *self.pending.values(), *(m for m, _ in self.wrapping.values())):
            if held == "voice":
                return False
            if held == media:
                same += 1
        if media == "voice":
            return False
        return same < self.capacity.get(media, 0)


@dataclass
class ContactView:
    contact_id: str
    queue_id: str
    media: str
    language: str | None
    priority: int
    direction: str
    channel: str
    skill: str | None = None  # asked for on arrival; cleared when the contact moves to another queue
    status: str = "arrived"
    since: float = 0.0
    offered_to: str | None = None
    offer_kind: str | None = None
    offered_at: float = 0.0
    agent_id: str | None = None
    virtual: bool = False
    due: float = 0.0
    pending: str | None = None  # agent this router decided on, not yet written
    token: int = 0
    offers_made: int = 0
    refused_by: set[str] = field(default_factory=set)  # agents who let it ring out or declined

    def waiting(self, now: float) -> bool:
        if self.pending is not None or self.offered_to is not None:
            return False
        return self.status == "queued" or (self.status == "scheduled" and self.due <= now)


@dataclass(frozen=True)
class Decision:
    contact_id: str
    agent_id: str
    queue_id: str


@dataclass(frozen=True)
class Action:
    """Something a timer says is due: the router turns it into a command."""

    kind: str  # offer_timeout / wrap_timeout / overflow / give_up (a callback too old)
    contact_id: str
    agent_id: str | None = None
    reason: str | None = None


class RoutingView:
    def __init__(self, zone: tzinfo = UTC) -> None:
        # The hotline's zone (settings, given by the router): "today" of the fewest-contacts
        # strategy is its local day.
        self.zone = zone
        self.queues: dict[str, QueueRules] = {}
        self.agents: dict[str, AgentView] = {}
        self.contacts: dict[str, ContactView] = {}
        self.free: dict[tuple[str, str, str, int], list[tuple[Any, ...]]] = {}
        self.waiting: dict[tuple[str, str, str], list[tuple[Any, ...]]] = {}
        self.skill_pools: dict[str, list[str]] = {}  # queue -> skills its contacts asked for
        self.timers: list[tuple[float, int, str, str, str | None, int]] = []
        self.dirty_agents: set[str] = set()
        self.dirty_contacts: set[str] = set()
        self.position = 0  # last event position applied
        self.now = 0.0  # time of the last event applied
        self._seq = itertools.count()
        self._offer_seq = itertools.count(1)
        self._handlers: dict[str, Callable[[Envelope], None]] = self._build_handlers()

    # ================================================================== feeding
    def apply_all(self, envelopes: Iterable[Envelope]) -> None:
        for env in envelopes:
            self.apply(env)

    def apply(self, env: Envelope) -> None:
        if env.position and env.position <= self.position:
            return  # already seen (a catch-up overlapping the last one)
        self.position = max(self.position, env.position)
        handler = self._handlers.get(env.type)
        if handler is not None:
            self.now = max(self.now, env.time.timestamp())
            handler(env)

    def _build_handlers(self) -> dict[str, Callable[[Envelope], None]]:
        """The events the view reads, by class; keyed once by their public type names,
        so that feeding an event is one dictionary lookup."""
        by_class: dict[type, Callable[[Envelope], None]] = {
            Queue.Defined: self._on_queue_defined,
            Queue.Reconfigured: self._on_queue_reconfigured,
            Agent.Enrolled: self._on_agent_enrolled,
            Agent.LoggedIn: self._on_agent_logged_in,
            Agent.StateChanged: self._on_agent_state_changed,
            Agent.Reserved: self._on_agent_reserved,
            Agent.OfferLost: self._on_agent_offer_lost,
            Agent.ContactStarted: self._on_agent_contact_started,
            Agent.ContactFinished: self._on_agent_contact_finished,
            Agent.WrapUpCompleted: self._on_agent_wrap_up_completed,
            Agent.QueuesChanged: self._on_agent_queues_changed,
            Agent.SkillsChanged: self._on_agent_skills_changed,
            Contact.Arrived: self._on_contact_arrived,
            Contact.Queued: self._on_contact_queued,
            Contact.Offered: self._on_contact_offered,
            Contact.CallbackAttempted: self._on_contact_callback_attempted,
            Contact.ParticipantJoined: self._on_contact_participant_joined,
            Contact.Transferred: self._on_contact_transferred,
            Contact.Overflowed: self._on_contact_overflowed,
            Contact.Ended: self._on_contact_ended,
            Contact.CallbackScheduled: self._on_contact_callback_scheduled,
            Contact.OfferTimedOut: self._offer_failed,
            Contact.OfferDeclined: self._offer_failed,
            Contact.Answered: self._connected,
            Contact.CallbackConnected: self._connected,
            Contact.Abandoned: self._terminal,
            Contact.WrappedUp: self._terminal,
            Contact.CallbackGaveUp: self._terminal,
        }
        return {event_type_name(cls): handler for cls, handler in by_class.items()}

    # ------------------------------------------------------------------ queues
    def _on_queue_defined(self, env: Envelope) -> None:
        self._set_rules(env.data["queue_id"], env.data["config"])

    def _on_queue_reconfigured(self, env: Envelope) -> None:
        self._set_rules(env.data["queue_id"], env.data["config"])

    def _set_rules(self, queue_id: str, config: dict[str, Any]) -> None:
        self.queues[queue_id] = queue_rules(queue_id, config)
        # Rare: rebuild the indexes of this queue's agents and contacts.
        for free_key in [k for k in self.free if k[0] == queue_id]:
            del self.free[free_key]
        for waiting_key in [k for k in self.waiting if k[0] == queue_id]:
            del self.waiting[waiting_key]
        for a in self.agents.values():
            if queue_id in a.queues:
                self._touch_agent(a)
        rules = self.queues[queue_id]
        for c in self.contacts.values():
            if c.queue_id == queue_id:
                self._touch_contact(c)
                self._relax_timer(c, rules)  # the steps may have moved: a timer for the new next one

    # ------------------------------------------------------------------ agents
    def _agent(self, env: Envelope) -> AgentView:
        agent_id = env.data["agent_id"]
        a = self.agents.get(agent_id)
        if a is None:
            a = self.agents[agent_id] = AgentView(agent_id)
        return a

    def _on_agent_enrolled(self, env: Envelope) -> None:
        self._agent(env)

    def _on_agent_logged_in(self, env: Envelope) -> None:
        a = self._agent(env)
        d = env.data
        a.skills, a.languages, a.queues = dict(d["skills"]), tuple(d["languages"]), tuple(d["queues"])
        a.capacity = dict(d["capacity"])
        self._touch_agent(a)

    def _on_agent_state_changed(self, env: Envelope) -> None:
        a = self._agent(env)
        a.presence, a.state, a.reason = env.data["presence"], env.data["state"], env.data["reason"]
        if a.state == "available":
            a.idle_since = env.time.timestamp()
        self._touch_agent(a)

    def _on_agent_reserved(self, env: Envelope) -> None:
        a = self._agent(env)
        a.offers[env.data["contact_id"]] = env.data["media"]
        if env.data.get("state") is not None:  # the state it leads to (older ones: a state_changed follows)
            a.state = env.data["state"]
        if env.data.get("queue_id"):
            a.last_offer[env.data["queue_id"]] = next(self._offer_seq)
        self._touch_agent(a)

    def _on_agent_offer_lost(self, env: Envelope) -> None:
        a = self._agent(env)
        a.offers.pop(env.data["contact_id"], None)
        self._touch_agent(a)

    def _on_agent_contact_started(self, env: Envelope) -> None:
        a = self._agent(env)
        cid = env.data["contact_id"]
        a.offers.pop(cid, None)
        a.active[cid] = env.data["media"]
        day = env.time.astimezone(self.zone).date().isoformat()
        if day != a.day:
            a.day, a.contacts_today = day, 0
        a.contacts_today += 1
        self._touch_agent(a)

    def _on_agent_contact_finished(self, env: Envelope) -> None:
        a = self._agent(env)
        cid = env.data["contact_id"]
        media = a.active.pop(cid, "voice")
        until = ts(env.data["wrap_until"])
        if until > env.time.timestamp():
            a.wrapping[cid] = (media, until)
            self._timer(until, "wrap_timeout", cid, a.agent_id, a.token + 1)
        self._touch_agent(a)

    def _on_agent_wrap_up_completed(self, env: Envelope) -> None:
        a = self._agent(env)
        a.wrapping.pop(env.data["contact_id"], None)
        self._touch_agent(a)

    def _on_agent_queues_changed(self, env: Envelope) -> None:
        a = self._agent(env)
        a.queues = tuple(env.data["queues"])
        self._touch_agent(a)

    def _on_agent_skills_changed(self, env: Envelope) -> None:
        a = self._agent(env)
        a.skills, a.languages = dict(env.data["skills"]), tuple(env.data["languages"])
        self._touch_agent(a)

    # ------------------------------------------------------------------ contacts
    def _on_contact_arrived(self, env: Envelope) -> None:
        d = env.data
        self.contacts[env.aggregate_id] = ContactView(
            contact_id=env.aggregate_id,
            queue_id=d["queue_id"],
            media=d["media"],
            language=d["language"],
            priority=d["priority"],
            direction=d["direction"],
            channel=d["channel"],
            skill=d.get("skill"),  # absent from events stored before contacts had skills
            since=env.time.timestamp(),
        )

    def _contact(self, env: Envelope) -> ContactView | None:
        return self.contacts.get(env.aggregate_id)

    def _on_contact_queued(self, env: Envelope) -> None:
        c = self._contact(env)
        if c is None:
            return
        c.status, c.queue_id, c.priority, c.since = "queued", env.data["queue_id"], env.data["priority"], ts(env.data["since"])
        c.offered_to = c.offer_kind = None
        self._entered_queue(c, env)

    def _entered_queue(self, c: ContactView, env: Envelope) -> None:
        self._touch_contact(c)
        rules = self.queues.get(c.queue_id)
        if rules is None:
            return
        if rules.max_wait_seconds is not None and not c.virtual:
            self._timer(c.since + rules.max_wait_seconds, "max_wait", c.contact_id, None, None)
        if not rules.join_when_empty and not c.virtual and not self._anyone_serves(c, rules):
            self._timer(env.time.timestamp(), "no_agents", c.contact_id, None, None)
        self._relax_timer(c, rules)
        self._expiry_timer(c, rules)

    def _expiry_timer(self, c: ContactView, rules: QueueRules) -> None:
        # A callback nobody on duty can take (its skill, its language) must not wait for ever.
        if c.virtual and rules.callback_max_age_seconds is not None:
            self._timer(c.since + rules.callback_max_age_seconds, "callback_expiry", c.contact_id, None, None)

    def _relax_timer(self, c: ContactView, rules: QueueRules) -> None:
        nxt = rules.next_relaxation_after(max(0.0, self.now - c.since))
        if nxt is not None:
            self._timer(c.since + nxt, "relax", c.contact_id, None, None)

    def _on_contact_offered(self, env: Envelope) -> None:
        c = self._contact(env)
        if c is None:
            return
        c.offered_to, c.offer_kind, c.offered_at = env.data["agent_id"], env.data["kind"], env.time.timestamp()
        if c.offer_kind in ("route", "transfer"):
            c.status = "offered"
        rules = self.queues.get(c.queue_id)
        timeout = rules.offer_timeout_seconds if rules else 15
        c.token += 1
        c.offers_made += 1
        self._timer(c.offered_at + timeout, "offer_timeout", c.contact_id, c.offered_to, c.offers_made)

    def _offer_failed(self, env: Envelope) -> None:
        c = self._contact(env)
        if c is None:
            return
        c.refused_by.add(env.data["agent_id"])
        if c.offer_kind in ("route", "transfer"):
            c.status = "queued"
            self._entered_queue(c, env)
        c.offered_to = c.offer_kind = None
        self._touch_contact(c)

    def _connected(self, env: Envelope) -> None:
        c = self._contact(env)
        if c is None:
            return
        c.status, c.agent_id = "connected", env.data["agent_id"]
        c.offered_to = c.offer_kind = None
        self._touch_contact(c)

    def _on_contact_callback_attempted(self, env: Envelope) -> None:
        c = self._contact(env)
        if c is not None:
            c.status, c.agent_id, c.offered_to, c.offer_kind = "dialing", env.data["agent_id"], None, None
            self._touch_contact(c)

    def _on_contact_participant_joined(self, env: Envelope) -> None:
        c = self._contact(env)
        if c is not None:
            c.offered_to = c.offer_kind = None
            c.token += 1

    def _on_contact_transferred(self, env: Envelope) -> None:
        c = self._contact(env)
        if c is not None and env.data["mode"] == "cold":
            c.status, c.since, c.agent_id = "queued", env.time.timestamp(), None
            if env.data["to_queue_id"] is not None:
                c.skill = None  # the agent chose the queue: any agent of it will do
            if env.data["to_queue_id"] is None:  # to a named agent: the Offered event follows
                self._touch_contact(c)

    def _on_contact_overflowed(self, env: Envelope) -> None:
        c = self._contact(env)
        if c is None:
            return
        to = env.data["to"]
        if to == "voicemail":
            self._forget(c)
            return
        if to == "callback":
            c.virtual = True
        else:
            c.queue_id = env.data["to_queue_id"]
            c.skill = None  # the overflow queue is the fallback: any of its agents will do
        self._entered_queue(c, env)

    def _on_contact_ended(self, env: Envelope) -> None:
        c = self._contact(env)
        if c is None:
            return
        c.status = "wrap_up"
        c.offered_to = c.offer_kind = None
        rules = self.queues.get(c.queue_id)
        if rules is not None and rules.wrap_seconds > 0:
            self._timer(env.time.timestamp() + rules.wrap_seconds, "wrap_timeout", c.contact_id, None, None)
        self._touch_contact(c)

    def _on_contact_callback_scheduled(self, env: Envelope) -> None:
        c = self._contact(env)
        if c is None:
            return
        c.status, c.queue_id, c.virtual, c.agent_id = "scheduled", env.data["queue_id"], True, None
        c.due = c.since = ts(env.data["due_at"])
        c.offered_to = c.offer_kind = None
        self._touch_contact(c)
        if c.due > env.time.timestamp():
            self._timer(c.due, "due", c.contact_id, None, None)
        rules = self.queues.get(c.queue_id)
        if rules is not None:
            self._relax_timer(c, rules)
            self._expiry_timer(c, rules)

    def _terminal(self, env: Envelope) -> None:
        c = self._contact(env)
        if c is not None:
            self._forget(c)

    def _forget(self, c: ContactView) -> None:
        c.token += 1
        c.status = "gone"
        self.contacts.pop(c.contact_id, None)

    # ================================================================== indexes
    def _timer(self, at: float, kind: str, contact_id: str, agent_id: str | None, token: int | None) -> None:
        heapq.heappush(self.timers, (at, next(self._seq), kind, contact_id, agent_id, token if token is not None else -1))

    def _anyone_serves(self, c: ContactView, rules: QueueRules) -> bool:
        # A skill the queue drops after its last relaxation step does not count: in time,
        # any agent of the queue may take the contact (as a level relaxed later does not).
        skill = c.skill if c.skill and not rules.relaxation else None
        # Likewise the language, if the queue drops it before the caller's maximum wait.
        relaxed = rules.language_relax_seconds is not None and (
            rules.max_wait_seconds is None or rules.language_relax_seconds < rules.max_wait_seconds
        )
        for a in self.agents.values():
            speaks = c.language is None or c.language in a.languages or relaxed
            skilled = skill is None or a.skills.get(skill, 0) >= 1
            if a.presence != "logged_out" and c.queue_id in a.queues and rules.margin(a.skills) is not None and speaks and skilled:
                return True
        return False

    def _pool(self, c: ContactView, rules: QueueRules, now: float) -> str:
        """The skill pool the contact waits in: its skill, until the queue drops it."""
        if c.skill is None or rules.skill_dropped(now - c.since):
            return NO_SKILL
        return c.skill

    @staticmethod
    def _language(c: ContactView, rules: QueueRules, now: float) -> str:
        """The language bucket the contact waits in: its language, until the queue drops it."""
        if c.language is None or rules.language_dropped(now - c.since):
            return ANY_LANGUAGE
        return c.language

    @staticmethod
    def _agent_pools(a: AgentView, asked: list[str]) -> tuple[str, ...]:
        """The pools of a queue the agent serves: the plain one and those of its skills
        among the ``asked`` (the queue's ``skill_pools``; callers skip the call when
        there are none, the common case)."""
        return (NO_SKILL, *(s for s in asked if a.skills.get(s, 0) >= 1))

    def _open_pool(self, queue_id: str, skill: str) -> None:
        """The first contact of the queue asking for this skill: index its agents there too
        (once per queue and skill for the life of the view)."""
        self.skill_pools.setdefault(queue_id, []).append(skill)
        for a in self.agents.values():
            if queue_id in a.queues and a.skills.get(skill, 0) >= 1:
                self._touch_agent(a)

    def _agent_key(self, a: AgentView, rules: QueueRules, margin: int) -> tuple[Any, ...]:
        strategy = rules.strategy
        if strategy == "best_proficiency":
            return (-margin, -rules.proficiency_score(a.skills), a.idle_since, a.agent_id)
        if strategy == "round_robin":
            return (a.last_offer.get(rules.queue_id, 0), a.agent_id)
        if strategy == "fewest_contacts":
            today = datetime.fromtimestamp(self.now, self.zone).date().isoformat() if self.now else a.day
            return (a.contacts_today if a.day == today else 0, a.idle_since, a.agent_id)
        return (a.idle_since, a.agent_id)

    def _touch_agent(self, a: AgentView) -> None:
        """The agent's routing state changed: index it afresh where it can take work."""
        a.token += 1
        self.dirty_agents.add(a.agent_id)
        for queue_id in a.queues:
            rules = self.queues.get(queue_id)
            if rules is None or rules.strategy == "ring_all" or not a.can_take(rules.media):
                continue
            margin = rules.margin(a.skills)
            if margin is None:
                continue
            entry = (self._agent_key(a, rules, margin), a.token, a.agent_id)
            asked = self.skill_pools.get(queue_id)
            for skill in self._agent_pools(a, asked) if asked else PLAIN:
                for lang in (*a.languages, ANY_LANGUAGE):
                    heapq.heappush(self.free.setdefault((queue_id, skill, lang, margin), []), entry)

    def _contact_key(self, c: ContactView, rules: QueueRules) -> tuple[float, float, str]:
        static = rules.priority + c.priority - rules.ageing_per_minute * c.since / 60.0
        return (-static, c.since, c.contact_id)

    def _touch_contact(self, c: ContactView) -> None:
        c.token += 1
        if not c.waiting(self.now if c.status == "queued" else max(self.now, c.due)):
            return
        rules = self.queues.get(c.queue_id)
        if rules is None or rules.strategy == "ring_all":
            return
        if c.status == "scheduled" and c.due > self.now:
            return  # its "due" timer touches it again
        skill = NO_SKILL if c.skill is None else self._pool(c, rules, self.now)
        if skill and skill not in self.skill_pools.get(c.queue_id, ()):
            self._open_pool(c.queue_id, skill)
        self.dirty_contacts.add(c.contact_id)
        bucket = self.waiting.setdefault((c.queue_id, skill, self._language(c, rules, self.now)), [])
        heapq.heappush(bucket, (*self._contact_key(c, rules), c.token))

    def _valid_agent(self, entry: tuple[Any, ...], rules: QueueRules) -> AgentView | None:
        a = self.agents.get(entry[2])
        if a is None or a.token != entry[1] or not a.can_take(rules.media):
            return None
        return a

    def _valid_contact(self, entry: tuple[Any, ...], now: float) -> ContactView | None:
        c = self.contacts.get(entry[2])
        if c is None or c.token != entry[3] or not c.waiting(now):
            return None
        return c

    # ================================================================== matching
    def best_agent_for(self, c: ContactView, now: float) -> AgentView | None:
        rules = self.queues.get(c.queue_id)
        if rules is None or rules.strategy == "ring_all":
            return None
        lowest = -rules.levels_relaxed(now - c.since)
        lang = self._language(c, rules, now)
        skill = NO_SKILL if c.skill is None else self._pool(c, rules, now)
        speaker_fallback = None
        if lang == ANY_LANGUAGE and c.language is not None:
            # The language was relaxed, not forgotten: a free agent who speaks it comes first.
            speaker, speaker_fallback = self._best_in(c, rules, skill, c.language, lowest)
            if speaker is not None:
                return self.agents[speaker[2]]
        best, fallback = self._best_in(c, rules, skill, lang, lowest)
        chosen = best if best is not None else speaker_fallback or fallback
        return self.agents[chosen[2]] if chosen is not None else None

    def _best_in(
        self, c: ContactView, rules: QueueRules, skill: str, lang: str, lowest: int
    ) -> tuple[tuple[Any, ...] | None, tuple[Any, ...] | None]:
        """The best free agent for ``c`` in one language pool, and the best of those who
        already refused it (tried last)."""
        best: tuple[Any, ...] | None = None
        fallback: tuple[Any, ...] | None = None  # an agent who already refused this contact
        for margin in MARGINS:
            if margin < lowest:
                break
            heap = self.free.get((c.queue_id, skill, lang, margin))
            aside: list[tuple[Any, ...]] = []
            while heap:
                top = heap[0]
                if self._valid_agent(top, rules) is None:
                    heapq.heappop(heap)  # stale: the agent changed since it was indexed
                    continue
                if top[2] in c.refused_by and len(aside) < DEEPEST_LOOK:
                    # Like Asterisk's ring-no-answer retry: try the others first.
                    if fallback is None or top < fallback:
                        fallback = top
                    aside.append(heapq.heappop(heap))
                    continue
                if top[2] not in c.refused_by and (best is None or top < best):
                    best = top
                break
            for entry in aside:
                heapq.heappush(heap, entry)  # type: ignore[arg-type]  # aside is only filled from a heap
        return best, fallback

    def best_contact_for(self, a: AgentView, now: float) -> ContactView | None:
        best: ContactView | None = None
        best_rank: tuple[float, float] | None = None
        for queue_id in a.queues:
            rules = self.queues.get(queue_id)
            if rules is None or rules.strategy == "ring_all" or not a.can_take(rules.media):
                continue
            margin = rules.margin(a.skills)
            if margin is None:
                continue
            asked = self.skill_pools.get(queue_id)
            for skill in self._agent_pools(a, asked) if asked else PLAIN:
                for lang in (*a.languages, ANY_LANGUAGE):
                    found = self._first_eligible(self.waiting.get((queue_id, skill, lang)), rules, margin, now)
                    if found is None:
                        continue
                    rank = (-rules.effective_priority(found.priority, now - found.since), found.since)
                    if best_rank is None or rank < best_rank:
                        best, best_rank = found, rank
        return best

    def _first_eligible(self, heap: list[tuple[Any, ...]] | None, rules: QueueRules, margin: int, now: float) -> ContactView | None:
        if not heap:
            return None
        skipped: list[tuple[Any, ...]] = []
        found: ContactView | None = None
        while heap and len(skipped) < DEEPEST_LOOK:
            c = self._valid_contact(heap[0], now)
            if c is None:
                heapq.heappop(heap)
                continue
            if margin >= -rules.levels_relaxed(now - c.since):
                found = c
                break
            skipped.append(heapq.heappop(heap))  # too young for this agent's level: look past it
        for entry in skipped:
            heapq.heappush(heap, entry)
        return found

    def decide(self, now: datetime | float, limit: int = 500) -> list[Decision]:
        """Matches free agents and waiting contacts. Each newly free agent finds the best
        waiting contact it could serve (priority, then place), which then goes to the
        free agent its queue's strategy prefers; then each new contact, in priority
        order, gets the best free agent. Every decision is marked pending in the view."""
        t = now if isinstance(now, float) else now.timestamp()
        self.now = max(self.now, t)
        decisions: list[Decision] = []
        agents, self.dirty_agents = self.dirty_agents, set()
        for agent_id in sorted(agents, key=lambda i: (self.agents[i].idle_since, i) if i in self.agents else (0.0, i)):
            a = self.agents.get(agent_id)
            while a is not None and len(decisions) < limit:
                c = self.best_contact_for(a, t)
                if c is None:
                    break
                # The contact this agent would take goes to whoever the queue's strategy
                # prefers among all free agents (this one included).
                chosen = self.best_agent_for(c, t) or a
                decisions.append(self._pend(c, chosen))
            if len(decisions) >= limit:
                self.dirty_agents.add(agent_id)
        if len(decisions) >= limit:
            # The batch is full: the changed contacts wait for the next call as they are
            # (ranking thousands of them only to put them all back costs milliseconds).
            return decisions
        contacts, self.dirty_contacts = self.dirty_contacts, set()
        ordered = sorted(
            (c for c in (self.contacts.get(i) for i in contacts) if c is not None and c.waiting(t)),
            key=lambda c: self._rank(c, t),
        )
        # Buckets found without any free agent stay so for the rest of this call (a
        # decision only takes agents away), so thousands of waiting contacts cost a
        # set lookup each when nobody is free, not a search each.
        nobody: set[tuple[str, str, str, int]] = set()
        for c in ordered:
            if len(decisions) >= limit:
                self.dirty_contacts.add(c.contact_id)
                continue
            rules = self.queues.get(c.queue_id)
            if rules is None:
                continue  # no queue known: nobody to offer it to (best_agent_for says the same)
            skill = NO_SKILL if c.skill is None else self._pool(c, rules, t)
            bucket = (c.queue_id, skill, self._language(c, rules, t), rules.levels_relaxed(t - c.since))
            if bucket in nobody:
                continue
            a = self.best_agent_for(c, t)
            if a is not None:
                decisions.append(self._pend(c, a))
            else:
                nobody.add(bucket)
        return decisions

    def _rank(self, c: ContactView, now: float) -> tuple[float, float]:
        rules = self.queues.get(c.queue_id)
        eff = rules.effective_priority(c.priority, now - c.since) if rules else c.priority
        return (-eff, c.since)

    def _pend(self, c: ContactView, a: AgentView) -> Decision:
        c.pending = a.agent_id
        c.token += 1
        a.pending[c.contact_id] = c.media
        self._touch_agent(a)
        self.dirty_agents.discard(a.agent_id)  # re-examined after the decision settles
        return Decision(c.contact_id, a.agent_id, c.queue_id)

    def settle(self, decisions: Iterable[Decision]) -> None:
        """The decisions were written (or refused): the events read back since are the
        truth; clear the pending marks and index both sides afresh."""
        for d in decisions:
            c = self.contacts.get(d.contact_id)
            if c is not None:
                c.pending = None
                self._touch_contact(c)
            a = self.agents.get(d.agent_id)
            if a is not None:
                a.pending.pop(d.contact_id, None)
                self._touch_agent(a)

    # ================================================================== timers
    def next_timer(self) -> float | None:
        return self.timers[0][0] if self.timers else None

    def due(self, now: datetime | float) -> list[Action]:
        t = now if isinstance(now, float) else now.timestamp()
        self.now = max(self.now, t)
        actions: list[Action] = []
        while self.timers and self.timers[0][0] <= t:
            _, _, kind, cid, agent_id, token = heapq.heappop(self.timers)
            c = self.contacts.get(cid)
            if kind == "offer_timeout":
                if c is not None and c.offered_to == agent_id and c.offers_made == token:
                    actions.append(Action("offer_timeout", cid, agent_id))
            elif kind == "wrap_timeout":
                if agent_id is not None:
                    a = self.agents.get(agent_id)
                    if a is not None and cid in a.wrapping and a.wrapping[cid][1] <= t:
                        actions.append(Action("wrap_timeout", cid, agent_id))
                elif c is not None and c.status == "wrap_up":
                    actions.append(Action("wrap_timeout", cid, None))
            elif kind in ("max_wait", "no_agents"):
                if c is not None and c.waiting(t) and c.status == "queued" and not c.virtual:
                    rules = self.queues.get(c.queue_id)
                    expired = kind == "no_agents" or (
                        rules is not None and rules.max_wait_seconds is not None and t - c.since >= rules.max_wait_seconds
                    )
                    if expired:
                        actions.append(Action("overflow", cid, None, kind if kind == "no_agents" else "max_wait"))
            elif kind == "callback_expiry":
                # Checked after the decisions (Router.step): a callback an agent can take now is offered instead.
                if c is not None and c.virtual and c.status in ("queued", "scheduled") and c.offered_to is None and c.pending is None:
                    rules = self.queues.get(c.queue_id)
                    if rules is not None and rules.callback_expired(t - c.since):
                        actions.append(Action("give_up", cid, None, "max_age"))
            elif kind in ("relax", "due") and c is not None:
                self._touch_contact(c)
                rules = self.queues.get(c.queue_id)
                if kind == "relax" and rules is not None:
                    self._relax_timer(c, rules)
        return actions

    # ================================================================== reading
    def waiting_count(self, queue_id: str | None = None) -> int:
        """Callers waiting on the line (callbacks are not: nobody is)."""
        return sum(
            1 for c in self.contacts.values() if c.status == "queued" and not c.virtual and (queue_id is None or c.queue_id == queue_id)
        )

    def free_agents(self, media: str = "voice") -> list[str]:
        return sorted(a.agent_id for a in self.agents.values() if a.can_take(media))
