"""The hotline's KPIs, with the field's standard definitions (see README "Analytics").

Every function takes a DuckDB connection (usually read-only, on the snapshot), a window
``[start, end)``, optionally ``by``: a time bucket (``hour``, ``interval`` (30 min),
``day``, ``week``, ``month``, ``total``) or a dimension (``queue``, ``channel``,
``agent``, ``language`` for contacts; ``department``, ``category``, ``problem_code``,
``channel``, ``kind``, ``urgency`` for requests), and ``tz``: the hotline's time zone
(``Settings.time_zone``; UTC if not given). Functions return rows as dicts.

Time zone. The tables hold UTC. A window bound with an offset is that instant; a date or
a time without one is wall-clock time in ``tz``. Days, weeks (from Monday) and months are
``tz``'s calendar ones, by DuckDB's ICU time zone rules (a DST day has 23 or 25 hours):
such a bucket is the local ``date`` the period starts on. Hours and half hours are
absolute (the hour a DST change repeats makes two buckets), aligned to ``tz``'s hours:
such a bucket, like every other time a row holds, is an aware ``datetime`` in ``tz``. The
heat map's weekday and hour are local.

Definitions (T = service-level threshold, S = short-abandon threshold):

* offered: inbound contacts that reached a queue (queued, answered or abandoned);
* answered: offered contacts an agent answered; abandoned: the caller hung up before an
  answer; short abandon: abandoned after waiting less than S seconds;
* service level = answered within T / answered; service level (offered) = answered
  within T / (answered + abandoned − short abandons);
* ASA = mean wait of answered contacts; AHT = (talk + hold + wrap-up) / handled contacts;
* abandonment rate = (abandoned − short) / (offered − short); answer rate (接通率) =
  answered / offered;
* occupancy = handle time / staffed time (agents logged in and not in an aux state);
* on-time completion (按时办结率) = closures on time / closures; satisfaction = mean
  rating (1–5) and share of ratings ≥ 4; FCR = share of requests after which the same
  citizen registers no other request with the same problem code within N days;
  repeat complaint = a complaint whose citizen complained about the same problem code
  in the N days before;
* backlog as of a moment (the report's: the window's end, or now if that is earlier):
  requests registered and not yet resolved or closed, with their age and whether they
  are past due;
* knowledge base (the searches performed in the window, with their outcomes whenever
  they came; events of the ``knowledge`` stream): answer rate = searches followed by
  ``used_to_answer`` or ``deflected`` / searches (also per channel: agent, self_service,
  ivr); deflection rate = self-service searches with ``deflected`` / self-service
  searches; unanswered = searches that showed nothing (``results = 0``) or got
  ``no_good_answer``, grouped by language and normalised query (NFC, lower case,
  whitespace collapsed), most frequent first; articles read but not resolving = per
  article, the searches in which it was opened (``article_opened``) and that had no
  ``used_to_answer`` / ``deflected`` naming it.
"""

from __future__ import annotations

import re
import time as _time
from dataclasses import asdict, dataclass
from datetime import UTC, date, datetime
from typing import Any
from zoneinfo import ZoneInfo

import duckdb

from domain.contact_center.contacts import SHORT_ABANDON_SECONDS

# The contacts that started in the window (callers may pass a table of their own instead).
CONTACTS_IN_WINDOW = "contacts_between($from, $to)"
TIME_BUCKETS = {"hour": "1 hour", "interval": "30 minutes", "day": "1 day", "week": "1 week", "month": "1 month"}
CONTACT_DIMENSIONS = {"queue": "queue_id", "channel": "channel", "agent": "agent_id", "language": "language"}
REQUEST_DIMENSIONS = {
    "department": "department_id",
    "category": "category_id",
    "problem_code": "problem_code",
    "channel": "channel",
    "kind": "kind",
    "urgency": "urgency",
}


@dataclass(frozen=True)
class KpiParams:
    sl_threshold_seconds: float = 20.0
    short_abandon_seconds: float = SHORT_ABANDON_SECONDS
    fcr_days: int = 7
    repeat_days: int = 30
    satisfied_score: int = 4
    top: int = 10

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _parsed(value: datetime | date | str) -> datetime:
    if isinstance(value, str):
        value = datetime.fromisoformat(value) if "T" in value or " " in value else date.fromisoformat(value)
    if not isinstance(value, datetime):
        return datetime(value.year, value.month, value.day)
    return value


