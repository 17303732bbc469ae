"""Request handlers: one small function per command, registered against its class.

The rules live in :class:`~domain.requests.aggregate.ServiceRequest`; a handler loads
what the rule needs (the catalogue, the calendar), calls it, replans the SLA timers, and
says what happened.
"""

from __future__ import annotations

import uuid
from dataclasses import replace
from typing import Any

from domain.access import acting_department
from domain.base import Context, DomainError, InvalidCommand, NotFound
from domain.calendars.handlers import jurisdiction_calendar
from domain.catalogue.handlers import load_catalogue
from domain.citizens.aggregate import Citizen, ContactDetails, check_language, same_name
from domain.citizens.handlers import known_citizen, resolve_citizen, signed_in_citizen
from domain.contact_center.contacts import Contact
from domain.deadlines import deadline_rule
from domain.handling import Handlers, UnitOfWork, on_aggregate, parse_id
from domain.requests import commands as c
from domain.requests.aggregate import WAITING, ServiceRequest, request_id_for
from domain.requests.sla import plan_kept, reschedule

handles = Handlers("requests")


def load_request(uow: UnitOfWork, ref: str) -> ServiceRequest:
    """By reference number (what citizens quote) or by id."""
    try:
        rid = uuid.UUID(ref)
    except ValueError:
        rid = request_id_for(ref)
    request = uow.find(ServiceRequest, rid)
    if request is None:
        raise NotFound(f"no request {ref}")
    return request


def _problem(uow: UnitOfWork, ctx: Context, r: ServiceRequest) -> dict[str, Any] | None:
    return load_catalogue(uow, ctx.deps).problem_code(r.problem_code) if r.problem_code else None


def keep_timers(uow: UnitOfWork, ctx: Context, request: ServiceRequest) -> None:
    """Replans the request's timers when what they depend on changed (domain/requests/sla.py)."""
    if not request.timers_scheduled and not request.is_open and request.status != "closed":
        return
    calendar = jurisdiction_calendar(uow, ctx.deps)
    basis = _deadline_basis(uow, ctx, request)
    timers = reschedule(request, ctx.deps.sla, calendar, ctx.now, basis)
    if timers is not None:
        request.schedule_timers(timers, ctx)
        plan_kept(request, ctx.deps.sla, calendar, basis)


def _deadline_basis(uow: UnitOfWork, ctx: Context, request: ServiceRequest) -> str:
    """Whether the request's deadline runs on working or clock time (its problem code's
    rule for its urgency); clock time when the code has left the catalogue since."""
    try:
        problem = _problem(uow, ctx, request)
    except DomainError:
        problem = None
    return str(deadline_rule(request.urgency, problem).get("basis", "clock"))


def request_summary(request: ServiceRequest) -> dict[str, Any]:
    return {
        "id": str(request.id),
        "reference": request.reference,
        "status": request.status,
        "version": request.version,
        "due_at": request.due_at.isoformat(),
    }


