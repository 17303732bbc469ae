"""/audit: the auditor's views of the event log (role auditor; ``Action.AUDIT_READ``).

* ``GET /audit/{stream}/{id}``: every event of one aggregate with who (actor, role),
  when, and within which correlation and causation, and its state as of a version or a
  time (``?as_of=12``, ``?as_of=2026-11-20T09:00:00+01:00``), rebuilt from its events
  by the same fold the repository uses (``domain/audit.py``).
* ``GET /audit/trace/{key}``: a case trace, every event sharing a correlation id across
  aggregates in global order; ``key`` may be a request's reference (or id), which
  follows the case: its own events, the contact it came in on, its work orders, and
  everything that shares a correlation with them (notifications, timers, callbacks).
* ``GET /audit/read-models/{name}?as_of=T``: what a read model showed at T, replayed up
  to the log's position at T into a scratch database (``sla-breaches``,
  ``department-workloads``); ``&reference=`` answers "was this request on the overdue
  list then?".

The functions below serve the CLI (``hotline audit``) and the console page too. Every
answer holding personal data is recorded as a personal-data read (``api/read_log.py``).
"""

from __future__ import annotations

import tempfile
import uuid
from collections import defaultdict
from collections.abc import Callable, Iterable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from fastapi import Depends, Query

from api.auth import allow
from api.deps import get_hotline
from api.read_log import PersonalDataRead, personal_data_read
from api.responses import AggregateHistory, CaseTrace, ReadModelAsOf
from api.routers.supervision import BREACHES_DUE_WITHIN_HOURS, WORKLOADS_DUE_WITHIN_HOURS, department_loads
from api.routing import HotlineRouter
from consumers.fast_decode import decoder_for
from domain.access import Action, allows
from domain.audit import AsOf, holds_personal, linked_ids, mask_personal, public_state, rebuild, resolve, step
from domain.base import Actor, InvalidCommand, NotFound, _owner_of
from domain.events import aggregate_streams
from infra.read_store import ReadStore, make_engine
from infra.runtime import Hotline
from projections import audit_trace, department_workload, sla_breaches
from projections.base import MemoryRows, Projection

router = HotlineRouter(prefix="/audit", tags=["audit"])

# Aggregates named by a natural key as well as by id (``/audit/agent/op-anna``).
NATURAL_KEYS: dict[str, Callable[[str], uuid.UUID]] = {}


def _natural_keys() -> dict[str, Callable[[str], uuid.UUID]]:
    if not NATURAL_KEYS:
        from domain.calendars.aggregate import calendar_id
        from domain.catalogue.aggregate import catalogue_id
        from domain.contact_center.agents import agent_uuid
        from domain.contact_center.contacts import contact_uuid_for
        from domain.contact_center.queues import queue_uuid
        from domain.identity.staff import staff_id
        from domain.requests.aggregate import request_id_for

        NATURAL_KEYS.update(
            request=request_id_for,
            agent=agent_uuid,
            queue=queue_uuid,
            contact=contact_uuid_for,
            staff=staff_id,
            catalogue=catalogue_id,
            calendar=calendar_id,
        )
    return NATURAL_KEYS


# Streams whose aggregates belong to one case: a trace by reference takes their whole
# history (an agent's or a queue's stream is a whole day: only the events that share a
# correlation with the case).
CASE_STREAMS = frozenset({"request", "contact", "workorder", "notification", "attachment"})


def aggregate_id(stream: str, key: str) -> uuid.UUID:
    try:
        return uuid.UUID(key)
    except ValueError:
        derive = _natural_keys().get(stream)
        if derive is None:
            raise NotFound(f"no {stream} {key}: give its id", code="aggregate_not_found") from None
        return derive(key)


def auditable(stream: str) -> None:
    """Refuses a stream that is not audited here: the hotline's own bookkeeping
    (credentials, API keys, sign-in codes, idempotency records) holds secrets and no step
    of a case, and is never published."""
    streams = sorted(name for name, cls in aggregate_streams().items() if cls.PUBLISHED)
    if stream not in streams:
        raise NotFound(f"no stream {stream!r} to audit", code="stream_not_found", streams=streams)


def stored_events(hotline: Hotline, stream: str, key: str) -> tuple[uuid.UUID, list[Any]]:
    """The aggregate's events, oldest first, from the event store itself."""
    auditable(stream)
    aid = aggregate_id(stream, key)
    events = list(hotline.store.events.get(aid))
    if not events or stream != _owner_of(type(events[0])).STREAM:
        raise NotFound(f"no {stream} {key}", code="aggregate_not_found")
    return aid, events


