"""Contact-center command handlers, one small function per command, registered by class.

The one handler shape (:mod:`domain.handling`): ``handler(uow, ctx, cmd) -> dict``. A handler
that assigns work changes the Contact and the Agent in one transaction; if either was
changed by someone else since it was loaded, the commit conflicts and nothing is
written. The rules (may this agent take this contact?) live in the aggregates.
"""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

from domain.access import Access, Action, authorize
from domain.base import Context, Forbidden, InvalidCommand, InvalidTransition, NotFound
from domain.citizens.aggregate import ContactDetails, check_language, normalise_email, normalise_phone
from domain.citizens.handlers import known_citizen
from domain.contact_center import commands as cc
from domain.contact_center.agents import Agent, agent_uuid
from domain.contact_center.contacts import Contact, contact_uuid_for
from domain.contact_center.queues import Queue, queue_uuid
from domain.contact_center.rules import QueueRules, check_skill_name
from domain.handling import Handlers, UnitOfWork
from domain.requests.handlers import load_request

handles = Handlers("contact_center")


# ------------------------------------------------------------------------ loading
def load_queue(uow: UnitOfWork, queue_id: str) -> Queue:
    """A queue's rules, read-only: shared and briefly cached (queues change rarely)."""
    queue = uow.read(Queue, queue_uuid(queue_id))
    if queue is None:
        raise NotFound(f"no queue {queue_id}", code="queue_not_found")
    return queue


def load_agent(uow: UnitOfWork, agent_id: str) -> Agent:
    agent = uow.find(Agent, agent_uuid(agent_id))
    if agent is None:
        raise NotFound(f"no agent {agent_id}", code="agent_not_found")
    return agent


def find_agent(uow: UnitOfWork, agent_id: str | None) -> Agent | None:
    """The agent aggregate, or None for a handler who is not an agent (a supervisor who took over)."""
    return uow.find(Agent, agent_uuid(agent_id)) if agent_id else None


def load_contact(uow: UnitOfWork, contact_id: str) -> Contact:
    try:
        cid = uuid.UUID(contact_id)
    except ValueError:
        cid = contact_uuid_for(contact_id)  # a PBX channel id
    contact = uow.find(Contact, cid)
    if contact is None:
        raise NotFound(f"no contact {contact_id}", code="contact_not_found")
    return contact


def acting_as(ctx: Context, action: Action, agent_id: str | None) -> None:
    """Agents act for themselves (their own session; the contacts offered to them);
    supervisors and system processes for anyone (domain/access.py)."""
    authorize(ctx.actor, action, Access(assignee=agent_id, subject=agent_id))


def acting_on(ctx: Context, action: Action, contact: Contact, agent_id: str | None) -> None:
    """``acting_as`` for the contact's current agent (``agent_id``). An agent or expert who
    handled the contact earlier (it moved on: a callback back to scheduled, a take-over)
    is told its state, 409, rather than 403; anyone else is still refused without it."""
    try:
        acting_as(ctx, action, agent_id)
    except Forbidden:
        if agent_id != contact.agent_id or ctx.actor.id not in contact.handled_by:
            raise
        now_with = f" with {contact.agent_id}" if contact.agent_id else ""
        raise InvalidTransition(
            f"contact {contact.id} is {contact.status}{now_with}: {ctx.actor.id} no longer handles it", status=contact.status
        ) from None


def _contact_result(contact: Contact, **extra: Any) -> dict[str, Any]:
    return {**contact.summary(), **extra}


# ------------------------------------------------------------------------ queues
@handles(cc.DefineQueue)
def define_queue(uow: UnitOfWork, ctx: Context, cmd: cc.DefineQueue) -> dict[str, Any]:
    queue = uow.find(Queue, queue_uuid(cmd.queue_id))
    config = cmd.config()
    if queue is None:
        queue = Queue.define(cmd.queue_id, cmd.names, config, ctx)
        uow.add(queue)
    else:
        queue.expect_version(cmd.expected_version)
        queue.reconfigure(config, ctx)
    overflow = queue.rules.overflow
    if overflow and overflow.get("to") == "queue":
        target = load_queue(uow, overflow["queue_id"])
        if target.rules.media != queue.rules.media:
            raise InvalidCommand(f"queue {queue.queue_id} ({queue.rules.media}) cannot overflow to a {target.rules.media} queue")
    return {"queue_id": queue.queue_id, "version": queue.version, "config": queue.config}


