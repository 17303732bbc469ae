"""The citizens' portal (public): search the knowledge base, file a request, sign in with
a one-time code, follow my requests, read the replies and rate the answer.

The public pages need no sign-in; "my requests" needs a citizen's session, got with the
same one-time code the API issues (``api/routers/auth.py``'s functions, with their rate
limits), kept in the console's session cookie. Filing posts to ``POST /requests`` like
every other client, so the jurisdiction's rules (contact details required unless it
allows anonymity) are the API's and its refusals are shown on the form.
"""

from __future__ import annotations

from typing import Any

from fastapi import Query, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response

from api.auth import ANONYMOUS, citizen_filter, row_access
from api.console.session import PUBLIC_PAGE, citizen_page, safe_next, start_session
from api.console.web import N_, choose_language, render
from api.errors import Unauthenticated, error_body
from api.routers import auth as auth_api
from api.routers import knowledge as knowledge_api
from api.routers.requests import public_timeline
from api.routing import HotlineRouter
from domain.access import Action, authorize
from domain.base import Actor, NotFound, event_type_name
from domain.requests.aggregate import ServiceRequest as R
from infra.runtime import Hotline
from projections import request_status

router = HotlineRouter(include_in_schema=False)

# What a citizen reads of each step of their case (other steps are not shown to them).
STEPS: dict[str, str] = {
    event_type_name(R.Registered): N_("Registered"),
    event_type_name(R.Classified): N_("Classified"),
    event_type_name(R.Dispatched): N_("Sent to the department in charge"),
    event_type_name(R.Accepted): N_("Accepted by the department"),
    event_type_name(R.ReturnedToDispatcher): N_("Being passed to the right department"),
    event_type_name(R.OwnershipRuled): N_("Department in charge decided"),
    event_type_name(R.InterimReplied): N_("Interim reply"),
    event_type_name(R.FinalReplied): N_("Final reply"),
    event_type_name(R.Resolved): N_("Resolved"),
    event_type_name(R.Closed): N_("Closed"),
    event_type_name(R.Reopened): N_("Reopened"),
    event_type_name(R.Rated): N_("You rated the answer"),
    event_type_name(R.ExtensionApproved): N_("Deadline extended"),
    event_type_name(R.WaitingForCitizen): N_("Waiting for you"),
    event_type_name(R.CitizenResponded): N_("You answered"),
    event_type_name(R.CitizenWrote): N_("You wrote"),
    event_type_name(R.NoteAdded): N_("Note"),
    event_type_name(R.WorkOrderOutcomeRecorded): N_("Work done"),
}
REPLIES = {event_type_name(R.InterimReplied), event_type_name(R.FinalReplied)}
KINDS = (
    ("action", N_("Report a problem or ask for a service")),
    ("information", N_("Ask a question")),
    ("feedback", N_("Give a suggestion or praise")),
)
SCORES = ((5, N_("Very satisfied")), (4, N_("Satisfied")), (3, N_("Neither")), (2, N_("Dissatisfied")), (1, N_("Very dissatisfied")))


def _citizen(actor: Actor | None) -> Actor | None:
    """The signed-in citizen, or None (staff and visitors have no "my requests")."""
    return actor if actor is not None and actor.citizen_id else None


@router.get("/portal", response_class=HTMLResponse)
def home(request: Request, actor: Actor | None = PUBLIC_PAGE) -> HTMLResponse:
    return render(request, "portal/home.html", actor, citizen=_citizen(actor))


@router.get("/portal/knowledge", response_class=HTMLResponse)
def knowledge_search(request: Request, q: str = Query("", max_length=1000), actor: Actor | None = PUBLIC_PAGE) -> HTMLResponse:
    hotline: Hotline = request.app.state.hotline
    found: dict[str, Any] = {"results": []}
    if q.strip():
        # The API's search itself: its per-caller limit, and the search recorded as self-service.
        found = knowledge_api.search(
            request,
            q=q,
            lang=None,
            limit=10,
            channel=None,
            contact_id=None,
            request_id=None,
            category=[],
            hotline=hotline,
            actor=actor or ANONYMOUS,
        )
    return render(request, "portal/knowledge.html", actor, citizen=_citizen(actor), q=q, results=found["results"])


@router.get("/portal/knowledge/{article_id}", response_class=HTMLResponse)
def article(request: Request, article_id: str, actor: Actor | None = PUBLIC_PAGE) -> HTMLResponse:
    hotline: Hotline = request.app.state.hotline
    language = choose_language(request, hotline.settings.default_language)
    found = knowledge_api.get_article(article_id, lang=language, revision=None, hotline=hotline, actor=actor or ANONYMOUS)  # type: ignore[arg-type]
    return render(request, "portal/article.html", actor, citizen=_citizen(actor), article=found)


