"""The agent's desk: presence, the offered contact (live, with a ring), the caller's screen
pop, knowledge search, registering a request on the problem code's form, duplicates, and
hold / transfer / end / wrap-up, all by keyboard too.

The page is made of regions the browser fetches again when the live feed says the agent's
desk changed (``agent_desk:<agent id>``) or after the agent's own action (``desk.js`` asks
with the command's ``position``, so the region is read after the write). Every action
posts to the JSON API, like any client; the reads here call the same query functions and
the same API functions (knowledge search records the search, as the API does).
"""

from __future__ import annotations

import json
import uuid
from typing import Any

import babel.units
import sqlalchemy as sa
from fastapi import Query, Request
from fastapi.responses import HTMLResponse

from api.console.cases import event_short_name
from api.console.reference import department_names
from api.console.session import page
from api.console.web import N_, Formats, choose_language, render
from api.deps import ReadYourWrites
from api.read_log import record_read
from api.routers import catalogue as catalogue_api
from api.routers import knowledge as knowledge_api
from api.routers import nearby as nearby_api
from api.routing import HotlineRouter
from domain.access import Access, Action, allows, authorize
from domain.base import Actor, DomainError
from domain.citizens.aggregate import normalise_phone
from domain.contact_center.agents import NOT_READY_REASONS
from domain.recordings.aggregate import RecordingPolicy, policy_id
from domain.work_orders.aggregate import WORK_ORDER_OPEN
from infra.runtime import Hotline
from projections import agent_desk, citizen_history, department_workload, nearby, request_status, wallboard

router = HotlineRouter(include_in_schema=False)

# Reasons an agent picks for "not ready" (the domain's list, less those the system sets).
READY_REASONS = ("break", "lunch", "training", "meeting", "after_call_work", "other")
assert set(READY_REASONS) <= set(NOT_READY_REASONS)
# Dispositions offered at wrap-up (free text to the API, at most 100 characters).
DISPOSITIONS = {
    "answered": N_("Answered from the knowledge base"),
    "request_registered": N_("Request registered"),
    "duplicate_linked": N_("Linked to an existing work order"),
    "transferred": N_("Transferred"),
    "callback_needed": N_("Callback needed"),
    "no_action": N_("No action needed"),
}
LANGUAGES = ("zh", "ar", "it", "en")
SUBTYPES = {"information": ("consultation",), "action": ("complaint", "application"), "feedback": ("suggestion", "praise", "complaint")}


def _hotline(request: Request) -> Hotline:
    hotline: Hotline = request.app.state.hotline
    return hotline


def _desk(hotline: Hotline, agent_id: str) -> dict[str, Any]:
    with hotline.read_store.engine.connect() as conn:
        shown = agent_desk.desk(conn, agent_id, hotline.clock.now())
        row = conn.execute(sa.select(wallboard.AGENTS).where(wallboard.AGENTS.c.agent_id == agent_id)).mappings().first()
        queues = [
            {"queue_id": q.queue_id, "names": json.loads(q.names or "{}"), "media": q.media}
            for q in conn.execute(sa.select(wallboard.QUEUES).order_by(wallboard.QUEUES.c.queue_id))
        ]
        known_skills: set[str] = set()
        for skills in conn.execute(sa.select(wallboard.AGENTS.c.skills)).scalars():
            known_skills |= set(json.loads(skills or "{}"))
    agent: dict[str, Any] = dict(row) if row else {"agent_id": agent_id, "state": "logged_out", "presence": "logged_out", "reason": None}
    for key, empty in (("queues", "[]"), ("skills", "{}"), ("languages", "[]")):
        agent[key] = json.loads(agent.get(key) or empty)
    shown["agent"] = {**agent, **{k: v for k, v in shown["agent"].items() if v is not None}}
    shown["queues"] = queues
    shown["queue_names"] = {q["queue_id"]: q.get("names") for q in queues}  # a contact's queue by its name
    for c in shown["contacts"]:
        # "Record this call" only where the queue's policy lets a demand record it: none
        # forbids it, and all records every call anyway.
        c["may_record"] = c.get("media") == "voice" and _recording_mode(hotline, c["queue_id"]) in ("on_demand", "sample")
    shown["known_skills"] = sorted(known_skills | set(agent["skills"]))
    return shown


