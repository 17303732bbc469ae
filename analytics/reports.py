"""Standard reports and the report builder.

A report turns a window (``from``/``to``) and a grouping (``by``) into a table with
column formats and a chart, in the hotline's time zone (``Settings.time_zone``, see
:mod:`analytics.kpis`): a date or a time without an offset is local; a day, week or month
is a local calendar one, its bucket the local ``date`` it starts on; an hour bucket, like
any other time, is an aware datetime in that zone (ISO 8601 with its offset in JSON and
CSV). Standard reports are written in Python over :mod:`analytics.kpis`; *saved* reports
are parameterised SQL over the fact views that a user stores under a name, with their own
formulas (extra columns computed from the result), formats and chart.

Safety of saved reports (checked before saving and again on every run):

* the SQL (with its formulas) must parse as exactly one SELECT / WITH statement;
* it runs on a read-only connection to the analytics snapshot with file access disabled
  and configuration locked (no ``read_csv('/etc/passwd')``, no ``ATTACH``, no ``COPY``);
* it runs under a time limit: a timer thread calls ``conn.interrupt()``;
* parameters are bound, never pasted: ``$from``, ``$to`` (UTC, as the tables), ``$by``,
  ``$tz`` (the hotline's time zone: ``timezone($tz, timezone('UTC', started_at))`` is local
  time) and the KPI thresholds.
"""

from __future__ import annotations

import csv
import io
import json
import math
import re
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import duckdb
import sqlalchemy as sa

from analytics import erlang, kpis
from analytics.ingest import snapshot_path_for
from analytics.kpis import KpiParams
from domain.base import Clock, SystemClock

DEFAULT_TIMEOUT = 10.0
MAX_ROWS = 100_000
NAME_RE = re.compile(r"^[a-z][a-z0-9_]{0,62}$")
FORMATS = ("percent", "seconds", "number", "integer", "text", "datetime")
CHARTS = ("line", "bar", "heatmap", "none")


@dataclass(frozen=True)
class Range:
    """The values a report parameter takes: ``GET /reports/{name}`` declares them as its
    query's bounds, ``hotline report`` checks its options against them."""

    default: float
    gt: float | None = None
    ge: float | None = None
    lt: float | None = None
    le: float | None = None

    def problem(self, value: float) -> str | None:
        """What is wrong with ``value`` (None: nothing)."""
        ok = math.isfinite(value) and (
            (self.gt is None or value > self.gt)
            and (self.ge is None or value >= self.ge)
            and (self.lt is None or value < self.lt)
            and (self.le is None or value <= self.le)
        )
        return None if ok else f"must be {self.text()}"

    def text(self) -> str:
        words = (("more than", self.gt), ("at least", self.ge), ("less than", self.lt), ("at most", self.le))
        return " and ".join(f"{word} {bound:g}" for word, bound in words if bound is not None)


RUN_PARAMETERS: dict[str, Range] = {
    "sl_threshold": Range(20.0, gt=0, le=86_400),  # seconds: 0 would make every answer late
    "short_abandon": Range(5.0, ge=0, le=86_400),
    "fcr_days": Range(7, ge=1, le=365),
    "repeat_days": Range(30, ge=1, le=365),
    "target_sl": Range(0.8, gt=0, lt=1),  # Erlang C reaches neither 0 nor 1
    "shrinkage": Range(0.3, ge=0, lt=1),
}


class ReportError(Exception):
    """A report cannot run or be saved: ``status`` is the HTTP status to answer with."""

    def __init__(self, message: str, status: int = 422, code: str = "report_invalid") -> None:
        super().__init__(message)
        self.message, self.status, self.code = message, status, code


# ------------------------------------------------------------------------ connections
def connect_reader(path: Path | str) -> duckdb.DuckDBPyConnection:
    """A read-only connection to the latest snapshot (or the database itself when no
    writer has it open), with file access disabled for whatever SQL runs on it."""
    path = Path(path)
    snapshot = snapshot_path_for(path)
    target = snapshot.resolve() if snapshot.exists() else path
    if not target.exists():
        raise ReportError(f"no analytics data at {path}: run `hotline ingest` (or start the API) first", status=404, code="no_analytics")
    try:
        conn = duckdb.connect(str(target), read_only=True)
    except duckdb.IOException as e:
        raise ReportError(f"the analytics database is busy and has no snapshot yet: {e}", status=503, code="analytics_busy") from e
    # Another connection of this process to the same file shares its (already locked) settings.
    if not conn.execute("SELECT current_setting('lock_configuration')").fetchone()[0]:  # type: ignore[index]
        conn.execute("SET TimeZone = 'UTC'")
        conn.execute("SET enable_external_access = false")
        conn.execute("SET lock_configuration = true")
    return conn