@handles(c.RegisterRequest)
def register_request(uow: UnitOfWork, ctx: Context, cmd: c.RegisterRequest) -> dict[str, Any]:
    if cmd.expected_version is not None:  # from the body or an If-Match: a new request has no version yet
        raise InvalidCommand("a new request has no version to expect: send no expected_version or If-Match", field="expected_version")
    if cmd.collected and not cmd.problem_code:
        # Details are the problem code's: without one there is nothing to check them against.
        raise InvalidCommand("collected details need the problem_code that defines them", code="invalid_collected", field="collected")
    deps = ctx.deps
    own = signed_in_citizen(uow, ctx)
    given = cmd.contact.model_dump() if cmd.contact else None
    # A signed-in citizen registers for themselves: the case is theirs whatever the body says.
    contact = ContactDetails.parse(given or (own.personal if own else None), deps.policy.default_region)
    if not cmd.anonymous and own is None:
        contact = _completed_from_record(uow, contact)
    hidden = deps.policy.check(contact, wants_anonymity=cmd.anonymous, channel=cmd.channel)
    language = check_language(cmd.language or deps.policy.default_language)
    citizen, unlinked = (own, False) if own else resolve_citizen(uow, ctx, contact, language)
    identity_check = "not_linked" if unlinked else _identity_check(citizen, contact)
    if cmd.language is None and citizen is not None:
        language = citizen.language
    reply_channel = cmd.reply_channel
    if reply_channel is None and not hidden:
        reply_channel = "phone" if contact.phone else "email" if contact.email else None
    personal = None if contact.is_anonymous else contact.as_personal()

    call = _contact_of(uow, cmd.contact_id)
    if call is not None:  # registered during a call or chat: the request is part of its case
        uow.continue_case(call)
    # A reference number already taken makes the insert conflict; the bus then runs the
    # command again, which draws another number.
    reference = deps.new_reference(ctx.now)
    request = ServiceRequest.register(
        reference=reference,
        kind=cmd.kind,
        subtype=cmd.subtype,
        channel=cmd.channel,
        description=cmd.description,
        location=cmd.location.model_dump(exclude_none=True) if cmd.location else None,
        urgency=cmd.urgency,
        citizen_id=citizen.id if citizen else None,
        personal=personal,
        contact_hidden=hidden,
        language=language,
        reply_channel=reply_channel,
        ctx=ctx,
        calendar=jurisdiction_calendar(uow, deps),
        contact_id=cmd.contact_id,
    )
    uow.add(request)
    if identity_check:
        # For the operator, on the request's timeline: no name in it (personal data stays
        # in the request's and the citizen's erasable details).
        request.add_note(IDENTITY_NOTES[identity_check], True, ctx)
    if cmd.problem_code:
        _classify(uow, ctx, request, cmd.problem_code, cmd.collected)
    keep_timers(uow, ctx, request)
    result = request_summary(request)
    result["citizen_id"] = str(citizen.id) if citizen else None
    result["identity_check"] = identity_check
    return result


def _contact_of(uow: UnitOfWork, contact_id: str | None) -> Contact | None:
    try:
        return uow.read(Contact, uuid.UUID(contact_id)) if contact_id else None
    except ValueError:  # not a contact of ours (an integrator's own id): kept as given
        return None


def _completed_from_record(uow: UnitOfWork, contact: ContactDetails) -> ContactDetails:
    """A known citizen writing from their email or number needs not repeat what the hotline
    knows: an email without a phone in it, or a text without a name, is completed from the
    citizen on record (what was given is kept as given)."""
    if all((contact.name, contact.phone, contact.email)):
        return contact
    # Only from a record the number or address was checked to belong to: one typed on the
    # web beside a stranger's address would complete the request with the stranger's.
    owner = known_citizen(uow, contact, confirmed_only=True)
    citizen = uow.find(Citizen, owner) if owner else None
    return contact.completed_from(citizen.personal) if citizen is not None else contact


IDENTITY_NOTES = {
    "name_differs": "identity check (name_differs): the name given differs from the name on record for this phone"
    " number or email; the request carries the name given and is attached to the citizen on record: confirm who"
    " called, and correct the citizen's details if they changed",
    "not_linked": "identity check (not_linked): the phone number or email given belongs to a citizen on record and"
    " the other detail given is not theirs; from this channel nobody checked that they are one person, so the"
    " request is attached to a citizen of its own: confirm who wrote before treating it as the other citizen's",
}


def _identity_check(citizen: Citizen | None, contact: ContactDetails) -> str | None:
    """``name_differs`` when a known phone or email comes with another person's name (a
    relative on the family line, a number passed on, a typo): the request is registered
    with the name given and flagged rather than silently merged into the citizen on record."""
    on_record = citizen.personal.get("name") if citizen else None
    if on_record and contact.name and not same_name(on_record, contact.name):
        return "name_differs"
    return None