# ------------------------------------------------------------------------ agents
@handles(cc.LoginAgent)
def login_agent(uow: UnitOfWork, ctx: Context, cmd: cc.LoginAgent) -> dict[str, Any]:
    acting_as(ctx, cmd.action, cmd.agent_id)
    agent = uow.find(Agent, agent_uuid(cmd.agent_id))
    if agent is None:
        agent = Agent.enrol(cmd.agent_id, cmd.name, ctx)
        uow.add(agent)
    agent.expect_version(cmd.expected_version)
    for queue_id in cmd.queues:
        load_queue(uow, queue_id)
    agent.log_in(
        skills=cmd.skills,
        languages=cmd.languages,
        departments=cmd.departments,
        queues=cmd.queues,
        capacity=cmd.capacity,
        ready=cmd.ready,
        ctx=ctx,
    )
    return agent.summary()


@handles(cc.LogoutAgent)
def logout_agent(uow: UnitOfWork, ctx: Context, cmd: cc.LogoutAgent) -> dict[str, Any]:
    acting_as(ctx, cmd.action, cmd.agent_id)
    agent = load_agent(uow, cmd.agent_id)
    agent.expect_version(cmd.expected_version)
    agent.log_out(ctx, forced_by=ctx.actor.id if ctx.actor.role == "supervisor" else None)
    return agent.summary()


@handles(cc.SetPresence)
def set_presence(uow: UnitOfWork, ctx: Context, cmd: cc.SetPresence) -> dict[str, Any]:
    """An agent goes available / not ready; a supervisor forcing it is recorded as such."""
    acting_as(ctx, cmd.action, cmd.agent_id)
    agent = load_agent(uow, cmd.agent_id)
    agent.expect_version(cmd.expected_version)
    forced = ctx.actor.id if ctx.actor.role == "supervisor" else None
    agent.set_presence(cmd.presence, cmd.reason, ctx, forced_by=forced)
    return agent.summary()


@handles(cc.MoveAgent)
def move_agent(uow: UnitOfWork, ctx: Context, cmd: cc.MoveAgent) -> dict[str, Any]:
    agent = load_agent(uow, cmd.agent_id)
    agent.expect_version(cmd.expected_version)
    for queue_id in cmd.queues:
        load_queue(uow, queue_id)
    agent.change_queues(cmd.queues, ctx, changed_by=ctx.actor.id)
    return {**agent.summary(), "queues": agent.queues}


@handles(cc.ChangeSkills)
def change_skills(uow: UnitOfWork, ctx: Context, cmd: cc.ChangeSkills) -> dict[str, Any]:
    agent = load_agent(uow, cmd.agent_id)
    agent.expect_version(cmd.expected_version)
    agent.change_skills(cmd.skills, cmd.languages, ctx)
    return agent.summary()


# ------------------------------------------------------------------------ arrivals
def _caller(uow: UnitOfWork, ctx: Context, phone: str | None, email: str | None) -> tuple[dict[str, Any] | None, str | None]:
    """The caller's number and address, normalised as requests' are (the jurisdiction's
    phone region), and the citizen they belong to: the agent's screen pop. A caller id the
    PBX garbled or withheld is kept as given and recognises nobody: a call is never refused
    for it."""
    region = ctx.deps.policy.default_region
    given: dict[str, str] = {}
    known: dict[str, str] = {}
    for field, raw, normalise in (("phone", phone, lambda v: normalise_phone(v, region)), ("email", email, normalise_email)):
        if not raw:
            continue
        try:
            given[field] = known[field] = normalise(raw)
        except InvalidCommand:
            given[field] = raw
    # As the agent's registration will resolve it (staff who speak to the caller check them).
    citizen = known_citizen(uow, ContactDetails(**known), checked=True) if known else None
    return given or None, str(citizen) if citizen else None


