"""Call recordings: what the search and the metadata endpoints read.

One row per recording (``rm_recordings``), one per (recording, linked request)
(``rm_recording_requests``: search by request, and a department's view of its cases'
recordings), and per recorded contact the recordings and requests seen so far
(``rm_recording_contacts``): a request linked to the contact after the recording started
joins it whichever of the two events comes first (projections are order-independent
across aggregates).

The caller's number is personal data: blanked when the citizen is erased, with the
recording marked ``audio_erased`` (its bytes are deleted by ``infra/privacy.py``).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from domain.contact_center.contacts import Contact
from domain.envelope import Envelope
from domain.privacy.aggregate import ERASED, PersonalDataErasure
from domain.recordings.aggregate import Recording
from projections import request_status
from projections.base import Projection, Rows, UtcDateTime

projection = Projection("recordings")
RECORDINGS = projection.table(
    "recordings",
    sa.Column("id", sa.String(36), primary_key=True),
    sa.Column("name", sa.String(200)),
    sa.Column("contact_id", sa.String(36), index=True),
    sa.Column("agent_id", sa.String(100), index=True),
    sa.Column("queue_id", sa.String(100), index=True),
    sa.Column("citizen_id", sa.String(36), index=True),
    sa.Column("reason", sa.String(20)),
    sa.Column("announcement", sa.String(200)),
    sa.Column("phone", sa.String(60)),  # personal data: blanked on erasure
    sa.Column("started_at", UtcDateTime, index=True),
    sa.Column("duration_s", sa.Float),
    sa.Column("location", sa.String(300)),
    sa.Column("sha256", sa.String(64), index=True),
    sa.Column("size_bytes", sa.BigInteger),
    sa.Column("content_type", sa.String(100)),
    sa.Column("status", sa.String(20)),  # recording / completed / deleted
    sa.Column("completed_at", UtcDateTime),
    sa.Column("deleted_at", UtcDateTime),
    sa.Column("deleted_reason", sa.String(500)),
    sa.Column("audio_erased", sa.Boolean),
    sa.Column("plays", sa.Integer),
    sa.Column("last_played_at", UtcDateTime),
    sa.Column("request_ids", sa.JSON),
    sa.Column("version", sa.Integer),
)
RECORDING_REQUESTS = projection.table(
    "recording_requests",
    sa.Column("recording_id", sa.String(36), primary_key=True),
    sa.Column("request_id", sa.String(36), primary_key=True, index=True),
)
CONTACTS = projection.table(
    "recording_contacts",
    sa.Column("contact_id", sa.String(36), primary_key=True),
    sa.Column("recording_ids", sa.JSON),
    sa.Column("request_ids", sa.JSON),
)
T, RR, C = RECORDINGS.name, RECORDING_REQUESTS.name, CONTACTS.name


def _link(rows: Rows, recording: dict[str, Any], request_ids: list[str]) -> dict[str, Any]:
    known = list(recording.get("request_ids") or [])
    for rid in request_ids:
        if rid not in known:
            known.append(rid)
            rows.put(RR, {"recording_id": recording["id"], "request_id": rid})
    return {**recording, "request_ids": known}


def _contact(rows: Rows, contact_id: str) -> dict[str, Any]:
    return rows.get(C, contact_id) or {"contact_id": contact_id, "recording_ids": [], "request_ids": []}


@projection.on(Recording.Started)
def started(env: Envelope, rows: Rows) -> None:
    d = env.data
    contact = _contact(rows, d["contact_id"])
    row = {
        "id": env.aggregate_id,
        "name": d["name"],
        "contact_id": d["contact_id"],
        "agent_id": d["agent_id"],
        "queue_id": d["queue_id"],
        "citizen_id": d["citizen_id"],
        "reason": d["reason"],
        "announcement": d["announcement"],
        "phone": (d.get("personal") or {}).get("phone"),
        "started_at": datetime.fromisoformat(d["started_at"]) if isinstance(d["started_at"], str) else d["started_at"],
        "duration_s": None,
        "location": None,
        "sha256": None,
        "size_bytes": None,
        "content_type": None,
        "status": "recording",
        "completed_at": None,
        "deleted_at": None,
        "deleted_reason": None,
        "audio_erased": False,
        "plays": 0,
        "last_played_at": None,
        "request_ids": [],
        "version": env.version,
    }
    old = rows.get(T, env.aggregate_id)
    if old is not None and old["version"] >= env.version:
        return
    rows.put(T, _link(rows, row, [*d["request_ids"], *contact["request_ids"]]))
    if env.aggregate_id not in contact["recording_ids"]:
        rows.put(C, {**contact, "recording_ids": [*contact["recording_ids"], env.aggregate_id]})


@projection.on(Recording.Completed)
def completed(env: Envelope, rows: Rows) -> None:
    row = rows.get(T, env.aggregate_id)
    if row is None:
        return
    d = env.data
    rows.put(
        T,
        {
            **row,
            "duration_s": d["duration_s"],
            "location": d["location"],
            "sha256": d["sha256"],
            "size_bytes": d["size_bytes"],
            "content_type": d["content_type"],
            "status": "completed" if row["status"] == "recording" else row["status"],
            "completed_at": env.time,
            "version": env.version,
        },
    )


@projection.on(Recording.PlaybackGranted)
def played(env: Envelope, rows: Rows) -> None:
    row = rows.get(T, env.aggregate_id)
    if row is not None:
        rows.put(T, {**row, "plays": (row["plays"] or 0) + 1, "last_played_at": env.time, "version": env.version})


@projection.on(Recording.Deleted)
def deleted(env: Envelope, rows: Rows) -> None:
    row = rows.get(T, env.aggregate_id)
    if row is not None:
        rows.put(T, {**row, "status": "deleted", "deleted_at": env.time, "deleted_reason": env.data["reason"], "version": env.version})


@projection.on(Contact.RequestLinked)
def request_linked(env: Envelope, rows: Rows) -> None:
    contact = _contact(rows, env.aggregate_id)
    rid = env.data["request_id"]
    if rid in contact["request_ids"]:
        return
    rows.put(C, {**contact, "request_ids": [*contact["request_ids"], rid]})
    for recording_id in contact["recording_ids"]:
        row = rows.get(T, recording_id)
        if row is not None:
            rows.put(T, _link(rows, row, [rid]))


@projection.on(PersonalDataErasure.Erased)
def erased(env: Envelope, rows: Rows) -> None:
    """The caller's number reads as erased, and the audio is gone (infra/privacy.py)."""
    for subject in env.data["subjects"]:
        row = rows.get(T, subject)
        if row is not None:
            rows.put(T, {**row, "phone": ERASED if row["phone"] is not None else None, "audio_erased": True, "location": None})


