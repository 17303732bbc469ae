"""Command handlers: the service layer. One small function per command.

A handler loads aggregates through a :class:`UnitOfWork`, calls their methods (where the
rules live) and returns what the caller needs to know. It does no I/O itself: the unit
of work is provided by ``infra/`` and commits all touched aggregates in one transaction.
"""

from __future__ import annotations

import secrets
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol, TypeVar

from domain import commands as c
from domain.base import Context, HotlineAggregate, InvalidCommand, InvalidTransition, NotFound
from domain.calendars import JurisdictionCalendar, calendar_id
from domain.catalogue import Catalogue, catalogue_id
from domain.citizens import Citizen, CitizenIdentity, ContactDetails, check_language, identity_id
from domain.deadlines import WorkingTime
from domain.policies import IntakePolicy
from domain.requests import ServiceRequest, request_id_for
from domain.sla import SlaPolicy, plan_kept, reschedule
from domain.work_orders import WorkOrder

A = TypeVar("A", bound=HotlineAggregate)


class UnitOfWork(Protocol):
    def get(self, cls: type[A], id: uuid.UUID) -> A:
        """The aggregate, or :class:`NotFound`."""
        ...

    def find(self, cls: type[A], id: uuid.UUID) -> A | None: ...

    def read(self, cls: type[A], id: uuid.UUID) -> A | None:
        """For reference data the command does not change (it must not be mutated)."""
        ...

    def add(self, aggregate: HotlineAggregate) -> None: ...


def random_reference(now: datetime) -> str:
    """Digits only, so citizens can key it into the IVR: YYMMDD + 6 random digits."""
    return now.strftime("%y%m%d") + f"{secrets.randbelow(1_000_000):06d}"


@dataclass
class Deps:
    """The jurisdiction's configuration that handlers need."""

    policy: IntakePolicy = field(default_factory=IntakePolicy)
    jurisdiction: str = "default"
    calendar: WorkingTime | None = None  # used when the jurisdiction has no calendar aggregate
    new_reference: Callable[[datetime], str] = random_reference
    sla: SlaPolicy = field(default_factory=SlaPolicy)


def require_role(ctx: Context, *roles: str) -> None:
    if ctx.actor.role not in roles:
        raise InvalidTransition(
            f"a {ctx.actor.role} may not do this; it needs one of {list(roles)}",
            code="forbidden",
            required_roles=list(roles),
        )


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


def load_catalogue(uow: UnitOfWork, deps: Deps) -> Catalogue:
    """The catalogue as reference data: read, never changed, by request commands."""
    cat = uow.read(Catalogue, catalogue_id(deps.jurisdiction))
    if cat is None:
        raise NotFound("the catalogue has not been loaded", code="catalogue_missing")
    return cat


def jurisdiction_calendar(uow: UnitOfWork, deps: Deps) -> WorkingTime | None:
    """The jurisdiction's business calendar (changed by commands), else the configured one."""
    found = uow.read(JurisdictionCalendar, calendar_id(deps.jurisdiction))
    return found.calendar if found is not None else deps.calendar


def _problem(uow: UnitOfWork, deps: Deps, r: ServiceRequest) -> dict[str, Any] | None:
    return load_catalogue(uow, deps).problem_code(r.problem_code) if r.problem_code else None


def keep_timers(uow: UnitOfWork, ctx: Context, deps: Deps, request: ServiceRequest) -> None:
    """Replans the request's timers when what they depend on changed (domain/sla.py)."""
    if not request.timers_scheduled and not request.is_open and request.status != "closed":
        return
    calendar = jurisdiction_calendar(uow, deps)
    timers = reschedule(request, deps.sla, calendar, ctx.now)
    if timers is not None:
        request.schedule_timers(timers, ctx)
        plan_kept(request, deps.sla, calendar)


def _summary(request: ServiceRequest) -> dict[str, Any]:
    return {
        "id": str(request.id),
        "reference": request.reference,
        "status": request.status,
        "version": request.version,
        "due_at": request.due_at.isoformat(),
    }


