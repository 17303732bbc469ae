"""Request status: what a citizen, an operator, the IVR or Open311 sees of one request,
its timeline (every step, who and when), and the search over all requests.

The row's ``version`` is the aggregate's version after the last event applied, whatever
the event (``TimersScheduled`` and notes included): it is the ETag a screen sends back
with ``If-Match``.

Search (:func:`find`): filters, a sort, a total and keyset pagination over indexed
columns; free text over the tokens of each request (:data:`SEARCH`, made by the knowledge
base's analyser, so stemming, Arabic folding and Chinese bigrams are the same): reference
and description for everyone who may read the request, and the contact's name and phone
number (as given at registration) for staff who may read personal data only. SQLite
indexes the tokens with FTS5, PostgreSQL with GIN over stored ``to_tsvector('simple', …)``
columns and, for one-word searches, with :data:`TERMS` (a btree of (term, request) that
counts and finds thousands of matches without reading their rows). Totals of the
searches that filter by status and department only come from :data:`COUNTS`, kept by
the projection.
"""

from __future__ import annotations

import base64
import binascii
import functools
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import phonenumbers
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql
from sqlalchemy.engine import Connection

from domain.base import InvalidCommand, event_classes, event_type_name
from domain.catalogue.aggregate import URGENCIES
from domain.envelope import Envelope
from domain.privacy.aggregate import ERASED, PersonalDataErasure
from domain.requests.aggregate import OPEN_STATES
from domain.requests.aggregate import ServiceRequest as R
from domain.requests.sla import WAITING
from projections import knowledge_text as text
from projections.base import Handler, Projection, Rows, UtcDateTime