class OutOfRange(ValueError):
    """A time beyond what a Python datetime holds (the years 1 to 9999) once in UTC or
    moved by days: DuckDB computes it, but hands it back as a string."""


def as_utc_naive(value: datetime | date | str) -> datetime:
    """Dates mean midnight UTC; aware datetimes are converted to UTC (see :func:`utc_bound`
    for bounds in the hotline's time zone)."""
    value = _parsed(value)
    if value.tzinfo is not None:
        try:
            value = value.astimezone(UTC).replace(tzinfo=None)
        except OverflowError:
            raise OutOfRange(f"{value.isoformat()} is out of range in UTC") from None
    return value


def _timestamp(row: Any, what: str) -> datetime:
    """A TIMESTAMP DuckDB computed: a datetime, or OutOfRange (DuckDB answers one outside
    Python's years as a string such as '10000-01-06 23:00:00')."""
    value = row[0]
    if not isinstance(value, datetime):
        raise OutOfRange(f"{what} is out of range ({value})")
    return value


# A UTC TIMESTAMP (every table's) as wall-clock time in $tz, and wall-clock time back to UTC.
def _local(utc: str) -> str:
    return f"timezone($tz, timezone('UTC', {utc}))"


def _utc(local: str) -> str:
    return f"timezone('UTC', timezone($tz, {local}))"


def check_time_zone(conn: duckdb.DuckDBPyConnection, tz: str) -> str:
    """``tz`` if DuckDB's ICU knows it, else ValueError."""
    try:
        conn.execute("SELECT timezone($tz, TIMESTAMPTZ '2000-01-01 00:00:00+00')", {"tz": tz})
    except duckdb.Error:
        raise ValueError(f"unknown time zone {tz!r}: use an IANA name such as Europe/Rome") from None
    return tz


def utc_bound(conn: duckdb.DuckDBPyConnection, value: datetime | date | str, tz: str = "UTC") -> datetime:
    """A window bound in UTC (naive, as the tables hold it): an aware datetime is that
    instant; a date or a datetime without an offset is wall-clock time in ``tz``."""
    v = _parsed(value)
    if v.tzinfo is not None or tz == "UTC":
        return as_utc_naive(v)
    row = conn.execute(f"SELECT {_utc('$t::TIMESTAMP')}", {"tz": tz, "t": v}).fetchone()
    return _timestamp(row, f"{v.isoformat()} in UTC")


def shift_days(conn: duckdb.DuckDBPyConnection, at: datetime, days: int, tz: str = "UTC", midnight: bool = False) -> datetime:
    """``at`` (UTC) moved by ``days`` calendar days of ``tz`` (back, if negative), in UTC:
    the same local time of day (local midnight if ``midnight``), so a day across a DST
    change is 23 or 25 hours."""
    local = _local("$t::TIMESTAMP")
    if midnight:
        local = f"date_trunc('day', {local})"
    moved = f"{local} + INTERVAL (CAST($days AS INTEGER)) DAY"
    row = conn.execute(f"SELECT {_utc(moved)}", {"tz": tz, "t": as_utc_naive(at), "days": days}).fetchone()
    return _timestamp(row, f"{at.isoformat()} {days:+d} days")


def in_zone(value: datetime, tz: str) -> datetime:
    """A time as an aware datetime in ``tz`` (a naive one is UTC, as the tables')."""
    return (value if value.tzinfo is not None else value.replace(tzinfo=UTC)).astimezone(ZoneInfo(tz))


def _bucket(by: str | None, column: str) -> str:
    """The bucket of a UTC TIMESTAMP ``column``: the local date a day, week or month starts
    on; an absolute hour or half hour aligned to $tz's (a TIMESTAMPTZ)."""
    if by in (None, "", "total"):
        return "'total'"
    if by in ("hour", "interval"):
        return f"time_bucket(INTERVAL '{TIME_BUCKETS[by]}', timezone('UTC', {column}), $tz)"
    if by in TIME_BUCKETS:
        return f"CAST(date_trunc('{by}', {_local(column)}) AS DATE)"
    raise ValueError(f"cannot group by {by!r} here")


