"""Citizen history (CRM): one citizen across channels, and every interaction they had."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from domain.base import event_classes
from domain.citizens.aggregate import Citizen
from domain.envelope import Envelope
from domain.privacy.aggregate import ERASED, PersonalDataErasure
from domain.requests.aggregate import ServiceRequest as R
from projections.base import Projection, Rows, UtcDateTime

projection = Projection("citizen_history")
CITIZENS = projection.table(
    "citizens",
    sa.Column("id", sa.String(36), primary_key=True),
    # Personal data: erasable per citizen (see domain.base).
    sa.Column("name", sa.String(200)),
    sa.Column("phone", sa.String(40), index=True),
    sa.Column("email", sa.String(254), index=True),
    sa.Column("address", sa.String(500)),
    sa.Column("language", sa.String(5)),
    sa.Column("first_seen", UtcDateTime),
    sa.Column("last_seen", UtcDateTime),
    sa.Column("requests", sa.Integer),
    sa.Column("open_requests", sa.Integer),
    sa.Column("channels", sa.JSON),
    # The Citizen aggregate's version after its last event applied, whatever the event:
    # the ETag a screen sends back with If-Match. None until the citizen's own
    # registration arrives (Kafka may bring a request of theirs first).
    sa.Column("version", sa.Integer),
)
sa.Index("ix_rm_citizens_email_lower", sa.func.lower(CITIZENS.c.email))
INTERACTIONS = projection.table(
    "citizen_interactions",
    sa.Column("citizen_id", sa.String(36), primary_key=True),
    sa.Column("position", sa.BigInteger, primary_key=True),
    sa.Column("at", UtcDateTime, index=True),
    sa.Column("request_id", sa.String(36)),
    sa.Column("reference", sa.String(32)),
    sa.Column("type", sa.String(80)),
    sa.Column("channel", sa.String(20)),
    sa.Column("summary", sa.Text),  # in English, for the API
    sa.Column("detail", sa.JSON),  # the step's facts (DETAILS), for screens that say it in the user's language
)
# Which citizen a request belongs to, so later request events find their history.
OWNERS = projection.table(
    "citizen_request_owner",
    sa.Column("request_id", sa.String(36), primary_key=True),
    sa.Column("citizen_id", sa.String(36)),
    sa.Column("reference", sa.String(32)),
    sa.Column("registered_position", sa.BigInteger),  # the registration's interaction, which quotes the description
)
C, INTER, OWN = CITIZENS.name, INTERACTIONS.name, OWNERS.name
# Steps of a request worth showing in the citizen's history.
SUMMARIES: dict[type, Callable[[dict[str, Any]], str]] = {
    R.Registered: lambda d: f"{d['kind']} request registered: {d['description'][:200]}",
    R.Dispatched: lambda d: f"sent to {d['department_id']}",
    R.InterimReplied: lambda d: f"interim reply by {d['channel']}: {d['message'][:200]}",
    R.FinalReplied: lambda d: f"reply by {d['channel']}: {d['message'][:200]}",
    R.Closed: lambda d: "closed" + ("" if d["on_time"] else " (late)"),
    R.Reopened: lambda d: f"reopened: {d['reason'][:200]}",
    R.Rated: lambda d: f"rated {d['score']}/5",
    R.WorkOrderOutcomeRecorded: lambda d: f"work order outcome: {d['outcome'][:200]}",
}


# What each step keeps of its event, free text cut to 200 characters.
DETAILS: dict[type, tuple[str, ...]] = {
    R.Registered: ("kind", "description"),
    R.Dispatched: ("department_id",),
    R.InterimReplied: ("channel", "message"),
    R.FinalReplied: ("channel", "message"),
    R.Closed: ("on_time",),
    R.Reopened: ("reason",),
    R.Rated: ("score",),
    R.WorkOrderOutcomeRecorded: ("outcome",),
}
assert DETAILS.keys() == SUMMARIES.keys()


def _detail(env: Envelope) -> dict[str, Any]:
    return {f: v[:200] if isinstance(v := env.data.get(f), str) else v for f in DETAILS[env.event_class]}


# Kafka keeps order per aggregate only: a citizen's first request may be applied before
# the citizen's own registration. Every handler below is therefore order-independent
# across aggregates: rows are created by whichever event comes first, counters are sums,
# times are min/max, channels a sorted set.
def _citizen_row(rows: Rows, citizen_id: str, at: datetime) -> dict[str, Any]:
    return rows.get(C, citizen_id) or {
        "id": citizen_id,
        "name": None,
        "phone": None,
        "email": None,
        "address": None,
        "language": None,
        "first_seen": at,
        "last_seen": at,
        "requests": 0,
        "open_requests": 0,
        "channels": [],
        "version": None,
    }


def _seen(row: dict[str, Any], at: datetime) -> None:
    row["first_seen"] = min(row["first_seen"], at)
    row["last_seen"] = max(row["last_seen"], at)


def citizen_registered(env: Envelope, row: dict[str, Any]) -> None:
    p = env.data["personal"] or {}
    row.update({k: p.get(k) for k in ("name", "phone", "email", "address")}, language=env.data["language"])
    _seen(row, env.time)


def details_changed(env: Envelope, row: dict[str, Any]) -> None:
    row.update({k: v for k, v in (env.data["personal"] or {}).items() if v is not None})


def identifier_withdrawn(env: Envelope, row: dict[str, Any]) -> None:
    """A number or address typed on this record that turned out to be someone else's."""
    for key, value in (env.data["personal"] or {}).items():
        if row.get(key) == value:
            row[key] = None