@handles(cc.ContactArrives)
def contact_arrives(uow: UnitOfWork, ctx: Context, cmd: cc.ContactArrives) -> dict[str, Any]:
    """A call, chat, email or web session comes in and joins its queue (or overflows at
    once when the queue is closed). Re-delivery with the same external id is a no-op."""
    if cmd.external_id:
        existing = uow.find(Contact, contact_uuid_for(cmd.external_id))
        if existing is not None:
            return _contact_result(existing, duplicate=True)
    queue = load_queue(uow, cmd.queue_id)
    rules = queue.rules
    language = check_language(cmd.language) if cmd.language else None
    personal, known = _caller(uow, ctx, cmd.phone, cmd.email)
    contact = Contact.arrive(
        channel=cmd.channel,
        queue_id=cmd.queue_id,
        language=language,
        priority=cmd.priority,
        personal=personal,
        direction=cmd.direction,
        citizen_id=cmd.citizen_id or known,
        external_id=cmd.external_id,
        subject=cmd.subject,
        ctx=ctx,
        skill=check_skill_name(cmd.skill) if cmd.skill is not None else None,
    )
    if contact.media != rules.media:
        raise InvalidCommand(f"a {contact.channel} contact cannot join the {rules.media} queue {cmd.queue_id}")
    uow.add(contact)
    contact.enqueue(cmd.queue_id, ctx)
    if not rules.is_open(ctx.now):
        _overflow(uow, ctx, contact, rules, "closed")
    return _contact_result(contact)


def _overflow(uow: UnitOfWork, ctx: Context, contact: Contact, rules: QueueRules, reason: str) -> None:
    target = rules.overflow or {"to": "voicemail"}
    to = target["to"]
    to_queue = target.get("queue_id")
    if to == "queue":
        next_rules = load_queue(uow, str(to_queue)).rules
        if not next_rules.is_open(ctx.now):
            to, to_queue = "voicemail", None  # the overflow queue is closed too: take a message
    contact.overflow(to, to_queue, reason, ctx)


@handles(cc.OverflowContact)
def overflow_contact(uow: UnitOfWork, ctx: Context, cmd: cc.OverflowContact) -> dict[str, Any]:
    """Waited too long (or the supervisor says so): on to the queue's overflow target."""
    contact = load_contact(uow, cmd.contact_id)
    contact.expect_version(cmd.expected_version)
    _overflow(uow, ctx, contact, load_queue(uow, contact.queue_id).rules, cmd.reason)
    return _contact_result(contact)


@handles(cc.Abandon)
def abandon_contact(uow: UnitOfWork, ctx: Context, cmd: cc.Abandon) -> dict[str, Any]:
    contact = load_contact(uow, cmd.contact_id)
    contact.expect_version(cmd.expected_version)
    withdrawn = contact.abandon(ctx)
    agent = find_agent(uow, withdrawn)
    if agent is not None and str(contact.id) in agent.offers:
        agent.lose_offer(str(contact.id), "withdrawn", 1_000_000, ctx)
    return _contact_result(contact)


# ------------------------------------------------------------------------ routing
def _offer(uow: UnitOfWork, ctx: Context, contact: Contact, agent: Agent, rules: QueueRules | None = None) -> None:
    rules = rules or load_queue(uow, contact.queue_id).rules
    if agent.agent_id and contact.queue_id not in agent.queues:
        raise InvalidTransition(f"agent {agent.agent_id} does not serve queue {contact.queue_id}", code="not_in_queue")
    if rules.strategy == "ring_all":
        raise InvalidTransition(f"queue {contact.queue_id} rings all agents: they grab its contacts", code="grab_queue")
    why = contact.why_not_skilled(agent.agent_id, agent.skills, rules, ctx.now)
    if why:
        raise InvalidTransition(why, code="unskilled")
    contact.offer(agent.agent_id, ctx)
    agent.reserve(str(contact.id), contact.queue_id, contact.media, ctx)


