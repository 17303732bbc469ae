"""Open311 GeoReport v2: requests as the spec lists them, and the request updates
FixMyStreet polls (``GET servicerequestupdates``).

One row per request that has a problem code (an Open311 service): its Open311 status
(``open`` until resolved or closed, ``open`` again when reopened), the latest reply as
``status_notes``, and ``updated_at``, which moves only with what an Open311 client sees
(not with timer plans or internal notes). One update row per step a client follows:
dispatch, acceptance, the work order it joined and that work's outcome ("Pothole
filled"), replies, resolution, closing, reopening and public notes, keyed by
the event's position (a unique, increasing ``update_id``). The photo a request came with
(``media_url``) is an attachment kept by URL, in rows of its own.

The query functions answer times as RFC 3339 text in UTC, formatted by the database.

Each aggregate's events write rows keyed by that aggregate only, so the rows are the
same whatever the order of different aggregates' events (tests/kafka/test_order.py).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from domain.attachments.aggregate import Attachment
from domain.envelope import Envelope
from domain.privacy.aggregate import ERASED, PersonalDataErasure
from domain.requests.aggregate import ServiceRequest as R
from projections.base import Projection, Rows, UtcDateTime

# Version 2: the work order's link and outcome are updates a client follows.
projection = Projection("open311", version=2)
REQUESTS = projection.table(
    "open311_requests",
    sa.Column("id", sa.String(36), primary_key=True),
    sa.Column("reference", sa.String(32), nullable=False, unique=True),
    sa.Column("service_code", sa.String(64)),  # None until classified: not an Open311 request yet
    sa.Column("open", sa.Boolean, nullable=False),
    sa.Column("description", sa.Text),
    sa.Column("address", sa.Text),
    sa.Column("lat", sa.Float),
    sa.Column("lon", sa.Float),
    sa.Column("department_id", sa.String(64)),
    sa.Column("citizen_id", sa.String(36)),
    sa.Column("status_notes", sa.Text),
    sa.Column("requested_at", UtcDateTime, nullable=False),
    sa.Column("updated_at", UtcDateTime, nullable=False),
    sa.Column("expected_at", UtcDateTime),  # the deadline, or the date an interim reply promised
)
UPDATES = projection.table(
    "open311_updates",
    sa.Column("update_id", sa.BigInteger, primary_key=True, autoincrement=False),  # the event's position
    sa.Column("request_id", sa.String(36), nullable=False),
    sa.Column("open", sa.Boolean, nullable=False),
    sa.Column("description", sa.Text, nullable=False),
    sa.Column("updated_at", UtcDateTime, nullable=False),
)
# A request's photo by URL (Open311 ``media_url``): the latest attachment kept by URL, in
# its own table keyed by the request, so that it holds whether the attachment's event or
# the request's comes first; and which request each such attachment is on (its removal
# names only itself).
MEDIA = projection.table(
    "open311_media",
    sa.Column("request_id", sa.String(36), primary_key=True),
    sa.Column("attachment_id", sa.String(36), nullable=False),
    sa.Column("url", sa.Text, nullable=False),
)
LINKED = projection.table(
    "open311_media_links",
    sa.Column("attachment_id", sa.String(36), primary_key=True),
    sa.Column("request_id", sa.String(36), nullable=False),
)
_Q = REQUESTS.c
# GET requests: a window of registration times, newest first, alone or with a service
# code or a status; the scoped lists of departments and citizens. GET servicerequestupdates:
# a window of update times.
INDEXES = (
    sa.Index("ix_open311_requested", _Q.requested_at, _Q.id),
    # The id last, as in the sort: a page is read in index order, never sorted.
    sa.Index("ix_open311_service", _Q.service_code, _Q.requested_at, _Q.id),
    sa.Index("ix_open311_open", _Q.open, _Q.requested_at, _Q.id),
    sa.Index("ix_open311_department", _Q.department_id, _Q.requested_at, _Q.id),
    sa.Index("ix_open311_citizen", _Q.citizen_id, _Q.requested_at, _Q.id),
    sa.Index("ix_open311_updates_at", UPDATES.c.updated_at, UPDATES.c.update_id),
    sa.Index("ix_open311_updates_request", UPDATES.c.request_id),
)
T, U = REQUESTS.name, UPDATES.name


def _ts(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


def _change(env: Envelope, rows: Rows, *, update: str | None = None, **changes: Any) -> None:
    """Changes the request's row (and ``updated_at``); with ``update``, records an update
    with that description and the request's status after the change."""
    row = rows.get(T, env.aggregate_id)
    if row is None:
        return
    row.update(changes, updated_at=env.time)
    rows.put(T, row)
    if update is not None:
        rows.put(
            U, {"update_id": env.position, "request_id": row["id"], "open": row["open"], "description": update, "updated_at": env.time}
        )