# Version 2: a reopened case lets go of a finished work order.
projection = Projection("request_status", version=2)
REQUESTS = projection.table(
    "requests",
    sa.Column("id", sa.String(36), primary_key=True),
    sa.Column("reference", sa.String(32), nullable=False, unique=True),
    sa.Column("kind", sa.String(20)),
    sa.Column("subtype", sa.String(20)),
    sa.Column("channel", sa.String(20)),
    sa.Column("status", sa.String(20)),
    sa.Column("urgency", sa.String(20)),
    sa.Column("urgency_rank", sa.SmallInteger),  # URGENCIES' order: 0 the most urgent (sort=urgency)
    # Open and not waiting for the citizen: the deadline's clock runs (overdue = this and due_at < now).
    sa.Column("clock_running", sa.Boolean),
    sa.Column("description", sa.Text),
    sa.Column("location", sa.JSON),
    sa.Column("language", sa.String(5)),
    sa.Column("citizen_id", sa.String(36)),
    sa.Column("contact_hidden", sa.Boolean),
    sa.Column("reply_channel", sa.String(10)),
    sa.Column("problem_code", sa.String(64)),
    sa.Column("category_id", sa.String(64)),
    sa.Column("department_id", sa.String(64)),
    sa.Column("provider_id", sa.String(64)),
    sa.Column("registered_at", UtcDateTime),
    sa.Column("due_at", UtcDateTime),
    sa.Column("accepted_at", UtcDateTime),
    sa.Column("first_response_at", UtcDateTime),
    sa.Column("expected_at", UtcDateTime),
    sa.Column("resolved_at", UtcDateTime),
    sa.Column("closed_at", UtcDateTime),
    sa.Column("closed_on_time", sa.Boolean),
    sa.Column("return_count", sa.Integer),
    sa.Column("reopen_count", sa.Integer),
    sa.Column("supervised", sa.Boolean),
    sa.Column("escalated", sa.Boolean),
    sa.Column("paused_from", sa.String(20)),  # the status a request waiting for the citizen returns to
    sa.Column("deadline_missed", sa.Boolean),
    sa.Column("extension_pending", sa.Boolean),
    sa.Column("rating", sa.Integer),
    sa.Column("work_order_id", sa.String(36)),
    sa.Column("final_reply", sa.Text),
    sa.Column("work_order_outcome", sa.Text),
    sa.Column("version", sa.Integer),
    sa.Column("position", sa.BigInteger),
    sa.Column("updated_at", UtcDateTime),
    # The event-store position of the request's registration: a unique integer that keys its
    # search row (on SQLite the FTS5 rowid), so a text match finds the request in one lookup.
    sa.Column("serial", sa.BigInteger, unique=True),
)
# The search's access paths (benchmarked over 1,000,000 rows: tests/bench/bench_search.py):
# each filter with the default sort behind it, so a page and its count read one index range.
R_ = REQUESTS.c
SEARCH_INDEXES = (
    sa.Index("ix_rm_requests_registered", R_.registered_at, R_.id),
    sa.Index("ix_rm_requests_status", R_.status, R_.registered_at),
    sa.Index("ix_rm_requests_department", R_.department_id, R_.status, R_.registered_at),
    sa.Index("ix_rm_requests_provider", R_.provider_id, R_.status, R_.registered_at),
    sa.Index("ix_rm_requests_citizen", R_.citizen_id, R_.registered_at),
    sa.Index("ix_rm_requests_problem", R_.problem_code, R_.registered_at),
    sa.Index("ix_rm_requests_kind", R_.kind, R_.subtype, R_.registered_at),
    sa.Index("ix_rm_requests_urgency", R_.urgency_rank, R_.registered_at, R_.id),
    sa.Index("ix_rm_requests_channel", R_.channel, R_.urgency_rank, R_.kind, R_.registered_at),
    sa.Index("ix_rm_requests_supervised", R_.supervised, R_.registered_at),
    sa.Index("ix_rm_requests_due", R_.clock_running, R_.due_at, R_.id),
    sa.Index("ix_rm_requests_due_all", R_.due_at, R_.id),
)
# Free text: the tokens of each request, written once at registration (reference,
# description and contact never change afterwards). ``contact`` holds personal data (the
# name and phone number given), only ever matched for staff who may read it.
SEARCH = projection.table(
    "request_search",
    # INTEGER on SQLite: the table's rowid, which FTS5 returns.
    sa.Column("serial", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), primary_key=True, autoincrement=False),
    sa.Column("tokens", sa.Text, nullable=False),
    sa.Column("contact", sa.Text, nullable=False),
)
# Free text as rows, one per (term, request): on PostgreSQL a one-word search counts and
# lists its matches from this index alone (an index-only scan), where the GIN index would
# visit one heap page per match, ~25,000 for a common word. ``personal``: the term comes
# from the contact (matched for staff only). Unused on SQLite, whose FTS5 counts cheaply.
TERMS = projection.table(
    "request_terms",
    # Byte order ("C"): a prefix (``term LIKE 'pothol%'``) is one range of the index.
    sa.Column("term", sa.Text().with_variant(sa.Text(collation="C"), "postgresql"), primary_key=True),
    sa.Column("personal", sa.Boolean, primary_key=True),
    sa.Column("serial", sa.BigInteger, primary_key=True),
)
# How many requests are in each (status, department) ("" when none): the total of the
# screens that filter by nothing else (every request, a status, a department's inbox)
# without counting a million rows.
COUNTS = projection.table(
    "request_counts",
    sa.Column("status", sa.String(20), primary_key=True),
    sa.Column("department_id", sa.String(64), primary_key=True),
    sa.Column("count", sa.Integer, nullable=False),
)
TIMELINE = projection.table(
    "request_timeline",
    sa.Column("request_id", sa.String(36), primary_key=True),
    sa.Column("version", sa.Integer, primary_key=True),
    sa.Column("type", sa.String(80)),
    sa.Column("at", UtcDateTime),
    sa.Column("actor_id", sa.String(100)),
    sa.Column("actor_role", sa.String(30)),
    sa.Column("correlation_id", sa.String(64)),
    sa.Column("details", sa.JSON),
)
T = REQUESTS.name
FTS = f"{SEARCH.name}_fts"