def _positions(hotline: Hotline, ids: Iterable[str]) -> dict[tuple[str, int], int]:
    with hotline.read_store.engine.connect() as conn:
        return {(r["aggregate_id"], r["version"]): r["position"] for r in audit_trace.by_aggregate(conn, ids)}


def _citizens_of(entries: Iterable[dict[str, Any]]) -> set[str]:
    found = set()
    for e in entries:
        data = e.get("data") or e
        for key in ("citizen_id",):
            if data.get(key):
                found.add(str(data[key]))
        if e.get("stream") == "citizen" and e.get("id"):
            found.add(str(e["id"]))
    return found


def history(
    hotline: Hotline, actor: Actor, stream: str, key: str, as_of: str | None = None, read: PersonalDataRead | None = None
) -> dict[str, Any]:
    """One aggregate's full history, and its state as of ``as_of`` (now when None)."""
    asked = AsOf.parse(as_of)
    aid, events = stored_events(hotline, stream, key)
    personal = allows(actor, Action.CITIZENS_READ)
    where = _positions(hotline, [str(aid)])
    steps = [step(e, position=where.get((str(aid), e.originator_version)), personal=personal) for e in events]
    version = resolve(events, asked) if asked else events[-1].originator_version
    state = public_state(rebuild(events, version)) if version else None
    if state is not None and not personal:
        state = mask_personal(state)
    answer = {
        "stream": stream,
        "id": str(aid),
        "aggregate": type(rebuild(events[:1])).__name__,
        "versions": events[-1].originator_version,
        "as_of": {
            "asked": as_of,
            "version": version,
            "time": asked.moment.isoformat() if asked and asked.moment else None,
            "at": events[version - 1].timestamp.isoformat() if version else None,
        },
        "state": state,
        "history": steps,
    }
    shown = [s for s in steps if holds_personal(s["data"])]
    if personal and read is not None and (shown or (state and holds_personal(state))):
        citizens = _citizens_of(steps) | ({str(state["citizen_id"])} if state and state.get("citizen_id") else set())
        read.record(actor, what=f"{stream} history", subject=str(aid), citizen_ids=citizens, count=len(shown))
    return answer


def rebuild_as_of(hotline: Hotline, stream: str, key: str, asked: AsOf) -> tuple[int | None, Any]:
    """(version, aggregate) as of ``asked``: as of a version, only the events up to it are
    read; as of a time, the stream's events (their times say which version it was; a
    trace-index lookup instead cost more than decoding the rest of a 50-event stream)."""
    if asked.version is None:
        _, events = stored_events(hotline, stream, key)
        version = resolve(events, asked)
        return version, rebuild(events, version) if version else None
    auditable(stream)
    aid = aggregate_id(stream, key)
    events = list(hotline.store.events.get(aid, lte=asked.version))
    if not events or stream != _owner_of(type(events[0])).STREAM:
        raise NotFound(f"no {stream} {key}", code="aggregate_not_found")
    version = resolve(events, asked)  # refuses a version the aggregate never had
    return version, rebuild(events, version)


# ------------------------------------------------------------------------ case trace
def _request_id(hotline: Hotline, key: str) -> uuid.UUID | None:
    """The request a trace key names (a reference or an id), if there is one."""
    from domain.requests.aggregate import ServiceRequest, request_id_for

    try:
        rid = uuid.UUID(key)
    except ValueError:
        rid = request_id_for(key)
    first = list(hotline.store.events.get(rid, limit=1))
    return rid if first and _owner_of(type(first[0])) is ServiceRequest else None


def _bodies(hotline: Hotline, rows: list[dict[str, Any]]) -> dict[tuple[str, int], Any]:
    """The stored events the index rows name, one read per aggregate."""
    versions: dict[str, list[int]] = defaultdict(list)
    for r in rows:
        versions[r["aggregate_id"]].append(r["version"])
    found: dict[tuple[str, int], Any] = {}
    for aid, vs in versions.items():
        for event in hotline.store.events.get(uuid.UUID(aid), gt=min(vs) - 1, lte=max(vs)):
            found[(aid, event.originator_version)] = event
    return found


