"""Server push: the console's screens learn within a moment that what they show changed.

The read store tells the process's :class:`~infra.live_feed.LiveFeed` what each applied
batch touched (a read model's name, and its keys: ``agent_desk:agent-7``,
``request_status:department-transport``; see ``Projection.signals``). Each open page
holds one Server-Sent Events connection (``GET /console/live?topic=…``) for the topics
it shows and may see; an event names the read model, and the page fetches its fragment
again. A signal carries no data, only "this changed": what the page then reads passes the
same permission checks as any read.

The feed is fed by the projections as they apply, in this process (the embedded mode),
or, when the projections run in other processes (the distributed mode, on PostgreSQL),
through PostgreSQL's LISTEN/NOTIFY, which the read store sends inside each transaction.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from typing import Any

from fastapi import Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import StreamingResponse

from api.auth import row_access
from api.console.session import page
from api.routing import HotlineRouter
from domain.access import Access, Action, Scope, allows, scopes
from domain.base import Actor
from infra.live_feed import LiveFeed, Subscriber
from infra.runtime import Hotline
from projections import request_status

router = HotlineRouter(include_in_schema=False)

# What each read model's signals may tell, and to whom.
TOPIC_RULES: dict[str, Action] = {
    "wallboard": Action.CONTACT_CENTER_READ,
    "agent_desk": Action.AGENTS_DESK,
    "request_status": Action.REQUESTS_READ,
    "sla_breaches": Action.SLA_READ,
    "department_workload": Action.SLA_READ,
    "knowledge": Action.KNOWLEDGE_SEARCH,
    "citizen_history": Action.CITIZENS_READ,
    "notifications": Action.NOTIFICATIONS_READ,
    "staff": Action.STAFF_READ,
}
GATHER_SECONDS = 0.05  # signals arriving this close together go out as one
KEEP_ALIVE_SECONDS = 15.0


def may_watch(actor: Actor, topic: str, case: Callable[[str], Access | None] = lambda _: None) -> bool:
    """A read model as a whole only for who reads all of it; a key for who may read that
    key (``case`` tells what the policy needs to know of one request, by id)."""
    name, _, key = topic.partition(":")
    action = TOPIC_RULES.get(name)
    if action is None or not allows(actor, action):
        return False
    if not key:
        return Scope.ALL in scopes(actor, action) or name in ("wallboard", "knowledge")
    kind, _, value = key.partition("-")
    if name in ("agent_desk", "wallboard"):  # an agent's own desk and line on the board
        return allows(actor, action, Access(subject=key)) or Scope.ALL in scopes(actor, action)
    if kind == "department":
        return allows(actor, action, Access.of_department(value))
    if kind == "citizen":
        return allows(actor, action, Access(citizen_id=value))
    if Scope.ALL in scopes(actor, action):
        return True
    if kind == "request":  # one case: for who may read that case (its department, its citizen)
        access = case(value)
        return access is not None and allows(actor, action, access)
    return False


async def stream(request: Request, feed: LiveFeed, subscriber: Subscriber) -> AsyncIterator[str]:
    try:
        yield "retry: 2000\n\n"  # reconnect quickly after a restart
        while True:
            changed = await subscriber.changed(KEEP_ALIVE_SECONDS)
            if not changed:
                yield ": keep-alive\n\n"
                continue
            await asyncio.sleep(GATHER_SECONDS)
            changed |= await subscriber.changed(0)
            for name in sorted(changed):
                yield f"event: {name}\ndata: {json.dumps({'changed': name})}\n\n"
            if await request.is_disconnected():
                break
    finally:
        feed.unsubscribe(subscriber)


def watchable(hotline: Hotline, actor: Actor, topics: list[str]) -> list[str]:
    def case(request_id: str) -> Access | None:
        # Read only for a case's own topic watched by someone who does not read every case.
        with hotline.read_store.engine.connect() as conn:
            row = request_status.get(conn, request_id)
        return row_access(row) if row else None

    return [t for t in topics if may_watch(actor, t, case)]


@router.get("/console/live")
async def live(
    request: Request,
    topic: list[str] = Query(default=[], max_length=20),
    actor: Actor = page(Action.SIGN_IN),
) -> StreamingResponse:
    """One page's live connection: Server-Sent Events for the topics it may watch."""
    hotline: Hotline = request.app.state.hotline
    allowed = frozenset(await run_in_threadpool(lambda: watchable(hotline, actor, topic[:20])))
    feed = LiveFeed.of(hotline)
    subscriber = feed.subscribe(allowed)
    headers: dict[str, Any] = {"Cache-Control": "no-store", "X-Accel-Buffering": "no", "X-Live-Topics": ",".join(sorted(allowed))}
    return StreamingResponse(stream(request, feed, subscriber), media_type="text/event-stream", headers=headers)