@sa.event.listens_for(sa.Table, "after_create")
def _text_index(table: sa.Table, connection: Connection, **kw: Any) -> None:
    """FTS5 (SQLite) or GIN (PostgreSQL) over the search tokens, as the knowledge base's
    index: on SQLite an external-content FTS5 table kept by triggers (a replay copies its
    rows into the original table, whose triggers index them); on PostgreSQL two GIN
    indexes, one without the contact (what citizens, departments and integrators match)
    and one with it (staff), also on the replay copy, which is renamed into place."""
    if table.name not in (SEARCH.name, SEARCH.name + "__rebuild"):
        return
    name = table.name
    if connection.dialect.name == "sqlite":
        if name != SEARCH.name:
            return
        columns = "rowid, tokens, contact"
        forget = f'INSERT INTO "{FTS}"("{FTS}", {columns}) VALUES (\'delete\', old.rowid, old.tokens, old.contact);'
        remember = f'INSERT INTO "{FTS}"({columns}) VALUES (new.rowid, new.tokens, new.contact);'
        for sql in (
            f'DROP TABLE IF EXISTS "{FTS}"',
            f"CREATE VIRTUAL TABLE \"{FTS}\" USING fts5(tokens, contact, content='{name}', content_rowid='rowid', "
            "tokenize=\"unicode61 remove_diacritics 0 categories 'L* N* Co M*'\", detail=column)",
            f'CREATE TRIGGER IF NOT EXISTS "{name}_ai" AFTER INSERT ON "{name}" BEGIN {remember} END',
            f'CREATE TRIGGER IF NOT EXISTS "{name}_ad" AFTER DELETE ON "{name}" BEGIN {forget} END',
            f'CREATE TRIGGER IF NOT EXISTS "{name}_au" AFTER UPDATE ON "{name}" BEGIN {forget} {remember} END',
            f'INSERT INTO "{FTS}"("{FTS}") VALUES (\'rebuild\')',
        ):
            connection.exec_driver_sql(sql)
    elif connection.dialect.name == "postgresql":
        # Stored, not only indexed: a plan that walks the sort's index checks each row's
        # vector without computing it again (COPY and upserts leave them to the database).
        for column, expression in ((_PG_PUBLIC, "tokens"), (_PG_ALL, "tokens || ' ' || contact")):
            connection.exec_driver_sql(
                f'ALTER TABLE "{name}" ADD COLUMN IF NOT EXISTS {column} tsvector '
                f"GENERATED ALWAYS AS (to_tsvector('simple', {expression})) STORED"
            )
            connection.exec_driver_sql(f'CREATE INDEX IF NOT EXISTS "{name}_{column}" ON "{name}" USING gin ({column})')


# PostgreSQL's generated columns of the search table (not declared: SQLite has none).
_PG_PUBLIC, _PG_ALL = "tsv", "tsv_all"


def _ts(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


def _update(env: Envelope, rows: Rows, **changes: Any) -> None:
    row = rows.get(T, env.aggregate_id)
    if row is None:
        return
    row.update(changes, version=env.version, position=env.position, updated_at=env.time)
    rows.put(T, row)


@projection.on(*event_classes(R))
def on_any(env: Envelope, rows: Rows) -> None:
    # Timeline first: every event of a request is a step the auditor and the citizen see.
    details = {k: v for k, v in env.data.items() if k not in ("personal", "description")}
    rows.put(
        TIMELINE.name,
        {
            "request_id": env.aggregate_id,
            "version": env.version,
            "type": env.type,
            "at": env.time,
            "actor_id": env.meta.get("actor_id"),
            "actor_role": env.meta.get("actor_role"),
            "correlation_id": env.meta.get("correlation_id"),
            "details": details,
        },
    )
    before = rows.get(T, env.aggregate_id)
    handler = _STATE.get(env.event_class)
    if handler is not None:
        handler(env, rows)
    # Whatever the event (a timer plan, a note, one added later): the row is at the
    # aggregate's version after it, so If-Match with the version read succeeds.
    row = rows.get(T, env.aggregate_id)
    if row is None:
        return
    running = row["status"] in OPEN_STATES and row["status"] != WAITING
    if row["version"] != env.version or row.get("clock_running") is not running:
        row.update(version=env.version, position=env.position, updated_at=env.time, clock_running=running)
        rows.put(T, row)
    was = (before["status"], before.get("department_id") or "") if before else None
    counted_as = (row["status"], row.get("department_id") or "")
    if was != counted_as:
        if was is not None:
            _count(rows, was, -1)
        _count(rows, counted_as, +1)


def _count(rows: Rows, key: tuple[str, str], delta: int) -> None:
    counted = rows.get(COUNTS.name, *key) or {"status": key[0], "department_id": key[1], "count": 0}
    counted["count"] += delta
    if counted["count"]:
        rows.put(COUNTS.name, counted)
    else:
        rows.delete(COUNTS.name, *key)


def _registered(env: Envelope, rows: Rows) -> None:
    d = env.data
    rows.put(
        T,
        {
            "id": env.aggregate_id,
            "reference": d["reference"],
            "kind": d["kind"],
            "subtype": d["subtype"],
            "channel": d["channel"],
            "status": "registered",
            "urgency": d["urgency"],
            "urgency_rank": _urgency_rank(d["urgency"]),
            "clock_running": True,
            "description": d["description"],
            "location": d["location"],
            "language": d["language"],
            "citizen_id": d["citizen_id"],
            "contact_hidden": d["contact_hidden"],
            "reply_channel": d["reply_channel"],
            "registered_at": env.time,
            "due_at": _ts(d["due_at"]),
            "return_count": 0,
            "reopen_count": 0,
            "supervised": False,
            "extension_pending": False,
            "version": env.version,
            "position": env.position,
            "updated_at": env.time,
            "serial": env.position,
        },
    )
    public = [*_reference_tokens(d["reference"]), *text.analyze(d["description"], d["language"])]
    contact = _contact_tokens(d.get("personal"), d["language"])
    rows.put(SEARCH.name, {"serial": env.position, "tokens": text.joined(public), "contact": text.joined(contact)})
    for row in term_rows(env.position, public, contact):
        rows.put(TERMS.name, row)


def term_rows(serial: int, public: list[str], contact: list[str]) -> list[dict[str, Any]]:
    """The :data:`TERMS` rows of one request: each distinct term of its text and of its contact."""
    return [
        {"term": term, "personal": personal, "serial": serial}
        for personal, tokens in ((False, public), (True, contact))
        for term in dict.fromkeys(tokens)
    ]


def _urgency_rank(urgency: str | None) -> int:
    return URGENCIES.index(urgency) if urgency in URGENCIES else len(URGENCIES)


def _reference_tokens(reference: str) -> list[str]:
    """``2026-000123``: its pieces and the whole, letters and digits only."""
    pieces = [p.casefold() for p in re.split(r"[^0-9A-Za-z]+", reference) if p]
    return list(dict.fromkeys([*pieces, "".join(pieces)]))


@functools.lru_cache(maxsize=8192)
def phone_tokens(phone: str) -> tuple[str, ...]:
    """The digits a caller's number is searched by: international (``390612345678``),
    national as dialled (``0612345678``) and the national significant number.

    Cached: parsing with the numbering plan's metadata is the costliest step of applying a
    registration, and a hotline hears the same callers again and again."""
    digits = re.sub(r"\D", "", phone)
    tokens = (digits,) if digits else ()
    try:
        number = phonenumbers.parse(phone if phone.startswith("+") else f"+{digits}", None)
    except phonenumbers.NumberParseException:
        return tokens
    national = re.sub(r"\D", "", phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.NATIONAL))
    return tuple(dict.fromkeys([*tokens, national, phonenumbers.national_significant_number(number)]))