def _classify(uow: UnitOfWork, ctx: Context, request: ServiceRequest, code: str, collected: dict[str, Any] | None) -> None:
    catalogue = load_catalogue(uow, ctx.deps)
    problem = catalogue.problem_code(code)
    request.classify(code, problem, catalogue.route_of(code), collected, ctx, jurisdiction_calendar(uow, ctx.deps))


# An action on the request ``cmd.ref`` names; its timers are replanned after every one.
on_request = on_aggregate(lambda uow, cmd: load_request(uow, cmd.ref), request_summary, after=keep_timers)


@handles(c.Classify)
@on_request
def classify(uow: UnitOfWork, ctx: Context, r: ServiceRequest, cmd: c.Classify) -> None:
    _classify(uow, ctx, r, cmd.problem_code, cmd.collected)


@handles(c.ChangeKind)
@on_request
def change_kind(uow: UnitOfWork, ctx: Context, r: ServiceRequest, cmd: c.ChangeKind) -> None:
    r.change_kind(cmd.kind, cmd.subtype, cmd.reason, ctx)


@handles(c.Dispatch)
@on_request
def dispatch(uow: UnitOfWork, ctx: Context, r: ServiceRequest, cmd: c.Dispatch) -> None:
    catalogue = load_catalogue(uow, ctx.deps)
    department = cmd.department_id or r.suggested_department_id
    provider = cmd.provider_id if cmd.department_id else (cmd.provider_id or r.suggested_provider_id)
    if department is None:
        raise InvalidCommand("no department given and the request has no problem code to route by")
    catalogue.check_dispatch_target(department, provider)
    problem = catalogue.problem_code(r.problem_code) if r.problem_code else None
    r.dispatch(department, provider, cmd.instructions, ctx, jurisdiction_calendar(uow, ctx.deps), problem)


@handles(c.Accept)
@on_request
def accept(uow: UnitOfWork, ctx: Context, r: ServiceRequest, cmd: c.Accept) -> None:
    r.accept(acting_department(ctx.actor, cmd.action, cmd.department_id, r.department_id), ctx)


@handles(c.ReturnToDispatcher)
@on_request
def return_to_dispatcher(uow: UnitOfWork, ctx: Context, r: ServiceRequest, cmd: c.ReturnToDispatcher) -> None:
    offices = load_catalogue(uow, ctx.deps).control_offices()
    department = acting_department(ctx.actor, cmd.action, cmd.department_id, r.department_id)
    r.return_to_dispatcher(department, cmd.reason, ctx, offices[0] if offices else None)


@handles(c.RuleOwnership)
@on_request
def rule_ownership(uow: UnitOfWork, ctx: Context, r: ServiceRequest, cmd: c.RuleOwnership) -> None:
    load_catalogue(uow, ctx.deps).check_dispatch_target(cmd.department_id, cmd.provider_id)
    calendar = jurisdiction_calendar(uow, ctx.deps)
    r.rule_ownership(cmd.department_id, cmd.provider_id, cmd.reason, ctx, calendar, _problem(uow, ctx, r))


@handles(c.InterimReply)
@on_request
def interim_reply(uow: UnitOfWork, ctx: Context, r: ServiceRequest, cmd: c.InterimReply) -> None:
    r.interim_reply(cmd.message, cmd.delay_reason, cmd.expected_at, _reply_channel(r, cmd.channel), ctx)


@handles(c.FinalReply)
@on_request
def final_reply(uow: UnitOfWork, ctx: Context, r: ServiceRequest, cmd: c.FinalReply) -> None:
    r.final_reply(cmd.message, _reply_channel(r, cmd.channel), ctx)


def _reply_channel(r: ServiceRequest, channel: str | None) -> str:
    chosen = channel or r.reply_channel
    if chosen is None:
        raise InvalidCommand("no reply channel: the citizen left no phone or email", field="channel")
    return chosen


@handles(c.Resolve)
@on_request
def resolve(uow: UnitOfWork, ctx: Context, r: ServiceRequest, cmd: c.Resolve) -> None:
    r.resolve(cmd.resolution, ctx)


