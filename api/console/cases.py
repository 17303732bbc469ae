"""Cases: the search every staff screen starts from, and one case's page (the page every
other screen links to: ``/console/cases/{reference}``).

The reads apply exactly the rules of ``GET /requests`` and ``GET /requests/{ref}``
(api/routers/requests.py): a department sees only what is dispatched to it, internal
notes only for who may read them; the actions offered are the ones the policy allows
this actor on this case, each a form posting to the same API endpoint every client uses.
"""

from __future__ import annotations

from typing import Any

from fastapi import Query, Request
from fastapi.responses import HTMLResponse

from api.auth import citizen_filter, department_filter, row_access
from api.console.reference import department_names, problem_names, staff_names
from api.console.session import page
from api.console.web import N_, render
from api.read_log import record_read
from api.routers.requests import public_timeline
from api.routing import HotlineRouter
from domain.access import Access, Action, Scope, allows, authorize, finds_by_personal_data, scope
from domain.base import Actor, InvalidCommand, NotFound
from domain.events import stream_and_name
from domain.requests.aggregate import OPEN_STATES, STATES
from infra.runtime import Hotline
from projections import attachments as attachment_index
from projections import citizen_history, department_workload, request_status

router = HotlineRouter(include_in_schema=False)
PAGE_SIZE = 50
DUE_SOON_SECONDS = 4 * 3600  # a deadline this close is shown amber
NO_WORDS = N_("Type at least one word, reference, name or number to search for.")
IMAGE_TYPES = ("image/jpeg", "image/png", "image/webp")  # shown as thumbnails (browsers show these)
# Where an attachment came from (domain/attachments SOURCES), in the user's words.
SOURCE_NAMES = {
    "console": N_("console"),
    "api": N_("API"),
    "open311": N_("Open311 app"),
    "email": N_("email"),
    "sms": N_("SMS"),
    "voicemail": N_("voicemail"),
}

# What each step of a case's history is called (the event's short name → a label).
EVENT_NAMES = {
    "registered": N_("Registered"),
    "classified": N_("Classified"),
    "kind_changed": N_("Kind changed"),
    "dispatched": N_("Dispatched"),
    "accepted": N_("Accepted by the department"),
    "returned_to_dispatcher": N_("Returned to the dispatcher"),
    "sent_for_ruling": N_("Sent to the control office for a ruling"),
    "ownership_ruled": N_("Ownership ruled"),
    "interim_replied": N_("Interim reply"),
    "final_replied": N_("Final reply"),
    "resolved": N_("Resolved"),
    "closed": N_("Closed"),
    "reopened": N_("Reopened"),
    "rated": N_("Rated"),
    "extension_requested": N_("Extension requested"),
    "extension_approved": N_("Extension approved"),
    "extension_refused": N_("Extension refused"),
    "supervision_started": N_("Supervision started"),
    "supervision_ended": N_("Supervision ended"),
    "note_added": N_("Note"),
    "work_order_linked": N_("Work order linked"),
    "work_order_outcome_recorded": N_("Work order outcome"),
    "waiting_for_citizen": N_("Waiting for the citizen"),
    "citizen_wrote": N_("The citizen wrote"),
    "citizen_responded": N_("The citizen responded"),
    "timers_scheduled": N_("Deadlines scheduled"),
    "timer_fired": N_("Timer fired"),
    "deadline_approaching": N_("Deadline approaching"),
    "deadline_missed": N_("Deadline missed"),
    "reminder_sent": N_("Reminder sent"),
    "escalated": N_("Escalated"),
    "interim_reply_due": N_("Interim reply due"),
    "satisfaction_callback_due": N_("Satisfaction callback due"),
}
# Details of a step worth reading on the case page (the rest is bookkeeping).
SHOWN_DETAILS = (
    "text",
    "message",
    "reason",
    "resolution",
    "instructions",
    "department_id",
    "problem_code",
    "score",
    "comment",
    "delay_reason",
    "outcome",
    "note",
    "status",
)


def event_short_name(type_name: str) -> str:
    """``hotline.request.note_added.v1`` → ``note_added`` (the domain's registry says; a
    type it does not know is shown as it is)."""
    found = stream_and_name(type_name)
    return found[1] if found else type_name