def _recording_mode(hotline: Hotline, queue_id: str | None) -> str:
    found = hotline.store.reference(policy_id(queue_id)) if queue_id else None  # cached: the desk renders often
    return found.policy.mode if isinstance(found, RecordingPolicy) else "none"


def _values(request: Request, agent_id: str, **more: Any) -> dict[str, Any]:
    return {
        "agent_id": agent_id,
        "reasons": READY_REASONS,
        "dispositions": DISPOSITIONS,
        "languages": LANGUAGES,
        **more,
    }


@router.get("/console/desk", response_class=HTMLResponse)
def desk_page(request: Request, actor: Actor = page(Action.AGENTS_DESK)) -> HTMLResponse:
    hotline = _hotline(request)
    desk = _desk(hotline, actor.id)
    # The workspace stays with a contact through its wrap-up (a request may still be registered).
    in_hand = desk["contacts"] or desk["wrapping"]
    current = in_hand[0]["contact_id"] if in_hand else None
    workspace = _workspace(request, hotline, actor, current) if current else None
    # Only this agent's desk: offers, calls, wrap-ups (a wider topic, the wallboard's, would
    # make every agent's page fetch again at every contact of the centre).
    # The desk's offers and calls, and the agent's own state (a supervisor may force it).
    topics = [f"agent_desk:{actor.id}", f"wallboard:{actor.id}"]
    return render(request, "desk/desk.html", actor, desk=desk, workspace=workspace, topics=topics, **_values(request, actor.id))


@router.get("/console/desk/presence", response_class=HTMLResponse)
def presence(request: Request, actor: Actor = page(Action.AGENTS_DESK), _ryw: None = ReadYourWrites) -> HTMLResponse:
    hotline = _hotline(request)
    return render(request, "desk/_presence.html", actor, desk=_desk(hotline, actor.id), **_values(request, actor.id))


@router.get("/console/desk/contact", response_class=HTMLResponse)
def contact(request: Request, actor: Actor = page(Action.AGENTS_DESK), _ryw: None = ReadYourWrites) -> HTMLResponse:
    hotline = _hotline(request)
    return render(request, "desk/_contact.html", actor, desk=_desk(hotline, actor.id), **_values(request, actor.id))


# ------------------------------------------------------------------------ the workspace
def _caller_phone(hotline: Hotline, contact_id: str) -> str | None:
    """The caller's number: personal data the desk's read model does not copy (it stays in
    the contact's events, where it can be erased), so it is read from the contact itself."""
    from eventsourcing.application import AggregateNotFoundError

    from domain.contact_center.contacts import Contact

    try:
        found: Any = hotline.store.repository.get(uuid.UUID(contact_id))
    except (ValueError, AggregateNotFoundError):
        return None
    phone = (found.personal or {}).get("phone") if isinstance(found, Contact) else None
    return str(phone) if phone else None


def _on_my_desk(hotline: Hotline, agent_id: str, contact_id: str) -> dict[str, Any] | None:
    with hotline.read_store.engine.connect() as conn:
        row = (
            conn.execute(
                sa.select(agent_desk.DESK, agent_desk.CONTACTS.c.citizen_id, agent_desk.CONTACTS.c.subject, agent_desk.CONTACTS.c.language)
                .select_from(
                    agent_desk.DESK.outerjoin(agent_desk.CONTACTS, agent_desk.CONTACTS.c.contact_id == agent_desk.DESK.c.contact_id)
                )
                .where(agent_desk.DESK.c.agent_id == agent_id, agent_desk.DESK.c.contact_id == contact_id)
            )
            .mappings()
            .first()
        )
    return dict(row) if row else None