# ------------------------------------------------------------------------ citizens
def resolve_citizen(uow: UnitOfWork, ctx: Context, contact: ContactDetails, language: str) -> Citizen | None:
    """The one citizen behind this phone number or email, created on first contact."""
    identifiers = contact.identifiers()
    if not identifiers:
        return None
    citizen: Citizen | None = None
    for identifier in identifiers:
        claim = uow.read(CitizenIdentity, identity_id(identifier))  # claims never change
        if claim is not None:
            citizen = uow.get(Citizen, uuid.UUID(claim.citizen_id))
            break
    if citizen is None:
        citizen = Citizen.register(contact, language, ctx)
        uow.add(citizen)
        for identifier in identifiers:
            uow.add(CitizenIdentity.claim(identifier, citizen.id, ctx))
        return citizen
    for identifier in citizen.learn(contact, ctx):
        if uow.find(CitizenIdentity, identity_id(identifier)) is None:
            uow.add(CitizenIdentity.claim(identifier, citizen.id, ctx))
    return citizen


def update_citizen(uow: UnitOfWork, ctx: Context, deps: Deps, citizen_id: uuid.UUID, cmd: c.UpdateCitizen) -> dict[str, Any]:
    citizen = uow.get(Citizen, citizen_id)
    citizen.expect_version(cmd.expected_version)
    if cmd.contact is not None:
        contact = ContactDetails.parse(cmd.contact.model_dump(), deps.policy.default_region)
        citizen.change_contact_details(contact, ctx)
        for identifier in contact.identifiers():
            claim = uow.find(CitizenIdentity, identity_id(identifier))
            if claim is None:
                uow.add(CitizenIdentity.claim(identifier, citizen.id, ctx))
            elif claim.citizen_id != str(citizen.id):
                raise InvalidTransition(f"{identifier.split(':')[0]} already belongs to another citizen", code="identifier_taken")
    if cmd.language is not None:
        citizen.prefer_language(cmd.language, ctx)
    return {"id": str(citizen.id), "version": citizen.version}


# ------------------------------------------------------------------------ requests
def register_request(uow: UnitOfWork, ctx: Context, deps: Deps, cmd: c.RegisterRequest) -> dict[str, Any]:
    contact = ContactDetails.parse(cmd.contact.model_dump() if cmd.contact else None, deps.policy.default_region)
    hidden = deps.policy.check(contact, wants_anonymity=cmd.anonymous)
    language = check_language(cmd.language or deps.policy.default_language)
    citizen = resolve_citizen(uow, ctx, contact, language)
    if cmd.language is None and citizen is not None:
        language = citizen.language
    reply_channel = cmd.reply_channel
    if reply_channel is None and not hidden:
        reply_channel = "phone" if contact.phone else "email" if contact.email else None
    personal = None if contact.is_anonymous else contact.as_personal()

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
    if cmd.problem_code:
        _classify(uow, ctx, deps, request, cmd.problem_code, cmd.collected)
    keep_timers(uow, ctx, deps, request)
    result = _summary(request)
    result["citizen_id"] = str(citizen.id) if citizen else None
    return result


def _classify(uow: UnitOfWork, ctx: Context, deps: Deps, request: ServiceRequest, code: str, collected: dict[str, Any] | None) -> None:
    catalogue = load_catalogue(uow, deps)
    problem = catalogue.problem_code(code)
    request.classify(code, problem, catalogue.route_of(code), collected, ctx, jurisdiction_calendar(uow, deps))


def _on_request(
    action: Callable[[UnitOfWork, Context, Deps, ServiceRequest, Any], None],
) -> Callable[[UnitOfWork, Context, Deps, str, Any], dict[str, Any]]:
    """Load the request by reference, check the expected version, act, summarise."""

    def handler(uow: UnitOfWork, ctx: Context, deps: Deps, ref: str, cmd: Any) -> dict[str, Any]:
        request = load_request(uow, ref)
        request.expect_version(cmd.expected_version)
        action(uow, ctx, deps, request, cmd)
        keep_timers(uow, ctx, deps, request)
        return _summary(request)

    handler.__name__ = action.__name__
    handler.__doc__ = action.__doc__
    return handler


@_on_request
def classify(uow: UnitOfWork, ctx: Context, deps: Deps, r: ServiceRequest, cmd: c.Classify) -> None:
    _classify(uow, ctx, deps, r, cmd.problem_code, cmd.collected)


@_on_request
def change_kind(uow: UnitOfWork, ctx: Context, deps: Deps, r: ServiceRequest, cmd: c.ChangeKind) -> None:
    r.change_kind(cmd.kind, cmd.subtype, cmd.reason, ctx)