def trace(hotline: Hotline, actor: Actor, key: str, read: PersonalDataRead | None = None) -> dict[str, Any]:
    """Everything that shares a correlation id (``key``), or a case's whole trace (``key``
    a request's reference or id), in global order."""
    with hotline.read_store.engine.connect() as conn:
        rows = audit_trace.by_correlation(conn, [key])
        mode = "correlation"
        rid = None if rows else _request_id(hotline, key)
        if rid is not None:
            mode = "case"
            rows = _case_rows(hotline, conn, rid)
    if not rows:
        raise NotFound(f"nothing carries the correlation id {key!r}, and no request is {key!r}", code="trace_not_found")
    bodies = _bodies(hotline, rows)
    personal = allows(actor, Action.CITIZENS_READ)
    steps = []
    for r in rows:
        event = bodies.get((r["aggregate_id"], r["version"]))
        if event is not None:  # absent only if the store lost it: `hotline audit verify` says so
            steps.append(step(event, position=r["position"], personal=personal))
    correlations = sorted({s["correlation_id"] for s in steps if s["correlation_id"]})
    aggregates: dict[str, dict[str, Any]] = {}
    for s in steps:
        agg = aggregates.setdefault(s["id"], {"stream": s["stream"], "id": s["id"], "events": 0})
        agg["events"] += 1
    shown = [s for s in steps if holds_personal(s["data"])]
    if personal and read is not None and shown:
        read.record(actor, what="case trace", subject=key, citizen_ids=_citizens_of(steps), count=len(shown))
    return {
        "key": key,
        "mode": mode,
        "request_id": str(rid) if rid else None,
        "correlation_ids": correlations,
        "aggregates": list(aggregates.values()),
        "events": steps,
    }


def _case_rows(hotline: Hotline, conn: sa.Connection, rid: uuid.UUID) -> list[dict[str, Any]]:
    """A request's case: its events; the aggregates it names (contact, work order) and the
    case aggregates that share a correlation with it (notifications), whole; and every
    other event sharing a correlation with any of those (the agent answering the call,
    the timer's run)."""
    own: list[Any] = list(hotline.store.events.get(rid))
    correlations = {str(rid)} | {str(e.meta.get("correlation_id")) for e in own if e.meta.get("correlation_id")}
    case_ids = {str(rid)} | {str(i) for i in linked_ids(own)}
    for r in audit_trace.by_correlation(conn, correlations):
        if r["stream"] in CASE_STREAMS and r["stream"] != "request":
            case_ids.add(r["aggregate_id"])
    case_rows = [r for r in audit_trace.by_aggregate(conn, case_ids) if r["stream"] in CASE_STREAMS]
    # Never into other requests: a call that registered two requests shows both calls' steps, not the other case.
    case_rows = [r for r in case_rows if r["stream"] != "request" or r["aggregate_id"] == str(rid)]
    correlations |= {r["correlation_id"] for r in case_rows if r["correlation_id"]}
    shared = audit_trace.by_correlation(conn, correlations)
    merged = {r["position"]: r for r in (*case_rows, *shared) if r["stream"] != "request" or r["aggregate_id"] == str(rid)}
    return [merged[p] for p in sorted(merged)]


# ------------------------------------------------------------------------ read models as of T
def log_position_at(hotline: Hotline, moment: datetime) -> int:
    """How far the log had gone at ``moment`` (see ``audit_trace.position_at``); the tail
    the index has not applied yet is read from the store."""
    with hotline.read_store.engine.connect() as conn:
        found = audit_trace.position_at(conn, moment)
        indexed = audit_trace.indexed_position(conn)
    if found is not None:
        return found
    for env in hotline.store.iter_envelopes(after=indexed):
        if env.time > moment:
            return env.position - 1
    return hotline.store.max_position()


# name -> the projections it needs replayed (the workloads' deadlines come from the SLA list).
READ_MODELS: dict[str, tuple[Projection, ...]] = {
    "sla-breaches": (sla_breaches.projection,),
    "department-workloads": (department_workload.projection, sla_breaches.projection),
}


def replay_until(hotline: Hotline, projections: tuple[Projection, ...], position: int, folder: Path) -> sa.Engine:
    """The projections' rows after every event up to ``position``, in a scratch SQLite
    database in ``folder``: one pass over the log, the read models' own pure handlers."""
    rows = {p.name: MemoryRows(p) for p in projections}
    decoder = decoder_for(hotline.store)
    after = 0
    while after < position:
        page = hotline.store.notifications(after, 5000, stop=position)
        if not page:
            break
        for n in page:
            known = decoder.type_of(n.topic)
            wanted = [p for p in projections if known is None or p.handles(known[0])]
            if wanted:
                env = decoder.envelope(n)
                for p in wanted:
                    p.apply(env, rows[p.name])
        after = page[-1].id
    engine = make_engine(f"sqlite:///{folder / 'read_models.sqlite'}")
    ReadStore(engine, projections).create_tables()
    with engine.begin() as conn:
        for p in projections:
            for name, table in p.tables.items():
                loaded = rows[p.name].rows(name)
                for i in range(0, len(loaded), 5000):
                    conn.execute(sa.insert(table), loaded[i : i + 5000])
    return engine