@router.get("/portal/file", response_class=HTMLResponse)
def file_form(request: Request, actor: Actor | None = PUBLIC_PAGE) -> HTMLResponse:
    hotline: Hotline = request.app.state.hotline
    policy = hotline.bus.deps.policy  # the rule POST /requests applies
    return render(
        request,
        "portal/file.html",
        actor,
        citizen=_citizen(actor),
        kinds=KINDS,
        allow_anonymous=policy.allow_anonymous,
        required_contact=policy.required_contact,
    )


@router.get("/portal/filed", response_class=HTMLResponse)
def filed(request: Request, reference: str = Query("", max_length=32), actor: Actor | None = PUBLIC_PAGE) -> HTMLResponse:
    return render(request, "portal/filed.html", actor, citizen=_citizen(actor), reference=reference)


@router.get("/portal/sign-in", response_class=HTMLResponse)
def sign_in_form(
    request: Request,
    email: str = Query("", max_length=254),
    phone: str = Query("", max_length=40),
    next: str = Query("", max_length=500),
    actor: Actor | None = PUBLIC_PAGE,
) -> HTMLResponse:
    return render(
        request, "portal/sign_in.html", actor, citizen=_citizen(actor), email=email, phone=phone, next=safe_next(next) or "/portal/requests"
    )


def _problem(field: str, message: str, code: str, status: int = 422) -> JSONResponse:
    """A refusal as the API words it, naming the field for the form to mark (a 401 would
    send the console's script to the staff sign-in)."""
    body = error_body(status, code, message, {"problems": [{"field": field, "problem": message, "type": code}]})
    return JSONResponse(body, status_code=status)


@router.post("/portal/sign-in/code")
def send_code(body: auth_api.CitizenContact, request: Request, actor: Actor | None = PUBLIC_PAGE) -> dict[str, Any]:
    """What ``POST /auth/citizen/code`` does (its rate limits too), answered for the form."""
    hotline: Hotline = request.app.state.hotline
    answer = auth_api.citizen_code(body, request, hotline, actor or ANONYMOUS)
    return {**answer, "email": body.email or "", "phone": body.phone or ""}


@router.post("/portal/sign-in")
def verify_code(body: auth_api.CitizenCode, request: Request, actor: Actor | None = PUBLIC_PAGE) -> Response:
    """What ``POST /auth/citizen/token`` does; the token then signs the browser in."""
    hotline: Hotline = request.app.state.hotline
    try:
        answer = auth_api.citizen_token(body, request, hotline, actor or ANONYMOUS)
    except Unauthenticated as exc:
        return _problem("code", exc.message, "invalid_code")
    response = JSONResponse({"citizen_id": answer["citizen_id"], "signed_in": True})
    start_session(response, answer["access_token"], answer["expires_in"], secure=request.url.scheme == "https")
    return response


def my_requests_values(request: Request, citizen: Actor) -> dict[str, Any]:
    hotline: Hotline = request.app.state.hotline
    authorize(citizen, Action.REQUESTS_READ)
    mine = citizen_filter(citizen, Action.REQUESTS_READ, citizen.citizen_id)
    with hotline.read_store.engine.connect() as conn:
        rows = request_status.search(conn, citizen_id=mine, limit=100)
    return {"requests": rows, "citizen": citizen}


@router.get("/portal/requests", response_class=HTMLResponse)
def my_requests(request: Request, actor: Actor = citizen_page(Action.REQUESTS_READ)) -> HTMLResponse:
    return render(request, "portal/requests.html", actor, part="portal/_requests.html", **my_requests_values(request, actor))


def case_values(request: Request, citizen: Actor, reference: str) -> dict[str, Any]:
    hotline: Hotline = request.app.state.hotline
    with hotline.read_store.engine.connect() as conn:
        row = request_status.by_reference(conn, reference)
        if row is None or row.get("citizen_id") != citizen.citizen_id:
            # Another citizen's case is "not found", as if it did not exist.
            raise NotFound(f"no request {reference}")
        authorize(citizen, Action.REQUESTS_READ, row_access(row))
        steps = public_timeline(request_status.timeline(conn, row["id"]))
    shown = [s for s in steps if s["type"] in STEPS]
    replies = [s for s in shown if s["type"] in REPLIES]
    return {
        "case": row,
        "steps": shown,
        "replies": replies,
        "step_names": STEPS,
        "final_type": event_type_name(R.FinalReplied),
        "scores": SCORES,
        "citizen": citizen,
    }


@router.get("/portal/requests/{reference}", response_class=HTMLResponse)
def my_request(request: Request, reference: str, actor: Actor = citizen_page(Action.REQUESTS_READ)) -> HTMLResponse:
    return render(request, "portal/request.html", actor, part="portal/_request.html", **case_values(request, actor, reference))
