"""Staff accounts as a list: who may sign in, with which roles, for which departments.

Fed by the StaffMember stream (published: granting a role is an auditable event like any
other); passwords live in the unpublished StaffCredential stream and never reach here.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from domain.base import ROLES
from domain.envelope import Envelope
from domain.identity.staff import StaffMember as S
from projections.base import Projection, Rows, UtcDateTime

projection = Projection("staff")
STAFF = projection.table(
    "staff",
    sa.Column("username", sa.String(64), primary_key=True),
    sa.Column("name", sa.String(200)),
    sa.Column("roles", sa.JSON),
    sa.Column("departments", sa.JSON),
    sa.Column("disabled", sa.Boolean),
    sa.Column("has_password", sa.Boolean),
    sa.Column("enrolled_at", UtcDateTime),
    sa.Column("updated_at", UtcDateTime),
    sa.Column("updated_by", sa.String(120)),
)
# Later events name the member by its stream only: this finds the username.
IDS = projection.table(
    "staff_ids",
    sa.Column("member_id", sa.String(36), primary_key=True),
    sa.Column("username", sa.String(64)),
)
T = STAFF.name


def _member(rows: Rows, env: Envelope) -> dict[str, Any] | None:
    ids = rows.get(IDS.name, env.aggregate_id)
    return rows.get(T, ids["username"]) if ids else None


def _change(rows: Rows, env: Envelope, **fields: Any) -> None:
    row = _member(rows, env)
    if row is not None:
        rows.put(T, {**row, **fields, "updated_at": env.time, "updated_by": env.meta.get("actor_id")})


@projection.on(S.Enrolled)
def enrolled(env: Envelope, rows: Rows) -> None:
    d = env.data
    rows.put(IDS.name, {"member_id": env.aggregate_id, "username": d["username"]})
    rows.put(
        T,
        {
            "username": d["username"],
            "name": d["name"],
            "roles": d["roles"],
            "departments": d["departments"],
            "disabled": False,
            "has_password": False,
            "enrolled_at": env.time,
            "updated_at": env.time,
            "updated_by": env.meta.get("actor_id"),
        },
    )


@projection.on(S.RoleGranted, S.RoleRevoked)
def role_changed(env: Envelope, rows: Rows) -> None:
    row = _member(rows, env)
    if row is None:
        return
    roles = set(row["roles"])
    if env.event_class is S.RoleGranted:
        roles.add(env.data["role"])
    else:
        roles.discard(env.data["role"])
    _change(rows, env, roles=sorted(roles, key=ROLES.index))


@projection.on(S.DepartmentsAssigned)
def departments_assigned(env: Envelope, rows: Rows) -> None:
    _change(rows, env, departments=env.data["departments"])


@projection.on(S.Disabled, S.Enabled)
def disabled(env: Envelope, rows: Rows) -> None:
    _change(rows, env, disabled=env.event_class is S.Disabled)


@projection.on(S.PasswordChanged)
def password_changed(env: Envelope, rows: Rows) -> None:
    _change(rows, env, has_password=True)


def exists(conn: Connection, username: str) -> bool:
    return conn.execute(sa.select(STAFF.c.username).where(STAFF.c.username == username)).first() is not None


def listing(conn: Connection, *, role: str | None = None, department: str | None = None, limit: int = 500) -> list[dict[str, Any]]:
    rows = [dict(r) for r in conn.execute(sa.select(STAFF).order_by(STAFF.c.username)).mappings()]
    if role:
        rows = [r for r in rows if role in r["roles"]]
    if department:
        rows = [r for r in rows if department in r["departments"]]
    return rows[:limit]