@_on_request
def dispatch(uow: UnitOfWork, ctx: Context, deps: Deps, r: ServiceRequest, cmd: c.Dispatch) -> None:
    require_role(ctx, "agent", "supervisor", "control_office", "system")
    catalogue = load_catalogue(uow, deps)
    department = cmd.department_id or r.suggested_department_id
    provider = cmd.provider_id if cmd.department_id else (cmd.provider_id or r.suggested_provider_id)
    if department is None:
        raise InvalidCommand("no department given and the request has no problem code to route by")
    catalogue.check_dispatch_target(department, provider)
    problem = catalogue.problem_code(r.problem_code) if r.problem_code else None
    r.dispatch(department, provider, cmd.instructions, ctx, jurisdiction_calendar(uow, deps), problem)


@_on_request
def accept(uow: UnitOfWork, ctx: Context, deps: Deps, r: ServiceRequest, cmd: c.Accept) -> None:
    require_role(ctx, "department", "supervisor", "system")
    r.accept(cmd.department_id, ctx)


@_on_request
def return_to_dispatcher(uow: UnitOfWork, ctx: Context, deps: Deps, r: ServiceRequest, cmd: c.ReturnToDispatcher) -> None:
    require_role(ctx, "department", "supervisor", "system")
    offices = load_catalogue(uow, deps).control_offices()
    r.return_to_dispatcher(cmd.department_id, cmd.reason, ctx, offices[0] if offices else None)


@_on_request
def rule_ownership(uow: UnitOfWork, ctx: Context, deps: Deps, r: ServiceRequest, cmd: c.RuleOwnership) -> None:
    require_role(ctx, "control_office", "supervisor")
    load_catalogue(uow, deps).check_dispatch_target(cmd.department_id, cmd.provider_id)
    calendar = jurisdiction_calendar(uow, deps)
    r.rule_ownership(cmd.department_id, cmd.provider_id, cmd.reason, ctx, calendar, _problem(uow, deps, r))


@_on_request
def interim_reply(uow: UnitOfWork, ctx: Context, deps: Deps, r: ServiceRequest, cmd: c.InterimReply) -> None:
    r.interim_reply(cmd.message, cmd.delay_reason, cmd.expected_at, _reply_channel(r, cmd.channel), ctx)


@_on_request
def final_reply(uow: UnitOfWork, ctx: Context, deps: Deps, r: ServiceRequest, cmd: c.FinalReply) -> None:
    r.final_reply(cmd.message, _reply_channel(r, cmd.channel), ctx)


def _reply_channel(r: ServiceRequest, channel: str | None) -> str:
    chosen = channel or r.reply_channel
    if chosen is None:
        raise InvalidCommand("no reply channel: the citizen left no phone or email", field="channel")
    return chosen


@_on_request
def resolve(uow: UnitOfWork, ctx: Context, deps: Deps, r: ServiceRequest, cmd: c.Resolve) -> None:
    r.resolve(cmd.resolution, ctx)


@_on_request
def close(uow: UnitOfWork, ctx: Context, deps: Deps, r: ServiceRequest, cmd: c.Close) -> None:
    r.close(ctx)


@_on_request
def reopen(uow: UnitOfWork, ctx: Context, deps: Deps, r: ServiceRequest, cmd: c.Reopen) -> None:
    r.reopen(cmd.reason, ctx, jurisdiction_calendar(uow, deps), _problem(uow, deps, r))


@_on_request
def rate(uow: UnitOfWork, ctx: Context, deps: Deps, r: ServiceRequest, cmd: c.Rate) -> None:
    r.rate(cmd.score, cmd.comment, ctx)


@_on_request
def request_extension(uow: UnitOfWork, ctx: Context, deps: Deps, r: ServiceRequest, cmd: c.RequestExtension) -> None:
    r.request_extension(cmd.requested_due_at, cmd.reason, cmd.department_id, ctx)


@_on_request
def decide_extension(uow: UnitOfWork, ctx: Context, deps: Deps, r: ServiceRequest, cmd: c.DecideExtension) -> None:
    require_role(ctx, "supervisor", "control_office")
    if cmd.approve:
        r.approve_extension(cmd.comment, ctx, cmd.due_at)
    else:
        if not cmd.comment:
            raise InvalidCommand("refusing an extension needs a reason in 'comment'")
        r.refuse_extension(cmd.comment, ctx)