@contextmanager
def time_limit(conn: duckdb.DuckDBPyConnection, seconds: float) -> Iterator[None]:
    """Interrupts whatever the connection runs after ``seconds``."""
    fired = threading.Event()

    def stop() -> None:
        fired.set()
        conn.interrupt()

    timer = threading.Timer(seconds, stop)
    timer.daemon = True
    timer.start()
    try:
        yield
    except duckdb.InterruptException as e:
        raise ReportError(f"the report ran longer than {seconds:g} s and was stopped", status=422, code="report_timeout") from e
    except duckdb.Error as e:
        if fired.is_set():
            raise ReportError(f"the report ran longer than {seconds:g} s and was stopped", code="report_timeout") from e
        raise
    finally:
        timer.cancel()


# ------------------------------------------------------------------------ results
@dataclass
class Chart:
    kind: str = "bar"  # line | bar | heatmap | none
    x: str | None = None
    y: list[str] = field(default_factory=list)
    title: str | None = None


@dataclass
class ReportResult:
    name: str
    title: str
    columns: list[str]
    rows: list[list[Any]]
    formats: dict[str, str] = field(default_factory=dict)
    chart: Chart | None = None
    params: dict[str, Any] = field(default_factory=dict)
    # Further tables of the same report (the knowledge report's unanswered queries …):
    # in JSON under "sections", in CSV after the main table (each after a blank line and
    # a "# name: title" line), in HTML below it; Parquet and PNG show the main table.
    sections: list[ReportResult] = field(default_factory=list)

    def records(self) -> list[dict[str, Any]]:
        return [dict(zip(self.columns, r, strict=True)) for r in self.rows]

    def _table_json(self) -> dict[str, Any]:
        return {
            "columns": [{"name": c, "format": self.formats.get(c, "number")} for c in self.columns],
            "rows": self.records(),
        }

    def to_json(self) -> str:
        doc: dict[str, Any] = {"report": self.name, "title": self.title, "params": self.params, **self._table_json()}
        if self.sections:
            doc["sections"] = [{"name": s.name, "title": s.title, **s._table_json()} for s in self.sections]
        return json.dumps(doc, default=_json_default, ensure_ascii=False)

    def to_csv(self) -> str:
        buf = io.StringIO()
        w = csv.writer(buf)
        for i, table in enumerate([self, *self.sections]):
            if i:
                w.writerow([])
                w.writerow([f"# {table.name}: {table.title}"])
            w.writerow([_csv_cell(c) for c in table.columns])
            for r in table.rows:
                w.writerow(["" if v is None else _csv_cell(_plain(v)) for v in r])
        return buf.getvalue()

    def to_parquet(self) -> bytes:
        import pyarrow as pa
        import pyarrow.parquet as pq

        cols = {c: [_arrow_value(r[i]) for r in self.rows] for i, c in enumerate(self.columns)}
        table = pa.table(cols) if self.rows else pa.table({c: pa.array([], pa.string()) for c in self.columns})
        buf = io.BytesIO()
        pq.write_table(table, buf)
        return buf.getvalue()


def _json_default(v: Any) -> Any:
    if isinstance(v, datetime | date):
        return v.isoformat()
    if isinstance(v, Decimal):
        return float(v)
    if isinstance(v, timedelta):
        return v.total_seconds()
    return str(v)


def _plain(v: Any) -> Any:
    if isinstance(v, datetime | date):
        return v.isoformat()
    if isinstance(v, float):
        return round(v, 6)
    return v


# A cell a spreadsheet would run as a formula (OWASP, "CSV injection"): text anyone can
# type reaches reports (a knowledge search's query), and a saved report names its columns.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def _csv_cell(v: Any) -> Any:
    """Text starting like a formula, prefixed with a single quote so that it stays text;
    numbers (a negative one too) stay numbers."""
    if isinstance(v, str) and v.startswith(FORMULA_STARTS):
        return "'" + v
    return v


def _arrow_value(v: Any) -> Any:
    if isinstance(v, Decimal):
        return float(v)
    if isinstance(v, timedelta):
        return v.total_seconds()
    return v


def format_value(v: Any, fmt: str | None) -> str:
    """How a value reads in a terminal table or an HTML page."""
    if v is None:
        return "–"
    if fmt == "percent" and isinstance(v, int | float | Decimal):
        return f"{float(v) * 100:.1f}%"
    if fmt == "seconds" and isinstance(v, int | float | Decimal):
        return f"{float(v):.1f} s"
    if isinstance(v, datetime):
        return v.strftime("%Y-%m-%d %H:%M") if (v.hour or v.minute) else v.strftime("%Y-%m-%d")
    if isinstance(v, float | Decimal):
        return f"{float(v):,.2f}"
    if isinstance(v, int) and not isinstance(v, bool):
        return f"{v:,}"
    return str(v)


# ------------------------------------------------------------------------ standard reports
@dataclass
class Window:
    start: datetime  # aware: the KPI functions take a naive time as local
    end: datetime
    by: str | None
    params: KpiParams
    extra: dict[str, Any]
    tz: str = "UTC"  # the hotline's time zone: local days, shown times
    now: datetime | None = None  # aware: the business clock's time, for "as of now"

    def local(self, t: datetime) -> datetime:
        return kpis.in_zone(t, self.tz)