@handles(cc.OfferContact)
def offer_contact(uow: UnitOfWork, ctx: Context, cmd: cc.OfferContact) -> dict[str, Any]:
    """One routing decision: reserve the agent and offer the contact, both or neither."""
    contact = load_contact(uow, cmd.contact_id)
    agent = load_agent(uow, cmd.agent_id)
    _offer(uow, ctx, contact, agent)
    return _contact_result(contact)


@handles(cc.OfferContacts, issued_by=("consumers.router",))
def offer_contacts(uow: UnitOfWork, ctx: Context, cmd: cc.OfferContacts) -> dict[str, Any]:
    """Several routing decisions in one transaction (the router's batch). A decision that
    is no longer possible (somebody else took the contact or the agent) is skipped, the
    others are written. A concurrent writer makes the whole commit conflict: the bus then
    reruns this handler on fresh state and the lost decisions are skipped."""
    offered: list[tuple[str, str]] = []
    skipped: list[dict[str, str]] = []
    rules_of: dict[str, QueueRules] = {}  # per queue, once per batch
    for contact_id, agent_id in cmd.decisions:
        try:
            contact = load_contact(uow, contact_id)
            agent = load_agent(uow, agent_id)
            # Check both before changing either: a skipped decision writes nothing.
            why = contact.why_not_offer(ctx.now) or agent.why_not(contact.media)
            if why is None and contact.queue_id not in agent.queues:
                why = f"agent {agent_id} does not serve queue {contact.queue_id}"
            if why is not None:
                skipped.append({"contact_id": contact_id, "agent_id": agent_id, "why": why})
                continue
            rules = rules_of.get(contact.queue_id)
            if rules is None:
                rules = rules_of[contact.queue_id] = load_queue(uow, contact.queue_id).rules
            _offer(uow, ctx, contact, agent, rules)
            offered.append((contact_id, agent_id))
        except (NotFound, InvalidTransition) as exc:
            skipped.append({"contact_id": contact_id, "agent_id": agent_id, "why": exc.message})
    return {"offered": offered, "skipped": skipped}


@handles(cc.Answer)
def answer_contact(uow: UnitOfWork, ctx: Context, cmd: cc.Answer) -> dict[str, Any]:
    """The offered agent takes the contact (for a callback: the citizen is dialled)."""
    acting_as(ctx, cmd.action, cmd.agent_id)
    contact = load_contact(uow, cmd.contact_id)
    contact.expect_version(cmd.expected_version)
    agent = load_agent(uow, cmd.agent_id)
    kind = contact.offer_kind
    how = contact.accept(cmd.agent_id, ctx)
    agent.start_contact(str(contact.id), contact.media, contact.queue_id, "consult" if kind in ("consult", "conference") else "offer", ctx)
    return _contact_result(contact, how=how)


@handles(cc.Decline)
def decline_offer(uow: UnitOfWork, ctx: Context, cmd: cc.Decline) -> dict[str, Any]:
    acting_as(ctx, cmd.action, cmd.agent_id)
    return _fail_offer(uow, ctx, cmd.contact_id, cmd.agent_id, "declined")


@handles(cc.TimeOutOffer, issued_by=("consumers.router",))
def time_out_offer(uow: UnitOfWork, ctx: Context, cmd: cc.TimeOutOffer) -> dict[str, Any]:
    """Nobody answered the offer in time: the contact goes back to its old place and the
    agent, after too many misses, to not ready."""
    return _fail_offer(uow, ctx, cmd.contact_id, cmd.agent_id, "timed_out")