def _caller(hotline: Hotline, actor: Actor, contact_id: str) -> dict[str, Any]:
    """The screen pop: the citizen recognised by the contact's citizen id or phone number,
    with their history and open requests (agents read all citizens: CITIZENS_READ)."""
    found: dict[str, Any] = {"phone": None, "citizen": None, "history": [], "open": []}
    held = _on_my_desk(hotline, actor.id, contact_id)
    if held is None or not allows(actor, Action.CITIZENS_READ):
        return found  # only the caller of a contact on my own desk
    found["phone"] = phone = _caller_phone(hotline, contact_id)
    with hotline.read_store.engine.connect() as conn:
        citizen = citizen_history.get(conn, held["citizen_id"]) if held.get("citizen_id") else None
        if citizen is None and phone:
            try:
                matches = citizen_history.find(conn, phone=normalise_phone(phone, hotline.bus.deps.policy.default_region))
            except DomainError:
                matches = []
            citizen = matches[0] if matches else None
        if citizen is not None and allows(actor, Action.CITIZENS_READ, Access(citizen_id=citizen["id"])):
            found["citizen"] = citizen
            # Each step said in the agent's language (the template), from its facts.
            found["history"] = [{**h, "step": event_short_name(h["type"])} for h in citizen_history.history(conn, citizen["id"], limit=15)]
            found["department_names"] = department_names(hotline)
            rows = conn.execute(
                sa.select(request_status.REQUESTS)
                .where(
                    request_status.REQUESTS.c.citizen_id == citizen["id"],
                    request_status.REQUESTS.c.status.notin_(("closed", "resolved", "answered")),
                )
                .order_by(request_status.REQUESTS.c.registered_at.desc())
                .limit(20)
            ).mappings()
            found["open"] = [dict(r) for r in rows]
    if phone or found["citizen"]:  # a read of personal data: who, what, why (api/read_log.py)
        citizen_ids = [found["citizen"]["id"]] if found["citizen"] else []
        where, why = "console desk screen pop", "caller identification"
        record_read(actor, endpoint=where, purpose=why, what="caller", subject=contact_id, citizen_ids=citizen_ids)
    return found


def _problem_codes(hotline: Hotline, actor: Actor) -> list[dict[str, Any]]:
    """Every active problem code, grouped under its category (the catalogue API's tree)."""
    try:
        tree = catalogue_api.tree(hotline=hotline, _=actor)
    except DomainError:
        return []
    groups = []
    for dep in tree["departments"]:
        for prov in dep["providers"]:
            for cat in prov["categories"]:
                codes = [pc for pc in cat["problem_codes"] if pc.get("active", True)]
                if cat.get("active", True) and codes:
                    groups.append({"names": cat["names"], "codes": codes})
    return groups


def _workspace(request: Request, hotline: Hotline, actor: Actor, contact_id: str) -> dict[str, Any] | None:
    held = _on_my_desk(hotline, actor.id, contact_id)
    if held is None:
        return None
    suggestions: dict[str, Any] = {"results": [], "search_id": None}
    if allows(actor, Action.AGENTS_DESK, Access(subject=actor.id)):
        # Recorded as the API records it: "used to answer" needs the search it came from.
        suggestions = knowledge_api.agent_suggestions(agent_id=actor.id, request=request, limit=5, hotline=hotline, actor=actor)
    return {
        "contact": held,
        "caller": _caller(hotline, actor, contact_id),
        "suggestions": suggestions,
        "groups": _problem_codes(hotline, actor),
    }


@router.get("/console/desk/workspace", response_class=HTMLResponse)
def workspace(request: Request, contact: str = Query(..., max_length=64), actor: Actor = page(Action.AGENTS_DESK)) -> HTMLResponse:
    hotline = _hotline(request)
    return render(
        request, "desk/_workspace.html", actor, workspace=_workspace(request, hotline, actor, contact), **_values(request, actor.id)
    )


@router.get("/console/desk/caller", response_class=HTMLResponse)
def caller(
    request: Request, contact: str = Query(..., max_length=64), actor: Actor = page(Action.AGENTS_DESK), _ryw: None = ReadYourWrites
) -> HTMLResponse:
    hotline = _hotline(request)
    return render(request, "desk/_caller.html", actor, contact_id=contact, caller=_caller(hotline, actor, contact))


@router.get("/console/desk/knowledge", response_class=HTMLResponse)
def knowledge(
    request: Request,
    q: str = Query("", max_length=1000),
    contact: str | None = Query(None, max_length=64),
    actor: Actor = page(Action.KNOWLEDGE_SEARCH),
) -> HTMLResponse:
    hotline = _hotline(request)
    found: dict[str, Any] = {"results": [], "search_id": None}
    if q.strip():
        found = knowledge_api.search(
            request,
            q=q.strip(),
            lang=None,
            limit=8,
            channel=None,
            contact_id=contact,
            request_id=None,
            category=[],
            hotline=hotline,
            actor=actor,
        )
    return render(request, "desk/_results.html", actor, found=found, q=q, contact_id=contact)