def read_model_as_of(
    hotline: Hotline,
    actor: Actor,
    name: str,
    moment: datetime,
    *,
    reference: str | None = None,
    due_within_hours: float | None = None,
    department_id: str | None = None,
) -> dict[str, Any]:
    """What the read model ``name`` showed at ``moment``; "due soon" by default as its live
    endpoint's default (``due_within_hours`` None), so that the replay matches what was seen."""
    if name not in READ_MODELS:
        raise NotFound(f"no read model {name!r} to replay", code="read_model_not_found", read_models=sorted(READ_MODELS))
    if moment.tzinfo is None:
        raise InvalidCommand("an 'as of' time needs its offset (2026-11-20T09:00:00+01:00)", field="as_of")
    if due_within_hours is None:
        due_within_hours = BREACHES_DUE_WITHIN_HOURS if name == "sla-breaches" else WORKLOADS_DUE_WITHIN_HOURS
    position = log_position_at(hotline, moment)
    with tempfile.TemporaryDirectory(prefix="hotline-audit-") as tmp:
        engine = replay_until(hotline, READ_MODELS[name], position, Path(tmp))
        try:
            with engine.connect() as conn:
                if name == "sla-breaches":
                    shown = sla_breaches.breaches(
                        conn, moment, due_within=timedelta(hours=due_within_hours), department_id=department_id, limit=100_000
                    )
                else:
                    shown = {"departments": _workloads(conn, moment, due_within_hours, department_id)}
        finally:
            engine.dispose()
    answer: dict[str, Any] = {"read_model": name, "as_of": moment.isoformat(), "position": position, **shown}
    if reference is not None:
        answer["reference"] = _where_is(reference, shown) if name == "sla-breaches" else None
    return answer


def _workloads(conn: sa.Connection, now: datetime, due_within_hours: float, department_id: str | None) -> list[dict[str, Any]]:
    """``GET /departments/workloads`` as it would have answered at ``now``."""
    return department_loads(conn, now, timedelta(hours=due_within_hours), lambda dep: not department_id or dep == department_id)


def _where_is(reference: str, shown: dict[str, Any]) -> dict[str, Any]:
    """Was this request on the overdue (or due-soon) list?"""
    for listed in ("overdue", "due_soon"):
        for row in shown[listed]:
            if reference in (row["reference"], row["request_id"]):
                return {"reference": reference, "listed": listed, "overdue": listed == "overdue", "row": row}
    return {"reference": reference, "listed": None, "overdue": False, "row": None}


def parse_moment(value: str) -> datetime:
    asked = AsOf.parse(value)
    if asked is None or asked.moment is None:
        raise InvalidCommand("'as_of' must be an ISO 8601 time with its offset (2026-11-20T09:00:00+01:00)", field="as_of")
    return asked.moment


# ------------------------------------------------------------------------ routes
@router.get(
    "/trace/{key}",
    response_model=CaseTrace,
    summary="A case trace: every event sharing a correlation id (or a request's case), in global order",
)
def get_trace(
    key: str,
    hotline: Hotline = Depends(get_hotline),
    actor: Actor = allow(Action.AUDIT_READ),
    read: PersonalDataRead = personal_data_read("audit: case trace"),
) -> dict[str, Any]:
    return trace(hotline, actor, key, read)


@router.get(
    "/read-models/{name}",
    response_model=ReadModelAsOf,
    summary="What a read model showed at a time, replayed from the log up to then",
)
def get_read_model(
    name: str,
    as_of: str = Query(..., max_length=40, description="ISO 8601 time with its offset: 2026-11-20T09:00:00+01:00"),
    reference: str | None = Query(None, max_length=64, description="Was this request on the list then?"),
    department_id: str | None = Query(None, max_length=64),
    due_within_hours: float | None = Query(
        None, gt=0, le=24 * 30, description="Default: the live list's (sla-breaches 4, department-workloads 24)"
    ),
    hotline: Hotline = Depends(get_hotline),
    actor: Actor = allow(Action.AUDIT_READ),
) -> dict[str, Any]:
    return read_model_as_of(
        hotline, actor, name, parse_moment(as_of), reference=reference, due_within_hours=due_within_hours, department_id=department_id
    )


@router.get(
    "/{stream}/{key}",
    response_model=AggregateHistory,
    summary="An aggregate's full history and its state as of a version or a time",
)
def get_history(
    stream: str,
    key: str,
    as_of: str | None = Query(None, max_length=40, description="A version (12) or an ISO 8601 time with its offset"),
    hotline: Hotline = Depends(get_hotline),
    actor: Actor = allow(Action.AUDIT_READ),
    read: PersonalDataRead = personal_data_read("audit: aggregate history"),
) -> dict[str, Any]:
    return history(hotline, actor, stream, key, as_of, read)