def _contact_tokens(personal: dict[str, Any] | None, language: str) -> list[str]:
    if not personal:
        return []
    # An erased contact (its key destroyed: a replay after the erasure) gives no tokens.
    name = personal.get("name")
    tokens = text.analyze(name, language) if name and name != ERASED else []
    if personal.get("phone") and personal["phone"] != ERASED:
        tokens += phone_tokens(personal["phone"])
    return tokens


# Event types whose timeline details hold free text the citizen wrote (``CITIZEN_TEXT``).
_CITIZEN_TEXT: dict[str, tuple[str, ...]] = {
    event_type_name(cls): tuple(getattr(cls, "CITIZEN_TEXT", ())) for cls in event_classes(R) if getattr(cls, "CITIZEN_TEXT", ())
}


@projection.on(PersonalDataErasure.Erased)
def erased(env: Envelope, rows: Rows) -> None:
    """The citizen's requests lose their contact tokens (search by name or number), their
    description and its words, and the text of the citizen's messages on the timeline: as
    a replay after the erasure builds them (the sealed text reads ``[erased]``; where the
    policy left it in clear, this handler blanks it on the replay too)."""
    for subject in env.data["subjects"]:
        row = rows.get(T, subject)
        if row is None or row.get("citizen_id") != env.data["citizen_id"]:
            continue
        _erase_text(rows, row)
        search = rows.get(SEARCH.name, row["serial"])
        if search is None or not search["contact"]:
            continue
        for term in dict.fromkeys(search["contact"].split()):
            rows.delete(TERMS.name, term, True, row["serial"])
        rows.put(SEARCH.name, {**search, "contact": ""})


def _erase_text(rows: Rows, row: dict[str, Any]) -> None:
    if row.get("description"):
        rows.put(T, {**row, "description": ERASED})
        search = rows.get(SEARCH.name, row["serial"])
        if search is not None:
            public = [*_reference_tokens(row["reference"]), *text.analyze(ERASED, row["language"])]
            for term in dict.fromkeys(search["tokens"].split()):
                rows.delete(TERMS.name, term, False, row["serial"])
            for term in term_rows(row["serial"], public, []):
                rows.put(TERMS.name, term)
            rows.put(SEARCH.name, {**search, "tokens": text.joined(public)})
    versions = [(row["id"], v) for v in range(1, int(row.get("version") or 0) + 1)]
    rows.read_ahead(TIMELINE.name, versions)
    for key in versions:
        step = rows.get(TIMELINE.name, *key)
        fields = _CITIZEN_TEXT.get(step["type"]) if step is not None else None
        if step is None or not fields:
            continue
        details = dict(step["details"] or {})
        blanked = {f: ERASED for f in fields if isinstance(details.get(f), str) and details[f]}
        if blanked:
            rows.put(TIMELINE.name, {**step, "details": {**details, **blanked}})