PCT = "percent"
SEC = "seconds"
CONTACT_FORMATS = {
    "service_level": PCT,
    "service_level_offered": PCT,
    "abandonment_rate": PCT,
    "answer_rate": PCT,
    "occupancy": PCT,
    "asa_seconds": SEC,
    "aht_seconds": SEC,
    "longest_wait_seconds": SEC,
    "avg_talk_seconds": SEC,
    "avg_hold_seconds": SEC,
    "avg_wrap_seconds": SEC,
    "staffed_seconds": SEC,
    "on_time_rate": PCT,
    "satisfaction_rate": PCT,
    "fcr_rate": PCT,
    "repeat_rate": PCT,
    "share": PCT,
    "deflection_rate": PCT,
    "unanswered_rate": PCT,
    "not_resolved_rate": PCT,
    "avg_age_days": "number",
    "oldest_days": "number",
}


def _table(name: str, title: str, rows: list[dict[str, Any]], columns: list[str], chart: Chart | None, w: Window) -> ReportResult:
    return ReportResult(
        name=name,
        title=title,
        columns=columns,
        rows=[[r.get(c) for c in columns] for r in rows],
        formats={c: CONTACT_FORMATS.get(c, "number") for c in columns},
        chart=chart,
        params={"from": w.local(w.start), "to": w.local(w.end), "time_zone": w.tz, "by": w.by, **w.params.as_dict(), **w.extra},
    )


def _daily(conn: duckdb.DuckDBPyConnection, w: Window) -> ReportResult:
    by = w.by or "day"
    c = {r["bucket"]: r for r in kpis.contact_kpis(conn, w.start, w.end, by, w.params, tz=w.tz)}
    r = {x["bucket"]: x for x in kpis.request_kpis(conn, w.start, w.end, by, w.params, tz=w.tz)}
    rows = []
    # (Buckets of one grouping have one type: dates, aware datetimes or 'total'.)
    for key in sorted(set(c) | set(r), key=lambda k: (k is None, k)):
        rows.append({"bucket": key, **(c.get(key) or {}), **(r.get(key) or {})})
    cols = [
        "bucket", "offered", "answered", "abandoned", "short_abandoned", "service_level", "service_level_offered",
        "asa_seconds", "aht_seconds", "abandonment_rate", "answer_rate", "occupancy",
        "requests_registered", "closed", "on_time_rate", "satisfaction_avg", "satisfaction_rate",
    ]  # fmt: skip
    # Calls and requests side by side: the hotline's two workloads.
    chart = Chart("bar", "bucket", ["offered", "answered", "abandoned", "requests_registered", "closed"])
    return _table("daily", "Daily statistics", rows, cols, chart, w)


def _contacts(conn: duckdb.DuckDBPyConnection, w: Window) -> ReportResult:
    rows = kpis.contact_kpis(conn, w.start, w.end, w.by or "hour", w.params, tz=w.tz)
    cols = [
        "bucket", "offered", "answered", "abandoned", "short_abandoned", "answered_within_threshold", "service_level",
        "service_level_offered", "asa_seconds", "longest_wait_seconds", "aht_seconds", "avg_talk_seconds",
        "avg_hold_seconds", "avg_wrap_seconds", "abandonment_rate", "answer_rate", "transfers", "occupancy",
    ]  # fmt: skip
    return _table(
        "service_level",
        "Service level, ASA, AHT, abandonment",
        rows,
        cols,
        Chart("line", "bucket", ["service_level", "answer_rate"]),
        w,
    )


def _agents(conn: duckdb.DuckDBPyConnection, w: Window) -> ReportResult:
    rows = [r for r in kpis.contact_kpis(conn, w.start, w.end, "agent", w.params) if r["bucket"] is not None]
    for r in rows:
        r["agent_id"] = r["bucket"]
    cols = ["agent_id", "answered", "handled", "asa_seconds", "aht_seconds", "avg_talk_seconds", "avg_hold_seconds",
            "avg_wrap_seconds", "transfers", "staffed_seconds", "occupancy"]  # fmt: skip
    return _table("agents", "Agents: handled contacts, AHT and occupancy", rows, cols, Chart("bar", "agent_id", ["handled"]), w)


def _requests(conn: duckdb.DuckDBPyConnection, w: Window) -> ReportResult:
    rows = kpis.request_kpis(conn, w.start, w.end, w.by or "department", w.params, tz=w.tz)
    cols = ["bucket", "requests_registered", "dispatches", "returns", "closed", "closed_on_time", "on_time_rate",
            "reopened", "ratings", "satisfaction_avg", "satisfaction_rate"]  # fmt: skip
    return _table(
        "requests",
        "Requests: intake, on-time completion, satisfaction",
        rows,
        cols,
        Chart("bar", "bucket", ["requests_registered", "closed"]),
        w,
    )