def _buckets(by: str) -> str:
    """Every bucket of the window [$from, $to) as :func:`_bucket` names it, with its bounds
    in UTC (``lo``, ``hi``)."""
    step = f"INTERVAL '{TIME_BUCKETS[by]}'"
    if by in ("hour", "interval"):
        series = f"generate_series(time_bucket({step}, timezone('UTC', $from), $tz), timezone('UTC', $to), {step})"
        return f"SELECT b AS bucket, timezone('UTC', b) AS lo, timezone('UTC', b + {step}) AS hi FROM (SELECT unnest({series}) AS b)"
    series = f"generate_series(date_trunc('{by}', {_local('$from')}), {_local('$to')}, {step})"
    return f"SELECT CAST(b AS DATE) AS bucket, {_utc('b')} AS lo, {_utc(f'b + {step}')} AS hi FROM (SELECT unnest({series}) AS b)"


def _ratio(n: Any, d: Any) -> float | None:
    return None if not d else float(n) / float(d)


def _rows(conn: duckdb.DuckDBPyConnection, sql: str, params: dict[str, Any]) -> list[dict[str, Any]]:
    # Only the parameters the statement uses (DuckDB refuses extra ones).
    cur = conn.execute(sql, {k: v for k, v in params.items() if re.search(rf"\${k}\b", sql)})
    names = [d[0] for d in cur.description]
    tz = params.get("tz") or "UTC"
    # TIMESTAMPTZ values arrive in the session's zone (UTC): shown in the hotline's.
    return [
        {n: in_zone(v, tz) if isinstance(v, datetime) and v.tzinfo is not None else v for n, v in zip(names, r, strict=True)}
        for r in cur.fetchall()
    ]


def _window(conn: duckdb.DuckDBPyConnection, start: Any, end: Any, tz: str = "UTC") -> dict[str, Any]:
    s, e = utc_bound(conn, start, tz), utc_bound(conn, end, tz)
    if e <= s:
        raise ValueError("the window's end must be after its start")
    return {"from": s, "to": e, "tz": tz}


# ------------------------------------------------------------------------ contacts
def contact_kpis(
    conn: duckdb.DuckDBPyConnection,
    start: Any,
    end: Any,
    by: str | None = "total",
    p: KpiParams = KpiParams(),
    source: str = CONTACTS_IN_WINDOW,
    tz: str = "UTC",
) -> list[dict[str, Any]]:
    """Service level, ASA, AHT, abandonment, answer rate (and occupancy for time buckets and agents)."""
    w = _window(conn, start, end, tz)
    key = CONTACT_DIMENSIONS.get(by or "")
    bucket = key if key else _bucket(by, "started_at")
    rows = _rows(
        conn,
        f"""
        SELECT {bucket} AS bucket,
            count(*) FILTER (offered) AS offered,
            count(*) FILTER (offered AND answered) AS answered,
            count(*) FILTER (offered AND abandoned) AS abandoned,
            count(*) FILTER (offered AND abandoned AND wait_seconds < $short) AS short_abandoned,
            count(*) FILTER (offered AND answered AND wait_seconds <= $t) AS answered_within_threshold,
            count(*) FILTER (handled) AS handled,
            avg(wait_seconds) FILTER (offered AND answered) AS asa_seconds,
            max(wait_seconds) FILTER (offered AND answered) AS longest_wait_seconds,
            sum(handle_seconds) FILTER (handled) AS handle_seconds,
            avg(talk_seconds) FILTER (handled) AS avg_talk_seconds,
            avg(hold_seconds) FILTER (handled) AS avg_hold_seconds,
            avg(wrap_seconds) FILTER (handled) AS avg_wrap_seconds,
            sum(transfers) AS transfers
        FROM {source}
        WHERE direction = 'inbound'
        GROUP BY ALL ORDER BY bucket NULLS LAST
        """,
        {**w, "t": p.sl_threshold_seconds, "short": p.short_abandon_seconds},
    )
    staffed: dict[Any, float] = {}
    if by == "agent":
        staffed = {r["bucket"]: r["staffed_seconds"] for r in staffed_time(conn, start, end, "agent", tz)}
    elif key is None:
        staffed = {r["bucket"]: r["staffed_seconds"] for r in staffed_time(conn, start, end, by, tz)}
    if key is None:  # time buckets where agents were staffed but nobody called
        have = {r["bucket"] for r in rows}
        zero = dict.fromkeys(
            ("offered", "answered", "abandoned", "short_abandoned", "answered_within_threshold", "handled", "transfers"), 0
        )
        rows += [{"bucket": b, **zero} for b in staffed if b not in have]
        rows.sort(key=lambda r: (r["bucket"] is None, r["bucket"]))
    for r in rows:
        real_abandons = r["abandoned"] - r["short_abandoned"]
        r["service_level"] = _ratio(r["answered_within_threshold"], r["answered"])
        r["service_level_offered"] = _ratio(r["answered_within_threshold"], r["answered"] + real_abandons)
        r["abandonment_rate"] = _ratio(real_abandons, r["offered"] - r["short_abandoned"])
        r["answer_rate"] = _ratio(r["answered"], r["offered"])
        r["aht_seconds"] = _ratio(r.get("handle_seconds") or 0, r["handled"])
        s = staffed.get(r["bucket"])
        r["staffed_seconds"] = s
        r["occupancy"] = _ratio(r.get("handle_seconds") or 0, s) if s else None
    return rows