@handles(c.Close)
@on_request
def close(uow: UnitOfWork, ctx: Context, r: ServiceRequest, cmd: c.Close) -> None:
    r.close(ctx)


@handles(c.Reopen)
@on_request
def reopen(uow: UnitOfWork, ctx: Context, r: ServiceRequest, cmd: c.Reopen) -> None:
    r.reopen(cmd.reason, ctx, jurisdiction_calendar(uow, ctx.deps), _problem(uow, ctx, r))


@handles(c.Rate)
@on_request
def rate(uow: UnitOfWork, ctx: Context, r: ServiceRequest, cmd: c.Rate) -> None:
    r.rate(cmd.score, cmd.comment, ctx)


@handles(c.RequestExtension)
@on_request
def request_extension(uow: UnitOfWork, ctx: Context, r: ServiceRequest, cmd: c.RequestExtension) -> None:
    department = acting_department(ctx.actor, cmd.action, cmd.department_id, r.department_id)
    r.request_extension(cmd.requested_due_at, cmd.reason, department, ctx)


@handles(c.DecideExtension)
@on_request
def decide_extension(uow: UnitOfWork, ctx: Context, r: ServiceRequest, cmd: c.DecideExtension) -> None:
    if cmd.approve:
        r.approve_extension(cmd.comment, ctx, cmd.due_at)
    else:
        if not cmd.comment:
            raise InvalidCommand("refusing an extension needs a reason in 'comment'")
        r.refuse_extension(cmd.comment, ctx)


@handles(c.Supervise)
@on_request
def supervise(uow: UnitOfWork, ctx: Context, r: ServiceRequest, cmd: c.Supervise) -> None:
    if cmd.supervised:
        r.start_supervision(cmd.reason, ctx)
    else:
        r.end_supervision(cmd.reason, ctx)


@handles(c.AddNote)
@on_request
def add_note(uow: UnitOfWork, ctx: Context, r: ServiceRequest, cmd: c.AddNote) -> None:
    r.add_note(cmd.text, cmd.internal, ctx)


# ------------------------------------------------------------------------ SLA clock and timers
@handles(c.WaitForCitizen)
@on_request
def wait_for_citizen(uow: UnitOfWork, ctx: Context, r: ServiceRequest, cmd: c.WaitForCitizen) -> None:
    r.wait_for_citizen(cmd.reason, ctx)


@handles(c.CitizenResponded)
@on_request
def citizen_responded(uow: UnitOfWork, ctx: Context, r: ServiceRequest, cmd: c.CitizenResponded) -> None:
    r.citizen_responded(cmd.note, ctx, jurisdiction_calendar(uow, ctx.deps), _problem(uow, ctx, r))


@handles(c.AddCitizenMessage)
@on_request
def add_citizen_message(uow: UnitOfWork, ctx: Context, r: ServiceRequest, cmd: c.AddCitizenMessage) -> None:
    r.add_citizen_message(cmd.text, cmd.channel, cmd.attachment_ids, cmd.raw_message_sha256, ctx)
    if r.status == WAITING:
        r.citizen_responded(f"{cmd.channel}: {cmd.text[:200]}", ctx, jurisdiction_calendar(uow, ctx.deps), _problem(uow, ctx, r))


@handles(c.FireTimers, issued_by=("consumers.timers",))
def fire_timers(uow: UnitOfWork, ctx: Context, cmd: c.FireTimers) -> dict[str, Any]:
    """The timer process's command: fire due timers, each at most once (the request's
    stream refuses a second event for the same key: a refire after a crash is a no-op)."""
    fired, skipped = [], []
    for item in cmd.timers:
        request = uow.find(ServiceRequest, parse_id(item.request_id, "request"))
        # The timer is the cause; the request's events carry its case's correlation.
        item_ctx = replace(ctx, causation_id=f"timer:{item.key}")
        if request is None or not request.fire_timer(item.key, item_ctx):
            skipped.append(item.model_dump())
            continue
        keep_timers(uow, item_ctx, request)
        fired.append(item.model_dump())
    return {"fired": fired, "skipped": skipped}