def find_case(hotline: Hotline, actor: Actor, ref: str) -> dict[str, Any]:
    """The case by reference or id, if this actor may read it (404 / 403 as the API)."""
    with hotline.read_store.engine.connect() as conn:
        row = request_status.by_reference(conn, ref) or request_status.get(conn, ref)
    if row is None:
        raise NotFound(f"no request {ref}")
    authorize(actor, Action.REQUESTS_READ, row_access(row))
    return row


def case_timeline(hotline: Hotline, actor: Actor, row: dict[str, Any]) -> list[dict[str, Any]]:
    """The case's steps as ``get_request`` shows them to this actor."""
    with hotline.read_store.engine.connect() as conn:
        entries = request_status.timeline(conn, row["id"])
    if not allows(actor, Action.REQUESTS_READ_INTERNAL, row_access(row)):
        entries = public_timeline(entries)
    for e in entries:
        e["name"] = event_short_name(e["type"])
        e["label"] = EVENT_NAMES.get(e["name"], e["name"].replace("_", " "))
        e["shown"] = {k: e["details"][k] for k in SHOWN_DETAILS if e["details"].get(k) not in (None, "")}
    return entries


def deadline_class(row: dict[str, Any], now: Any) -> str:
    """ok / warn / bad: how close an open case is to its deadline."""
    due = row.get("due_at")
    if due is None or row.get("status") not in OPEN_STATES:
        return ""
    left = (due - now).total_seconds()
    return "bad" if left < 0 else "warn" if left < DUE_SOON_SECONDS else "ok"


def _search(
    hotline: Hotline,
    actor: Actor,
    status: str | None,
    department_id: str | None,
    problem_code: str | None,
    ref: str | None,
    q: str | None = None,
) -> dict[str, Any]:
    # The same narrowing as GET /requests: a department's own cases, a citizen's own; only
    # staff who may read every citizen's personal data find a case by a caller's name or number.
    department_id = department_filter(actor, Action.REQUESTS_READ, department_id or None)
    citizen_id = citizen_filter(actor, Action.REQUESTS_READ, None)
    text = q.strip() if q and q.strip() else None
    filters = request_status.Filters(
        text=text,
        personal=finds_by_personal_data(actor),
        status=(status,) if status else (),
        department_id=department_id,
        citizen_id=citizen_id,
        problem_code=problem_code or None,
    )
    now = hotline.clock.now()
    total: int | None = None
    problem: str | None = None
    with hotline.read_store.engine.connect() as conn:
        if ref:
            row = request_status.by_reference(conn, ref.strip()) or request_status.get(conn, ref.strip())
            rows = [row] if row is not None and allows(actor, Action.REQUESTS_READ, row_access(row)) else []
        else:
            try:
                found = request_status.find(conn, filters, now=now, limit=PAGE_SIZE)
            except InvalidCommand as exc:
                if exc.details.get("field") != "q":
                    raise
                found, problem = {"items": [], "total": 0}, NO_WORDS  # only punctuation: nothing to look for
            rows, total = found["items"], found["total"]
    if text and filters.personal and not ref:
        # The words may be a caller's name or number: a read of personal data, as the API records it.
        record_read(
            actor,
            endpoint="console case search",
            purpose="find a case",
            what="request search",
            citizen_ids=[r.get("citizen_id") for r in rows],
            count=len(rows),
        )
    for r in rows:
        r["deadline"] = deadline_class(r, now)
    return {"rows": rows, "total": total, "department_id": department_id, "problem": problem}


def _search_values(
    request: Request,
    actor: Actor,
    status: str | None,
    department_id: str | None,
    problem_code: str | None,
    ref: str | None,
    q: str | None = None,
) -> dict[str, Any]:
    hotline: Hotline = request.app.state.hotline
    found = _search(hotline, actor, status, department_id, problem_code, ref, q)
    all_departments = department_names(hotline)
    own_only = scope(actor, Action.REQUESTS_READ) is Scope.OWN_DEPARTMENT
    choices = {d: n for d, n in all_departments.items() if not own_only or d in actor.departments}
    topics = ["request_status"]
    if own_only:
        topics = [f"request_status:department-{d}" for d in actor.departments]
    return {
        "rows": found["rows"],
        "total": found["total"],
        "problem": found["problem"],
        "filters": {
            "q": q or "",
            "status": status or "",
            "department_id": found["department_id"] or "",
            "problem_code": problem_code or "",
            "ref": ref or "",
        },
        "statuses": STATES,
        "departments": choices,
        "department_names": all_departments,
        "problem_codes": sorted(problem_names(hotline)),
        "topics": topics,
        "query": request.url.query,
    }