def language(env: Envelope, row: dict[str, Any]) -> None:
    row["language"] = env.data["language"]


# What each of the citizen's own events changes on the row; an event not listed (one
# added later) changes nothing shown but still moves the version.
CITIZEN_STATE: dict[type, Callable[[Envelope, dict[str, Any]], None]] = {
    Citizen.Registered: citizen_registered,
    Citizen.IdentifierAdded: details_changed,
    Citizen.ContactDetailsChanged: details_changed,
    Citizen.IdentifierWithdrawn: identifier_withdrawn,
    Citizen.LanguagePreferred: language,
}


@projection.on(*event_classes(Citizen))
def citizen_event(env: Envelope, rows: Rows) -> None:
    row = _citizen_row(rows, env.aggregate_id, env.time)
    change = CITIZEN_STATE.get(env.event_class)
    if change is not None:
        change(env, row)
    # Every event of the citizen's stream: the row is at the aggregate's version after it
    # (max: a replayed or redelivered older event does not move it back).
    row["version"] = max(row.get("version") or 0, env.version)
    rows.put(C, row)


@projection.on(R.Registered)
def request_registered(env: Envelope, rows: Rows) -> None:
    citizen_id = env.data["citizen_id"]
    if citizen_id is None:
        return  # anonymous: no history to keep
    rows.put(
        OWN,
        {"request_id": env.aggregate_id, "citizen_id": citizen_id, "reference": env.data["reference"], "registered_position": env.position},
    )
    row = _citizen_row(rows, citizen_id, env.time)
    row.update(
        requests=row["requests"] + 1,
        open_requests=row["open_requests"] + 1,
        channels=sorted(set(row["channels"] or []) | {env.data["channel"]}),
    )
    _seen(row, env.time)
    rows.put(C, row)
    _interaction(env, rows, citizen_id, env.data["reference"], env.data["channel"])


@projection.on(R.Dispatched, R.InterimReplied, R.FinalReplied, R.Closed, R.Reopened, R.Rated, R.WorkOrderOutcomeRecorded)
def request_step(env: Envelope, rows: Rows) -> None:
    owner = rows.get(OWN, env.aggregate_id)
    if owner is None:
        return
    if env.event_class in (R.Closed, R.Reopened):
        row = _citizen_row(rows, owner["citizen_id"], env.time)
        row["open_requests"] += -1 if env.event_class is R.Closed else 1
        rows.put(C, row)
    _interaction(env, rows, owner["citizen_id"], owner["reference"], env.data.get("channel"))


def _interaction(env: Envelope, rows: Rows, citizen_id: str, reference: str, channel: str | None) -> None:
    rows.put(
        INTER,
        {
            "citizen_id": citizen_id,
            "position": env.position,
            "at": env.time,
            "request_id": env.aggregate_id,
            "reference": reference,
            "type": env.type,
            "channel": channel,
            "summary": SUMMARIES[env.event_class](env.data),
            "detail": _detail(env),
        },
    )


@projection.on(PersonalDataErasure.Erased)
def erased(env: Envelope, rows: Rows) -> None:
    """What the citizen's events read as once their key is gone: every personal value
    that was given is ``[erased]``; counts, channels and history stay."""
    row = rows.get(C, env.data["citizen_id"])
    if row is None:
        return
    row.update({k: ERASED for k in PERSONAL_COLUMNS if row.get(k) is not None})
    rows.put(C, row)
    # The registrations quote the citizen's description: it reads as erased (as on a
    # replay, where the sealed description reads "[erased]").
    for subject in env.data["subjects"]:
        owner = rows.get(OWN, subject)
        if owner is None or owner["citizen_id"] != env.data["citizen_id"] or owner.get("registered_position") is None:
            continue
        step = rows.get(INTER, owner["citizen_id"], owner["registered_position"])
        if step is not None and (step.get("detail") or {}).get("description"):
            detail = {**step["detail"], "description": ERASED}
            rows.put(INTER, {**step, "detail": detail, "summary": SUMMARIES[R.Registered](detail)})


PERSONAL_COLUMNS = ("name", "phone", "email", "address")


# ------------------------------------------------------------------------ queries
def get(conn: Connection, citizen_id: str) -> dict[str, Any] | None:
    row = conn.execute(sa.select(CITIZENS).where(CITIZENS.c.id == citizen_id)).mappings().first()
    return dict(row) if row else None


def find(conn: Connection, *, phone: str | None = None, email: str | None = None) -> list[dict[str, Any]]:
    q = sa.select(CITIZENS)
    if phone:
        q = q.where(CITIZENS.c.phone == phone)
    if email:
        # Shown as typed, matched whatever the case (domain.citizens.aggregate.email_key);
        # lower() rather than casefold(): the databases' own, ASCII at least on SQLite.
        q = q.where(sa.func.lower(CITIZENS.c.email) == email.lower())
    return [dict(r) for r in conn.execute(q.limit(50)).mappings()]


def history(conn: Connection, citizen_id: str, limit: int = 200) -> list[dict[str, Any]]:
    q = sa.select(INTERACTIONS).where(INTERACTIONS.c.citizen_id == citizen_id).order_by(INTERACTIONS.c.position.desc()).limit(limit)
    return [dict(r) for r in conn.execute(q).mappings()]