def _reopened(env: Envelope, rows: Rows) -> None:
    row = rows.get(T, env.aggregate_id) or {}
    # As the aggregate: work whose outcome is recorded is done, and the reopened case is free of it.
    done = {"work_order_id": None, "work_order_outcome": None} if row.get("work_order_outcome") is not None else {}
    _update(
        env,
        rows,
        **done,
        status=env.data["status"],
        due_at=_ts(env.data["due_at"]),
        final_reply=None,
        resolved_at=None,
        closed_at=None,
        closed_on_time=None,
        rating=None,
        reopen_count=(row.get("reopen_count") or 0) + 1,
    )


# What each event changes in the request's row (besides its timeline entry).
_STATE: dict[type, Handler] = {
    R.Registered: _registered,
    R.Classified: lambda e, r: _update(
        e, r, problem_code=e.data["problem_code"], category_id=e.data["category_id"], due_at=_ts(e.data["due_at"])
    ),
    R.KindChanged: lambda e, r: _update(e, r, kind=e.data["kind"], subtype=e.data["subtype"]),
    R.Dispatched: lambda e, r: _update(
        e, r, status="dispatched", department_id=e.data["department_id"], provider_id=e.data["provider_id"], due_at=_ts(e.data["due_at"])
    ),
    R.Accepted: lambda e, r: _update(e, r, status="in_progress", accepted_at=e.time),
    R.ReturnedToDispatcher: lambda e, r: _update(e, r, status="returned", return_count=e.data["return_count"]),
    R.SentForRuling: lambda e, r: _update(e, r, status="awaiting_ruling"),
    R.InterimReplied: lambda e, r: _first_response(e, r, expected_at=_ts(e.data["expected_at"])),
    R.FinalReplied: lambda e, r: _first_response(e, r, status="replied", final_reply=e.data["message"]),
    R.Resolved: lambda e, r: _update(e, r, status="resolved", resolved_at=e.time),
    R.Closed: lambda e, r: _update(e, r, status="closed", closed_at=e.time, closed_on_time=e.data["on_time"]),
    R.Reopened: _reopened,
    R.Rated: lambda e, r: _update(e, r, rating=e.data["score"]),
    R.ExtensionRequested: lambda e, r: _update(e, r, extension_pending=True),
    R.ExtensionApproved: lambda e, r: _update(e, r, extension_pending=False, due_at=_ts(e.data["due_at"])),
    R.ExtensionRefused: lambda e, r: _update(e, r, extension_pending=False),
    R.SupervisionStarted: lambda e, r: _update(e, r, supervised=True),
    R.SupervisionEnded: lambda e, r: _update(e, r, supervised=False),
    R.WorkOrderLinked: lambda e, r: _update(e, r, work_order_id=e.data["work_order_id"]),
    R.WorkOrderOutcomeRecorded: lambda e, r: _update(e, r, work_order_outcome=e.data["outcome"]),
    R.WaitingForCitizen: lambda e, r: _update(e, r, status="waiting_citizen", paused_from=e.data["resume_status"]),
    R.CitizenResponded: lambda e, r: _resumed(e, r),
    R.DeadlineMissed: lambda e, r: _update(e, r, deadline_missed=True),
    R.Escalated: lambda e, r: _update(e, r, escalated=True, supervised=True),
}


def _resumed(env: Envelope, rows: Rows) -> None:
    row = rows.get(T, env.aggregate_id)
    if row is not None:
        _update(env, rows, status=row.get("paused_from") or "registered", paused_from=None, due_at=_ts(env.data["due_at"]))


def _first_response(env: Envelope, rows: Rows, **changes: Any) -> None:
    row = rows.get(T, env.aggregate_id)
    if row is not None and row.get("first_response_at") is None:
        changes["first_response_at"] = env.time
    _update(env, rows, **changes)


# ------------------------------------------------------------------------ queries
def get(conn: Connection, request_id: str) -> dict[str, Any] | None:
    row = conn.execute(sa.select(REQUESTS).where(REQUESTS.c.id == request_id)).mappings().first()
    return dict(row) if row else None


def by_reference(conn: Connection, reference: str) -> dict[str, Any] | None:
    row = conn.execute(sa.select(REQUESTS).where(REQUESTS.c.reference == reference)).mappings().first()
    return dict(row) if row else None


def timeline(conn: Connection, request_id: str) -> list[dict[str, Any]]:
    rows = conn.execute(sa.select(TIMELINE).where(TIMELINE.c.request_id == request_id).order_by(TIMELINE.c.version)).mappings()
    return [dict(r) for r in rows]