@router.get("/console/desk/article/{article_id}", response_class=HTMLResponse)
def article(
    request: Request,
    article_id: str,
    search: str | None = Query(None, max_length=64),
    contact: str | None = Query(None, max_length=64),
    actor: Actor = page(Action.KNOWLEDGE_SEARCH),
) -> HTMLResponse:
    hotline = _hotline(request)
    language = choose_language(request, hotline.settings.default_language)
    shown = knowledge_api.get_article(article_id, lang=language, revision=None, hotline=hotline, actor=actor)  # type: ignore[arg-type]
    return render(request, "desk/_article.html", actor, article=shown, search_id=search, contact_id=contact)


@router.get("/console/desk/form", response_class=HTMLResponse)
def request_form(
    request: Request,
    problem_code: str = Query("", max_length=64),
    actor: Actor = page(Action.REQUESTS_REGISTER),
) -> HTMLResponse:
    """The fields the chosen problem code collects (swapped into the register form)."""
    hotline = _hotline(request)
    code: dict[str, Any] | None = None
    if problem_code:
        try:
            code = catalogue_api.problem_code(problem_code, hotline=hotline, _=actor)
        except DomainError:
            code = None
    return render(request, "desk/_fields.html", actor, code=code)


@router.get("/console/desk/duplicates", response_class=HTMLResponse)
def duplicates(
    request: Request,
    ref: str = Query(..., max_length=64),
    actor: Actor = page(Action.WORK_ORDERS_READ),
    _ryw: None = ReadYourWrites,
) -> HTMLResponse:
    """Open work orders for the request's problem code: with coordinates, those within the
    problem code's distance, nearest first, then older (the API's ranking, ``GET
    /requests/{ref}/nearby-work-orders``), each with its distance; without, those at the
    same address or district first, then newer."""
    hotline = _hotline(request)
    orders: list[dict[str, Any]] = []
    radius: float | None = None
    with hotline.read_store.engine.connect() as conn:
        case = request_status.by_reference(conn, ref) or request_status.get(conn, ref)
        if case is not None:
            authorize(actor, Action.REQUESTS_READ, Access.of_department(case.get("department_id"), case.get("citizen_id")))
        point = nearby.coordinates(case["location"]) if case is not None else None
        if case is not None and case["problem_code"] and not case["work_order_id"] and point is not None:
            radius = nearby_api.duplicate_radius(hotline, case["problem_code"])
            units = Formats(choose_language(request, hotline.settings.default_language), hotline.settings.time_zone).locale
            for found in nearby.nearby(
                conn,
                problem_code=case["problem_code"],
                lat=point[0],
                lon=point[1],
                radius_m=radius,
                limit=50,
            ):
                if len(orders) == 10 or not allows(actor, Action.WORK_ORDERS_READ, Access.of_department(found["department_id"])):
                    continue
                order = department_workload.work_order(conn, found["id"])
                if order is None:  # the two read models apply the same events: a moment apart at most
                    continue
                place = {k: v for k, v in found["location"].items() if v is not None}
                orders.append(
                    {
                        **order,
                        "place": place,
                        "same_place": found["distance_m"] < 1,
                        "distance_m": found["distance_m"],
                        "distance": babel.units.format_unit(round(found["distance_m"]), "length-meter", length="short", locale=units),
                    }
                )
        elif case is not None and case["problem_code"] and not case["work_order_id"]:
            where = case["location"] or {}
            for status in WORK_ORDER_OPEN:
                for order in department_workload.work_orders(conn, status=status, problem_code=case["problem_code"], limit=50):
                    if not allows(actor, Action.WORK_ORDERS_READ, Access.of_department(order.get("department_id"))):
                        continue
                    first = next((request_status.get(conn, rid) for rid in order["request_ids"] or []), None)
                    place = (first or {}).get("location") or {}
                    same = bool(where) and any(where.get(k) and where.get(k) == place.get(k) for k in ("address", "district"))
                    orders.append({**order, "place": place, "same_place": same, "first": first})
            orders.sort(key=lambda o: (not o["same_place"], -(o["created_at"].timestamp() if o["created_at"] else 0)))
    return render(request, "desk/_duplicates.html", actor, case=case, orders=orders[:10], radius=radius)