def _fcr(conn: duckdb.DuckDBPyConnection, w: Window) -> ReportResult:
    rows = kpis.fcr(conn, w.start, w.end, w.by or "total", w.params, tz=w.tz)
    title = f"First contact resolution (no repeat within {w.params.fcr_days} days)"
    cols = ["bucket", "eligible_requests", "resolved_first_contact", "fcr_rate"]
    return _table("fcr", title, rows, cols, Chart("bar", "bucket", ["fcr_rate"]), w)


def _repeats(conn: duckdb.DuckDBPyConnection, w: Window) -> ReportResult:
    rows = kpis.repeat_complaints(conn, w.start, w.end, w.by or "total", w.params, tz=w.tz)
    title = f"Repeat complaints (same citizen and problem within {w.params.repeat_days} days)"
    cols = ["bucket", "complaints", "repeat_complaints", "repeat_rate"]
    return _table("repeat_complaints", title, rows, cols, Chart("bar", "bucket", ["complaints", "repeat_complaints"]), w)


def _backlog(conn: duckdb.DuckDBPyConnection, w: Window) -> ReportResult:
    by = w.by or "department"
    # As of the window's end, but never later than now: a default window ends at the next
    # midnight, and requests not yet due then are not past due now.
    as_of = min(w.end, w.now) if w.now is not None else w.end
    rows = kpis.backlog(conn, as_of, by)
    w.extra["as_of"] = w.local(as_of)
    keys = ["department", "category"] if by in ("department_category", "department,category") else [by if by != "total" else "bucket"]
    cols = [*keys, "open_requests", "past_due", *(a[0] for a in kpis.AGE_BUCKETS), "avg_age_days", "oldest_days"]
    return _table(
        "backlog",
        f"Backlog and ageing as of {w.local(as_of):%Y-%m-%d %H:%M} ({w.tz})",
        rows,
        cols,
        # By department and category, one bar per category (each belongs to one department).
        Chart("bar", keys[-1], ["open_requests", "past_due"]),
        w,
    )


def _problems(conn: duckdb.DuckDBPyConnection, w: Window) -> ReportResult:
    rows = kpis.top_problems(conn, w.start, w.end, w.params, tz=w.tz)
    cols = ["problem_code", "category_id", "department_id", "requests", "complaints", "share"]
    return _table("problems", "Most common problem codes", rows, cols, Chart("bar", "problem_code", ["requests"]), w)


def _heatmap(conn: duckdb.DuckDBPyConnection, w: Window) -> ReportResult:
    rows = kpis.heatmap(conn, w.start, w.end, w.params, tz=w.tz)
    cols = ["weekday", "hour", "offered", "answered", "abandoned", "service_level", "asa_seconds"]
    return _table("heatmap", "Offered contacts by weekday and hour", rows, cols, Chart("heatmap", "hour", ["offered"]), w)


def _knowledge(conn: duckdb.DuckDBPyConnection, w: Window) -> ReportResult:
    by = w.by or "total"
    rate_cols = ["searches", "with_results", "used_to_answer", "deflected", "resolved", "answer_rate",
                 "self_service_searches", "self_service_deflected", "deflection_rate",
                 "no_results", "no_good_answer", "unanswered", "unanswered_rate"]  # fmt: skip
    result = _table(
        "knowledge",
        "Knowledge base: answer rate and deflection rate",
        kpis.knowledge(conn, w.start, w.end, by, tz=w.tz),
        ["bucket", *rate_cols],
        Chart("bar", "bucket", ["answer_rate", "deflection_rate"]),
        w,
    )
    channels = kpis.knowledge(conn, w.start, w.end, "channel", tz=w.tz)
    for r in channels:
        r["channel"] = r["bucket"]
    unanswered = kpis.knowledge_unanswered(conn, w.start, w.end, w.params, tz=w.tz)
    articles = kpis.knowledge_unresolved_articles(conn, w.start, w.end, w.params, tz=w.tz)
    result.sections = [
        _table("knowledge_by_channel", "Answer rate by channel", channels, ["channel", *rate_cols], None, w),
        _table(
            "knowledge_unanswered",
            f"Top {w.params.top} unanswered queries per language (no results or no good answer)",
            unanswered,
            ["language", "query", "searches", "no_results", "no_good_answer", "example", "last_searched_at"],
            None,
            w,
        ),
        _table(
            "knowledge_unresolved_articles",
            "Articles read but not resolving (opened, not used to answer nor deflecting)",
            articles,
            ["article_id", "reads", "resolved", "not_resolved", "not_resolved_rate", "last_revision_read"],
            None,
            w,
        ),
    ]
    for section in result.sections:
        section.formats.update({c: "text" for c in ("query", "example", "article_id", "language", "channel") if c in section.columns})
    return result