@projection.signals
def case_of(env: Envelope, rows: Rows) -> list[str]:
    """A case's change is announced to its department's inbox, its citizen's page and
    the case page itself."""
    row = rows.get(REQUESTS.name, env.aggregate_id)
    if row is None:
        return []
    keys = [f"request-{row['id']}"]
    if row.get("department_id"):
        keys.append(f"department-{row['department_id']}")
    if row.get("citizen_id"):
        keys.append(f"citizen-{row['citizen_id']}")
    return keys


# ------------------------------------------------------------------------ search
SORTS: dict[str, tuple[tuple[str, bool], ...]] = {
    # name: (column, descending)…, the id last so that the order is total (keyset pages)
    "-registered_at": (("registered_at", True), ("id", True)),
    "registered_at": (("registered_at", False), ("id", False)),
    "due_at": (("due_at", False), ("id", False)),
    "-due_at": (("due_at", True), ("id", True)),
    "urgency": (("urgency_rank", False), ("registered_at", True), ("id", True)),
}


@dataclass(frozen=True)
class Filters:
    """What a search asks for; None: any. ``personal``: the free text may match the
    contact's name and phone number (staff who may read personal data)."""

    text: str | None = None
    personal: bool = False
    status: Sequence[str] = ()
    kind: str | None = None
    subtype: str | None = None
    urgency: str | None = None
    channel: str | None = None
    department_id: str | None = None
    provider_id: str | None = None
    problem_code: str | None = None
    citizen_id: str | None = None
    registered_from: datetime | None = None
    registered_to: datetime | None = None  # exclusive
    due_before: datetime | None = None
    overdue: bool | None = None
    supervised: bool | None = None


_HAN_CHARS = "\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\U00020000-\U0002ebef"  # as knowledge_text's
_HAN = re.compile(f"[{_HAN_CHARS}]")
_WORDS = re.compile(f"[{_HAN_CHARS}]+|(?:(?![{_HAN_CHARS}])[^\\W_])+")


def text_terms(query: str) -> list[list[tuple[str, bool]]]:
    """The free text as groups of (token, prefix?): every group must match, any token of a
    group may. The tokens are the analyser's (as indexed), tried in every language since
    the request's language is unknown; the last word matches as a prefix (typing).
    A number (digits, spaces, ``+-()./``) is one token: a phone number or a reference."""
    query = query.strip()
    digits = re.sub(r"\D", "", query)
    if re.fullmatch(r"[+\d\s().\-/]+", query) and len(digits) >= 4:
        numbers = [digits] + ([digits[2:]] if digits.startswith("00") else [])
        return [[(d, True) for d in numbers]]
    groups: list[list[tuple[str, bool]]] = []
    words = _WORDS.findall(query)
    for n, word in enumerate(words):
        last = n == len(words) - 1
        if _HAN.match(word):
            han = [t for t in dict.fromkeys(text.analyze(word, "zh")) if len(t) == 2]
            groups.extend([[(t, False)] for t in han] or [[(word, True)]])
            continue
        alternatives = dict.fromkeys(t for language in text.LANGUAGES for t in text.analyze(word, language))
        if alternatives:
            groups.append([(t, last and len(t) >= 3) for t in alternatives])
    return groups


def _fts_expression(groups: list[list[tuple[str, bool]]], personal: bool) -> str:
    expr = " AND ".join("(" + " OR ".join(f'"{t}"' + ("*" if p else "") for t, p in g) + ")" for g in groups)
    return expr if personal else "{tokens} : (" + expr + ")"


def _ts_query(groups: list[list[tuple[str, bool]]]) -> str:
    return " & ".join("(" + " | ".join(f"'{t}'" + (":*" if p else "") for t, p in g) + ")" for g in groups)


# Up to this many text matches are read once and named by their serials (each a lookup);
# above it a page is found faster by walking the sort's index and checking each row
# against the matches than by sorting every match.
BROAD_TEXT = 2_000