def staffed_time(conn: duckdb.DuckDBPyConnection, start: Any, end: Any, by: str | None = "total", tz: str = "UTC") -> list[dict[str, Any]]:
    """Seconds agents were logged in and not in an aux state, cut to the window (and buckets);
    by agent, keyed by the agent's id as contacts name it (``agent_code``).

    A state still open is counted up to the latest event the database holds, not to the
    end of the window: the rest of today has not been staffed yet."""
    w = _window(conn, start, end, tz)
    known = conn.execute("SELECT max(time) FROM events").fetchone()
    w["open_until"] = min(w["to"], known[0]) if known and known[0] is not None else w["to"]
    if by == "agent":
        return _rows(
            conn,
            """
            SELECT agent_code AS bucket,
                sum(epoch(least(coalesce(ended_at, $open_until), $to) - greatest(started_at, $from))) AS staffed_seconds
            FROM agent_states
            WHERE staffed AND started_at < $to AND coalesce(ended_at, $open_until) > $from
            GROUP BY ALL
            """,
            w,
        )
    if by in (None, "", "total"):
        return _rows(
            conn,
            """
            SELECT 'total' AS bucket,
                sum(epoch(least(coalesce(ended_at, $open_until), $to) - greatest(started_at, $from))) AS staffed_seconds
            FROM agent_states
            WHERE staffed AND started_at < $to AND coalesce(ended_at, $open_until) > $from
            """,
            w,
        )
    if by not in TIME_BUCKETS:
        return []
    return _rows(
        conn,
        f"""
        WITH b AS ({_buckets(by)}),
        s AS (SELECT started_at, coalesce(ended_at, $open_until) AS ended_at FROM agent_states
              WHERE staffed AND started_at < $to AND coalesce(ended_at, $open_until) > $from)
        SELECT bucket, sum(epoch(least(s.ended_at, hi, $to) - greatest(s.started_at, lo, $from))) AS staffed_seconds
        FROM b JOIN s ON s.started_at < hi AND s.ended_at > lo
        WHERE lo < $to
        GROUP BY ALL ORDER BY bucket
        """,
        w,
    )


# ------------------------------------------------------------------------ requests
def _request_bucket(by: str | None) -> tuple[str, str]:
    """(bucket expression, extra join) for request_events rows ``e``."""
    if by in REQUEST_DIMENSIONS:
        col = REQUEST_DIMENSIONS[by]
        # The request's current dimensions: its facts row (see ``_REQUEST_AGG``).
        dims = """JOIN (SELECT request_id, department_id, category_id, problem_code, channel, kind, urgency
            FROM request_facts) d USING (request_id)"""
        return f"d.{col}", dims
    return _bucket(by, "e.time"), ""


