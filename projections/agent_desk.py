"""Each agent's desk: the contact offered to them now, the contacts they handle, those in
wrap-up, and the waiting work they may grab (grab-mode queues). The live feed pushes it.

The citizen's number and other personal data are not copied here (they stay in the
events' ``personal`` fields, where crypto-shredding can erase them): the desk shows the
citizen id, from which the CRM view (citizen history) is opened.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from domain.contact_center.agents import Agent as A
from domain.contact_center.contacts import Contact as C
from domain.envelope import Envelope
from domain.recordings.aggregate import Recording
from projections import request_status, wallboard
from projections.base import Projection, Rows, UtcDateTime

# Version 2: whether the call is being recorded (a demand, or the queue's policy).
# Version 3: asked or recording, until the recording or the agent's leg ends.
projection = Projection("agent_desk", version=3)
DESK = projection.table(
    "cc_desk",
    sa.Column("agent_id", sa.String(64), primary_key=True),
    sa.Column("contact_id", sa.String(36), primary_key=True),
    sa.Column("role", sa.String(10), index=True),  # offer / active / wrap_up
    sa.Column("queue_id", sa.String(64)),
    sa.Column("media", sa.String(10)),
    sa.Column("since", UtcDateTime),
    sa.Column("wrap_until", UtcDateTime),
)
CONTACTS = projection.table(
    "cc_desk_contacts",
    sa.Column("contact_id", sa.String(36), primary_key=True),
    sa.Column("channel", sa.String(20)),
    sa.Column("direction", sa.String(10)),
    sa.Column("language", sa.String(5)),
    sa.Column("subject", sa.String(500)),
    sa.Column("citizen_id", sa.String(36)),
    sa.Column("status", sa.String(20)),
    sa.Column("on_hold", sa.Boolean),
    sa.Column("offer_kind", sa.String(12)),
    sa.Column("request_ids", sa.Text),  # JSON list
    # "asked" (a demand the PBX has not acted on yet) or "recording": the agent must know.
    sa.Column("recording", sa.String(10)),
)
# Each recording's call and agent (its later events name only the recording). Kept: a
# row per recording, so that its end still tells whose desk changed.
RECORDED = projection.table(
    "cc_desk_recordings",
    sa.Column("recording_id", sa.String(36), primary_key=True),
    sa.Column("contact_id", sa.String(36)),
    sa.Column("agent_id", sa.String(64)),
)


def _desk(env: Envelope, rows: Rows, role: str, **extra: Any) -> None:
    d = env.data
    row = rows.get(DESK.name, d["agent_id"], d["contact_id"]) or {
        "agent_id": d["agent_id"],
        "contact_id": d["contact_id"],
        "queue_id": d.get("queue_id"),
        "media": d.get("media"),
        "wrap_until": None,
    }
    row.update(role=role, since=env.time, **extra)
    rows.put(DESK.name, row)


@projection.on(A.Reserved)
def reserved(env: Envelope, rows: Rows) -> None:
    _desk(env, rows, "offer")


@projection.on(A.ContactStarted)
def started(env: Envelope, rows: Rows) -> None:
    _desk(env, rows, "active")


@projection.on(A.OfferLost, A.WrapUpCompleted)
def gone(env: Envelope, rows: Rows) -> None:
    rows.delete(DESK.name, env.data["agent_id"], env.data["contact_id"])


@projection.on(A.ContactFinished)
def finished(env: Envelope, rows: Rows) -> None:
    until = datetime.fromisoformat(env.data["wrap_until"])
    if until > env.time:
        _desk(env, rows, "wrap_up", wrap_until=until)
    else:
        rows.delete(DESK.name, env.data["agent_id"], env.data["contact_id"])


def _contact_set(env: Envelope, rows: Rows, **changes: Any) -> None:
    row = rows.get(CONTACTS.name, env.aggregate_id)
    if row is not None:
        row.update(changes)
        rows.put(CONTACTS.name, row)


@projection.on(C.Arrived)
def arrived(env: Envelope, rows: Rows) -> None:
    d = env.data
    rows.put(
        CONTACTS.name,
        {
            "contact_id": env.aggregate_id,
            "channel": d["channel"],
            "direction": d["direction"],
            "language": d["language"],
            "subject": d["subject"],
            "citizen_id": d["citizen_id"],
            "status": "arrived",
            "on_hold": False,
            "offer_kind": None,
            "request_ids": "[]",
            "recording": None,
        },
    )


# The contact's status after each of these events.
CONTACT_STATUS_AFTER: dict[type, str] = {
    C.Queued: "queued",
    C.Answered: "connected",
    C.CallbackAttempted: "dialing",
    C.CallbackConnected: "connected",
    C.Ended: "wrap_up",
    C.CallbackScheduled: "scheduled",
}


@projection.on(*CONTACT_STATUS_AFTER)
def status(env: Envelope, rows: Rows) -> None:
    _contact_set(env, rows, status=CONTACT_STATUS_AFTER[env.event_class], on_hold=False)


@projection.on(C.Offered)
def offered(env: Envelope, rows: Rows) -> None:
    _contact_set(env, rows, offer_kind=env.data["kind"])


@projection.on(C.Held, C.Resumed)
def hold(env: Envelope, rows: Rows) -> None:
    _contact_set(env, rows, on_hold=env.event_class is C.Held)


@projection.on(C.RequestLinked)
def request_linked(env: Envelope, rows: Rows) -> None:
    row = rows.get(CONTACTS.name, env.aggregate_id)
    if row is not None:
        ids = json.loads(row["request_ids"] or "[]")
        ids.append(env.data["request_id"])
        _contact_set(env, rows, request_ids=json.dumps(ids))


@projection.on(C.RecordingDemanded)
def recording_demanded(env: Envelope, rows: Rows) -> None:
    row = rows.get(CONTACTS.name, env.aggregate_id)
    if row is not None and row.get("recording") != "recording":
        rows.put(CONTACTS.name, {**row, "recording": "asked"})


@projection.on(C.Transferred)
def transferred(env: Envelope, rows: Rows) -> None:
    # A cold transfer ends the agent's leg and its bridge, and a recording of it with them.
    if env.data["mode"] == "cold":
        _contact_set(env, rows, recording=None)


@projection.on(Recording.Started, Recording.Completed)
def recording(env: Envelope, rows: Rows) -> None:
    """A recording of the call runs from Started (asked or by the queue's policy) to
    Completed (its bridge went)."""
    started = env.event_class is Recording.Started
    if started:
        contact_id = env.data["contact_id"]
        rows.put(RECORDED.name, {"recording_id": env.aggregate_id, "contact_id": contact_id, "agent_id": env.data["agent_id"]})
    else:
        contact_id = (rows.get(RECORDED.name, env.aggregate_id) or {}).get("contact_id")
    row = rows.get(CONTACTS.name, contact_id) if contact_id else None
    if row is not None:
        rows.put(CONTACTS.name, {**row, "recording": "recording" if started else None})


@projection.on(C.WrappedUp, C.Abandoned, C.CallbackGaveUp)
def closed(env: Envelope, rows: Rows) -> None:
    rows.delete(CONTACTS.name, env.aggregate_id)


@projection.on(C.Overflowed)
def overflowed(env: Envelope, rows: Rows) -> None:
    if env.data["to"] == "voicemail":
        rows.delete(CONTACTS.name, env.aggregate_id)


@projection.signals
def desk_of(env: Envelope, rows: Rows) -> list[str]:
    """An agent's desk changes with their offers, calls and wrap-ups (the agent's events),
    a cold transfer away from them and a recording of their call; a contact's own events
    (hold, linked request) are announced by contact."""
    agent = env.data.get("agent_id") or env.data.get("from_agent_id")
    if agent is None and env.event_class is Recording.Completed:
        agent = (rows.get(RECORDED.name, env.aggregate_id) or {}).get("agent_id")
    return [str(agent)] if agent else [f"contact-{env.aggregate_id}"]


# ------------------------------------------------------------------------ queries
def desk(conn: Connection, agent_id: str, now: datetime) -> dict[str, Any]:
    """What the agent's console shows: state, offer(s), contacts, wrap-ups, grabbable work."""
    agent = next((a for a in wallboard.agents(conn, now) if a["agent_id"] == agent_id), None)
    if agent is None:
        row = conn.execute(sa.select(wallboard.AGENTS).where(wallboard.AGENTS.c.agent_id == agent_id)).mappings().first()
        agent = {"agent_id": agent_id, "state": row["state"] if row else "unknown"}
    q = (
        sa.select(
            DESK,
            CONTACTS.c.channel,
            CONTACTS.c.direction,
            CONTACTS.c.language,
            CONTACTS.c.subject,
            CONTACTS.c.citizen_id,
            CONTACTS.c.status,
            CONTACTS.c.on_hold,
            CONTACTS.c.offer_kind,
            CONTACTS.c.request_ids,
            CONTACTS.c.recording,
        )
        .select_from(DESK.outerjoin(CONTACTS, CONTACTS.c.contact_id == DESK.c.contact_id))
        .where(DESK.c.agent_id == agent_id)
        .order_by(DESK.c.since)
    )
    offers: list[dict[str, Any]] = []
    active: list[dict[str, Any]] = []
    wrapping: list[dict[str, Any]] = []
    for r in conn.execute(q).mappings():
        item = dict(r)
        item["request_ids"] = json.loads(item["request_ids"] or "[]")
        {"offer": offers, "active": active, "wrap_up": wrapping}[item["role"]].append(item)
    grabbable: list[dict[str, Any]] = []
    grab_queues = {r.queue_id for r in conn.execute(sa.select(wallboard.QUEUES.c.queue_id).where(wallboard.QUEUES.c.grab.is_(True)))}
    for queue_id in sorted(grab_queues & set(agent.get("queues") or [])):
        grabbable.extend(r for r in wallboard.waiting_contacts(conn, now, queue_id) if r["status"] == "queued")
    return {"agent": agent, "offers": offers, "contacts": active, "wrapping": wrapping, "grabbable": grabbable}


def current_contact(conn: Connection, agent_id: str) -> dict[str, Any] | None:
    """The agent's active contact with what suggests articles for it: its subject and the
    descriptions and categories of the requests registered during it."""
    current = (
        conn.execute(
            sa.select(CONTACTS.c.contact_id, CONTACTS.c.subject, CONTACTS.c.language, CONTACTS.c.request_ids)
            .select_from(DESK.join(CONTACTS, CONTACTS.c.contact_id == DESK.c.contact_id))
            .where(DESK.c.agent_id == agent_id, DESK.c.role == "active")
            .order_by(DESK.c.since.desc())
        )
        .mappings()
        .first()
    )
    if current is None:
        return None
    texts, codes, request_id = [current["subject"] or ""], [], None
    for rid in json.loads(current["request_ids"] or "[]"):
        row = request_status.get(conn, rid)
        if row is not None:
            request_id = row["id"]
            texts.append(row["description"] or "")
            codes += [x for x in (row["problem_code"], row["category_id"]) if x]
    return {
        "contact_id": current["contact_id"],
        "language": current["language"],
        "text": " ".join(t for t in texts if t),
        "codes": codes,
        "request_id": request_id,
    }