def _fail_offer(uow: UnitOfWork, ctx: Context, contact_id: str, agent_id: str, outcome: str) -> dict[str, Any]:
    contact = load_contact(uow, contact_id)
    agent = load_agent(uow, agent_id)
    contact.fail_offer(agent_id, outcome, ctx)
    max_missed = load_queue(uow, contact.queue_id).rules.max_missed_offers
    agent.lose_offer(str(contact.id), outcome, max_missed, ctx)
    return _contact_result(contact, agent_state=agent.state)


@handles(cc.Grab)
def grab_contact(uow: UnitOfWork, ctx: Context, cmd: cc.Grab) -> dict[str, Any]:
    """An agent picks a waiting contact of a grab queue (话务抢答): the first one wins, the
    others get a conflict and nothing is written for them."""
    acting_as(ctx, cmd.action, cmd.agent_id)
    contact = load_contact(uow, cmd.contact_id)
    agent = load_agent(uow, cmd.agent_id)
    rules = load_queue(uow, contact.queue_id).rules
    if contact.queue_id not in agent.queues:
        raise InvalidTransition(f"agent {cmd.agent_id} does not serve queue {contact.queue_id}", code="not_in_queue")
    why = agent.why_not(contact.media)
    if why:
        raise InvalidTransition(why, code="agent_unavailable")
    unskilled = contact.why_not_skilled(cmd.agent_id, agent.skills, rules, ctx.now)
    if unskilled:
        raise InvalidTransition(unskilled, code="unskilled")
    how = contact.grab(cmd.agent_id, rules.grab, ctx)
    agent.start_contact(str(contact.id), contact.media, contact.queue_id, "grab", ctx)
    return _contact_result(contact, how=how)


# ------------------------------------------------------------------------ handling
SELF_ACTING_ROLES = ("agent", "expert")  # their contact commands are their own (domain/access.py)


def agent_on(ctx: Context, contact: Contact, agent_id: str | None) -> str:
    """The agent a contact command is for: the one named, else the agent acting, else
    (a supervisor or a system process acting) the contact's agent."""
    if agent_id:
        return agent_id
    if ctx.actor.role in SELF_ACTING_ROLES:
        return ctx.actor.id
    if contact.agent_id:
        return contact.agent_id
    raise InvalidCommand(f"contact {contact.id} has no agent: name one", field="agent_id")


@handles(cc.Hold)
def hold_contact(uow: UnitOfWork, ctx: Context, cmd: cc.Hold) -> dict[str, Any]:
    contact = load_contact(uow, cmd.contact_id)
    agent_id = agent_on(ctx, contact, cmd.agent_id)
    acting_as(ctx, cmd.action, agent_id)
    contact.hold(agent_id, ctx)
    return _contact_result(contact)


@handles(cc.Resume)
def resume_contact(uow: UnitOfWork, ctx: Context, cmd: cc.Resume) -> dict[str, Any]:
    contact = load_contact(uow, cmd.contact_id)
    agent_id = agent_on(ctx, contact, cmd.agent_id)
    acting_as(ctx, cmd.action, agent_id)
    contact.resume(agent_id, ctx)
    return _contact_result(contact)


def _finish(uow: UnitOfWork, ctx: Context, contact: Contact, agent_id: str | None, wrap: bool = True) -> None:
    agent = find_agent(uow, agent_id)
    if agent is not None and str(contact.id) in agent.active:
        seconds = load_queue(uow, contact.queue_id).rules.wrap_seconds if wrap else 0
        agent.finish_contact(str(contact.id), seconds, ctx)


