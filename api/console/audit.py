"""The auditor's pages: a case's full history, read from the event store itself (every
event of the request's stream with its actor, role, time, correlation and causation
ids), the case "as of" a chosen time or version: the aggregate rebuilt from its events
up to then (``domain/audit.py``, as ``GET /audit/request/{ref}?as_of=`` does), and the
case trace across aggregates (``GET /audit/trace/{ref}``).

The history's rule is ``requests.read_internal`` (the whole history includes internal
notes), checked on the case as the API checks it; the citizen's personal data in the
events is shown only to who may read that citizen (``citizens.read``), and recorded as a
personal-data read. The trace is the auditor's (``audit.read``), as in the API.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

from fastapi import Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from api.auth import row_access
from api.console.cases import EVENT_NAMES, event_short_name, find_case
from api.console.reference import department_names
from api.console.session import page
from api.console.web import N_, render
from api.read_log import record_read
from api.routers.audit import trace as case_trace
from api.routing import HotlineRouter
from domain.access import Access, Action, allows, authorize
from domain.audit import AsOf, holds_personal, in_range, is_version, rebuild, version_at
from domain.base import Actor, InvalidCommand, aggregate_state, event_payload, event_type_name
from infra.runtime import Hotline

router = HotlineRouter(include_in_schema=False)

# What the "as of" view shows of the rebuilt aggregate, in this order.
STATE_FIELDS = (
    "status",
    "kind",
    "subtype",
    "urgency",
    "problem_code",
    "department_id",
    "due_at",
    "accepted_at",
    "expected_at",
    "final_answer",
    "resolved_at",
    "closed_at",
    "return_count",
    "reopen_count",
    "supervised",
    "escalated",
    "pending_extension",
    "rating",
    "work_order_id",
    "notes",
)


# What each step of a case trace is called beyond the request's own (api/console/cases.py
# EVENT_NAMES): (stream, short name) → a label. A step not here shows its short name.
TRACE_EVENT_NAMES = {
    ("contact", "arrived"): N_("Contact arrived"),
    ("contact", "queued"): N_("Queued"),
    ("contact", "offered"): N_("Offered to an agent"),
    ("contact", "offer_declined"): N_("Offer declined"),
    ("contact", "offer_timed_out"): N_("Offer timed out"),
    ("contact", "answered"): N_("Answered"),
    ("contact", "held"): N_("On hold"),
    ("contact", "resumed"): N_("Resumed"),
    ("contact", "transferred"): N_("Transferred"),
    ("contact", "participant_joined"): N_("A participant joined"),
    ("contact", "participant_left"): N_("A participant left"),
    ("contact", "supervisor_joined"): N_("A supervisor joined"),
    ("contact", "supervisor_left"): N_("A supervisor left"),
    ("contact", "taken_over"): N_("Taken over by a supervisor"),
    ("contact", "ended"): N_("Ended"),
    ("contact", "wrapped_up"): N_("Wrapped up"),
    ("contact", "abandoned"): N_("Abandoned by the caller"),
    ("contact", "overflowed"): N_("Overflowed"),
    ("contact", "callback_scheduled"): N_("Callback scheduled"),
    ("contact", "callback_attempted"): N_("Callback attempted"),
    ("contact", "callback_unanswered"): N_("Callback unanswered"),
    ("contact", "callback_connected"): N_("Callback connected"),
    ("contact", "callback_gave_up"): N_("Callback given up"),
    ("contact", "request_linked"): N_("Request linked"),
    ("contact", "ivr_session_recorded"): N_("Voice menu session"),
    ("contact", "recording_demanded"): N_("Recording asked for"),
    ("workorder", "started"): N_("Work started"),
    ("workorder", "task_done"): N_("Task done"),
    ("workorder", "completed"): N_("Work completed"),
    ("workorder", "cancelled"): N_("Work order cancelled"),
    ("workorder", "reassigned"): N_("Work order reassigned"),
    ("workorder", "duplicate_linked"): N_("Duplicate linked"),
    ("notification", "queued"): N_("Message queued"),
    ("notification", "attempt_started"): N_("Sending"),
    ("notification", "sent"): N_("Message sent"),
    ("notification", "attempt_failed"): N_("Sending failed"),
    ("notification", "retry_requested"): N_("Retry asked for"),
    ("notification", "dead_lettered"): N_("Given up"),
    ("notification", "suppressed"): N_("Not sent (opted out)"),
    ("attachment", "attached"): N_("File attached"),
    ("attachment", "removed"): N_("File removed"),
    ("recording", "started"): N_("Recording started"),
    ("recording", "completed"): N_("Recording completed"),
    ("recording", "deleted"): N_("Recording deleted"),
    ("recording", "playback_granted"): N_("Playback granted"),
    ("knowledge", "search_performed"): N_("Knowledge searched"),
    ("knowledge", "article_opened"): N_("Article opened"),
    ("knowledge", "used_to_answer"): N_("Article used to answer"),
    ("knowledge", "deflected"): N_("Answered by self-service"),
    ("knowledge", "no_good_answer"): N_("No good answer found"),
    ("citizen", "identifier_added"): N_("Contact detail added"),
    ("citizen", "contact_details_changed"): N_("Contact details changed"),
    ("citizen", "identity_checked"): N_("Identity checked"),
    ("citizen", "identifier_withdrawn"): N_("Contact detail withdrawn (someone else's)"),
    ("citizen", "language_preferred"): N_("Language preferred"),
    ("citizen", "sms_opted_out"): N_("SMS stopped"),
    ("citizen", "sms_opted_in"): N_("SMS resumed"),
}


def trace_label(stream: str, name: str) -> str:
    """The label of a step of a trace (its stream's, else the request's, else its name)."""
    return TRACE_EVENT_NAMES.get((stream, name)) or EVENT_NAMES.get(name, name.replace("_", " "))


def _events(hotline: Hotline, request_id: str) -> list[Any]:
    """Every stored event of the request's stream, oldest first (the event store, not a read model)."""
    return list(hotline.store.events.get(uuid.UUID(request_id)))