# ------------------------------------------------------------------------ queries
def view(row: dict[str, Any]) -> dict[str, Any]:
    out = {k: v for k, v in row.items() if k != "location"}
    out["request_ids"] = list(row.get("request_ids") or [])
    playable = row["status"] == "completed" and not row["audio_erased"]
    out["playback_url"] = f"/recordings/{row['id']}/playback" if playable else None
    return out


def search(
    conn: Connection,
    *,
    since: datetime | None = None,
    until: datetime | None = None,
    agent_id: str | None = None,
    queue_id: str | None = None,
    citizen_id: str | None = None,
    request_id: str | None = None,
    department: str | None = None,
    include_deleted: bool = False,
    limit: int = 50,
    offset: int = 0,
) -> tuple[list[dict[str, Any]], int]:
    """Recordings matching every filter given, newest first, and how many match in all.
    ``department``: only recordings linked to a request dispatched to it."""
    t = RECORDINGS
    where: list[sa.ColumnElement[bool]] = []
    if since is not None:
        where.append(t.c.started_at >= since)
    if until is not None:
        where.append(t.c.started_at < until)
    for column, value in ((t.c.agent_id, agent_id), (t.c.queue_id, queue_id), (t.c.citizen_id, citizen_id)):
        if value is not None:
            where.append(column == value)
    rr = RECORDING_REQUESTS
    if request_id is not None:
        where.append(t.c.id.in_(sa.select(rr.c.recording_id).where(rr.c.request_id == request_id)))
    if department is not None:
        req = request_status.REQUESTS
        dispatched = sa.select(req.c.id).where(req.c.department_id == department)
        where.append(t.c.id.in_(sa.select(rr.c.recording_id).where(rr.c.request_id.in_(dispatched))))
    if not include_deleted:
        where.append(t.c.status != "deleted")
    total = conn.execute(sa.select(sa.func.count()).select_from(t).where(*where)).scalar_one()
    q = sa.select(t).where(*where).order_by(t.c.started_at.desc(), t.c.id).limit(limit).offset(offset)
    return [view(dict(r)) for r in conn.execute(q).mappings()], int(total)


def get(conn: Connection, recording_id: str) -> dict[str, Any] | None:
    row = conn.execute(sa.select(RECORDINGS).where(RECORDINGS.c.id == recording_id)).mappings().first()
    return dict(row) if row else None


def completed_before(conn: Connection, cutoff: datetime, limit: int = 100_000) -> list[str]:
    """Retention's candidates (the command checks each again on its aggregate)."""
    t = RECORDINGS
    q = sa.select(t.c.id).where(t.c.status == "completed", t.c.completed_at < cutoff).order_by(t.c.completed_at).limit(limit)
    return [str(i) for i in conn.execute(q).scalars()]