@_on_request
def supervise(uow: UnitOfWork, ctx: Context, deps: Deps, r: ServiceRequest, cmd: c.Supervise) -> None:
    require_role(ctx, "supervisor", "control_office")
    if cmd.supervised:
        r.start_supervision(cmd.reason, ctx)
    else:
        r.end_supervision(cmd.reason, ctx)


@_on_request
def add_note(uow: UnitOfWork, ctx: Context, deps: Deps, r: ServiceRequest, cmd: c.AddNote) -> None:
    r.add_note(cmd.text, cmd.internal, ctx)


# ------------------------------------------------------------------------ SLA clock and timers
@_on_request
def wait_for_citizen(uow: UnitOfWork, ctx: Context, deps: Deps, r: ServiceRequest, cmd: c.WaitForCitizen) -> None:
    require_role(ctx, "agent", "department", "supervisor", "control_office", "system")
    r.wait_for_citizen(cmd.reason, ctx)


@_on_request
def citizen_responded(uow: UnitOfWork, ctx: Context, deps: Deps, r: ServiceRequest, cmd: c.CitizenResponded) -> None:
    r.citizen_responded(cmd.note, ctx, jurisdiction_calendar(uow, deps), _problem(uow, deps, r))


def fire_timers(uow: UnitOfWork, ctx: Context, deps: Deps, cmd: c.FireTimers) -> dict[str, Any]:
    """The timer process's command: fire due timers, each at most once (the request's
    stream refuses a second event for the same key: a refire after a crash is a no-op)."""
    require_role(ctx, "system", "supervisor")
    fired, skipped = [], []
    for item in cmd.timers:
        request = uow.find(ServiceRequest, _uuid(item.request_id, "request"))
        # The case is the correlation; the timer is the cause (auditors replay by these).
        item_ctx = Context(ctx.actor, ctx.now, correlation_id=item.request_id, causation_id=f"timer:{item.key}")
        if request is None or not request.fire_timer(item.key, item_ctx):
            skipped.append(item.model_dump())
            continue
        keep_timers(uow, item_ctx, deps, request)
        fired.append(item.model_dump())
    return {"fired": fired, "skipped": skipped}


# ------------------------------------------------------------------------ calendars
def import_calendars(uow: UnitOfWork, ctx: Context, deps: Deps, document: dict[str, Any]) -> dict[str, Any]:
    """Loads a calendars file (``infra/data/calendars.yaml``); unchanged calendars stay as they are."""
    require_role(ctx, *CATALOGUE_ROLES)
    from domain.calendars import load_calendars

    changed = []
    for jurisdiction, calendar in load_calendars(document).items():
        agg = uow.find(JurisdictionCalendar, calendar_id(jurisdiction))
        if agg is None:
            uow.add(JurisdictionCalendar.define(jurisdiction, calendar.to_dict(), ctx))
            changed.append(jurisdiction)
        elif agg.redefine(calendar.to_dict(), "loaded from file", ctx):
            changed.append(jurisdiction)
    return {"changed": changed}


def change_calendar(uow: UnitOfWork, ctx: Context, deps: Deps, jurisdiction: str, cmd: c.ChangeCalendar) -> dict[str, Any]:
    require_role(ctx, *CATALOGUE_ROLES)
    agg = uow.find(JurisdictionCalendar, calendar_id(jurisdiction))
    if agg is not None:
        agg.expect_version(cmd.expected_version)
        if cmd.definition is not None:
            agg.redefine(cmd.definition, cmd.reason, ctx)
    elif cmd.definition is not None:
        agg = JurisdictionCalendar.define(jurisdiction, cmd.definition, ctx)
        uow.add(agg)
    else:
        raise NotFound(f"no calendar for jurisdiction {jurisdiction!r}", code="calendar_missing")
    for day in cmd.declare_holidays:
        agg.declare_holiday(day, cmd.reason, ctx)
    for day in cmd.withdraw_holidays:
        agg.withdraw_holiday(day, ctx)
    for day in cmd.declare_makeup_days:
        agg.declare_makeup_day(day, cmd.makeup_hours, ctx)
    for day in cmd.withdraw_makeup_days:
        agg.withdraw_makeup_day(day, ctx)
    return {"jurisdiction": jurisdiction, "version": agg.version, "calendar": agg.calendar.to_dict()}