def _entry(event: Any, personal: bool) -> dict[str, Any]:
    data = event_payload(event)
    if not personal and "personal" in data:
        data["personal"] = "***" if data["personal"] else None
    type_name = event_type_name(type(event))
    name = event_short_name(type_name)
    meta = event.meta or {}
    return {
        "version": event.originator_version,
        "type": type_name,
        "label": EVENT_NAMES.get(name, name.replace("_", " ")),
        "at": event.timestamp,
        "actor_id": meta.get("actor_id"),
        "actor_role": meta.get("actor_role"),
        "correlation_id": meta.get("correlation_id"),
        "causation_id": meta.get("causation_id"),
        "data": {k: v for k, v in data.items() if v not in (None, "", [], {})},
    }


def parse_as_of(value: str | None, time_zone: str) -> datetime | None:
    """A ``datetime-local`` value (the hotline's time zone) as an aware UTC time."""
    if not value or is_version(value.strip()):
        return None  # a version (see ``as_of_version``)
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise InvalidCommand("the 'as of' time is not a date and time", field="as_of") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=ZoneInfo(time_zone))
    # Refused, not a 500, when UTC (or the views' margin) falls outside Python's years 1-9999.
    return in_range(moment, value).astimezone(UTC)


def as_of_version(value: str | None, events: list[Any]) -> int | None:
    """A version typed in the "as of" field (``12``), checked against the case's."""
    asked = AsOf.parse(value) if value and is_version(value.strip()) else None
    if asked is None or asked.version is None:
        return None
    if asked.version > len(events):
        raise InvalidCommand(f"the case has {len(events)} versions, not {asked.version}", field="as_of")
    return asked.version


def state_as_of(events: list[Any], moment: datetime | None, version: int | None = None) -> dict[str, Any] | None:
    """The case as it stood at ``moment`` (or at ``version``): its aggregate rebuilt from
    the events up to then (None when it did not exist yet)."""
    upto = version if version is not None else version_at(events, moment) if moment is not None else None
    if not upto:
        return None
    aggregate: Any = rebuild(events, upto)
    state = aggregate_state(aggregate)
    shown = {f: state.get(f) for f in STATE_FIELDS}
    shown["version"] = aggregate.version
    shown["last_change"] = aggregate.modified_on
    return shown


@router.get("/console/audit", response_class=HTMLResponse)
def audit_page(
    request: Request,
    ref: str | None = Query(None, max_length=64),
    trace: str | None = Query(None, max_length=64),
    actor: Actor = page(Action.AUDIT_READ),
) -> Response:
    if trace and trace.strip():
        return RedirectResponse(f"/console/audit/trace/{trace.strip()}", status_code=303)
    if ref and ref.strip():
        return RedirectResponse(f"/console/audit/{ref.strip()}", status_code=303)
    return render(request, "audit/audit.html", actor, may_trace=allows(actor, Action.AUDIT_READ))


@router.get("/console/audit/{ref}", response_class=HTMLResponse)
def case_history(
    request: Request,
    ref: str,
    as_of: str | None = Query(None, max_length=40),
    actor: Actor = page(Action.AUDIT_READ),
) -> HTMLResponse:
    # The event log with its actors, correlations and "as of" states is the auditor's,
    # as GET /audit/request/{ref} is: staff read a case's timeline on its case page.
    hotline: Hotline = request.app.state.hotline
    row = find_case(hotline, actor, ref)
    authorize(actor, Action.AUDIT_READ, row_access(row))
    personal = bool(row.get("citizen_id")) and allows(actor, Action.CITIZENS_READ, Access(citizen_id=row["citizen_id"]))
    events = _events(hotline, row["id"])
    moment = parse_as_of(as_of, hotline.settings.time_zone)
    version = as_of_version(as_of, events)
    if personal and any(holds_personal(event_payload(e)) for e in events):
        record_read(
            actor,
            endpoint="console audit history",
            purpose="audit",
            what="request history",
            subject=row["reference"],
            citizen_ids=[row["citizen_id"]],
        )
    return render(
        request,
        "audit/history.html",
        actor,
        case=row,
        history=[_entry(e, personal) for e in events],
        as_of=as_of or "",
        moment=moment,
        asked=bool(moment or version),
        state=state_as_of(events, moment, version) if (moment or version) else None,
        department_names=department_names(hotline),
        first=events[0].timestamp if events else None,
        may_trace=allows(actor, Action.AUDIT_READ),
    )


@router.get("/console/audit/trace/{key}", response_class=HTMLResponse)
def trace_page(request: Request, key: str, actor: Actor = page(Action.AUDIT_READ)) -> HTMLResponse:
    """A case trace: every event sharing a correlation id, or a request's whole case
    (its call, its work orders, the notifications sent), across aggregates in order."""
    hotline: Hotline = request.app.state.hotline
    shown = case_trace(hotline, actor, key.strip())
    if any(holds_personal(e["data"]) for e in shown["events"]):
        record_read(actor, endpoint="console audit trace", purpose="audit", what="case trace", subject=key)
    for e in shown["events"]:
        e["label"] = trace_label(e["stream"], e["name"])
        e["at"] = datetime.fromisoformat(e["at"])
    return render(request, "audit/trace.html", actor, trace=shown, key=key)