def request_kpis(
    conn: duckdb.DuckDBPyConnection, start: Any, end: Any, by: str | None = "total", p: KpiParams = KpiParams(), tz: str = "UTC"
) -> list[dict[str, Any]]:
    """Intake, dispatches, closures on time, reopenings and satisfaction, each counted when it happened."""
    w = _window(conn, start, end, tz)
    bucket, join = _request_bucket(by)
    rows = _rows(
        conn,
        f"""
        SELECT {bucket} AS bucket,
            count(*) FILTER (e.name = 'registered') AS requests_registered,
            count(*) FILTER (e.name = 'dispatched') AS dispatches,
            count(*) FILTER (e.name = 'returned_to_dispatcher') AS returns,
            count(*) FILTER (e.name = 'closed') AS closed,
            count(*) FILTER (e.name = 'closed' AND e.on_time) AS closed_on_time,
            count(*) FILTER (e.name = 'reopened') AS reopened,
            count(*) FILTER (e.name = 'rated') AS ratings,
            avg(e.score) FILTER (e.name = 'rated') AS satisfaction_avg,
            count(*) FILTER (e.name = 'rated' AND e.score >= $sat) AS satisfied
        FROM request_events e {join}
        WHERE e.time >= $from AND e.time < $to
        GROUP BY ALL ORDER BY bucket NULLS LAST
        """,
        {**w, "sat": p.satisfied_score},
    )
    for r in rows:
        r["on_time_rate"] = _ratio(r["closed_on_time"], r["closed"])
        r["satisfaction_rate"] = _ratio(r["satisfied"], r["ratings"])
    return rows


# N days as a DuckDB interval ($days is bound as a parameter).
_DAYS = "INTERVAL (CAST($days AS INTEGER)) DAY"


@dataclass(frozen=True)
class _SameProblemQuery:
    """Requests registered in the window, each with ``neighbour_at``: when the same citizen
    registered the next (``lead``) or previous (``lag``) request with the same problem code."""

    neighbour: str  # lead or lag
    source: str  # the arguments of requests_between: the window widened by N days
    where: str  # which requests take part
    counts: str  # the SELECT's aggregates
    rate: tuple[str, str, str]  # (name, numerator, denominator) of the ratio added to each row


def _same_problem(
    conn: duckdb.DuckDBPyConnection, start: Any, end: Any, by: str | None, days: int, q: _SameProblemQuery, tz: str
) -> list[dict[str, Any]]:
    col = REQUEST_DIMENSIONS.get(by or "")
    bucket = col if col else _bucket(by, "registered_at")
    rows = _rows(
        conn,
        f"""
        WITH r AS (
            SELECT request_id, citizen_id, problem_code, registered_at, department_id, category_id, channel, kind, urgency,
                {q.neighbour}(registered_at) OVER (PARTITION BY citizen_id, problem_code ORDER BY registered_at, request_id) AS neighbour_at
            FROM requests_between({q.source})
            WHERE {q.where}
        )
        SELECT {bucket} AS bucket, {q.counts}
        FROM r WHERE registered_at >= $from AND registered_at < $to
        GROUP BY ALL ORDER BY bucket NULLS LAST
        """,
        {**_window(conn, start, end, tz), "days": days},
    )
    name, numerator, denominator = q.rate
    for r in rows:
        r[name] = _ratio(r[numerator], r[denominator])
    return rows


_FCR = _SameProblemQuery(
    neighbour="lead",
    source=f"$from, $to + {_DAYS}",
    where="citizen_id IS NOT NULL AND problem_code IS NOT NULL",
    counts=f"""count(*) AS eligible_requests,
        count(*) FILTER (neighbour_at IS NULL OR neighbour_at > registered_at + {_DAYS}) AS resolved_first_contact""",
    rate=("fcr_rate", "resolved_first_contact", "eligible_requests"),
)
_REPEAT_COMPLAINTS = _SameProblemQuery(
    neighbour="lag",
    source=f"$from - {_DAYS}, $to",
    where="subtype = 'complaint'",
    counts=f"""count(*) AS complaints,
        count(*) FILTER (citizen_id IS NOT NULL AND problem_code IS NOT NULL AND neighbour_at IS NOT NULL
                         AND neighbour_at >= registered_at - {_DAYS}) AS repeat_complaints""",
    rate=("repeat_rate", "repeat_complaints", "complaints"),
)