@handles(cc.Transfer)
def transfer_contact(uow: UnitOfWork, ctx: Context, cmd: cc.Transfer) -> dict[str, Any]:
    """Cold: the agent leaves at once and the contact goes to the queue or agent. Warm:
    the target (often an expert seat) is offered a consultation first; the agent hands
    over with ``complete_transfer`` once the target has joined. The skill the contact
    arrived with holds in its first queue only: a transfer to a queue (the agent chose
    where it goes) routes it to any agent of that queue; to a named agent, it keeps it."""
    acting_as(ctx, cmd.action, cmd.agent_id)
    contact = load_contact(uow, cmd.contact_id)
    contact.expect_version(cmd.expected_version)
    if cmd.to_queue_id is not None:
        target_rules = load_queue(uow, cmd.to_queue_id).rules
        if target_rules.media != contact.media:
            raise InvalidCommand(f"a {contact.media} contact cannot go to the {target_rules.media} queue {cmd.to_queue_id}")
    target = load_agent(uow, cmd.to_agent_id) if cmd.to_agent_id else None
    leaving_queue = contact.queue_id
    contact.transfer(cmd.agent_id, to_queue_id=cmd.to_queue_id, to_agent_id=cmd.to_agent_id, mode=cmd.mode, expert=cmd.expert, ctx=ctx)
    if target is not None:
        target.reserve(str(contact.id), leaving_queue, contact.media, ctx)
    if cmd.mode == "cold":
        _finish(uow, ctx, contact, cmd.agent_id)
    return _contact_result(contact)


@handles(cc.Invite)
def invite_agent(uow: UnitOfWork, ctx: Context, cmd: cc.Invite) -> dict[str, Any]:
    """Conference: another agent is offered to join the conversation."""
    acting_as(ctx, cmd.action, cmd.agent_id)
    contact = load_contact(uow, cmd.contact_id)
    invitee = load_agent(uow, cmd.invitee_id)
    contact.invite(cmd.agent_id, cmd.invitee_id, ctx)
    invitee.reserve(str(contact.id), contact.queue_id, contact.media, ctx)
    return _contact_result(contact)


@handles(cc.CompleteTransfer)
def complete_transfer(uow: UnitOfWork, ctx: Context, cmd: cc.CompleteTransfer) -> dict[str, Any]:
    acting_as(ctx, cmd.action, cmd.agent_id)
    contact = load_contact(uow, cmd.contact_id)
    new_primary = contact.complete_transfer(cmd.agent_id, ctx)
    _finish(uow, ctx, contact, cmd.agent_id)
    return _contact_result(contact, new_agent_id=new_primary)


@handles(cc.Leave)
def leave_contact(uow: UnitOfWork, ctx: Context, cmd: cc.Leave) -> dict[str, Any]:
    acting_as(ctx, cmd.action, cmd.agent_id)
    contact = load_contact(uow, cmd.contact_id)
    contact.leave(cmd.agent_id, ctx)
    _finish(uow, ctx, contact, cmd.agent_id)
    return _contact_result(contact)


@handles(cc.End)
def end_contact(uow: UnitOfWork, ctx: Context, cmd: cc.End) -> dict[str, Any]:
    """The conversation ends (either side hangs up): every agent on it goes to wrap-up."""
    contact = load_contact(uow, cmd.contact_id)
    acting_as(ctx, cmd.action, cmd.agent_id or contact.agent_id)
    contact.expect_version(cmd.expected_version)
    if cmd.agent_id and cmd.agent_id not in contact.participants:
        raise InvalidTransition(f"agent {cmd.agent_id} is not on contact {cmd.contact_id}", code="not_handler")
    pending = contact.offered_to
    participants = contact.end(cmd.ended_by, ctx)
    for agent_id in participants:
        _finish(uow, ctx, contact, agent_id)
    if pending:  # a consult / conference offer still ringing: withdraw it
        invitee = find_agent(uow, pending)
        if invitee is not None and str(contact.id) in invitee.offers:
            invitee.lose_offer(str(contact.id), "withdrawn", 1_000_000, ctx)
    no_wrap = load_queue(uow, contact.queue_id).rules.wrap_seconds == 0
    if no_wrap or (contact.taken_over and contact.agent_id and find_agent(uow, contact.agent_id) is None):
        contact.wrap_up(contact.agent_id, None, ctx, timed_out=no_wrap)  # nothing to wrap up: closed at once
    return _contact_result(contact)


