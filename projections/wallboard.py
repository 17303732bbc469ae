"""The live wallboard: agents by state, and per queue the waiting count, the longest wait,
the callbacks waiting, today's service level and abandoned calls.

Rows change with the events only; "longest wait" and anything else that depends on the
current time is computed at query time from ``since``, so the board is right without a
timer. Service level today = answered within the queue's threshold ÷ (answered +
abandoned − short abandons), the threshold being the queue's ``sl_seconds`` when
answered: the reports' "service level of offered", so the board and the day's report
agree. A short abandon (hung up within ``SHORT_ABANDON_SECONDS`` of waiting) is counted
among the abandons, but is no failure of service.

Arrived, answered, abandoned (hence service level and ASA) count a contact once, under
the queue it arrived in, as the service-level report does: its first answer only, and an
abandon only if it was never answered, whatever queue it was transferred or overflowed
to. Overflows count under the queue left, and talk time under the queue of the leg that
ended: they describe each queue's own flow and work.

"Today" is the hotline's local calendar day, whose zone the query is given (settings):
the figures are kept per 15-minute slot of UTC time, and a day sums the slots between
its local midnights (23 or 25 hours on a DST change). So the handlers need no zone and
stay pure, and a change of zone needs no replay. Every zone in use today is offset from
UTC by a multiple of 15 minutes.

A callback (scheduled, or a caller's virtual hold: they hung up and keep their place)
counts under "callbacks", never as a caller waiting: nobody is on the line.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, time, timedelta, tzinfo
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from domain.contact_center.agents import Agent as A
from domain.contact_center.contacts import SHORT_ABANDON_SECONDS
from domain.contact_center.contacts import Contact as C
from domain.contact_center.queues import Queue as Q
from domain.envelope import Envelope
from projections.base import Projection, Rows, UtcDateTime

# Version 2: answered and abandoned count under the arrival queue, once (a rebuild redoes them).
# Version 3: short abandons are counted apart.
projection = Projection("wallboard", version=3)
QUEUES = projection.table(
    "cc_queues",
    sa.Column("queue_id", sa.String(64), primary_key=True),
    sa.Column("media", sa.String(10)),
    sa.Column("names", sa.Text),
    sa.Column("sl_percent", sa.Float),
    sa.Column("sl_seconds", sa.Integer),
    sa.Column("grab", sa.Boolean),
    sa.Column("priority", sa.Integer),
    sa.Column("ageing_per_minute", sa.Float),
)
AGENTS = projection.table(
    "cc_agents",
    sa.Column("agent_id", sa.String(64), primary_key=True),
    sa.Column("name", sa.String(200)),
    sa.Column("state", sa.String(20), index=True),
    sa.Column("presence", sa.String(20)),
    sa.Column("reason", sa.String(40)),
    sa.Column("state_since", UtcDateTime),
    sa.Column("queues", sa.Text),  # JSON list
    sa.Column("skills", sa.Text),  # JSON object
    sa.Column("languages", sa.Text),  # JSON list
)
WAITING = projection.table(
    "cc_waiting",
    sa.Column("contact_id", sa.String(36), primary_key=True),
    sa.Column("queue_id", sa.String(64), index=True),
    sa.Column("channel", sa.String(20)),
    sa.Column("language", sa.String(5)),
    sa.Column("priority", sa.Integer),
    sa.Column("since", UtcDateTime),
    sa.Column("status", sa.String(20)),  # queued / offered / scheduled
    sa.Column("offered_to", sa.String(64)),
    sa.Column("virtual", sa.Boolean),  # a callback keeps this place
)
SLOT_SECONDS = 900
# The day's figures per queue and 15-minute slot of UTC time (``epoch seconds // 900``): a
# local day of any zone is a whole number of slots. (The table keeps its name from when
# it had a row per UTC day: a rebuild then replaces it rather than leaving it behind.)
DAY = projection.table(
    "cc_queue_day",
    sa.Column("queue_id", sa.String(64), primary_key=True),
    sa.Column("slot", sa.Integer, primary_key=True, index=True),  # the wallboard reads one day's slots
    sa.Column("arrived", sa.Integer),
    sa.Column("answered", sa.Integer),
    sa.Column("answered_in_sl", sa.Integer),
    sa.Column("abandoned", sa.Integer),
    sa.Column("short_abandoned", sa.Integer),  # of the abandoned, those who hung up at once
    sa.Column("overflowed", sa.Integer),
    sa.Column("wait_seconds", sa.Float),  # total wait of answered contacts (ASA = / answered)
    sa.Column("talk_seconds", sa.Float),
    sa.Column("handled", sa.Integer),
)
# Which queue a live contact belongs to (for the end-of-call figures).
LIVE = projection.table(
    "cc_live",
    sa.Column("contact_id", sa.String(36), primary_key=True),
    sa.Column("queue_id", sa.String(64)),
    sa.Column("channel", sa.String(20)),
    sa.Column("language", sa.String(5)),
    sa.Column("arrival_queue_id", sa.String(64)),  # where its arrival, answer and abandon count
    sa.Column("answered", sa.Boolean),  # answered once already: a later answer or abandon is not counted
)


def _live(env: Envelope, rows: Rows, queue_id: str) -> dict[str, Any]:
    row = rows.get(LIVE.name, env.aggregate_id) or {
        "contact_id": env.aggregate_id,
        "channel": None,
        "language": None,
        "arrival_queue_id": None,
        "answered": False,
    }
    row["queue_id"] = queue_id
    rows.put(LIVE.name, row)
    return row


def _slot(env: Envelope) -> int:
    """The 15-minute slot of UTC time the event falls in."""
    return int(env.time.timestamp() // SLOT_SECONDS)


def _bump(rows: Rows, queue_id: str, slot: int, **inc: float) -> None:
    row = rows.get(DAY.name, queue_id, slot) or {
        "queue_id": queue_id,
        "slot": slot,
        "arrived": 0,
        "answered": 0,
        "answered_in_sl": 0,
        "abandoned": 0,
        "short_abandoned": 0,
        "overflowed": 0,
        "wait_seconds": 0.0,
        "talk_seconds": 0.0,
        "handled": 0,
    }
    for k, v in inc.items():
        row[k] = (row[k] or 0) + v
    rows.put(DAY.name, row)


# ------------------------------------------------------------------------ queues
@projection.on(Q.Defined, Q.Reconfigured)
def queue_defined(env: Envelope, rows: Rows) -> None:
    d = env.data
    old = rows.get(QUEUES.name, d["queue_id"]) or {}
    cfg = d["config"]
    rows.put(
        QUEUES.name,
        {
            "queue_id": d["queue_id"],
            "media": cfg["media"],
            "names": json.dumps(d.get("names", json.loads(old.get("names") or "{}")), ensure_ascii=False),
            "sl_percent": cfg["sl_percent"],
            "sl_seconds": cfg["sl_seconds"],
            "grab": cfg["grab"],
            "priority": cfg["priority"],
            "ageing_per_minute": cfg["ageing_per_minute"],
        },
    )


# ------------------------------------------------------------------------ agents
@projection.on(A.Enrolled)
def agent_enrolled(env: Envelope, rows: Rows) -> None:
    rows.put(
        AGENTS.name,
        {
            "agent_id": env.data["agent_id"],
            "name": env.data["name"],
            "state": "logged_out",
            "presence": "logged_out",
            "reason": None,
            "state_since": env.time,
            "queues": "[]",
            "skills": "{}",
            "languages": "[]",
        },
    )


def _update(rows: Rows, table: str, key: str, changes: dict[str, Any]) -> None:
    """Changes some columns of a row, if the row is there."""
    row = rows.get(table, key)
    if row is not None:
        row.update(changes)
        rows.put(table, row)


def _agent_set(env: Envelope, rows: Rows, **changes: Any) -> None:
    _update(rows, AGENTS.name, env.data["agent_id"], changes)


@projection.on(A.LoggedIn)
def agent_logged_in(env: Envelope, rows: Rows) -> None:
    d = env.data
    _agent_set(env, rows, queues=json.dumps(d["queues"]), skills=json.dumps(d["skills"]), languages=json.dumps(d["languages"]))


@projection.on(A.StateChanged)
def agent_state(env: Envelope, rows: Rows) -> None:
    d = env.data
    _agent_set(env, rows, state=d["state"], presence=d["presence"], reason=d["reason"], state_since=env.time)


@projection.on(A.Reserved)
def agent_reserved(env: Envelope, rows: Rows) -> None:
    # A reservation carries the state it leads to (no state_changed follows it); older
    # reservations carry none and are followed by a state_changed.
    d = env.data
    if d.get("state") is not None and d["state"] != d.get("previous"):
        _agent_set(env, rows, state=d["state"], state_since=env.time)


@projection.on(A.QueuesChanged)
def agent_moved(env: Envelope, rows: Rows) -> None:
    _agent_set(env, rows, queues=json.dumps(env.data["queues"]))


@projection.on(A.SkillsChanged)
def agent_skills(env: Envelope, rows: Rows) -> None:
    _agent_set(env, rows, skills=json.dumps(env.data["skills"]), languages=json.dumps(env.data["languages"]))


@projection.signals
def agent_of(env: Envelope, rows: Rows) -> list[str]:
    """An agent's own line on the board (their state, queues, skills) is announced by
    agent id too: their desk shows it, and must not wake for every other agent."""
    return [str(env.data["agent_id"])] if env.event_class in AGENT_EVENTS else []


AGENT_EVENTS = frozenset({A.Enrolled, A.LoggedIn, A.StateChanged, A.Reserved, A.QueuesChanged, A.SkillsChanged})


# ------------------------------------------------------------------------ contacts
def _waiting_set(env: Envelope, rows: Rows, **changes: Any) -> None:
    _update(rows, WAITING.name, env.aggregate_id, changes)


@projection.on(C.Arrived)
def contact_arrived(env: Envelope, rows: Rows) -> None:
    d = env.data
    rows.put(
        LIVE.name,
        {
            "contact_id": env.aggregate_id,
            "queue_id": d["queue_id"],
            "channel": d["channel"],
            "language": d["language"],
            "arrival_queue_id": d["queue_id"],
            "answered": False,
        },
    )
    if d["direction"] == "inbound":
        _bump(rows, d["queue_id"], _slot(env), arrived=1)


def _put_waiting(env: Envelope, rows: Rows, queue_id: str, *, priority: int, since: str, status: str, virtual: bool) -> None:
    live = _live(env, rows, queue_id)
    rows.put(
        WAITING.name,
        {
            "contact_id": env.aggregate_id,
            "queue_id": queue_id,
            "channel": live["channel"],
            "language": live["language"],
            "priority": priority,
            "since": datetime.fromisoformat(since),
            "status": status,
            "offered_to": None,
            "virtual": virtual,
        },
    )


@projection.on(C.Queued)
def contact_queued(env: Envelope, rows: Rows) -> None:
    d = env.data
    _put_waiting(env, rows, d["queue_id"], priority=d["priority"], since=d["since"], status="queued", virtual=False)


@projection.on(C.Offered)
def contact_offered(env: Envelope, rows: Rows) -> None:
    if env.data["kind"] in ("route", "transfer"):
        _waiting_set(env, rows, status="offered", offered_to=env.data["agent_id"])


@projection.on(C.OfferTimedOut, C.OfferDeclined)
def offer_failed(env: Envelope, rows: Rows) -> None:
    _waiting_set(env, rows, status="queued", offered_to=None)


@projection.on(C.Answered)
def contact_answered(env: Envelope, rows: Rows) -> None:
    d = env.data
    rows.delete(WAITING.name, env.aggregate_id)
    live = rows.get(LIVE.name, env.aggregate_id)
    if live is not None:
        if live.get("answered"):
            return  # answered again after a transfer: counted at its first answer
        live["answered"] = True
        rows.put(LIVE.name, live)
    arrival = (live or {}).get("arrival_queue_id") or d["queue_id"]
    queue = rows.get(QUEUES.name, arrival)
    threshold = queue["sl_seconds"] if queue else 20
    _bump(
        rows,
        arrival,
        _slot(env),
        answered=1,
        answered_in_sl=int(d["wait_seconds"] <= threshold),
        wait_seconds=d["wait_seconds"],
    )


@projection.on(C.CallbackAttempted)
def callback_dialing(env: Envelope, rows: Rows) -> None:
    rows.delete(WAITING.name, env.aggregate_id)


@projection.on(C.Transferred)
def contact_transferred(env: Envelope, rows: Rows) -> None:
    d = env.data
    live = rows.get(LIVE.name, env.aggregate_id)
    if d["mode"] == "cold" and live is not None:
        _bump(rows, live["queue_id"], _slot(env), talk_seconds=d["talk_seconds"], handled=1)


@projection.on(C.Abandoned)
def contact_abandoned(env: Envelope, rows: Rows) -> None:
    rows.delete(WAITING.name, env.aggregate_id)
    live = rows.get(LIVE.name, env.aggregate_id)
    rows.delete(LIVE.name, env.aggregate_id)
    if live is not None and live.get("answered"):
        return  # hung up waiting after a transfer: it was answered, not abandoned
    short = int(env.data["wait_seconds"] < SHORT_ABANDON_SECONDS)
    _bump(rows, (live or {}).get("arrival_queue_id") or env.data["queue_id"], _slot(env), abandoned=1, short_abandoned=short)


@projection.on(C.Overflowed)
def contact_overflowed(env: Envelope, rows: Rows) -> None:
    d = env.data
    _bump(rows, d["from_queue_id"], _slot(env), overflowed=1)
    if d["to"] == "voicemail":
        rows.delete(WAITING.name, env.aggregate_id)
        rows.delete(LIVE.name, env.aggregate_id)
    elif d["to"] == "callback":
        _waiting_set(env, rows, virtual=True)
    else:
        _waiting_set(env, rows, queue_id=d["to_queue_id"])
        _live(env, rows, d["to_queue_id"])


@projection.on(C.CallbackScheduled)
def callback_scheduled(env: Envelope, rows: Rows) -> None:
    # A callback waits, virtually, from when it is due.
    _put_waiting(env, rows, env.data["queue_id"], priority=0, since=env.data["due_at"], status="scheduled", virtual=True)


@projection.on(C.Ended)
def contact_ended(env: Envelope, rows: Rows) -> None:
    live = rows.get(LIVE.name, env.aggregate_id)
    if live is not None:
        _bump(rows, live["queue_id"], _slot(env), talk_seconds=env.data["talk_seconds"], handled=1)


@projection.on(C.WrappedUp, C.CallbackGaveUp)
def contact_done(env: Envelope, rows: Rows) -> None:
    rows.delete(WAITING.name, env.aggregate_id)
    rows.delete(LIVE.name, env.aggregate_id)


# ------------------------------------------------------------------------ queries
def _aware(value: datetime, now: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=now.tzinfo)


def local_day(now: datetime, zone: tzinfo) -> tuple[datetime, datetime]:
    """The UTC bounds [start, end) of the local calendar day ``now`` falls in. Midnight
    missing on a DST change is read before the change (zoneinfo's fold 0): the change's
    own instant, the first of the day."""
    day = now.astimezone(zone).date()
    start = datetime.combine(day, time(), zone).astimezone(UTC)
    end = datetime.combine(day + timedelta(days=1), time(), zone).astimezone(UTC)
    return start, end


def _zone(zone: tzinfo | str | None, now: datetime) -> tzinfo:
    if isinstance(zone, str):
        return ZoneInfo(zone)
    return zone or now.tzinfo or UTC


def _today(conn: Connection, now: datetime, zone: tzinfo) -> dict[str, Any]:
    """Each queue's figures summed over the slots of the local day."""
    start, end = local_day(now, zone)
    first, last = int(start.timestamp()) // SLOT_SECONDS, int(end.timestamp()) // SLOT_SECONDS
    figures = [c for c in DAY.c if c.name not in ("queue_id", "slot")]
    query = (
        sa.select(DAY.c.queue_id, *(sa.func.sum(c).label(c.name) for c in figures))
        .where(DAY.c.slot >= first, DAY.c.slot < last)
        .group_by(DAY.c.queue_id)
    )
    return {r.queue_id: r for r in conn.execute(query)}


def wallboard(conn: Connection, now: datetime, zone: tzinfo | str | None = None) -> dict[str, Any]:
    """Everything a supervisor's wallboard shows, as of ``now``; "today" is the local day
    in ``zone`` (the hotline's ``Settings.time_zone``; by default ``now``'s own zone)."""
    agents: dict[str, int] = {}
    for state, n in conn.execute(sa.select(AGENTS.c.state, sa.func.count()).where(AGENTS.c.state != "logged_out").group_by(AGENTS.c.state)):
        agents[state] = n
    day_rows = _today(conn, now, _zone(zone, now))
    waiting: dict[str, list[datetime]] = {}
    callbacks: dict[str, int] = {}
    for r in conn.execute(sa.select(WAITING.c.queue_id, WAITING.c.since, WAITING.c.status, WAITING.c.virtual)):
        if r.virtual or r.status == "scheduled":
            callbacks[r.queue_id] = callbacks.get(r.queue_id, 0) + 1
        elif r.status in ("queued", "offered"):
            waiting.setdefault(r.queue_id, []).append(_aware(r.since, now))
    queues = []
    for q in conn.execute(sa.select(QUEUES).order_by(QUEUES.c.queue_id)):
        d = day_rows.get(q.queue_id)
        since = waiting.get(q.queue_id, [])
        answered = d.answered if d else 0
        abandoned = d.abandoned if d else 0
        short = (d.short_abandoned or 0) if d else 0
        offered = answered + abandoned - short
        queues.append(
            {
                "queue_id": q.queue_id,
                "names": json.loads(q.names or "{}"),
                "media": q.media,
                "waiting": len(since),
                "longest_wait_seconds": round(max((now - s).total_seconds() for s in since), 1) if since else 0.0,
                "callbacks_scheduled": callbacks.get(q.queue_id, 0),
                "arrived_today": d.arrived if d else 0,
                "answered_today": answered,
                "abandoned_today": abandoned,
                "short_abandoned_today": short,
                "overflowed_today": d.overflowed if d else 0,
                "service_level_today": round(d.answered_in_sl / offered, 4) if d and offered else None,
                "sl_target": {"percent": q.sl_percent, "seconds": q.sl_seconds},
                "asa_seconds": round(d.wait_seconds / answered, 1) if d and answered else None,
                "aht_talk_seconds": round(d.talk_seconds / d.handled, 1) if d and d.handled else None,
            }
        )
    return {"at": now.isoformat(), "agents_by_state": agents, "agents_logged_in": sum(agents.values()), "queues": queues}


def agents(conn: Connection, now: datetime, state: str | None = None) -> list[dict[str, Any]]:
    q = sa.select(AGENTS).where(AGENTS.c.state != "logged_out").order_by(AGENTS.c.agent_id)
    if state:
        q = q.where(AGENTS.c.state == state)
    out = []
    for r in conn.execute(q).mappings():
        row = dict(r)
        row["queues"] = json.loads(row["queues"] or "[]")
        row["skills"] = json.loads(row["skills"] or "{}")
        row["languages"] = json.loads(row["languages"] or "[]")
        row["seconds_in_state"] = round((now - _aware(row["state_since"], now)).total_seconds(), 1) if row["state_since"] else None
        out.append(row)
    return out


def queue_known(conn: Connection, queue_id: str) -> bool:
    return conn.execute(sa.select(QUEUES.c.queue_id).where(QUEUES.c.queue_id == queue_id)).first() is not None


def waiting_contacts(conn: Connection, now: datetime, queue_id: str) -> list[dict[str, Any]]:
    """The queue's waiting contacts in the order they will be served, with positions.

    The order is effective priority (queue weight + contact priority + ageing), then place.
    With one ageing rate per queue it is ``priority − rate × since`` and needs no clock."""
    queue = conn.execute(sa.select(QUEUES).where(QUEUES.c.queue_id == queue_id)).mappings().first()
    rate = queue["ageing_per_minute"] if queue else 0.0
    rows = [
        dict(r) for r in conn.execute(sa.select(WAITING).where(WAITING.c.queue_id == queue_id, WAITING.c.status != "scheduled")).mappings()
    ]
    for r in rows:
        r["since"] = _aware(r["since"], now)
        r["wait_seconds"] = round((now - r["since"]).total_seconds(), 1)
    rows.sort(key=lambda r: (-(r["priority"] + rate * r["wait_seconds"] / 60.0), r["since"], r["contact_id"]))
    for i, r in enumerate(rows, 1):
        r["position"] = i
    return rows


def queue_position(conn: Connection, now: datetime, contact_id: str) -> dict[str, Any] | None:
    row = conn.execute(sa.select(WAITING.c.queue_id).where(WAITING.c.contact_id == contact_id)).first()
    if row is None:
        return None
    for r in waiting_contacts(conn, now, row.queue_id):
        if r["contact_id"] == contact_id:
            return {
                "contact_id": contact_id,
                "queue_id": row.queue_id,
                "position": r["position"],
                "wait_seconds": r["wait_seconds"],
            }
    return None