def fcr(
    conn: duckdb.DuckDBPyConnection, start: Any, end: Any, by: str | None = "total", p: KpiParams = KpiParams(), tz: str = "UTC"
) -> list[dict[str, Any]]:
    """First contact resolution over requests registered in the window (citizen and problem code known)."""
    return _same_problem(conn, start, end, by, p.fcr_days, _FCR, tz)


def repeat_complaints(
    conn: duckdb.DuckDBPyConnection, start: Any, end: Any, by: str | None = "total", p: KpiParams = KpiParams(), tz: str = "UTC"
) -> list[dict[str, Any]]:
    """Complaints in the window, and those repeating the same citizen's complaint about the same problem."""
    return _same_problem(conn, start, end, by, p.repeat_days, _REPEAT_COMPLAINTS, tz)


AGE_BUCKETS = (("under_1d", 0, 1), ("d1_3", 1, 3), ("d3_7", 3, 7), ("d7_30", 7, 30), ("over_30d", 30, None))


def backlog(conn: duckdb.DuckDBPyConnection, as_of: Any, by: str | None = "department", tz: str = "UTC") -> list[dict[str, Any]]:
    """Open requests as of a moment, by department / category: count, past due, ageing.

    A request counts for the department it is dispatched to then (as the departments'
    workloads count it); one at the hotline (never dispatched, or returned to the
    dispatcher) has no department (null: the console's "not sent to a department")."""
    t = utc_bound(conn, as_of, tz)
    department = "assigned_department_id"
    dims = {"department": department, "category": "category_id", "problem_code": "problem_code", "urgency": "urgency"}
    order = "1"  # ties in a stable order
    if by in ("department_category", "department,category"):
        group = f"{department} AS department, category_id AS category"
        order = "1, 2"
    elif by in (None, "", "total"):
        group = "'total' AS bucket"
    elif by in dims:
        group = f"{dims[by]} AS {by}"
    else:
        raise ValueError(f"backlog cannot be grouped by {by!r}")
    ages = ",\n".join(
        f"count(*) FILTER (age_days >= {lo}{f' AND age_days < {hi}' if hi else ''}) AS {name}" for name, lo, hi in AGE_BUCKETS
    )
    return _rows(
        conn,
        f"""
        SELECT {group}, count(*) AS open_requests,
            count(*) FILTER (due_at < $t) AS past_due,
            {ages},
            -- The mean of integer microseconds is exact, so it does not depend on the order
            -- in which parallel threads add the rows up (a mean of doubles does).
            avg(age_us) / 86400e6 AS avg_age_days, max(age_days) AS oldest_days
        FROM (SELECT *, epoch($t - registered_at) / 86400.0 AS age_days, epoch_us($t) - epoch_us(registered_at) AS age_us
              FROM requests_open_at($t))
        GROUP BY ALL ORDER BY open_requests DESC, {order}
        """,
        {"t": t},
    )


def top_problems(
    conn: duckdb.DuckDBPyConnection, start: Any, end: Any, p: KpiParams = KpiParams(), tz: str = "UTC"
) -> list[dict[str, Any]]:
    w = _window(conn, start, end, tz)
    rows = _rows(
        conn,
        """
        SELECT problem_code, any_value(category_id) AS category_id, any_value(department_id) AS department_id,
            count(*) AS requests, count(*) FILTER (subtype = 'complaint') AS complaints
        FROM requests_between($from, $to)
        WHERE problem_code IS NOT NULL
        GROUP BY problem_code ORDER BY requests DESC, problem_code LIMIT $top
        """,
        {**w, "top": p.top},
    )
    total = sum(r["requests"] for r in rows) or 0
    registered = conn.execute(
        "SELECT count(*) FROM request_events WHERE name = 'registered' AND time >= $from AND time < $to", {"from": w["from"], "to": w["to"]}
    ).fetchone()[0]  # type: ignore[index]
    for r in rows:
        r["share"] = _ratio(r["requests"], registered or total)
    return rows