@handles(cc.WrapUp)
def wrap_up_contact(uow: UnitOfWork, ctx: Context, cmd: cc.WrapUp) -> dict[str, Any]:
    """The agent finishes wrap-up with a disposition (or its time ran out)."""
    contact = load_contact(uow, cmd.contact_id)
    # An agent or expert wraps up their own part (after a transfer or a take-over, the
    # contact's agent is someone else); a supervisor or the router, the contact's agent's.
    agent_id = cmd.agent_id or (ctx.actor.id if ctx.actor.role in SELF_ACTING_ROLES else contact.agent_id)
    if agent_id == ctx.actor.id and ctx.actor.role in SELF_ACTING_ROLES and ctx.actor.id not in contact.handled_by:
        acting_as(ctx, cmd.action, contact.agent_id)  # never on this contact: refused as before, nothing told
    acting_on(ctx, cmd.action, contact, agent_id)
    agent = find_agent(uow, agent_id)
    cid = str(contact.id)
    done = False
    if agent is not None and cid in agent.wrapping:
        # The agent's own disposition: recorded even when the contact is someone else's now.
        agent.complete_wrap_up(cid, ctx, timed_out=cmd.timed_out, disposition=cmd.disposition)
        done = True
    if contact.status == "wrap_up" and agent_id == contact.agent_id:
        contact.wrap_up(agent_id, cmd.disposition, ctx, timed_out=cmd.timed_out)
        done = True
    if not done:
        raise InvalidTransition(
            f"agent {agent_id} is not wrapping up contact {cmd.contact_id}, which is {contact.status}", status=contact.status
        )
    return _contact_result(contact)


@handles(cc.LinkRequest)
def link_request(uow: UnitOfWork, ctx: Context, cmd: cc.LinkRequest) -> dict[str, Any]:
    """The request registered during this contact: the citizen's history joins them. The
    request is named by its reference or id and must exist; the contact records its id."""
    contact = load_contact(uow, cmd.contact_id)
    if ctx.actor.id not in contact.handled_by:  # who handled it earlier may link what they registered then
        acting_on(ctx, cmd.action, contact, contact.agent_id)
    contact.link_request(str(load_request(uow, cmd.request_id).id), ctx)
    return _contact_result(contact, request_ids=contact.request_ids)


# ------------------------------------------------------------------------ callbacks
# How far in the past a callback's due time may be: "now" as a form chose it a few minutes
# before it was sent, or a clock a little behind. It is then due at once; anything older is
# a mistyped date, which would otherwise dial at once (or be given up as too old).
CALLBACK_PAST_TOLERANCE = timedelta(minutes=5)


@handles(cc.ScheduleCallback)
def schedule_callback(uow: UnitOfWork, ctx: Context, cmd: cc.ScheduleCallback) -> dict[str, Any]:
    """An outbound call to make later: return an answer, or a satisfaction survey (回访)."""
    if cmd.external_id:
        existing = uow.find(Contact, contact_uuid_for(cmd.external_id))
        if existing is not None:
            return _contact_result(existing, duplicate=True)
    rules = load_queue(uow, cmd.queue_id).rules
    if rules.media != "voice":
        raise InvalidCommand(f"callbacks are calls: queue {cmd.queue_id} is a {rules.media} queue")
    if cmd.due_at < ctx.now - CALLBACK_PAST_TOLERANCE:
        raise InvalidCommand(
            f"due_at {cmd.due_at.isoformat()} is in the past: a callback is due now or later", code="due_in_past", field="due_at"
        )
    phone = cmd.phone
    if ctx.actor.role != "system":
        # Staff type this number: checked as a request's is. A caller id from the PBX or the
        # voice menu is kept as given, as an arrival's is (_caller).
        phone = normalise_phone(cmd.phone, ctx.deps.policy.default_region)
    request_id = str(load_request(uow, cmd.request_id).id) if cmd.request_id else None
    personal, known = _caller(uow, ctx, phone, None)
    contact = Contact.arrive(
        channel="callback",
        queue_id=cmd.queue_id,
        language=check_language(cmd.language) if cmd.language else None,
        priority=cmd.priority,
        personal=personal,
        direction="outbound",
        citizen_id=cmd.citizen_id or known,
        external_id=cmd.external_id,
        subject=cmd.reason,
        ctx=ctx,
        skill=check_skill_name(cmd.skill) if cmd.skill is not None else None,
    )
    uow.add(contact)
    contact.schedule_callback(cmd.queue_id, cmd.due_at, cmd.max_attempts, cmd.retry_seconds, cmd.reason, request_id, ctx)
    if request_id:
        contact.link_request(request_id, ctx, scheduling=True)
    return _contact_result(contact, due_at=cmd.due_at.isoformat())


