"""IVR flows: the current version of each flow and every version published, with its
document (what ``GET /ivr/flows…`` and the telephony adapter read)."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from domain.envelope import Envelope
from domain.ivr.aggregate import IvrFlow
from projections.base import Projection, Rows, UtcDateTime

projection = Projection("ivr")
FLOWS = projection.table(
    "ivr_flows",
    sa.Column("flow_id", sa.String(64), primary_key=True),
    sa.Column("aggregate_id", sa.String(36)),
    sa.Column("title", sa.String(200)),
    sa.Column("languages", sa.JSON),
    sa.Column("current_version", sa.Integer),
    sa.Column("sha256", sa.String(64)),
    sa.Column("published_at", UtcDateTime),
    sa.Column("published_by", sa.String(100)),
    sa.Column("version", sa.Integer),  # the aggregate's: the ETag
)
VERSIONS = projection.table(
    "ivr_flow_versions",
    sa.Column("flow_id", sa.String(64), primary_key=True),
    sa.Column("flow_version", sa.Integer, primary_key=True),
    sa.Column("document", sa.JSON),
    sa.Column("sha256", sa.String(64)),
    sa.Column("note", sa.Text),
    sa.Column("published_at", UtcDateTime),
    sa.Column("published_by", sa.String(100)),
    sa.Column("published_by_role", sa.String(20)),
    sa.Column("position", sa.BigInteger),
)
F, V = FLOWS.name, VERSIONS.name


@projection.on(IvrFlow.Registered)
def registered(env: Envelope, rows: Rows) -> None:
    if rows.get(F, env.data["flow_id"]) is None:
        rows.put(
            F,
            {
                "flow_id": env.data["flow_id"],
                "aggregate_id": env.aggregate_id,
                "title": None,
                "languages": [],
                "current_version": 0,
                "sha256": None,
                "published_at": None,
                "published_by": None,
                "version": env.version,
            },
        )


@projection.on(IvrFlow.VersionPublished)
def version_published(env: Envelope, rows: Rows) -> None:
    d = env.data
    rows.put(
        V,
        {
            "flow_id": d["flow_id"],
            "flow_version": d["flow_version"],
            "document": d["document"],
            "sha256": d["sha256"],
            "note": d["note"],
            "published_at": env.time,
            "published_by": env.meta.get("actor_id"),
            "published_by_role": env.meta.get("actor_role"),
            "position": env.position,
        },
    )
    row = rows.get(F, d["flow_id"]) or {"flow_id": d["flow_id"], "aggregate_id": env.aggregate_id, "current_version": 0}
    if d["flow_version"] >= (row.get("current_version") or 0):
        row.update(
            title=d["document"].get("title"),
            languages=d["document"].get("languages", []),
            current_version=d["flow_version"],
            sha256=d["sha256"],
            published_at=env.time,
            published_by=env.meta.get("actor_id"),
            version=env.version,
        )
    rows.put(F, row)


@projection.signals
def _keys(env: Envelope, rows: Rows) -> list[str]:
    return [env.data["flow_id"]]


# ------------------------------------------------------------------------ queries
def flows(conn: Connection) -> list[dict[str, Any]]:
    return [dict(r) for r in conn.execute(sa.select(FLOWS).order_by(FLOWS.c.flow_id)).mappings()]


def flow(conn: Connection, flow_id: str) -> dict[str, Any] | None:
    row = conn.execute(sa.select(FLOWS).where(FLOWS.c.flow_id == flow_id)).mappings().first()
    return dict(row) if row else None


def versions(conn: Connection, flow_id: str) -> list[dict[str, Any]]:
    """Every version of a flow, newest first, without the documents."""
    cols = [c for c in VERSIONS.c if c.name != "document"]
    q = sa.select(*cols).where(VERSIONS.c.flow_id == flow_id).order_by(VERSIONS.c.flow_version.desc())
    return [dict(r) for r in conn.execute(q).mappings()]


def version(conn: Connection, flow_id: str, flow_version: int | None = None) -> dict[str, Any] | None:
    """One version with its document; the current one when ``flow_version`` is None."""
    q = sa.select(VERSIONS).where(VERSIONS.c.flow_id == flow_id)
    q = (
        q.where(VERSIONS.c.flow_version == flow_version)
        if flow_version is not None
        else q.order_by(VERSIONS.c.flow_version.desc()).limit(1)
    )
    row = conn.execute(q).mappings().first()
    return dict(row) if row else None