def heatmap(
    conn: duckdb.DuckDBPyConnection,
    start: Any,
    end: Any,
    p: KpiParams = KpiParams(),
    source: str = CONTACTS_IN_WINDOW,
    tz: str = "UTC",
) -> list[dict[str, Any]]:
    """Offered contacts by ISO weekday (1 = Monday) and hour of the local day, with service level."""
    w = _window(conn, start, end, tz)
    rows = _rows(
        conn,
        f"""
        SELECT isodow({_local("started_at")}) AS weekday, hour({_local("started_at")}) AS hour,
            count(*) AS offered,
            count(*) FILTER (answered) AS answered,
            count(*) FILTER (abandoned) AS abandoned,
            count(*) FILTER (answered AND wait_seconds <= $t) AS answered_within_threshold,
            avg(wait_seconds) FILTER (answered) AS asa_seconds
        FROM {source}
        WHERE direction = 'inbound' AND offered
        GROUP BY ALL ORDER BY weekday, hour
        """,
        {**w, "t": p.sl_threshold_seconds},
    )
    for r in rows:
        r["service_level"] = _ratio(r["answered_within_threshold"], r["answered"])
    return rows


KNOWLEDGE_DIMENSIONS = {"language": "language", "channel": "channel", "trigger": "trigger"}
KNOWLEDGE_IN_WINDOW = "knowledge_searches_between($from, $to)"


def knowledge(conn: duckdb.DuckDBPyConnection, start: Any, end: Any, by: str | None = "total", tz: str = "UTC") -> list[dict[str, Any]]:
    """Knowledge-base answer rate (searches used to answer or deflected / searches) and
    deflection rate (self-service searches deflected / self-service searches), with the
    counts behind them, for the searches performed in the window."""
    w = _window(conn, start, end, tz)
    key = KNOWLEDGE_DIMENSIONS.get(by or "")
    bucket = key if key else _bucket(by, "time")
    rows = _rows(
        conn,
        f"""
        SELECT {bucket} AS bucket, count(*) AS searches,
            count(*) FILTER (coalesce(results, 0) > 0) AS with_results,
            count(*) FILTER (resolved) AS resolved,
            count(*) FILTER (used_to_answer) AS used_to_answer,
            count(*) FILTER (deflected) AS deflected,
            count(*) FILTER (coalesce(results, 0) = 0) AS no_results,
            count(*) FILTER (no_good_answer) AS no_good_answer,
            count(*) FILTER (unanswered) AS unanswered,
            count(*) FILTER (channel = 'self_service') AS self_service_searches,
            count(*) FILTER (channel = 'self_service' AND deflected) AS self_service_deflected
        FROM {KNOWLEDGE_IN_WINDOW}
        GROUP BY ALL ORDER BY bucket NULLS LAST
        """,
        w,
    )
    for r in rows:
        r["answer_rate"] = _ratio(r["resolved"], r["searches"])
        r["deflection_rate"] = _ratio(r["self_service_deflected"], r["self_service_searches"])
        r["unanswered_rate"] = _ratio(r["unanswered"], r["searches"])
    return rows


def knowledge_unanswered(
    conn: duckdb.DuckDBPyConnection, start: Any, end: Any, p: KpiParams = KpiParams(), tz: str = "UTC"
) -> list[dict[str, Any]]:
    """The ``p.top`` most frequent unanswered queries of each language (nothing shown, or
    no good answer), by normalised query text; ``example`` is one query as typed."""
    w = _window(conn, start, end, tz)
    return _rows(
        conn,
        f"""
        SELECT language, query_key AS query, count(*) AS searches,
            count(*) FILTER (coalesce(results, 0) = 0) AS no_results,
            count(*) FILTER (no_good_answer) AS no_good_answer,
            min(query) AS example, timezone('UTC', max(time)) AS last_searched_at
        FROM {KNOWLEDGE_IN_WINDOW} WHERE unanswered
        GROUP BY language, query_key
        QUALIFY row_number() OVER (PARTITION BY language ORDER BY count(*) DESC, query_key) <= $top
        ORDER BY language NULLS LAST, searches DESC, query
        """,
        {**w, "top": p.top},
    )