# ------------------------------------------------------------------------ work orders
def create_work_order(uow: UnitOfWork, ctx: Context, deps: Deps, ref: str, cmd: c.CreateWorkOrder) -> dict[str, Any]:
    request = load_request(uow, ref)
    request.expect_version(cmd.expected_version)
    if request.problem_code is None:
        raise InvalidTransition("a problem code is required to create a work order")
    catalogue = load_catalogue(uow, deps)
    problem = catalogue.problem_code(request.problem_code)
    route = catalogue.route_of(request.problem_code)
    order = WorkOrder.create(
        problem_code=request.problem_code,
        template=problem["work_order_template"],
        department_id=request.department_id or route["department_id"],
        provider_id=request.provider_id or route["provider_id"],
        details=request.collected,
        location=request.location,
        request_id=request.id,
        ctx=ctx,
    )
    request.link_work_order(order.id, order.problem_code, False, ctx)
    uow.add(order)
    return {"id": str(order.id), "version": order.version, "request": _summary(request)}


def link_duplicate(uow: UnitOfWork, ctx: Context, deps: Deps, ref: str, cmd: c.LinkDuplicate) -> dict[str, Any]:
    request = load_request(uow, ref)
    request.expect_version(cmd.expected_version)
    order = uow.get(WorkOrder, _uuid(cmd.work_order_id, "work order"))
    if request.problem_code is None:
        raise InvalidTransition("classify the request before linking it to a work order")
    order.link_duplicate(request.id, request.problem_code, ctx)
    request.link_work_order(order.id, order.problem_code, True, ctx)
    return {**_summary(request), "work_order_id": str(order.id), "work_order_version": order.version}


def _on_work_order(
    action: Callable[[UnitOfWork, Context, WorkOrder, Any], None],
) -> Callable[[UnitOfWork, Context, Deps, str, Any], dict[str, Any]]:
    def handler(uow: UnitOfWork, ctx: Context, deps: Deps, order_id: str, cmd: Any) -> dict[str, Any]:
        order = uow.get(WorkOrder, _uuid(order_id, "work order"))
        order.expect_version(cmd.expected_version)
        action(uow, ctx, order, cmd)
        return {"id": str(order.id), "status": order.status, "version": order.version}

    handler.__name__ = action.__name__
    return handler


@_on_work_order
def start_work_order(uow: UnitOfWork, ctx: Context, order: WorkOrder, cmd: c.StartWorkOrder) -> None:
    order.start(cmd.crew, ctx)


@_on_work_order
def complete_work_order_task(uow: UnitOfWork, ctx: Context, order: WorkOrder, cmd: c.CompleteWorkOrderTask) -> None:
    order.complete_task(cmd.task_index, cmd.note, ctx)


@_on_work_order
def complete_work_order(uow: UnitOfWork, ctx: Context, order: WorkOrder, cmd: c.CompleteWorkOrder) -> None:
    order.complete(cmd.outcome, ctx)
    _tell_linked_requests(uow, ctx, order, cmd.outcome, completed=True)


@_on_work_order
def cancel_work_order(uow: UnitOfWork, ctx: Context, order: WorkOrder, cmd: c.CancelWorkOrder) -> None:
    order.cancel(cmd.reason, ctx)
    _tell_linked_requests(uow, ctx, order, cmd.reason, completed=False)


def _tell_linked_requests(uow: UnitOfWork, ctx: Context, order: WorkOrder, outcome: str, *, completed: bool) -> None:
    # Every citizen attached to the order, duplicates included, is told its outcome.
    for request_id in order.request_ids:
        request = uow.get(ServiceRequest, uuid.UUID(request_id))
        request.record_work_order_outcome(order.id, outcome, completed, ctx)


def _uuid(value: str, what: str) -> uuid.UUID:
    try:
        return uuid.UUID(value)
    except ValueError:
        raise NotFound(f"no {what} {value}") from None


# ------------------------------------------------------------------------ catalogue
CATALOGUE_ROLES = ("supervisor", "system")


def _catalogue_for_change(uow: UnitOfWork, ctx: Context, deps: Deps, cmd: c.Command) -> Catalogue:
    require_role(ctx, *CATALOGUE_ROLES)
    cat = uow.find(Catalogue, catalogue_id(deps.jurisdiction))
    if cat is None:
        cat = Catalogue.open(deps.jurisdiction, ctx)
        uow.add(cat)
    cat.expect_version(cmd.expected_version)
    return cat


