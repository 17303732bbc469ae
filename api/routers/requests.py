"""/requests: register and move service requests through their lifecycle; read their status.

Commands are POSTs on the request's sub-resources (``/requests/{ref}/dispatch`` …); the
body is the command (domain/commands.py). ``{ref}`` is the reference number citizens
quote, or the request id.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Query, Request, Response

from api.auth import allow, citizen_filter, department_filter, row_access
from api.deps import CommandRoute, add_command_routes, get_hotline, run_command, wait_for_position
from api.routers.knowledge import suggest_and_record
from api.schemas import RequestAccepted, RequestDetail, RequestView, TimelineEntry
from domain.access import Action, allows, authorize
from domain.base import Actor, NotFound, event_type_name
from domain.requests import commands as c
from domain.requests.aggregate import ServiceRequest
from domain.work_orders import commands as wo
from infra.runtime import Hotline
from projections import request_status

router = APIRouter(prefix="/requests", tags=["requests"])
NOTE_ADDED = event_type_name(ServiceRequest.NoteAdded)


@router.post("", response_model=RequestAccepted, status_code=201, summary="Register a request (受理)")
def register(
    cmd: c.RegisterRequest,
    request: Request,
    response: Response,
    hotline: Hotline = Depends(get_hotline),
    actor: Actor = allow(Action.REQUESTS_REGISTER),
) -> dict[str, Any]:
    body = run_command(hotline, cmd, actor, request=request, response=response)
    response.headers["Location"] = f"/requests/{body['reference']}"
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


@router.get("", response_model=list[RequestView], summary="Search requests")
def search(
    hotline: Hotline = Depends(get_hotline),
    actor: Actor = allow(Action.REQUESTS_READ),
    status: str | None = None,
    department_id: str | None = None,
    citizen_id: str | None = None,
    problem_code: str | None = None,
    limit: int = Query(50, ge=1, le=500),
    offset: int = Query(0, ge=0),
    min_position: int | None = Query(None, description="Wait until the read model has applied this event position"),
) -> list[dict[str, Any]]:
    # Departments see what is dispatched to them, citizens their own cases.
    department_id = department_filter(actor, Action.REQUESTS_READ, department_id)
    citizen_id = citizen_filter(actor, Action.REQUESTS_READ, citizen_id)
    wait_for_position(hotline, min_position)
    with hotline.read_store.engine.connect() as conn:
        return request_status.search(
            conn,
            status=status,
            department_id=department_id,
            citizen_id=citizen_id,
            problem_code=problem_code,
            limit=limit,
            offset=offset,
        )


@router.get("/{ref}", response_model=RequestDetail, summary="Status and timeline of one request")
def get_request(
    ref: str,
    hotline: Hotline = Depends(get_hotline),
    actor: Actor = allow(Action.REQUESTS_READ),
    min_position: int | None = Query(None, description="Wait until the read model has applied this event position"),
) -> dict[str, Any]:
    wait_for_position(hotline, min_position)
    with hotline.read_store.engine.connect() as conn:
        row = request_status.by_reference(conn, ref) or request_status.get(conn, ref)
        if row is None:
            raise NotFound(f"no request {ref}")
        authorize(actor, Action.REQUESTS_READ, row_access(row))
        internal = allows(actor, Action.REQUESTS_READ_INTERNAL, row_access(row))
        timeline = request_status.timeline(conn, row["id"])
        row["timeline"] = [TimelineEntry(**t) for t in (timeline if internal else public_timeline(timeline))]
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
