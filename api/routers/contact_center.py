"""Contact center API: queues, agents, contacts, supervisors' commands, wallboard, agent
desks, and live feeds (server-sent events) for wallboards and agents' consoles."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Any, Literal

from fastapi import Depends, Query, Request
from fastapi.responses import StreamingResponse

from api.auth import allow
from api.deps import CommandRoute, ReadYourWrites, add_command_routes, get_hotline
from api.errors import STORE_UNAVAILABLE, log, store_unavailable
from api.responses import AgentView, Desk, QueuePosition, WaitingContact, Wallboard
from api.routing import HotlineRouter, quick_read
from domain.access import Access, Action, authorize
from domain.base import Actor, NotFound
from domain.contact_center import commands as cc
from domain.handling import Command
from infra.live_feed import LiveFeed
from infra.runtime import Hotline
from projections import agent_desk, staff, wallboard
from projections import knowledge as kb

# The agent states (domain/contact_center/agents.py STATES), as the filter accepts them.
AgentStateName = Literal["logged_out", "available", "not_ready", "reserved", "on_contact", "wrap_up"]

router = HotlineRouter(tags=["contact center"])
LIVE_HEARTBEAT_SECONDS = 15.0


# ------------------------------------------------------------------------ queues and agents
add_command_routes(
    router,
    "",
    [
        CommandRoute("queues", cc.DefineQueue, "Create a queue or change its settings"),
        CommandRoute("agents/login", cc.LoginAgent, "An agent logs in with skills, languages and queues", name="login"),
    ],
)


add_command_routes(
    router,
    "/agents/{agent_id}",
    [
        CommandRoute("logout", cc.LogoutAgent, "An agent logs out (a supervisor may force it)", name="logout", body_optional=True),
        CommandRoute("presence", cc.SetPresence, "Available / not ready with a reason (a supervisor may force it)", name="presence"),
        CommandRoute("queues", cc.MoveAgent, "Supervisor: move an agent between queues", name="move"),
        CommandRoute("skills", cc.ChangeSkills, "Supervisor: change an agent's skills and languages", name="skills"),
    ],
)


# ------------------------------------------------------------------------ contacts
add_command_routes(
    router,
    "",
    [
        CommandRoute(
            "contacts",
            cc.ContactArrives,
            "A call, chat, email or web session arrives and joins its queue",
            name="arrive",
            status_code=201,
        ),
        CommandRoute(
            "callbacks",
            cc.ScheduleCallback,
            "Schedule an outbound callback (answer, or satisfaction survey 回访)",
            status_code=201,
        ),
    ],
)


_CONTACT_COMMANDS: dict[str, tuple[type[Command], str]] = {
    "answer": (cc.Answer, "The offered agent takes the contact"),
    "decline": (cc.Decline, "The offered agent declines: back to the queue at its place"),
    "grab": (cc.Grab, "Pick a waiting contact of a grab-mode queue (first one wins)"),
    "hold": (cc.Hold, "Put on hold"),
    "resume": (cc.Resume, "Take off hold"),
    "transfer": (cc.Transfer, "Transfer to a queue, an agent or an expert seat (cold or warm)"),
    "invite": (cc.Invite, "Conference another agent in"),
    "complete-transfer": (cc.CompleteTransfer, "Warm transfer: hand over to the consulted agent"),
    "leave": (cc.Leave, "A consulted / conferenced agent leaves"),
    "end": (cc.End, "The conversation ends"),
    "wrap-up": (cc.WrapUp, "Finish wrap-up with a disposition"),
    "abandon": (cc.Abandon, "The waiting citizen hung up"),
    "overflow": (cc.OverflowContact, "Supervisor: send a waiting contact to the queue's overflow"),
    "link-request": (cc.LinkRequest, "Link the request registered during this contact"),
    "callback-outcome": (cc.CallbackOutcome, "The dialler's result for a callback"),
    "supervise": (cc.Supervise, "Supervisor: monitor, whisper, barge in, stop, take over"),
    "offer": (cc.OfferContact, "Supervisor: offer a waiting contact to a chosen agent"),
}


def _body_optional(model: type[Command]) -> bool:
    """Every body field has a default (hold and resume: the agent acting; abandon, end,
    wrap-up, overflow): the command may be sent without a body."""
    return all(not f.is_required() for name, f in model.model_fields.items() if name not in model.targets())


_NO_BODY_NEEDED = {path for path, (model, _) in _CONTACT_COMMANDS.items() if _body_optional(model)}


add_command_routes(
    router,
    "/contacts/{contact_id}",
    [
        CommandRoute(path, model, summary, name=f"contact_{path.replace('-', '_')}", body_optional=path in _NO_BODY_NEEDED)
        for path, (model, summary) in _CONTACT_COMMANDS.items()
    ],
)


# ------------------------------------------------------------------------ views
@router.get(
    "/wallboard",
    response_model=Wallboard,
    summary="Agents by state; per queue: waiting, longest wait, service level and abandons today",
)
@quick_read
def get_wallboard(
    hotline: Hotline = Depends(get_hotline), _: Actor = allow(Action.CONTACT_CENTER_READ), _ryw: None = ReadYourWrites
) -> dict[str, Any]:
    with hotline.read_store.engine.connect() as conn:
        return wallboard.wallboard(conn, hotline.clock.now(), hotline.settings.time_zone)


@router.get(
    "/queues/{queue_id}/waiting",
    response_model=list[WaitingContact],
    summary="A queue's waiting contacts in the order they will be served",
)
def waiting(
    queue_id: str, hotline: Hotline = Depends(get_hotline), _: Actor = allow(Action.CONTACT_CENTER_READ), _ryw: None = ReadYourWrites
) -> list[dict[str, Any]]:
    with hotline.read_store.engine.connect() as conn:
        if not wallboard.queue_known(conn, queue_id):
            raise NotFound(f"no queue {queue_id}")
        return wallboard.waiting_contacts(conn, hotline.clock.now(), queue_id)


@router.get("/contacts/{contact_id}/position", response_model=QueuePosition, summary="Where a waiting contact is in its queue")
@quick_read
def position(
    contact_id: str, hotline: Hotline = Depends(get_hotline), _: Actor = allow(Action.CONTACT_CENTER_READ), _ryw: None = ReadYourWrites
) -> dict[str, Any]:
    with hotline.read_store.engine.connect() as conn:
        found = wallboard.queue_position(conn, hotline.clock.now(), contact_id)
    if found is None:
        raise NotFound(f"contact {contact_id} is not waiting in a queue")
    return found


@router.get("/agents", response_model=list[AgentView], summary="Logged-in agents with state and time in state")
def list_agents(
    hotline: Hotline = Depends(get_hotline),
    _: Actor = allow(Action.CONTACT_CENTER_READ),
    state: AgentStateName | None = Query(None, description="Only agents in this state"),
) -> list[dict[str, Any]]:
    with hotline.read_store.engine.connect() as conn:
        return wallboard.agents(conn, hotline.clock.now(), state)


@router.get(
    "/agents/{agent_id}/desk",
    response_model=Desk,
    summary="An agent's console: current offer, contacts, wrap-ups, grabbable work",
    responses={404: {"description": "No staff member or agent with that id"}},
)
@quick_read
def desk(
    agent_id: str, hotline: Hotline = Depends(get_hotline), actor: Actor = allow(Action.AGENTS_DESK), _ryw: None = ReadYourWrites
) -> dict[str, Any]:
    authorize(actor, Action.AGENTS_DESK, Access(subject=agent_id))
    with hotline.read_store.engine.connect() as conn:
        shown = agent_desk.desk(conn, agent_id, hotline.clock.now())
        # A desk nobody has: a typo in a supervisor's link, not an agent who is away. An
        # agent's own desk is always theirs (staff from an identity provider are not
        # enrolled here until they first sign in to a queue).
        if shown["agent"]["state"] == "unknown" and agent_id != actor.id and not staff.exists(conn, agent_id):
            raise NotFound(f"no staff member or agent {agent_id!r}", agent_id=agent_id)
        # Articles for the contact in hand (its subject, its requests' categories); a use
        # of one is recorded through /agents/{agent_id}/suggestions.
        current = agent_desk.current_contact(conn, agent_id)
        shown["suggestions"] = kb.suggest(conn, current["text"], current["language"], 5, current["codes"])[0] if current else []
    return shown


# ------------------------------------------------------------------------ live feeds (SSE)
def _sse(event: str, data: Any) -> str:
    return f"event: {event}\ndata: {json.dumps(data, default=_json_default, ensure_ascii=False)}\n\n"


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    return str(value)


async def _live(request: Request, hotline: Hotline, event: str, read: Any, *, topic: str, once: bool) -> AsyncIterator[str]:
    """Pushes ``read()`` when its read model changes (the live feed says so: no polling),
    and at least every heartbeat: figures that depend on the time alone (the longest wait)
    move without an event."""
    feed = LiveFeed.of(hotline)
    subscriber = feed.subscribe([topic])
    last: str | None = None
    heartbeat = False
    try:
        while not await request.is_disconnected():
            try:
                data = await asyncio.to_thread(read)
            except STORE_UNAVAILABLE as exc:
                if not store_unavailable(exc):
                    raise
                # The answer has started (200, a stream): no 503 can be sent now. The stream
                # ends; an EventSource reconnects by itself and finds the store back, or a 503.
                log.warning("live feed %s ended, store unavailable: %s", event, exc)
                return
            body = json.dumps(data, default=_json_default, sort_keys=True)
            if body != last or heartbeat:
                last = body
                yield _sse(event, data)
                if once:
                    return
            heartbeat = not await subscriber.changed(LIVE_HEARTBEAT_SECONDS)
    finally:
        feed.unsubscribe(subscriber)


def _sse_answer(event: str, model: str) -> dict[str, Any]:
    """The document's description of a feed: each event's ``data`` is JSON of ``model``."""
    data = {"type": "string", "contentMediaType": "application/json", "contentSchema": {"$ref": f"#/components/schemas/{model}"}}
    event_schema = {"type": "object", "required": ["event", "data"], "properties": {"event": {"const": event}, "data": data}}
    return {
        "description": f"text/event-stream of '{event}' events: one now, then one on every change (at least every 15 s)",
        "content": {"text/event-stream": {"schema": event_schema}},
    }


def _stream(generator: AsyncIterator[str]) -> StreamingResponse:
    return StreamingResponse(generator, media_type="text/event-stream", headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})


@router.get(
    "/live/wallboard",
    summary="Server-sent events: the wallboard, pushed on every change",
    response_class=StreamingResponse,
    responses={200: _sse_answer("wallboard", "Wallboard")},
)
async def live_wallboard(
    request: Request, hotline: Hotline = Depends(get_hotline), _: Actor = allow(Action.CONTACT_CENTER_READ), once: bool = False
) -> StreamingResponse:
    def read() -> dict[str, Any]:
        with hotline.read_store.engine.connect() as conn:
            board = wallboard.wallboard(conn, hotline.clock.now(), hotline.settings.time_zone)
        board.pop("at", None)
        for q in board["queues"]:
            q["longest_wait_seconds"] = round(q["longest_wait_seconds"])  # no push per tenth of a second
        return board

    return _stream(_live(request, hotline, "wallboard", read, topic="wallboard", once=once))


@router.get(
    "/live/agents/{agent_id}",
    summary="Server-sent events: offers and changes on one agent's desk",
    response_class=StreamingResponse,
    responses={200: _sse_answer("desk", "Desk")},
)
async def live_agent(
    agent_id: str, request: Request, hotline: Hotline = Depends(get_hotline), actor: Actor = allow(Action.AGENTS_DESK), once: bool = False
) -> StreamingResponse:
    authorize(actor, Action.AGENTS_DESK, Access(subject=agent_id))

    def read() -> dict[str, Any]:
        with hotline.read_store.engine.connect() as conn:
            d = agent_desk.desk(conn, agent_id, hotline.clock.now())
        d["agent"].pop("seconds_in_state", None)
        for w in d["grabbable"]:
            w.pop("wait_seconds", None)
        return d

    return _stream(_live(request, hotline, "desk", read, topic=f"agent_desk:{agent_id}", once=once))