@handles(cc.CallbackOutcome)
def callback_outcome(uow: UnitOfWork, ctx: Context, cmd: cc.CallbackOutcome) -> dict[str, Any]:
    """The dialler reports: the citizen answered (the agent is connected) or not (retry
    later, or give up after the last attempt; the agent is free again at once)."""
    contact = load_contact(uow, cmd.contact_id)
    agent_id = contact.agent_id
    acting_on(ctx, cmd.action, contact, agent_id)
    status = contact.callback_outcome(cmd.outcome, ctx)
    if status != "connected":
        _finish(uow, ctx, contact, agent_id, wrap=False)
    return _contact_result(contact)


@handles(cc.GiveUpCallback, issued_by=("consumers.router",))
def give_up_callback(uow: UnitOfWork, ctx: Context, cmd: cc.GiveUpCallback) -> dict[str, Any]:
    """A callback no agent could take (a skill or language nobody on duty has) is given up
    once it is older than its queue's maximum age, with the reason, instead of waiting for ever."""
    contact = load_contact(uow, cmd.contact_id)
    contact.expect_version(cmd.expected_version)
    contact.give_up_callback(load_queue(uow, contact.queue_id).rules, cmd.reason, ctx)
    return _contact_result(contact)


@handles(cc.RecordIvrSession, issued_by=("telephony_adapter.ivr.ports",))
def record_ivr_session(uow: UnitOfWork, ctx: Context, cmd: cc.RecordIvrSession) -> dict[str, Any]:
    """Which IVR flow and version the call went through (``telephony_adapter/ivr``)."""
    contact = load_contact(uow, cmd.contact_id)
    session = cmd.model_dump(exclude={"contact_id", "expected_version"})
    contact.record_ivr_session(ctx, **session)
    return _contact_result(contact)


# ------------------------------------------------------------------------ supervisors
@handles(cc.Supervise)
def supervise_contact(uow: UnitOfWork, ctx: Context, cmd: cc.Supervise) -> dict[str, Any]:
    """Monitor, whisper, barge in, stop, or take over (the agent leaves to wrap-up)."""
    supervisor_id = _supervisor(ctx, cmd.supervisor_id)
    contact = load_contact(uow, cmd.contact_id)
    if cmd.mode == "stop":
        contact.stop_supervising(supervisor_id, ctx)
    elif cmd.mode == "take_over":
        previous = contact.take_over(supervisor_id, ctx)
        _finish(uow, ctx, contact, previous)
    else:
        contact.supervise(supervisor_id, cmd.mode, ctx)
    return _contact_result(contact, supervisors=contact.supervisors)


def _supervisor(ctx: Context, named: str | None) -> str:
    """The supervisor joining, leaving or taking over is the one signed in: the PBX dials
    this id as their endpoint, so a name in the body (an outside number, another
    supervisor whose session it would end) is accepted only when it is the actor's own. A
    system process, which acts for anyone, names the supervisor it acts for."""
    if ctx.actor.role == "system":
        if not named:
            raise InvalidCommand("a system process names the supervisor it acts for", field="supervisor_id")
        return named
    if named is not None and named != ctx.actor.id:
        raise Forbidden(
            f"{ctx.actor.id} supervises as themselves, not as {named}", action=Action.CONTACTS_SUPERVISE.value, field="supervisor_id"
        )
    return ctx.actor.id
