"""Attachments per request and per work order: what the case page and the API list."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from domain.attachments.aggregate import Attachment
from domain.envelope import Envelope
from domain.privacy.aggregate import ERASED, PersonalDataErasure
from projections.base import Projection, Rows, UtcDateTime

projection = Projection("attachments")
ATTACHMENTS = projection.table(
    "attachments",
    sa.Column("id", sa.String(36), primary_key=True),
    sa.Column("request_id", sa.String(36), index=True),
    sa.Column("request_ref", sa.String(32)),
    sa.Column("work_order_id", sa.String(36), index=True),
    sa.Column("sha256", sa.String(64), index=True),
    sa.Column("content_type", sa.String(200)),
    sa.Column("size", sa.BigInteger),
    sa.Column("filename", sa.String(255)),  # personal data: erasable per citizen (domain/attachments)
    sa.Column("source", sa.String(20)),
    sa.Column("url", sa.Text),
    sa.Column("citizen_id", sa.String(36), index=True),
    sa.Column("attached_at", UtcDateTime),
    sa.Column("attached_by", sa.String(100)),
    sa.Column("attached_by_role", sa.String(20)),
    sa.Column("removed", sa.Boolean),
    sa.Column("removed_at", UtcDateTime),
    sa.Column("version", sa.Integer),
    sa.Column("position", sa.BigInteger),  # of the attaching event: the order they were added in
)
T = ATTACHMENTS.name


@projection.on(Attachment.Attached)
def attached(env: Envelope, rows: Rows) -> None:
    d = env.data
    rows.put(
        T,
        {
            "id": env.aggregate_id,
            "request_id": d["request_id"],
            "request_ref": d["request_ref"],
            "work_order_id": d["work_order_id"],
            "sha256": d["sha256"],
            "content_type": d["content_type"],
            "size": d["size"],
            "filename": (d.get("personal") or {}).get("filename"),
            "source": d["source"],
            "url": d["url"],
            "citizen_id": d["citizen_id"],
            "attached_at": env.time,
            "attached_by": env.meta.get("actor_id"),
            "attached_by_role": env.meta.get("actor_role"),
            "removed": False,
            "removed_at": None,
            "version": env.version,
            "position": env.position,
        },
    )


@projection.on(Attachment.Removed)
def removed(env: Envelope, rows: Rows) -> None:
    row = rows.get(T, env.aggregate_id)
    if row is not None:
        rows.put(T, {**row, "removed": True, "removed_at": env.time, "version": env.version})


@projection.on(PersonalDataErasure.Erased)
def erased(env: Envelope, rows: Rows) -> None:
    """The file names of the citizen's attachments read as erased (as a replay after the
    erasure reads them); the bytes go from the attachment store (infra/privacy.py)."""
    for subject in env.data["subjects"]:
        row = rows.get(T, subject)
        if row is not None and row.get("citizen_id") == env.data["citizen_id"] and row.get("filename") is not None:
            rows.put(T, {**row, "filename": ERASED})


@projection.signals
def _keys(env: Envelope, rows: Rows) -> list[str]:
    row = rows.get(T, env.aggregate_id)
    return [k for k in (row and (row["request_id"] or row["work_order_id"]),) if k]


# ------------------------------------------------------------------------ queries
def view(row: dict[str, Any]) -> dict[str, Any]:
    """A row as the API shows it, with where its bytes are served."""
    out = {k: v for k, v in row.items() if k != "citizen_id"}
    out["content_url"] = f"/attachments/{row['id']}/content" if row["sha256"] and not row["removed"] else None
    return out


def of_request(conn: Connection, request_id: str, *, include_removed: bool = False) -> list[dict[str, Any]]:
    return _list(conn, ATTACHMENTS.c.request_id == request_id, include_removed)


def of_work_order(conn: Connection, work_order_id: str, *, include_removed: bool = False) -> list[dict[str, Any]]:
    return _list(conn, ATTACHMENTS.c.work_order_id == work_order_id, include_removed)


def _list(conn: Connection, where: sa.ColumnElement[bool], include_removed: bool) -> list[dict[str, Any]]:
    q = sa.select(ATTACHMENTS).where(where)
    if not include_removed:
        q = q.where(ATTACHMENTS.c.removed.is_(False))
    return [view(dict(r)) for r in conn.execute(q.order_by(ATTACHMENTS.c.attached_at, ATTACHMENTS.c.position)).mappings()]


def get(conn: Connection, attachment_id: str) -> dict[str, Any] | None:
    row = conn.execute(sa.select(ATTACHMENTS).where(ATTACHMENTS.c.id == attachment_id)).mappings().first()
    return dict(row) if row else None