def add_department(uow: UnitOfWork, ctx: Context, deps: Deps, cmd: c.AddDepartment) -> dict[str, Any]:
    cat = _catalogue_for_change(uow, ctx, deps, cmd)
    cat.add_department(cmd.id, cmd.names.model_dump(), ctx, is_control_office=cmd.is_control_office)
    return {"id": cmd.id, "version": cat.version}


def add_provider(uow: UnitOfWork, ctx: Context, deps: Deps, cmd: c.AddProvider) -> dict[str, Any]:
    cat = _catalogue_for_change(uow, ctx, deps, cmd)
    cat.add_provider(cmd.id, cmd.department_id, cmd.names.model_dump(), ctx)
    return {"id": cmd.id, "version": cat.version}


def add_category(uow: UnitOfWork, ctx: Context, deps: Deps, cmd: c.AddCategory) -> dict[str, Any]:
    cat = _catalogue_for_change(uow, ctx, deps, cmd)
    cat.add_category(cmd.id, cmd.provider_id, cmd.names.model_dump(), ctx)
    return {"id": cmd.id, "version": cat.version}


def add_problem_code(uow: UnitOfWork, ctx: Context, deps: Deps, cmd: c.AddProblemCode) -> dict[str, Any]:
    cat = _catalogue_for_change(uow, ctx, deps, cmd)
    cat.add_problem_code(
        cmd.code,
        cmd.category_id,
        cmd.names.model_dump(),
        cmd.work_order_template,
        ctx,
        fields_to_collect=cmd.fields_to_collect,
        deadlines=cmd.deadlines,
    )
    return {"id": cmd.code, "version": cat.version}


def revise_problem_code(uow: UnitOfWork, ctx: Context, deps: Deps, code: str, cmd: c.ReviseProblemCode) -> dict[str, Any]:
    cat = _catalogue_for_change(uow, ctx, deps, cmd)
    cat.revise_problem_code(code, ctx, **cmd.model_dump(exclude={"expected_version"}))
    return {"id": code, "version": cat.version}


def rename_entry(uow: UnitOfWork, ctx: Context, deps: Deps, level: str, entry_id: str, cmd: c.RenameEntry) -> dict[str, Any]:
    cat = _catalogue_for_change(uow, ctx, deps, cmd)
    cat.rename(level, entry_id, cmd.names.model_dump(), ctx)
    return {"id": entry_id, "version": cat.version}


def retire_entry(uow: UnitOfWork, ctx: Context, deps: Deps, level: str, entry_id: str, cmd: c.RetireEntry) -> dict[str, Any]:
    cat = _catalogue_for_change(uow, ctx, deps, cmd)
    cat.retire(level, entry_id, cmd.reason, ctx)
    return {"id": entry_id, "version": cat.version}


def import_catalogue(uow: UnitOfWork, ctx: Context, deps: Deps, document: dict[str, Any]) -> dict[str, Any]:
    """Loads a catalogue file (see ``infra/data/catalogue.yaml``). Entries already present
    are left alone, so loading the same file twice changes nothing."""
    cat = _catalogue_for_change(uow, ctx, deps, c.Command())
    added = 0
    for dep in document.get("departments", []):
        if dep["id"] not in cat.departments:
            cat.add_department(dep["id"], dep["names"], ctx, is_control_office=bool(dep.get("control_office")))
            added += 1
        for prov in dep.get("providers", []):
            if prov["id"] not in cat.providers:
                cat.add_provider(prov["id"], dep["id"], prov["names"], ctx)
                added += 1
            for categ in prov.get("categories", []):
                if categ["id"] not in cat.categories:
                    cat.add_category(categ["id"], prov["id"], categ["names"], ctx)
                    added += 1
                for pc in categ.get("problem_codes", []):
                    if pc["code"] not in cat.problem_codes:
                        cat.add_problem_code(
                            pc["code"],
                            categ["id"],
                            pc["names"],
                            pc["work_order_template"],
                            ctx,
                            fields_to_collect=pc.get("fields_to_collect"),
                            deadlines=pc.get("deadlines"),
                        )
                        added += 1
    return {"added": added, "version": cat.version}