@router.get("/console/cases", response_class=HTMLResponse)
def cases_page(
    request: Request,
    status: str | None = Query(None, max_length=20),
    department_id: str | None = Query(None, max_length=64),
    problem_code: str | None = Query(None, max_length=64),
    ref: str | None = Query(None, max_length=64),
    q: str | None = Query(None, max_length=200),
    actor: Actor = page(Action.REQUESTS_READ),
) -> HTMLResponse:
    return render(
        request,
        "cases/list.html",
        actor,
        part="cases/_results.html",
        **_search_values(request, actor, status, department_id, problem_code, ref, q),
    )


def _case_values(request: Request, actor: Actor, ref: str) -> dict[str, Any]:
    hotline: Hotline = request.app.state.hotline
    row = find_case(hotline, actor, ref)
    on = row_access(row)
    contact = None
    if row.get("citizen_id") and allows(actor, Action.CITIZENS_READ, Access(citizen_id=row["citizen_id"])):
        with hotline.read_store.engine.connect() as conn:
            contact = citizen_history.get(conn, row["citizen_id"])
        if contact is not None:  # a read of personal data: who, what, why (api/read_log.py)
            record_read(
                actor,
                endpoint="console case page",
                purpose="case handling",
                what="citizen",
                subject=row["reference"],
                citizen_ids=[contact["id"]],
            )
    work_order = None
    if row.get("work_order_id"):
        with hotline.read_store.engine.connect() as conn:
            found = department_workload.work_order(conn, row["work_order_id"])
        if found is not None and allows(actor, Action.WORK_ORDERS_READ, row_access(found)):
            work_order = found
    status = row["status"]
    # The actions this actor may take on this case now: the policy's word (scope
    # included), narrowed to the states the case's rules accept them in.
    can = {
        "note": allows(actor, Action.REQUESTS_NOTE, on),
        "internal": allows(actor, Action.REQUESTS_READ_INTERNAL, on),
        "dispatch": allows(actor, Action.REQUESTS_DISPATCH, on) and status in ("registered", "returned") and bool(row.get("problem_code")),
        "accept": allows(actor, Action.REQUESTS_ACCEPT, on) and status == "dispatched",
        "return": allows(actor, Action.REQUESTS_ACCEPT, on) and status in ("dispatched", "in_progress"),
        "reply": allows(actor, Action.REQUESTS_REPLY, on) and status in ("registered", "dispatched", "in_progress"),
        "close": allows(actor, Action.REQUESTS_CLOSE, on) and status in ("replied", "resolved"),
        "supervise": allows(actor, Action.REQUESTS_OVERSEE, on) and status in OPEN_STATES,
        "audit": allows(actor, Action.AUDIT_READ, on),  # the event log is the auditor's (api/console/audit.py)
        "attach": allows(actor, Action.ATTACHMENTS_ADD, on) and status != "closed",
    }
    # Whoever reads the case reads its attachments (api/routers/attachments.py, the same rule).
    with hotline.read_store.engine.connect() as conn:
        attachments = attachment_index.of_request(conn, row["id"])
    topics = [f"request_status:request-{row['id']}"]  # this case only (live.py checks who may read it)
    return {
        "case": row,
        "timeline": case_timeline(hotline, actor, row),
        "staff_names": staff_names(hotline),  # who took each step, by name
        "contact": contact,
        "work_order": work_order,
        "attachments": attachments,
        "image_types": IMAGE_TYPES,
        "source_names": SOURCE_NAMES,
        "max_mb": hotline.attachments.max_bytes / (1024 * 1024),
        "can": can,
        "department_names": department_names(hotline),
        "deadline": deadline_class(row, hotline.clock.now()),
        "topics": topics,
    }


@router.get("/console/cases/{ref}", response_class=HTMLResponse)
def case_page(request: Request, ref: str, actor: Actor = page(Action.REQUESTS_READ)) -> HTMLResponse:
    return render(request, "cases/case.html", actor, part="cases/_state.html", **_case_values(request, actor, ref))