def _staffing(conn: duckdb.DuckDBPyConnection, w: Window) -> ReportResult:
    """Agents needed per interval from the offered contacts and AHT actually seen.

    Erlang C holds for a steady arrival rate, which a half hour or an hour roughly has and
    a day never does: a day's calls spread over 86,400 s understated the need of its busy
    hours several times over. So a day is worked out from its half hours: the agents of
    its busiest one (what the day's schedule must reach), and the service level, ASA and
    occupancy of the day with each half hour staffed to its own need (weighted by the
    contacts, occupancy by the traffic)."""
    by = w.by or "interval"
    seconds = {"interval": 1800, "hour": 3600, "day": 1800}.get(by)
    if seconds is None:
        raise ReportError("staffing is computed per interval, hour or day")
    target = float(w.extra.get("target_sl", 0.8))
    shrink = float(w.extra.get("shrinkage", 0.3))
    default_aht = float(w.extra.get("aht_seconds", 0) or 0)
    rows = []
    for r in kpis.arrivals(conn, w.start, w.end, "interval" if by == "day" else by, tz=w.tz):
        aht = r["aht_seconds"] or default_aht or 180.0
        s = erlang.agents_needed(r["offered"], seconds, aht, target, w.params.sl_threshold_seconds, shrink)
        rows.append({"bucket": r["bucket"], "offered": r["offered"], "aht_seconds": aht, "traffic_erlangs": s.traffic_erlangs,
                     "agents": s.agents, "scheduled_agents": s.scheduled_agents, "service_level": s.service_level,
                     "asa_seconds": s.asa_seconds, "occupancy": s.occupancy})  # fmt: skip
    if by == "day":
        rows = _staffing_days(rows)
    cols = [
        "bucket",
        "offered",
        "aht_seconds",
        "traffic_erlangs",
        "agents",
        "scheduled_agents",
        "service_level",
        "asa_seconds",
        "occupancy",
    ]
    w.extra.update(target_sl=target, shrinkage=shrink)
    title = f"Erlang C staffing for {target:.0%} in {w.params.sl_threshold_seconds:g} s, shrinkage {shrink:.0%}"
    if by == "day":
        title += ", each day at its busiest half hour"
    return _table("staffing", title, rows, cols, Chart("bar", "bucket", ["agents", "scheduled_agents"]), w)