def _text_match(conn: Connection, query: str, personal: bool) -> tuple[sa.ColumnElement[bool], int]:
    """The condition that a request matches the free text, and how many requests do."""
    groups = text_terms(query)
    if not groups:
        raise InvalidCommand("q has no word to search for", field="q")
    if conn.dialect.name == "postgresql" and len(groups) == 1:
        return _one_group_match(conn, groups[0], personal)
    if conn.dialect.name == "postgresql":
        vector = _PG_ALL if personal else _PG_PUBLIC
        matched = f"SELECT serial FROM \"{SEARCH.name}\" WHERE {vector} @@ to_tsquery('simple', :q)"
        counted = f"SELECT count(*) FROM ({matched}) m"
        column = "serial"
        parameter = _ts_query(groups)
    else:
        matched = f'SELECT rowid FROM "{FTS}" WHERE "{FTS}" MATCH :q'
        counted = f'SELECT count(*) FROM "{FTS}" WHERE "{FTS}" MATCH :q'
        # "+serial": not through its index, so SQLite reads the sort's index instead.
        column = f'+"{T}".serial'
        parameter = _fts_expression(groups, personal)
    found = conn.execute(sa.text(f"{matched} LIMIT {BROAD_TEXT + 1}").bindparams(q=parameter)).scalars().all()
    if len(found) <= BROAD_TEXT:
        return _serial_in(conn, found), len(found)
    count = conn.execute(sa.text(counted).bindparams(q=parameter)).scalar_one()
    return sa.and_(sa.text(f"{column} IN ({matched})").bindparams(q=parameter)), count


def _serial_in(conn: Connection, serials: Sequence[int]) -> sa.ColumnElement[bool]:
    """The requests of these serials: on PostgreSQL one array parameter, not a thousand."""
    if conn.dialect.name == "postgresql":
        return REQUESTS.c.serial == sa.func.any(sa.literal(list(serials), type_=postgresql.ARRAY(sa.BigInteger)))
    return REQUESTS.c.serial.in_(serials)


def _starts_with(column: sa.ColumnElement[str], prefix: str) -> sa.ColumnElement[bool]:
    """A prefix as a range of the index (byte order, the column's collation "C"): one range
    whatever the plan, no LIKE pattern to escape."""
    after = ord(prefix[-1]) + 1
    after = 0xE000 if 0xD800 <= after < 0xE000 else after  # no surrogates in UTF-8
    if after > 0x10FFFF:
        return column.startswith(prefix, autoescape=True)
    return sa.and_(column >= prefix, column < prefix[:-1] + chr(after))


def _one_group_match(conn: Connection, group: list[tuple[str, bool]], personal: bool) -> tuple[sa.ColumnElement[bool], int]:
    """PostgreSQL, one word (any of its forms): the matches from :data:`TERMS`'s index
    alone (an index-only scan; the GIN index would fetch each match's row), counted, and
    named when few. When many, a page walks the sort's index and looks each row up in the
    matches, hashed once."""
    t = TERMS.c
    forms = [_starts_with(t.term, term) if prefix else t.term == term for term, prefix in group]
    where = [sa.or_(*forms)] if personal else [sa.or_(*forms), t.personal == sa.false()]
    serials = sa.select(t.serial).where(*where)
    count = conn.execute(sa.select(sa.func.count()).select_from(serials.distinct().subquery())).scalar_one()
    if count <= BROAD_TEXT:
        return _serial_in(conn, conn.execute(serials.distinct()).scalars().all()), count
    # "OR false" keeps the IN a hashed subplan (the database simplifies it only after it
    # has decided not to make it a join): with a join, a misestimated range of terms can
    # make the plan fetch every match's row to sort them (0.7 s instead of 14 ms).
    return sa.or_(REQUESTS.c.serial.in_(serials), sa.literal_column("false")), count


def _conditions(f: Filters, now: datetime) -> list[sa.ColumnElement[bool]]:
    """Every filter but the free text, as conditions on the request's row."""
    c = REQUESTS.c
    where: list[sa.ColumnElement[bool]] = []
    if f.status:
        where.append(c.status == f.status[0] if len(f.status) == 1 else c.status.in_(list(f.status)))
    for column, value in (
        (c.kind, f.kind),
        (c.subtype, f.subtype),
        (c.channel, f.channel),
        (c.department_id, f.department_id),
        (c.provider_id, f.provider_id),
        (c.problem_code, f.problem_code),
        (c.citizen_id, f.citizen_id),
    ):
        if value is not None:
            where.append(column == value)
    if f.urgency is not None:
        where.append(c.urgency_rank == _urgency_rank(f.urgency))
    if f.registered_from is not None:
        where.append(c.registered_at >= f.registered_from)
    if f.registered_to is not None:
        where.append(c.registered_at < f.registered_to)
    # A deadline counts while the clock runs (open, not waiting for the citizen): "due
    # before" and "overdue" are about those requests (one index: clock_running, due_at).
    running = c.clock_running == sa.true()
    if f.due_before is not None:
        where += [running, c.due_at < f.due_before]
    if f.overdue:
        where += [running, c.due_at < now]
    elif f.overdue is False:
        where.append(c.due_at >= now if f.due_before is not None else sa.not_(sa.and_(running, c.due_at < now)))
    if f.supervised is not None:
        where.append(c.supervised == (sa.true() if f.supervised else sa.false()))
    return where


