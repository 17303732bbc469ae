"""/requests: register and move service requests through their lifecycle; read their status.

Commands are POSTs on the request's sub-resources (``/requests/{ref}/dispatch`` …); the
body is the command (domain/commands.py). ``{ref}`` is the reference number citizens
quote, or the request id.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from fastapi import Depends, Query, Request, Response

from api.auth import allow, citizen_filter, department_filter, row_access
from api.deps import CommandRoute, ReadYourWrites, add_command_routes, get_hotline, run_command, set_etag
from api.read_log import PersonalDataRead, personal_data_read
from api.routers.knowledge import suggest_and_record
from api.routing import HotlineRouter, quick_read
from api.schemas import RequestAccepted, RequestDetail, RequestPage, TimelineEntry
from domain.access import Action, allows, authorize, finds_by_personal_data
from domain.base import Actor, InvalidCommand, NotFound, event_type_name
from domain.catalogue.aggregate import URGENCIES
from domain.requests import commands as c
from domain.requests.aggregate import CHANNELS, KINDS, STATES, SUBTYPES, ServiceRequest
from domain.work_orders import commands as wo
from infra.runtime import Hotline
from projections import request_status

router = HotlineRouter(prefix="/requests", tags=["requests"])
NOTE_ADDED = event_type_name(ServiceRequest.NoteAdded)


@router.post("", response_model=RequestAccepted, status_code=201, summary="Register a request (受理)")
def register(
    cmd: c.RegisterRequest,
    request: Request,
    response: Response,
    hotline: Hotline = Depends(get_hotline),
    actor: Actor = allow(Action.REQUESTS_REGISTER),
) -> dict[str, Any]:
    if actor.role == "citizen" and cmd.channel != "web":
        # Only staff record how a request came in (a call, a walk-in); a citizen's own
        # submission through this API is the web channel, whatever the body claims.
        raise InvalidCommand(f"a citizen's own request comes by the web channel, not {cmd.channel!r}", field="channel", allowed=["web"])
    body = run_command(hotline, cmd, actor, request=request, response=response)
    response.headers["Location"] = f"/requests/{body['reference']}"
    if not finds_by_personal_data(actor):
        # Whose number it was, and whether under another name, is staff's to know: told
        # to anyone, it would answer "is this number registered, and as somebody else?"
        body["identity_check"] = None
        if body.get("citizen_id") != actor.citizen_id:
            body["citizen_id"] = None
    if cmd.kind == "information" and allows(actor, Action.KNOWLEDGE_FEEDBACK):
        # An information request is answered from the knowledge base: suggest its articles
        # now (the suggestion is recorded as a search of this request).
        codes = [cmd.problem_code] if cmd.problem_code else []
        found = suggest_and_record(
            hotline,
            actor,
            request,
            text=cmd.description,
            language=cmd.language,
            codes=codes,
            limit=5,
            contact_id=cmd.contact_id,
            request_id=body["id"],
        )
        body["suggestions"], body["search_id"] = found["results"], found["search_id"]
    return body


SORT_VALUES = list(request_status.SORTS)
ENUMS: dict[str, Sequence[str]] = {
    "status": STATES,
    "kind": KINDS,
    "subtype": tuple(SUBTYPES),
    "urgency": URGENCIES,
    "channel": CHANNELS,
    "sort": SORT_VALUES,
}


def _one_of(field: str, value: str | None) -> str | None:
    if value is not None and value not in ENUMS[field]:
        raise InvalidCommand(f"unknown {field} {value!r}", field=field, allowed=list(ENUMS[field]))
    return value


def _moment(hotline: Hotline, field: str, value: str | None, *, end_of_day: bool = False) -> datetime | None:
    """An ISO 8601 date or date-time; without a zone, the hotline's local time. A date
    alone is the start of that day (``end_of_day``: of the next, so that ``registered_to``
    includes the day named)."""
    if value is None:
        return None
    try:
        if len(value.strip()) == 10:
            day = date.fromisoformat(value.strip()) + (timedelta(days=1) if end_of_day else timedelta())
            moment = datetime.combine(day, time())
        else:
            moment = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        raise InvalidCommand(
            f"{field} must be an ISO 8601 date or date-time (2026-11-30, 2026-11-30T09:00:00+01:00), not {value!r}", field=field
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=ZoneInfo(hotline.settings.time_zone))
    return moment.astimezone(UTC)


@router.get("", response_model=RequestPage, summary="Search requests")
def search(
    hotline: Hotline = Depends(get_hotline),
    actor: Actor = allow(Action.REQUESTS_READ),
    q: str | None = Query(
        None,
        max_length=200,
        description="Free text: reference, words of the description; for staff who may read personal data also the "
        "contact's name and phone number. Every word must match; the last one may be the start of a word.",
    ),
    status: list[str] = Query([], description="One or more statuses (repeat the parameter)"),
    kind: str | None = None,
    subtype: str | None = None,
    urgency: str | None = None,
    channel: str | None = None,
    department_id: str | None = None,
    provider_id: str | None = None,
    problem_code: str | None = None,
    citizen_id: str | None = None,
    registered_from: str | None = Query(None, description="Registered at or after (ISO 8601 date or date-time)"),
    registered_to: str | None = Query(None, description="Registered before this moment; a date alone includes that day"),
    due_before: str | None = Query(
        None, description="Deadline before (ISO 8601 date or date-time), of requests whose clock runs (open, not waiting for the citizen)"
    ),
    overdue: bool | None = Query(None, description="true: the deadline has passed and the clock runs (not waiting for the citizen)"),
    supervised: bool | None = None,
    sort: str = Query("-registered_at", description=f"One of {', '.join(SORT_VALUES)}; urgency: most urgent first, newest first"),
    limit: int = Query(50, ge=1, le=500),
    cursor: str | None = Query(None, description="next_cursor of the previous page"),
    _ryw: None = ReadYourWrites,
    read: PersonalDataRead = personal_data_read("find a case"),
) -> dict[str, Any]:
    for value in status:
        _one_of("status", value)
    for field, given in (("kind", kind), ("subtype", subtype), ("urgency", urgency), ("channel", channel), ("sort", sort)):
        _one_of(field, given)
    # Departments see what is dispatched to them, citizens their own cases; only staff who
    # may read personal data find a case by the caller's name or number.
    department_id = department_filter(actor, Action.REQUESTS_READ, department_id)
    citizen_id = citizen_filter(actor, Action.REQUESTS_READ, citizen_id)
    filters = request_status.Filters(
        text=q.strip() if q and q.strip() else None,
        personal=finds_by_personal_data(actor),
        status=tuple(dict.fromkeys(status)),
        kind=kind,
        subtype=subtype,
        urgency=urgency,
        channel=channel,
        department_id=department_id,
        provider_id=provider_id,
        problem_code=problem_code,
        citizen_id=citizen_id,
        registered_from=_moment(hotline, "registered_from", registered_from),
        registered_to=_moment(hotline, "registered_to", registered_to, end_of_day=True),
        due_before=_moment(hotline, "due_before", due_before),
        overdue=overdue,
        supervised=supervised,
    )
    with hotline.read_store.engine.connect() as conn:
        page = request_status.find(conn, filters, now=hotline.clock.now(), sort=sort, limit=limit, cursor=cursor)
    if filters.text and filters.personal:
        # Searched by words that may be a caller's name or number: a read of personal data.
        read.record(actor, what="request search", citizen_ids=[r.get("citizen_id") for r in page["items"]], count=len(page["items"]))
    return page


@router.get("/{ref}", response_model=RequestDetail, summary="Status and timeline of one request")
@quick_read
def get_request(
    ref: str,
    response: Response,
    hotline: Hotline = Depends(get_hotline),
    actor: Actor = allow(Action.REQUESTS_READ),
    _ryw: None = ReadYourWrites,
    read: PersonalDataRead = personal_data_read("case handling"),
) -> dict[str, Any]:
    with hotline.read_store.engine.connect() as conn:
        row = request_status.by_reference(conn, ref) or request_status.get(conn, ref)
        if row is None:
            raise NotFound(f"no request {ref}")
        authorize(actor, Action.REQUESTS_READ, row_access(row))
        internal = allows(actor, Action.REQUESTS_READ_INTERNAL, row_access(row))
        timeline = request_status.timeline(conn, row["id"])
        row["timeline"] = [TimelineEntry(**t) for t in (timeline if internal else public_timeline(timeline))]
    set_etag(response, row["version"])
    if row.get("citizen_id"):  # a citizen's case in their own words
        read.record(actor, what="request", subject=row["reference"], citizen_ids=[row["citizen_id"]])
    return row


def public_timeline(entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """What a citizen (or an integrator) sees of a case's history: no internal notes, and
    no staff names (who acted is a role, not a person)."""
    shown = []
    for entry in entries:
        if entry["type"] == NOTE_ADDED and entry["details"].get("internal"):
            continue
        shown.append({**entry, "actor_id": None, "correlation_id": None})
    return shown


add_command_routes(
    router,
    "/{ref}",
    [
        CommandRoute("classify", c.Classify, "Classify with a problem code"),
        CommandRoute("kind", c.ChangeKind, "Change the kind (information → action …)"),
        CommandRoute("dispatch", c.Dispatch, "Dispatch to a department (派单)"),
        CommandRoute("accept", c.Accept, "The department accepts it (签收)"),
        CommandRoute("return", c.ReturnToDispatcher, "The department returns it with a reason (退单)"),
        CommandRoute("ruling", c.RuleOwnership, "The control office rules on ownership"),
        CommandRoute("interim-reply", c.InterimReply, "Interim reply: reason for delay, new expected date"),
        CommandRoute("reply", c.FinalReply, "Final reply to the citizen (回复)"),
        CommandRoute("resolve", c.Resolve, "Resolve"),
        CommandRoute("close", c.Close, "Close (办结)"),
        CommandRoute("reopen", c.Reopen, "Reopen"),
        CommandRoute("rating", c.Rate, "Satisfaction rating 1-5 (评价)"),
        CommandRoute("extension", c.RequestExtension, "Request a deadline extension (延期)"),
        CommandRoute("extension/decision", c.DecideExtension, "Approve or refuse the pending extension"),
        CommandRoute("supervision", c.Supervise, "Start or end supervision (督办)"),
        CommandRoute("notes", c.AddNote, "Add a note"),
        CommandRoute("citizen-messages", c.AddCitizenMessage, "What the citizen wrote about the case (resumes a clock paused for them)"),
        CommandRoute("link-duplicate", wo.LinkDuplicate, "Link to an existing open work order as a duplicate"),
    ],
    response_model=RequestAccepted,
)


add_command_routes(
    router,
    "/{ref}",
    [
        CommandRoute(
            "work-order",
            wo.CreateWorkOrder,
            "Create the work order from the problem code's template",
            status_code=201,
            body_optional=True,
        )
    ],
)