@projection.on(R.Registered)
def registered(env: Envelope, rows: Rows) -> None:
    d = env.data
    location = d.get("location") or {}
    rows.put(
        T,
        {
            "id": env.aggregate_id,
            "reference": d["reference"],
            "service_code": None,
            "open": True,
            "description": d["description"],
            "address": location.get("address"),
            "lat": location.get("lat"),
            "lon": location.get("lon"),
            "department_id": None,
            "citizen_id": d["citizen_id"],
            "status_notes": None,
            "requested_at": env.time,
            "updated_at": env.time,
            "expected_at": _ts(d["due_at"]),
        },
    )


@projection.on(PersonalDataErasure.Erased)
def erased(env: Envelope, rows: Rows) -> None:
    """The citizen's own words (the description) read as erased, as a replay after the
    erasure reads them; the status notes are the hotline's, not the citizen's."""
    for subject in env.data["subjects"]:
        row = rows.get(T, subject)
        if row is not None and row.get("citizen_id") == env.data["citizen_id"] and row.get("description"):
            rows.put(T, {**row, "description": ERASED})


@projection.on(R.Classified)
def classified(env: Envelope, rows: Rows) -> None:
    _change(env, rows, service_code=env.data["problem_code"], expected_at=_ts(env.data["due_at"]))


@projection.on(R.Dispatched)
def dispatched(env: Envelope, rows: Rows) -> None:
    _change(env, rows, update="", department_id=env.data["department_id"], expected_at=_ts(env.data["due_at"]))


@projection.on(R.ExtensionApproved, R.CitizenResponded)
def deadline_moved(env: Envelope, rows: Rows) -> None:
    # The expected date follows the deadline; not a step a client is told about.
    row = rows.get(T, env.aggregate_id)
    if row is not None:
        row["expected_at"] = _ts(env.data["due_at"])
        rows.put(T, row)


@projection.on(R.Accepted)
def accepted(env: Envelope, rows: Rows) -> None:
    _change(env, rows, update="")


@projection.on(R.WorkOrderLinked)
def work_order_linked(env: Envelope, rows: Rows) -> None:
    # A new work order, or an open one it joined as a duplicate: work is under way.
    _change(env, rows, update="")


@projection.on(R.WorkOrderOutcomeRecorded)
def work_order_outcome(env: Envelope, rows: Rows) -> None:
    outcome = env.data["outcome"]
    _change(env, rows, update=outcome, status_notes=outcome)


@projection.on(R.InterimReplied)
def interim_replied(env: Envelope, rows: Rows) -> None:
    message = env.data["message"]
    _change(env, rows, update=message, status_notes=message, expected_at=_ts(env.data["expected_at"]))


@projection.on(R.FinalReplied)
def final_replied(env: Envelope, rows: Rows) -> None:
    _change(env, rows, update=env.data["message"], status_notes=env.data["message"])


@projection.on(R.Resolved)
def resolved(env: Envelope, rows: Rows) -> None:
    _change(env, rows, update=env.data["resolution"], open=False, status_notes=env.data["resolution"])


@projection.on(R.Closed)
def closed(env: Envelope, rows: Rows) -> None:
    _change(env, rows, update="", open=False)


@projection.on(R.Reopened)
def reopened(env: Envelope, rows: Rows) -> None:
    reason = env.data["reason"]
    _change(env, rows, update=reason, open=True, status_notes=reason, expected_at=_ts(env.data["due_at"]))


@projection.on(R.NoteAdded)
def note_added(env: Envelope, rows: Rows) -> None:
    if not env.data["internal"]:  # what the citizen may read; internal notes stay inside
        _change(env, rows, update=env.data["text"])


@projection.on(Attachment.Attached)
def media_attached(env: Envelope, rows: Rows) -> None:
    d = env.data
    if d["request_id"] and d["url"]:
        rows.put(MEDIA.name, {"request_id": d["request_id"], "attachment_id": env.aggregate_id, "url": d["url"]})
        rows.put(LINKED.name, {"attachment_id": env.aggregate_id, "request_id": d["request_id"]})


@projection.on(Attachment.Removed)
def media_removed(env: Envelope, rows: Rows) -> None:
    link = rows.get(LINKED.name, env.aggregate_id)
    if link is None:
        return
    rows.delete(LINKED.name, env.aggregate_id)
    shown = rows.get(MEDIA.name, link["request_id"])
    if shown is not None and shown["attachment_id"] == env.aggregate_id:
        rows.delete(MEDIA.name, link["request_id"])