def encode_cursor(sort: str, row: dict[str, Any]) -> str:
    values = [row[name].isoformat() if isinstance(row[name], datetime) else row[name] for name, _ in SORTS[sort]]
    raw = json.dumps([sort, values], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(sort: str, cursor: str) -> list[Any]:
    try:
        got, values = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        keys = SORTS[sort]
        if got != sort or len(values) != len(keys):
            raise ValueError
        decoded = []
        for (name, _), value in zip(keys, values, strict=True):
            kind = REQUESTS.c[name].type
            if isinstance(kind, UtcDateTime):
                value = datetime.fromisoformat(value)
                if value.tzinfo is None:
                    raise ValueError
            elif not isinstance(value, str if isinstance(kind, sa.String) else int) or isinstance(value, bool):
                raise ValueError
            decoded.append(value)
        return decoded
    except (ValueError, TypeError, KeyError, binascii.Error, UnicodeDecodeError, NotImplementedError):
        raise InvalidCommand("cursor is not one this search returned (it belongs to the same sort)", field="cursor") from None


def _after(sort: str, values: list[Any]) -> sa.ColumnElement[bool]:
    """Rows after the cursor's row in the sort order (keyset pagination)."""
    keys = [(REQUESTS.c[name], desc) for name, desc in SORTS[sort]]
    alternatives = []
    for i, (column, desc) in enumerate(keys):
        equal = [k == v for (k, _), v in zip(keys[:i], values[:i], strict=True)]
        alternatives.append(sa.and_(*equal, column < values[i] if desc else column > values[i]))
    first, desc = keys[0]
    # The redundant bound on the first key lets the database start the index range there.
    return sa.and_(first <= values[0] if desc else first >= values[0], sa.or_(*alternatives))


def _counted(conn: Connection, f: Filters) -> int | None:
    """The total from :data:`COUNTS` when the search filters by status and department only."""
    if f != Filters(status=f.status, department_id=f.department_id, personal=f.personal):
        return None
    q = sa.select(sa.func.coalesce(sa.func.sum(COUNTS.c["count"]), 0))
    if f.status:
        q = q.where(COUNTS.c.status.in_(list(f.status)))
    if f.department_id is not None:
        q = q.where(COUNTS.c.department_id == f.department_id)
    return int(conn.execute(q).scalar_one())


def find(
    conn: Connection,
    filters: Filters,
    *,
    now: datetime,
    sort: str = "-registered_at",
    limit: int = 50,
    cursor: str | None = None,
    with_total: bool = True,
) -> dict[str, Any]:
    """One page of requests matching ``filters`` in ``sort`` order after ``cursor``, the
    total that match, and the cursor of the next page (None on the last)."""
    where = _conditions(filters, now)
    matches = None
    if filters.text:
        condition, matches = _text_match(conn, filters.text, filters.personal)
        where.append(condition)
    q = sa.select(REQUESTS).where(*where)
    if cursor:
        q = q.where(_after(sort, decode_cursor(sort, cursor)))
    order = [REQUESTS.c[name].desc() if desc else REQUESTS.c[name].asc() for name, desc in SORTS[sort]]
    items = [dict(r) for r in conn.execute(q.order_by(*order).limit(limit + 1)).mappings()]
    more = len(items) > limit
    items = items[:limit]
    total = None
    if with_total:
        total = _counted(conn, filters)
        if total is None and matches is not None and len(where) == 1:
            total = matches  # the free text alone: its index has counted them
        if total is None:
            total = conn.execute(sa.select(sa.func.count()).select_from(REQUESTS).where(*where)).scalar_one()
    return {"items": items, "total": total, "next_cursor": encode_cursor(sort, items[-1]) if more else None}


def search(
    conn: Connection,
    *,
    status: str | None = None,
    department_id: str | None = None,
    citizen_id: str | None = None,
    problem_code: str | None = None,
    limit: int = 50,
    offset: int = 0,
) -> list[dict[str, Any]]:
    q = sa.select(REQUESTS)
    if status:
        q = q.where(REQUESTS.c.status == status)
    if department_id:
        q = q.where(REQUESTS.c.department_id == department_id)
    if citizen_id:
        q = q.where(REQUESTS.c.citizen_id == citizen_id)
    if problem_code:
        q = q.where(REQUESTS.c.problem_code == problem_code)
    q = q.order_by(REQUESTS.c.registered_at.desc()).limit(limit).offset(offset)
    return [dict(r) for r in conn.execute(q).mappings()]
