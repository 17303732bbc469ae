"""The analyst's reports: the standard reports with their charts, and the headline KPIs.

Reports run on the analytics snapshot (DuckDB) through ``analytics.reports.Reports``,
the same service as ``GET /reports/{name}``; the chart is matplotlib's PNG, served here
(same origin, shown inline) with the page's own rule.
"""

from __future__ import annotations

from typing import Any, Literal

import babel.dates
from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, Response

from analytics.charts import ChartText, png
from analytics.reports import STANDARD, ReportError, ReportResult, Reports
from api.console.reference import department_names, problem_names
from api.console.session import page
from api.console.web import N_, choose_language, localised, render, translations
from api.routers.reports import get_reports
from domain.access import Action
from domain.base import Actor, NotFound
from infra.runtime import Hotline

router = APIRouter(include_in_schema=False)

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
}
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
        columns=COLUMNS,
        chosen=STANDARD.get(name),
        name=name,
        by=by or "",
        result=result,
        kpis=kpis,
        error=error,
        # Codes and ids in the tables are shown by their names in the user's language.
        department_names=department_names(request.app.state.hotline),
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
    body = png(_run(request, name, by), chart_text(hotline, language, name))
    # The language is part of the answer: a cache must not give one user's to another.
    return Response(body, media_type="image/png", headers={"Cache-Control": "private, max-age=60", "Vary": "Cookie, Accept-Language"})


# The chart's own words (its headings come from COLUMNS and TITLES).
CHART_WORDS = {"hour": N_("Hour of the day"), "no_data": N_("No data in this window."), "no_chart": N_("No chart for this report")}


def chart_text(hotline: Hotline, language: str, name: str) -> ChartText:
    t = translations(language, "reports")
    names = {"problem_code": problem_names(hotline), "department": department_names(hotline)}

    def value(column: str, raw: Any) -> str | None:
        known = names.get(column, {}).get(str(raw)) if raw is not None else None
        return localised(known, language) or None

    weekdays = babel.dates.get_day_names("abbreviated", locale=language)
    return ChartText(
        language=language,
        title=t.gettext(TITLES[name]) if name in TITLES else None,
        column=lambda c: t.gettext(COLUMNS[c]) if c in COLUMNS else c,
        value=value,
        no_data=t.gettext(CHART_WORDS["no_data"]),
        no_chart=t.gettext(CHART_WORDS["no_chart"]),
        weekdays=tuple(weekdays[d] for d in range(7)),  # Monday first, as the report numbers them
        hour=t.gettext(CHART_WORDS["hour"]),
    )