# ------------------------------------------------------------------------ queries
@dataclass(frozen=True)
class Query:
    """GET requests' filters; None or empty: any. ``ids``: references, then nothing else
    filters but the scope (the spec: the other parameters are ignored)."""

    ids: Sequence[str] = ()
    service_codes: Sequence[str] = ()
    open: bool | None = None
    start: datetime | None = None
    end: datetime | None = None
    department_id: str | None = None  # a department user's scope
    citizen_id: str | None = None  # a citizen's own cases


def _stamp(column: sa.ColumnElement[Any], dialect: str) -> sa.ColumnElement[str]:
    """The time as the answer writes it, RFC 3339 in UTC (``2026-11-16T09:00:00Z``),
    formatted by the database: a list of a thousand requests then makes no datetime
    objects at all (parsing and formatting 3,000 of them was a third of the answer's time)."""
    if dialect == "postgresql":
        text = sa.func.to_char(sa.func.timezone("UTC", column), 'YYYY-MM-DD"T"HH24:MI:SS"Z"')
    else:  # stored as UTC text, ``2026-11-16 09:00:00.000000``
        text = sa.func.strftime("%Y-%m-%dT%H:%M:%SZ", column)
    return sa.type_coerce(text, sa.String()).label(getattr(column, "name", "time"))


def _columns(dialect: str) -> list[sa.ColumnElement[Any]]:
    return [
        _Q.id,
        _Q.reference,
        _Q.service_code,
        _Q.open,
        _Q.description,
        _Q.address,
        _Q.lat,
        _Q.lon,
        _Q.department_id,
        _Q.status_notes,
        MEDIA.c.url.label("media_url"),
        _stamp(_Q.requested_at, dialect),
        _stamp(_Q.updated_at, dialect),
        _stamp(_Q.expected_at, dialect),
    ]


def _listed(conn: Connection, stmt: sa.Select[Any]) -> list[Mapping[str, Any]]:
    # The rows as read-only mappings: a thousand of them read faster than copied into dicts.
    return cast(list[Mapping[str, Any]], conn.execute(stmt).mappings().fetchall())


_WITH_MEDIA = REQUESTS.outerjoin(MEDIA, MEDIA.c.request_id == _Q.id)


def _scope(q: Query) -> list[sa.ColumnElement[bool]]:
    where: list[sa.ColumnElement[bool]] = [_Q.service_code.is_not(None)]
    if q.department_id is not None:
        where.append(_Q.department_id == q.department_id)
    if q.citizen_id is not None:
        where.append(_Q.citizen_id == q.citizen_id)
    return where


def find(conn: Connection, q: Query, *, limit: int, offset: int = 0) -> list[Mapping[str, Any]]:
    """Requests matching ``q``, newest first."""
    where = _scope(q)
    if q.ids:
        where.append(_Q.reference.in_(list(q.ids)))
    else:
        if q.service_codes:
            where.append(_Q.service_code.in_(list(q.service_codes)))
        if q.open is not None:
            where.append(_Q.open == (sa.true() if q.open else sa.false()))
        if q.start is not None:
            where.append(_Q.requested_at >= q.start)
        if q.end is not None:
            where.append(_Q.requested_at <= q.end)
    stmt = (
        sa.select(*_columns(conn.dialect.name))
        .select_from(_WITH_MEDIA)
        .where(*where)
        .order_by(_Q.requested_at.desc(), _Q.id.desc())
        .limit(limit)
        .offset(offset)
    )
    return _listed(conn, stmt)


def one(conn: Connection, *, reference: str | None = None, request_id: str | None = None) -> Mapping[str, Any] | None:
    """One Open311 request (with a service code), by reference or by id; None if none."""
    condition = _Q.reference == reference if reference is not None else _Q.id == request_id
    stmt = sa.select(*_columns(conn.dialect.name), _Q.citizen_id).select_from(_WITH_MEDIA)
    rows = _listed(conn, stmt.where(condition, _Q.service_code.is_not(None)))
    return rows[0] if rows else None


def updates(
    conn: Connection,
    *,
    start: datetime | None,
    end: datetime | None,
    department_id: str | None = None,
    citizen_id: str | None = None,
    limit: int,
    offset: int = 0,
) -> list[Mapping[str, Any]]:
    """Updates in the window, oldest first, with their request's reference and photo."""
    u = UPDATES.c
    where: list[sa.ColumnElement[bool]] = [*_scope(Query(department_id=department_id, citizen_id=citizen_id))]
    if start is not None:
        where.append(u.updated_at >= start)
    if end is not None:
        where.append(u.updated_at <= end)
    stmt = (
        sa.select(u.update_id, u.open, u.description, _stamp(u.updated_at, conn.dialect.name), _Q.reference, MEDIA.c.url.label("media_url"))
        .select_from(UPDATES.join(_WITH_MEDIA, _Q.id == u.request_id))
        .where(*where)
        .order_by(u.updated_at, u.update_id)
        .limit(limit)
        .offset(offset)
    )
    return _listed(conn, stmt)
