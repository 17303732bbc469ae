"""The analyst's reports: the standard reports with their charts, and the headline KPIs.

Reports run on the analytics snapshot (DuckDB) through ``analytics.reports.Reports``,
the same service as ``GET /reports/{name}``; the chart is matplotlib's PNG, served here
(same origin, shown inline) with the page's own rule.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from functools import cached_property
from typing import Any, Literal

import babel
import babel.dates
import sqlalchemy as sa
from fastapi import Query, Request
from fastapi.responses import HTMLResponse, Response

from analytics.charts import ChartText, png
from analytics.reports import STANDARD, ReportError, ReportResult, Reports
from api.console.reference import agent_names, category_names, department_names, problem_names, queue_names
from api.console.session import page
from api.console.web import N_, TERMS, Formats, choose_language, localised, render, translations
from api.routers.reports import get_reports
from api.routing import HotlineRouter
from domain.access import Action
from domain.base import Actor, NotFound
from infra.runtime import Hotline
from projections import knowledge as kb

router = HotlineRouter(include_in_schema=False)

TITLES = {
    "daily": N_("Daily statistics: contacts and requests"),
    "service_level": N_("Service level, speed of answer, handle time, abandonment"),
    "agents": N_("Agents: handled contacts, handle time, occupancy"),
    "requests": N_("Requests: intake, on-time completion, satisfaction"),
    "fcr": N_("First contact resolution"),
    "repeat_complaints": N_("Repeat complaints"),
    "backlog": N_("Backlog and ageing by department"),
    "problems": N_("Most common problem codes"),
    "heatmap": N_("Contacts by weekday and hour"),
    "knowledge": N_("Knowledge base: answer rate and deflection"),
    "staffing": N_("Staffing from history (Erlang C)"),
}
# Column headings people read (the report's column names stay the data's).
COLUMNS = {
    "bucket": N_("Period / group"),
    "offered": N_("Offered"),
    "answered": N_("Answered"),
    "abandoned": N_("Abandoned"),
    "short_abandoned": N_("Short abandons"),
    "service_level": N_("Service level"),
    "service_level_offered": N_("Service level (offered)"),
    "asa_seconds": N_("Average speed of answer"),
    "aht_seconds": N_("Average handle time"),
    "abandonment_rate": N_("Abandonment rate"),
    "answer_rate": N_("Answer rate"),
    "occupancy": N_("Occupancy"),
    "requests_registered": N_("Requests registered"),
    "closed": N_("Closed"),
    "closed_on_time": N_("Closed on time"),
    "on_time_rate": N_("On-time rate"),
    "satisfaction_avg": N_("Average rating"),
    "satisfaction_rate": N_("Satisfied"),
    "dispatches": N_("Dispatches"),
    "returns": N_("Returns"),
    "reopened": N_("Reopened"),
    "ratings": N_("Ratings"),
    "open_requests": N_("Open requests"),
    "past_due": N_("Past due"),
    "department": N_("Department"),
    "problem_code": N_("Problem code"),
    "requests": N_("Requests"),
    "complaints": N_("Complaints"),
    "share": N_("Share"),
    "fcr_rate": N_("First contact resolution"),
    "repeat_rate": N_("Repeat rate"),
    "agent_id": N_("Agent"),
    "handled": N_("Handled"),
    "answered_within_threshold": N_("Answered in time"),
    "longest_wait_seconds": N_("Longest wait"),
    "avg_talk_seconds": N_("Average talk time"),
    "avg_hold_seconds": N_("Average hold time"),
    "avg_wrap_seconds": N_("Average after-call work"),
    "transfers": N_("Transfers"),
    "staffed_seconds": N_("Time signed in"),
    "eligible_requests": N_("Requests counted"),
    "resolved_first_contact": N_("Resolved at first contact"),
    "repeat_complaints": N_("Repeat complaints"),
    "department_id": N_("Department"),
    "category": N_("Category"),
    "category_id": N_("Category"),
    "urgency": N_("Urgency"),
    "under_1d": N_("Under 1 day"),
    "d1_3": N_("1–3 days"),
    "d3_7": N_("3–7 days"),
    "d7_30": N_("7–30 days"),
    "over_30d": N_("Over 30 days"),
    "avg_age_days": N_("Average age (days)"),
    "oldest_days": N_("Oldest (days)"),
    "weekday": N_("Weekday"),
    "hour": N_("Hour"),
    "searches": N_("Searches"),
    "with_results": N_("With results"),
    "used_to_answer": N_("Used to answer"),
    "deflected": N_("Deflected"),
    "resolved": N_("Resolved"),
    "self_service_searches": N_("Self-service searches"),
    "self_service_deflected": N_("Self-service deflected"),
    "deflection_rate": N_("Deflection rate"),
    "no_results": N_("No results"),
    "no_good_answer": N_("No good answer"),
    "unanswered": N_("Unanswered"),
    "unanswered_rate": N_("Unanswered rate"),
    "traffic_erlangs": N_("Traffic (erlangs)"),
    "agents": N_("Agents needed"),
    "scheduled_agents": N_("Agents to schedule"),
    # The knowledge report's further tables.
    "channel": N_("Channel"),
    "language": N_("Language"),
    "query": N_("Query"),
    "example": N_("As typed"),
    "last_searched_at": N_("Last searched"),
    "article_id": N_("Article"),
    "reads": N_("Reads"),
    "not_resolved": N_("Not resolving"),
    "not_resolved_rate": N_("Share not resolving"),
    "last_revision_read": N_("Last revision read"),
}
# A report's further tables (``ReportResult.sections``), shown below its main one.
SECTIONS = {
    "knowledge_by_channel": N_("Answer rate by channel"),
    "knowledge_unanswered": N_("Unanswered queries: the %(top)s most frequent in each language (no results, or no good answer)"),
    "knowledge_unresolved_articles": N_("Articles that do not resolve: read, but neither used to answer nor deflecting"),
}
# The groupings a report offers, as the "Group by" list names them.
GROUPINGS = {
    "hour": N_("Hour"),
    "interval": N_("Half hour"),
    "day": N_("Day"),
    "week": N_("Week"),
    "month": N_("Month"),
    "total": N_("Whole period"),
    "queue": N_("Queue"),
    "channel": N_("Channel"),
    "agent": N_("Agent"),
    "language": N_("Language"),
    "department": N_("Department"),
    "category": N_("Category"),
    "problem_code": N_("Problem code"),
    "kind": N_("Kind of request"),
    "urgency": N_("Urgency"),
    "department_category": N_("Department and category"),
    "trigger": N_("How the search began"),
}
# Which coded values a column holds: a report's own columns, and its "bucket" column by
# the grouping. The values stay the data's (the CSV and the API keep them); people read names.
CODED_COLUMNS = {
    "department": "department",
    "department_id": "department",
    "category": "category",
    "category_id": "category",
    "problem_code": "problem_code",
    "urgency": "urgency",
    "agent_id": "agent",
    "language": "language",
    "article_id": "article",
}
CODED_GROUPINGS = {
    "department": "department",
    "category": "category",
    "problem_code": "problem_code",
    "queue": "queue",
    "channel": "channel",
    "agent": "agent",
    "kind": "kind",
    "urgency": "urgency",
    "language": "language",
    "trigger": "search_trigger",
}
# The knowledge report's channels are where a search was made, not a request's channel.
SEARCH_CHANNELS = {"agent": N_("agent's desk"), "self_service": N_("self-service")}
# A coded column's empty value, said for what it means (a request answered at once has no
# department; a contact abandoned in the queue, no agent).
NO_VALUE = {
    "department": N_("not sent to a department"),
    "category": N_("not classified"),
    "problem_code": N_("not classified"),
    "agent": N_("no agent"),
    "queue": N_("no queue"),
}
SEARCH_TRIGGERS = {"search": N_("typed search"), "suggestion": N_("suggested on the desk")}
# The headline figures (the "daily" report over its whole window).
KPIS = (
    ("offered", N_("Contacts offered")),
    ("service_level", N_("Service level")),
    ("asa_seconds", N_("Average speed of answer")),
    ("abandonment_rate", N_("Abandonment rate")),
    ("requests_registered", N_("Requests registered")),
    ("on_time_rate", N_("On-time rate")),
    ("satisfaction_rate", N_("Satisfied")),
)


def _reports(request: Request) -> Reports:
    hotline: Hotline = request.app.state.hotline
    return get_reports(hotline)


def _run(request: Request, name: str, by: str | None) -> ReportResult:
    if name not in STANDARD:
        raise NotFound(f"no standard report {name!r}")
    return _reports(request).run(name, None, None, by or None)


def _kpis(result: ReportResult) -> list[dict[str, Any]]:
    row = result.records()[0] if result.rows else {}
    return [{"key": key, "label": label, "value": row.get(key), "format": result.formats.get(key, "number")} for key, label in KPIS]


@router.get("/console/reports", response_class=HTMLResponse)
def reports_page(
    request: Request,
    name: str = Query("daily", max_length=64),
    by: str | None = Query(None, max_length=32),
    actor: Actor = page(Action.REPORTS_READ),
) -> HTMLResponse:
    hotline: Hotline = request.app.state.hotline
    language = choose_language(request, hotline.settings.default_language)
    names = ValueNames(hotline, language, name, by)
    error = None
    result = kpis = None
    try:
        kpis = _kpis(_run(request, "daily", "total"))
        result = _run(request, name, by)
    except ReportError as exc:  # no analytics yet, or a grouping the report lacks: said on the page
        error = exc.message
    return render(
        request,
        "reports/reports.html",
        actor,
        reports=[r for r in STANDARD.values()],
        titles=TITLES,
        chosen=STANDARD.get(name),
        name=name,
        by=by or "",
        result=result,
        kpis=kpis,
        error=error,
        groupings=GROUPINGS,
        # Codes and ids in the table are shown by their names in the user's language.
        value_name=names.name,
        value_kind=names.kind,
        heading=names.heading,
        section_title=names.section_title,
        # Day, week and month buckets are the hotline's local dates (times go through fmt.when).
        local_date=local_date(language, by or (STANDARD[name].default_by if name in STANDARD else None)),
    )


@router.get("/console/reports/{name}/chart.png")
def report_chart(
    request: Request,
    name: str,
    by: str | None = Query(None, max_length=32),
    lang: Literal["zh", "ar", "it", "en"] | None = Query(None, description="the page's language (else the user's)"),
    actor: Actor = page(Action.REPORTS_READ),
) -> Response:
    """The report's chart as a PNG, shown inline on the page (not as a download), in the
    user's language: its title, headings, weekdays and the names of coded values. The page
    names its language in the address, so a browser's cached chart of another language is
    never shown after the user switches."""
    hotline: Hotline = request.app.state.hotline
    language = lang or choose_language(request, hotline.settings.default_language)
    body = png(_run(request, name, by), chart_text(hotline, language, name, by))
    # The language is part of the answer: a cache must not give one user's to another.
    return Response(body, media_type="image/png", headers={"Cache-Control": "private, max-age=60", "Vary": "Cookie, Accept-Language"})


# The chart's own words (its headings come from COLUMNS and TITLES).
CHART_WORDS = {"hour": N_("Hour of the day"), "no_data": N_("No data in this window."), "no_chart": N_("No chart for this report")}


def chart_text(hotline: Hotline, language: str, name: str, by: str | None = None) -> ChartText:
    t = translations(language, "reports")
    names = ValueNames(hotline, language, name, by)
    weekdays = babel.dates.get_day_names("abbreviated", locale=language)
    return ChartText(
        language=language,
        title=t.gettext(TITLES[name]) if name in TITLES else None,
        column=names.heading,
        value=names.name,
        no_data=t.gettext(CHART_WORDS["no_data"]),
        no_chart=t.gettext(CHART_WORDS["no_chart"]),
        weekdays=tuple(weekdays[d] for d in range(7)),  # Monday first, as the report numbers them
        hour=t.gettext(CHART_WORDS["hour"]),
    )


def local_date(language: str, by: str | None) -> Callable[[date], str]:
    """A bucket's local date in the reader's words: "Fri, 27 Nov 2026"; a month, "November 2026"
    (kept on one line in a narrow column)."""
    locale = Formats(language, "UTC").locale
    pattern = locale.datetime_skeletons["yMMMM" if by == "month" else "yMMMEd"]
    return lambda d: babel.dates.format_date(d, pattern, locale=locale).replace(" ", "\u00a0")


def article_titles(hotline: Hotline) -> dict[str, dict[str, str]]:
    """Article id → its latest titles by language (the knowledge base's read model)."""
    a = kb.ARTICLES
    with hotline.read_store.engine.connect() as conn:
        rows = conn.execute(sa.select(a.c.article_id, a.c.titles)).all()
    return {article_id: dict(titles or {}) for article_id, titles in rows}


# Coded values named in every language: where each kind's names are read.
NAMED: dict[str, Callable[[Hotline], dict[str, dict[str, str]]]] = {
    "department": department_names,
    "category": category_names,
    "problem_code": problem_names,
    "queue": queue_names,
    "article": article_titles,
}


class ValueNames:
    """The coded values of one report's table and chart in one reader's language:
    departments, categories, problem codes and queues by their names, agents by theirs,
    channels, urgencies and languages in the reader's words. Each lookup is read once."""

    def __init__(self, hotline: Hotline, language: str, report: str, by: str | None) -> None:
        self.hotline = hotline
        self.language = language
        self.report = report
        self.by = by or (STANDARD[report].default_by if report in STANDARD else None)
        self.t = translations(language, "reports")
        self._names: dict[str, dict[str, dict[str, str]]] = {}

    def heading(self, column: str) -> str:
        """A column's heading: the grouping's name for the grouped column ("Channel", "Day")."""
        if column == "bucket" and self.by in GROUPINGS and self.by != "total":
            return self.t.gettext(GROUPINGS[self.by])
        return self.t.gettext(COLUMNS[column]) if column in COLUMNS else column

    def section_title(self, section: ReportResult) -> str:
        """A further table's title in the reader's language (its own, English, if unknown)."""
        if section.name not in SECTIONS:
            return str(section.title)
        return self.t.gettext(SECTIONS[section.name]) % {"top": section.params.get("top", "")}

    def kind(self, column: str) -> str | None:
        """What ``column`` holds (None: not a coded value)."""
        if column == "channel" and self.report == "knowledge":
            return "search_channel"
        if column != "bucket":
            return CODED_COLUMNS.get(column)
        if self.report == "knowledge" and self.by == "channel":
            return "search_channel"
        return CODED_GROUPINGS.get(self.by or "")

    def _named(self, kind: str) -> dict[str, dict[str, str]]:
        """The names of one kind of coded value, read once, and only if the report shows it."""
        if kind not in self._names:
            self._names[kind] = NAMED[kind](self.hotline)
        return self._names[kind]

    @cached_property
    def _agents(self) -> dict[str, str]:
        return agent_names(self.hotline)

    def name(self, column: str, raw: Any) -> str | None:
        """``raw`` in ``column`` as the reader should see it; None where it is shown as it is
        (a number, a date). A code nothing names stays the code."""
        if raw is None:
            kind = self.kind(column)
            return self.t.gettext(NO_VALUE[kind]) if kind in NO_VALUE else None
        value = str(raw)
        if column == "bucket" and self.by == "total":
            return self.t.gettext(GROUPINGS["total"])
        if column == "weekday" and isinstance(raw, int) and 1 <= raw <= 7:  # ISO: Monday is 1
            return str(babel.dates.get_day_names("wide", locale=self.language)[raw - 1])
        kind = self.kind(column)
        if kind is None:
            return None
        if kind in NAMED:
            return localised(self._named(kind).get(value), self.language) or value
        if kind == "agent":
            return self._agents.get(value) or value
        if kind == "language":
            try:
                return babel.Locale.parse(value).get_display_name(self.language) or value
            except (ValueError, babel.UnknownLocaleError):
                return value
        words = {"search_channel": SEARCH_CHANNELS, "search_trigger": SEARCH_TRIGGERS}.get(kind) or TERMS.get(kind, {})
        return self.t.gettext(words[value]) if value in words else value