def knowledge_unresolved_articles(
    conn: duckdb.DuckDBPyConnection, start: Any, end: Any, p: KpiParams = KpiParams(), tz: str = "UTC"
) -> list[dict[str, Any]]:
    """Articles read but not resolving: per article, the searches (performed in the
    window) that opened it, and how many of them did not end with it (used to answer or
    named by a deflection); the ``p.top`` articles with most such reads."""
    w = _window(conn, start, end, tz)
    rows = _rows(
        conn,
        """
        SELECT article_id, count(*) AS reads, count(*) FILTER (resolved) AS resolved,
            count(*) FILTER (NOT resolved) AS not_resolved, max(revision) AS last_revision_read
        FROM knowledge_article_reads WHERE time >= $from AND time < $to
        GROUP BY article_id HAVING count(*) FILTER (NOT resolved) > 0
        ORDER BY not_resolved DESC, article_id LIMIT $top
        """,
        {**w, "top": p.top},
    )
    for r in rows:
        r["not_resolved_rate"] = _ratio(r["not_resolved"], r["reads"])
    return rows


def arrivals(conn: duckdb.DuckDBPyConnection, start: Any, end: Any, by: str = "interval", tz: str = "UTC") -> list[dict[str, Any]]:
    """Offered contacts and AHT per interval: the input to staffing."""
    w = _window(conn, start, end, tz)
    return _rows(
        conn,
        f"""
        SELECT {_bucket(by, "started_at")} AS bucket, count(*) FILTER (offered) AS offered,
            avg(handle_seconds) FILTER (handled) AS aht_seconds
        FROM contacts_between($from, $to) WHERE direction = 'inbound'
        GROUP BY ALL ORDER BY bucket
        """,
        w,
    )


def kpi_suite(
    conn: duckdb.DuckDBPyConnection, start: Any, end: Any, p: KpiParams = KpiParams(), by: str = "total", tz: str = "UTC"
) -> dict[str, Any]:
    """Every standard KPI for a window; ``timings`` says how long each part took."""
    timings: dict[str, float] = {}
    out: dict[str, Any] = {}

    def timed(name: str, fn: Any, *args: Any, **kw: Any) -> None:
        t0 = _time.perf_counter()
        out[name] = fn(*args, tz=tz, **kw)
        timings[name] = _time.perf_counter() - t0

    # Contacts and requests are read from the fact tables ingest keeps (one row each),
    # so no part re-aggregates raw events over the whole window.
    timed("contacts", contact_kpis, conn, start, end, by, p)
    timed("requests", request_kpis, conn, start, end, by, p)
    timed("fcr", fcr, conn, start, end, by, p)
    timed("repeat_complaints", repeat_complaints, conn, start, end, by, p)
    timed("backlog", backlog, conn, end, "department")
    timed("top_problems", top_problems, conn, start, end, p)
    timed("heatmap", heatmap, conn, start, end, p)
    timed("knowledge", knowledge, conn, start, end, by)
    timed("knowledge_by_channel", knowledge, conn, start, end, "channel")
    timed("knowledge_unanswered", knowledge_unanswered, conn, start, end, p)
    timed("knowledge_unresolved_articles", knowledge_unresolved_articles, conn, start, end, p)
    out["timings"] = timings
    return out


def data_range(conn: duckdb.DuckDBPyConnection) -> tuple[datetime | None, datetime | None]:
    """First and last event time in the database (to choose sensible default windows)."""
    row = conn.execute("SELECT min(time), max(time) FROM events").fetchone()
    return (row[0], row[1]) if row else (None, None)


def default_window(
    conn: duckdb.DuckDBPyConnection, days: int = 7, tz: str = "UTC", now: datetime | None = None
) -> tuple[datetime, datetime]:
    """The last ``days`` local days that have data, ending with the local day of the latest
    event (or of ``now`` when there is none), as UTC bounds."""
    _, last = data_range(conn)
    if last is None:
        last = as_utc_naive(now or datetime.now(UTC))
    return shift_days(conn, last, 1 - days, tz, midnight=True), shift_days(conn, last, 1, tz, midnight=True)