def _staffing_days(halves: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Half hours' staffing (buckets in local time) summed up per local day (see _staffing)."""
    days: dict[Any, list[dict[str, Any]]] = {}
    for r in halves:
        days.setdefault(r["bucket"].date(), []).append(r)

    def weighted(rows: list[dict[str, Any]], field: str, weight: str) -> float | None:
        pairs = [(r[field], r[weight]) for r in rows if r[field] is not None and r[weight]]
        total = sum(wt for _, wt in pairs)
        return sum(v * wt for v, wt in pairs) / total if total else None

    out = []
    for day, rows in sorted(days.items()):
        peak = max(rows, key=lambda r: (r["agents"], r["traffic_erlangs"]))
        offered = sum(r["offered"] for r in rows)
        out.append({"bucket": day, "offered": offered, "aht_seconds": weighted(rows, "aht_seconds", "offered"),
                    "traffic_erlangs": peak["traffic_erlangs"], "agents": peak["agents"],
                    "scheduled_agents": peak["scheduled_agents"], "service_level": weighted(rows, "service_level", "offered"),
                    "asa_seconds": weighted(rows, "asa_seconds", "offered"),
                    "occupancy": weighted(rows, "occupancy", "traffic_erlangs")})  # fmt: skip
    return out


@dataclass(frozen=True)
class StandardReport:
    name: str
    title: str
    run: Callable[[duckdb.DuckDBPyConnection, Window], ReportResult]
    by: tuple[str, ...]
    default_by: str
    default_days: int = 7


_TIME = ("hour", "interval", "day", "week", "month", "total")
STANDARD: dict[str, StandardReport] = {
    r.name: r
    for r in (
        StandardReport("daily", "Daily statistics: contacts and requests", _daily, ("day", "week", "month", "hour", "total"), "day"),
        StandardReport(
            "service_level",
            "Service level, ASA, AHT, abandonment, answer rate",
            _contacts,
            (*_TIME, *kpis.CONTACT_DIMENSIONS),
            "hour",
            1,
        ),
        StandardReport("agents", "Agents: handled contacts, AHT, occupancy", _agents, ("agent",), "agent", 1),
        StandardReport(
            "requests",
            "Requests: intake, on-time completion, satisfaction",
            _requests,
            (*_TIME, *kpis.REQUEST_DIMENSIONS),
            "department",
        ),
        StandardReport("fcr", "First contact resolution", _fcr, (*_TIME, *kpis.REQUEST_DIMENSIONS), "total", 30),
        StandardReport("repeat_complaints", "Repeat complaints", _repeats, (*_TIME, *kpis.REQUEST_DIMENSIONS), "total", 30),
        StandardReport(
            "backlog",
            "Backlog and ageing by department and category",
            _backlog,
            ("department", "category", "department_category", "problem_code", "urgency", "total"),
            "department",
        ),
        StandardReport("problems", "Most common problem codes", _problems, ("total",), "total", 30),
        StandardReport("heatmap", "Hourly and weekday heat map", _heatmap, ("total",), "total", 28),
        StandardReport(
            "knowledge",
            "Knowledge base: answer rate, deflection, unanswered queries, articles that do not resolve",
            _knowledge,
            ("total", "day", "week", "month", *kpis.KNOWLEDGE_DIMENSIONS),
            "total",
            30,
        ),
        StandardReport("staffing", "Erlang C staffing from history", _staffing, ("interval", "hour", "day"), "interval", 1),
    )
}


# ------------------------------------------------------------------------ saved reports
@dataclass
class SavedReport:
    name: str
    sql: str
    title: str | None = None
    description: str | None = None
    formulas: dict[str, str] = field(default_factory=dict)  # column -> SQL expression over the result
    formats: dict[str, str] = field(default_factory=dict)  # column -> percent | seconds | …
    chart: dict[str, Any] | None = None  # {"kind": "line", "x": "day", "y": ["sl"]}
    owner: str | None = None

    def composed_sql(self) -> str:
        if not self.formulas:
            return self.sql.strip().rstrip(";")
        extra = ", ".join(f"({expr}) AS {col}" for col, expr in self.formulas.items())
        return f"SELECT report.*, {extra} FROM ({self.sql.strip().rstrip(';')}) AS report"

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


PARAMETERS = {"from", "to", "by", "tz", "sl_threshold", "short_abandon"}


def check_saved_report(report: SavedReport) -> list[str]:
    """Static checks; returns the named parameters the SQL uses. Raises ReportError."""
    if not NAME_RE.match(report.name):
        raise ReportError("a report name is 1–63 lower-case letters, digits or _ and starts with a letter")
    if report.name in STANDARD or report.name in ("list", "save", "delete", "show"):
        raise ReportError(f"{report.name!r} is a standard report or a command: choose another name")
    if not report.sql or not report.sql.strip():
        raise ReportError("the report needs SQL")
    for col in (*report.formulas, *report.formats):
        if not NAME_RE.match(col):
            raise ReportError(f"column name {col!r} must be lower-case letters, digits or _")
    for col, fmt in report.formats.items():
        if fmt not in FORMATS:
            raise ReportError(f"format {fmt!r} of {col} must be one of {list(FORMATS)}")
    if report.chart and report.chart.get("kind", "bar") not in CHARTS:
        raise ReportError(f"chart kind must be one of {list(CHARTS)}")
    try:
        statements = duckdb.connect().extract_statements(report.composed_sql())
    except duckdb.Error as e:
        raise ReportError(f"the SQL does not parse: {e}") from e
    if len(statements) != 1:
        raise ReportError(f"a report is exactly one SELECT statement, not {len(statements)}", code="report_not_read_only")
    if statements[0].type != duckdb.StatementType.SELECT:
        raise ReportError(
            f"a report may only read (SELECT or WITH … SELECT); this is a {statements[0].type.name} statement",
            code="report_not_read_only",
        )
    unknown = set(statements[0].named_parameters) - PARAMETERS
    if unknown:
        raise ReportError(f"unknown parameters {sorted(unknown)}: use {sorted(PARAMETERS)}")
    return sorted(statements[0].named_parameters)


def run_saved(conn: duckdb.DuckDBPyConnection, report: SavedReport, w: Window, timeout: float = DEFAULT_TIMEOUT) -> ReportResult:
    used = check_saved_report(report)
    # $from and $to as the tables hold times: UTC TIMESTAMPs.
    values = {"from": kpis.as_utc_naive(w.start), "to": kpis.as_utc_naive(w.end), "by": w.by or "day", "tz": w.tz,
              "sl_threshold": w.params.sl_threshold_seconds, "short_abandon": w.params.short_abandon_seconds}  # fmt: skip
    with time_limit(conn, timeout):
        try:
            cur = conn.execute(report.composed_sql(), {k: values[k] for k in used})
            columns = [d[0] for d in cur.description]
            rows = [list(r) for r in cur.fetchmany(MAX_ROWS)]
        except duckdb.InterruptException:
            raise
        except duckdb.Error as e:
            if isinstance(e, duckdb.PermissionException):
                raise ReportError(f"the report tried to reach outside the analytics database: {e}", code="report_not_read_only") from e
            raise ReportError(f"the report failed: {e}") from e
    chart = None
    if report.chart and report.chart.get("kind", "bar") != "none":
        chart = Chart(report.chart.get("kind", "bar"), report.chart.get("x") or columns[0], list(report.chart.get("y") or columns[1:2]))
    formats = {c: report.formats.get(c, "number") for c in columns}
    return ReportResult(report.name, report.title or report.name, columns, rows, formats, chart,
                        {"from": w.local(w.start), "to": w.local(w.end), "time_zone": w.tz, "by": w.by})  # fmt: skip


# The earliest and latest window bounds (UTC): see Reports.window.
EARLIEST = datetime(1, 1, 2)
LATEST = datetime(9999, 12, 1)


def _shown(value: Any) -> str:
    return value.isoformat() if isinstance(value, datetime | date) else str(value)


def _out_of_range(name: str, value: Any) -> ReportError:
    return ReportError(
        f"{name} {_shown(value)} is out of range: a report's window lies between {EARLIEST.date()} and {LATEST.date()} (UTC)"
    )


def _may_replace(existing: SavedReport, report: SavedReport) -> None:
    """Only its owner replaces a saved report. (One saved before owners were recorded has
    none, and whoever saves it next owns it.)"""
    if existing.owner is not None and existing.owner != report.owner:
        raise ReportError(
            f"a report named {report.name!r} already exists and belongs to {existing.owner}: choose another name",
            status=409,
            code="report_exists",
        )


class SavedReports:
    """Saved reports live in a table of the read store (SQLite or PostgreSQL), so every
    API node and the CLI see the same ones, and saving never needs the DuckDB writer."""

    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine
        md = sa.MetaData()
        self.table = sa.Table(
            "analytics_saved_reports",
            md,
            sa.Column("name", sa.String(63), primary_key=True),
            sa.Column("definition", sa.Text, nullable=False),
            sa.Column("saved_at", sa.String(40), nullable=False),
        )
        md.create_all(engine)

    def check_owner(self, report: SavedReport) -> None:
        """Refuses (409) to save over a report someone else owns."""
        existing = self.get(report.name)
        if existing is not None:
            _may_replace(existing, report)

    def save(self, report: SavedReport) -> None:
        """Saves ``report``: a new name, or one of the saver's own reports replaced. Another
        owner's report is never replaced (409), also when both save at the same moment."""
        doc = json.dumps(report.as_dict(), ensure_ascii=False)
        saved_at = datetime.utcnow().isoformat()
        try:
            with self.engine.begin() as c:
                row = c.execute(sa.select(self.table.c.definition).where(self.table.c.name == report.name).with_for_update()).first()
                if row is None:
                    c.execute(sa.insert(self.table).values(name=report.name, definition=doc, saved_at=saved_at))
                else:
                    _may_replace(SavedReport(**json.loads(row[0])), report)
                    c.execute(sa.update(self.table).where(self.table.c.name == report.name).values(definition=doc, saved_at=saved_at))
        except sa.exc.IntegrityError:  # the same new name inserted meanwhile by another saver
            raise ReportError(
                f"a report named {report.name!r} was saved by someone else at the same moment: choose another name",
                status=409,
                code="report_exists",
            ) from None

    def get(self, name: str) -> SavedReport | None:
        with self.engine.connect() as c:
            row = c.execute(sa.select(self.table.c.definition).where(self.table.c.name == name)).first()
        return SavedReport(**json.loads(row[0])) if row else None

    def all(self) -> list[SavedReport]:
        with self.engine.connect() as c:
            return [SavedReport(**json.loads(r[0])) for r in c.execute(sa.select(self.table.c.definition).order_by(self.table.c.name))]

    def delete(self, name: str, may_delete: Callable[[SavedReport], None] = lambda _: None) -> bool:
        """Deletes the saved report ``name`` (False: there is none) once ``may_delete``
        has not refused it (it raises), read and deleted in one transaction."""
        with self.engine.begin() as c:
            row = c.execute(sa.select(self.table.c.definition).where(self.table.c.name == name).with_for_update()).first()
            if row is None:
                return False
            may_delete(SavedReport(**json.loads(row[0])))
            return bool(c.execute(sa.delete(self.table).where(self.table.c.name == name)).rowcount)


# ------------------------------------------------------------------------ the service
class Reports:
    """What the CLI and the API call: list, run and save reports, in ``time_zone`` (the
    hotline's: ``Settings.time_zone``), "now" read from ``clock`` (the business clock)."""

    def __init__(
        self,
        duckdb_path: Path | str,
        saved: SavedReports | None = None,
        timeout: float = DEFAULT_TIMEOUT,
        time_zone: str = "UTC",
        clock: Clock | None = None,
        bound_names: tuple[str, str] = ("'from'", "'to'"),
    ) -> None:
        self.duckdb_path = Path(duckdb_path)
        self.saved = saved
        self.timeout = timeout
        self.time_zone = time_zone
        self.clock = clock or SystemClock()
        # The window's bounds as the caller names them in its messages: the API's query
        # parameters by default, the CLI's options ("--from", "--to").
        self.bound_names = bound_names

    def list(self) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = [
            {"name": r.name, "title": r.title, "kind": "standard", "by": list(r.by), "default_by": r.default_by} for r in STANDARD.values()
        ]
        if self.saved:
            out += [{"name": s.name, "title": s.title or s.name, "kind": "saved", "description": s.description, "sql": s.sql}
                    for s in self.saved.all()]  # fmt: skip
        return out

    def window(
        self,
        conn: duckdb.DuckDBPyConnection,
        name: str,
        start: Any = None,
        end: Any = None,
        by: str | None = None,
        params: KpiParams | None = None,
        extra: dict[str, Any] | None = None,
    ) -> Window:
        std = STANDARD.get(name)
        days = std.default_days if std else 7
        tz = self.time_zone
        now = kpis.as_utc_naive(self.clock.now()).replace(tzinfo=UTC)  # (a naive clock is UTC)
        try:
            kpis.check_time_zone(conn, tz)
        except ValueError as exc:
            raise ReportError(f"the hotline's time_zone setting: {exc}") from exc
        start_name, end_name = self.bound_names

        def within(name: str, shown: Any, t: datetime) -> datetime:
            # Kept from the ends of Python's years: local times and buckets lie a day or a
            # month around the bounds, and must still be datetimes.
            if not EARLIEST <= t <= LATEST:
                raise _out_of_range(name, shown)
            return t

        def bound(name: str, value: Any) -> datetime:
            try:
                return within(name, value, kpis.utc_bound(conn, value, tz))
            except kpis.OutOfRange:
                raise _out_of_range(name, value) from None
            except ValueError as exc:  # a bound that is neither a date nor an ISO time
                raise ReportError(
                    f"{name} {_shown(value)}: {exc}: give a date (2026-11-26) or an ISO 8601 time (2026-11-26T08:00, 2026-11-26T07:00Z)"
                ) from exc

        def shifted(name: str, other: str, at: datetime, by_days: int) -> datetime:
            shown = f"({abs(by_days)} days {'after' if by_days > 0 else 'before'} {other})"
            try:  # the bound not given, ``days`` local days from the other
                return within(name, shown, kpis.shift_days(conn, at, by_days, tz))
            except kpis.OutOfRange:
                raise _out_of_range(name, shown) from None

        if start is None and end is None:
            try:
                s, e = kpis.default_window(conn, days, tz, now)
            except kpis.OutOfRange as exc:  # data (or a clock) beyond the year 9999
                raise ReportError(f"the default window is out of range ({exc}): give {start_name} and {end_name}") from None
        elif end is None:  # one bound given: the other ``days`` local days away
            s = bound(start_name, start)
            e = shifted(end_name, start_name, s, days)
        else:
            e = bound(end_name, end)
            s = bound(start_name, start) if start is not None else shifted(start_name, end_name, e, -days)
        if e <= s:
            raise ReportError(f"{end_name} must be after {start_name}")
        if std:
            by = by or std.default_by
            if by not in std.by:
                raise ReportError(f"report {name} can be grouped by {list(std.by)}, not {by!r}")
        return Window(s.replace(tzinfo=UTC), e.replace(tzinfo=UTC), by, params or KpiParams(), dict(extra or {}), tz, now)

    def run(
        self,
        name: str,
        start: Any = None,
        end: Any = None,
        by: str | None = None,
        params: KpiParams | None = None,
        extra: dict[str, Any] | None = None,
    ) -> ReportResult:
        saved = None if name in STANDARD else (self.saved.get(name) if self.saved else None)
        if name not in STANDARD and saved is None:
            raise ReportError(f"no report {name!r}: see `hotline report list`", status=404, code="not_found")
        conn = connect_reader(self.duckdb_path)
        try:
            w = self.window(conn, name, start, end, by, params, extra)
            if saved is not None:
                return run_saved(conn, saved, w, self.timeout)
            with time_limit(conn, self.timeout):
                try:
                    return STANDARD[name].run(conn, w)
                except ValueError as e:
                    raise ReportError(str(e)) from e
        finally:
            conn.close()

    def validate(self, report: SavedReport) -> ReportResult:
        """Checks and test-runs a report on the latest data (the default window)."""
        check_saved_report(report)
        conn = connect_reader(self.duckdb_path)
        try:
            return run_saved(conn, report, self.window(conn, report.name), self.timeout)
        finally:
            conn.close()

    def save(self, report: SavedReport) -> ReportResult:
        if self.saved is None:
            raise ReportError("saving reports needs the read store", status=503)
        self.saved.check_owner(report)  # before the test run: it may take seconds
        sample = self.validate(report)
        self.saved.save(report)
        return sample

    def delete(self, name: str, may_delete: Callable[[SavedReport], None]) -> None:
        """Deletes the saved report ``name`` if ``may_delete`` (the owner's check) lets it."""
        if name in STANDARD:
            raise ReportError(f"{name!r} is a standard report: only saved reports can be deleted", status=409, code="standard_report")
        if self.saved is None or not self.saved.delete(name, may_delete):
            raise ReportError(f"no saved report {name!r}: see `hotline report list`", status=404, code="not_found")


def render(result: ReportResult, fmt: str) -> bytes:
    """The report as bytes in ``fmt``: csv, json, parquet, png or html."""
    if fmt == "csv":
        return result.to_csv().encode()
    if fmt == "json":
        return result.to_json().encode()
    if fmt == "parquet":
        return result.to_parquet()
    if fmt == "png":
        from analytics.charts import png

        return png(result)
    if fmt == "html":
        from analytics.charts import html_page

        return html_page(result).encode()
    raise ReportError(f"format {fmt!r} must be one of table, csv, json, parquet, png, html")


MEDIA_TYPES = {
    "csv": "text/csv; charset=utf-8",
    "json": "application/json",
    "parquet": "application/vnd.apache.parquet",
    "png": "image/png",
    "html": "text/html; charset=utf-8",
}
