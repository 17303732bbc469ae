"""The durable timer table: every request's planned timers, ordered by when they fall due.

The plan itself is decided by the domain (``TimersScheduled`` events carry it, computed
with the jurisdiction's calendar), so this projection stays a pure function of events.
The timer process (``consumers/timers.py``) reads the pending rows that are due, in due
order, a page at a time: state it does not need stays on disk.

``sla_timer_requests`` keeps each request's latest version and event time, so the timer
process can append a timer event at exactly the next version without loading the
request: if anything happened to the request meanwhile, the append conflicts and the
slow path (load the aggregate, let it decide) takes over.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from domain.base import event_classes
from domain.envelope import Envelope
from domain.requests.aggregate import ServiceRequest as R
from projections.base import Projection, Rows, UtcDateTime

projection = Projection("sla_timers")
TIMERS = projection.table(
    "sla_timers",
    sa.Column("request_id", sa.String(36), primary_key=True),
    sa.Column("key", sa.String(80), primary_key=True),
    sa.Column("kind", sa.String(40), nullable=False),
    sa.Column("due_at", UtcDateTime, nullable=False),
    sa.Column("deadline", UtcDateTime),
    sa.Column("detail", sa.Integer),
    sa.Column("department_id", sa.String(64)),
    sa.Column("state", sa.String(10), nullable=False),  # pending | fired
    sa.Column("fired_at", UtcDateTime),
    sa.Column("event_position", sa.BigInteger),
)
sa.Index("ix_rm_sla_timers_pending", TIMERS.c.state, TIMERS.c.due_at)  # the due scan
REQUESTS = projection.table(
    "sla_timer_requests",
    sa.Column("request_id", sa.String(36), primary_key=True),
    sa.Column("reference", sa.String(32)),
    sa.Column("version", sa.Integer, nullable=False),
    sa.Column("last_event_at", UtcDateTime, nullable=False),
    sa.Column("keys", sa.JSON, nullable=False),  # keys of the current plan
    sa.Column("correlation_id", sa.String(64)),  # the case's, which the fired timers' events carry
)
T, Q = TIMERS.name, REQUESTS.name
PENDING, FIRED = "pending", "fired"


@projection.on(*[cls for cls in event_classes(R) if not issubclass(cls, (R.TimersScheduled, R.TimerFired))])
def request_event(env: Envelope, rows: Rows) -> None:
    _seen(env, rows)


def _seen(env: Envelope, rows: Rows, **changes: Any) -> dict[str, Any]:
    row = rows.get(Q, env.aggregate_id) or {
        "request_id": env.aggregate_id,
        "reference": env.data.get("reference"),
        "keys": [],
        "correlation_id": env.meta.get("correlation_id"),
    }
    row.update(version=env.version, last_event_at=env.time, **changes)
    rows.put(Q, row)
    return row


@projection.on(R.TimersScheduled)
def scheduled(env: Envelope, rows: Rows) -> None:
    old = (rows.get(Q, env.aggregate_id) or {}).get("keys") or []
    new = [t["key"] for t in env.data["timers"]]
    for key in set(old) - set(new):
        row = rows.get(T, env.aggregate_id, key)
        if row is not None and row["state"] == PENDING:
            rows.delete(T, env.aggregate_id, key)  # replanned: obsolete
    for t in env.data["timers"]:
        existing = rows.get(T, env.aggregate_id, t["key"])
        if existing is not None and existing["state"] == FIRED:
            continue
        rows.put(
            T,
            {
                "request_id": env.aggregate_id,
                "key": t["key"],
                "kind": t["kind"],
                "due_at": datetime.fromisoformat(t["at"]),
                "deadline": datetime.fromisoformat(t["deadline"]),
                "detail": t.get("detail"),
                "department_id": t.get("department_id"),
                "state": PENDING,
                "fired_at": None,
                "event_position": None,
            },
        )
    _seen(env, rows, keys=new)


@projection.on(*[cls for cls in event_classes(R) if issubclass(cls, R.TimerFired) and cls is not R.TimerFired])
def fired(env: Envelope, rows: Rows) -> None:
    key = env.data["timer_key"]
    row = rows.get(T, env.aggregate_id, key)
    if row is not None:
        row.update(state=FIRED, fired_at=env.time, event_position=env.position)
        rows.put(T, row)
    _seen(env, rows)


# ------------------------------------------------------------------------ bulk, for the timer process
def mark_fired(conn: Connection, fired: list[tuple[str, str, int, int]], at: datetime) -> None:
    """The ``fired`` handler, in bulk, for timer events the timer process has just
    recorded (``(request_id, key, version, position)``, all with event time ``at``).

    Two statements instead of a read, a decode and an upsert per event: on PostgreSQL
    one UPDATE … FROM unnest(arrays) per table, on SQLite an executemany (one prepared
    statement, looped in C). Only valid when the table's position is just before these
    events: the caller checks that in the same transaction. An UPDATE of an absent row
    changes nothing, as the handler does for the timer; the request's row exists (the
    due query joined it and the projection never deletes one)."""
    if not fired:
        return
    versions: dict[str, int] = {}
    for rid, _, version, _ in fired:
        versions[rid] = max(version, versions.get(rid, 0))
    # Bound through the column type once (UTC; SQLite's text form), not once per row.
    when = TIMERS.c.fired_at.type.dialect_impl(conn.dialect).bind_processor(conn.dialect)
    at_db = when(at) if when else at
    t, q = TIMERS.name, REQUESTS.name
    if conn.dialect.name == "postgresql":
        conn.exec_driver_sql(
            f"UPDATE {t} SET state = %s, fired_at = %s, event_position = v.pos"
            " FROM unnest(%s::text[], %s::text[], %s::bigint[]) AS v(rid, k, pos)"
            f" WHERE {t}.request_id = v.rid AND {t}.key = v.k",
            (FIRED, at_db, [f[0] for f in fired], [f[1] for f in fired], [f[3] for f in fired]),
        )
        conn.exec_driver_sql(
            f"UPDATE {q} SET version = v.version, last_event_at = %s"
            " FROM unnest(%s::text[], %s::int[]) AS v(rid, version)"
            f" WHERE {q}.request_id = v.rid",
            (at_db, list(versions), list(versions.values())),
        )
        return
    conn.exec_driver_sql(
        f"UPDATE {t} SET state = ?, fired_at = ?, event_position = ? WHERE request_id = ? AND key = ?",
        [(FIRED, at_db, pos, rid, key) for rid, key, _, pos in fired],
    )
    conn.exec_driver_sql(
        f"UPDATE {q} SET version = ?, last_event_at = ? WHERE request_id = ?",
        [(v, at_db, rid) for rid, v in versions.items()],
    )


# ------------------------------------------------------------------------ queries
_DUE_COLUMNS = (
    TIMERS.c.request_id,
    TIMERS.c.key,
    TIMERS.c.kind,
    TIMERS.c.deadline,
    TIMERS.c.detail,
    TIMERS.c.department_id,
    REQUESTS.c.version,
    REQUESTS.c.last_event_at,
    REQUESTS.c.correlation_id,
)


def walk_due_index(conn: Connection) -> None:
    """For the rest of this transaction, makes PostgreSQL read the due page by walking
    the pending index in due order and stopping at the limit.

    With statistics that say the table is small (after a bulk load, before autovacuum
    analyses it) the planner reads every due row with a bitmap scan and sorts them: a
    cost that grows with the number due, per page (350 ms for 100,000 due, against
    1 ms). A parallel plan only adds worker start-up to a page of a few thousand rows."""
    if conn.dialect.name == "postgresql":
        conn.exec_driver_sql(
            "SELECT set_config('enable_sort', 'off', true), set_config('enable_bitmapscan', 'off', true),"
            " set_config('max_parallel_workers_per_gather', '0', true)"
        )


def due_timers(conn: Connection, now: datetime, limit: int = 1000, *, full: bool = True) -> list[dict[str, Any]]:
    """Pending timers due by ``now``, oldest first, with their request's latest version.

    ``full=False`` reads only what firing needs. Rows become dicts by zipping the column
    names (SQLAlchemy's ``RowMapping`` to dict costs several times more per row)."""
    columns = (*TIMERS.c, REQUESTS.c.version, REQUESTS.c.last_event_at, REQUESTS.c.correlation_id) if full else _DUE_COLUMNS
    q = (
        sa.select(*columns)
        .join(REQUESTS, REQUESTS.c.request_id == TIMERS.c.request_id)
        .where(TIMERS.c.state == PENDING, TIMERS.c.due_at <= now)
        .order_by(TIMERS.c.due_at)
        .limit(limit)
    )
    result = conn.execute(q)
    names = list(result.keys())
    return [dict(zip(names, row, strict=True)) for row in result]


def timer_status(conn: Connection, now: datetime) -> dict[str, Any]:
    """What the timer table holds: pending (due and not yet due) and fired, by kind."""
    out: dict[str, Any] = {"pending_due": 0, "pending_later": 0, "fired": 0, "by_kind": {}, "next_due_at": None}
    q = sa.select(TIMERS.c.kind, TIMERS.c.state, (TIMERS.c.due_at <= now).label("due"), sa.func.count()).group_by(
        TIMERS.c.kind, TIMERS.c.state, "due"
    )
    for kind, state, due, n in conn.execute(q):
        bucket = "fired" if state == FIRED else ("pending_due" if due else "pending_later")
        out[bucket] += n
        out["by_kind"].setdefault(kind, {"pending": 0, "fired": 0})["fired" if state == FIRED else "pending"] += n
    nxt = conn.execute(sa.select(sa.func.min(TIMERS.c.due_at)).where(TIMERS.c.state == PENDING, TIMERS.c.due_at > now)).scalar()
    out["next_due_at"] = nxt.isoformat() if nxt else None
    return out


def request_timers(conn: Connection, request_id: str) -> list[dict[str, Any]]:
    q = sa.select(TIMERS).where(TIMERS.c.request_id == request_id).order_by(TIMERS.c.due_at)
    return [dict(r) for r in conn.execute(q).mappings()]
