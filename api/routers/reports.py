"""Reports over the analytics database, the report builder, and Erlang C staffing.

Reports read the analytics *snapshot* read-only, never the event store or the operators'
read models, so nothing an analyst runs here can slow down the operators.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fastapi import Body, Depends, Query
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, Field

from analytics import erlang
from analytics.kpis import KpiParams
from analytics.reports import MEDIA_TYPES, RUN_PARAMETERS, Reports, SavedReport, SavedReports, render
from api.auth import allow
from api.deps import get_hotline
from api.errors import ErrorResponse
from api.responses import ReportInfo, ReportSaved, ReportTable, Staffing
from api.routing import HotlineRouter
from domain.access import Access, Action, authorize
from domain.base import Actor, InvalidCommand
from infra.runtime import Hotline

router = HotlineRouter(tags=["reports"])
_saved_cache: dict[int, SavedReports] = {}


def get_reports(hotline: Hotline = Depends(get_hotline)) -> Reports:
    engine = hotline.read_store.engine
    saved = _saved_cache.get(id(engine))
    if saved is None:
        saved = _saved_cache[id(engine)] = SavedReports(engine)
    # Days are the hotline's local days; "now" (the backlog's) is the business clock's.
    return Reports(hotline.settings.duckdb_path, saved, time_zone=hotline.settings.time_zone, clock=hotline.clock)


@router.get("/reports", response_model=list[ReportInfo], summary="Standard and saved reports")
def list_reports(reports: Reports = Depends(get_reports), actor: Actor = allow(Action.REPORTS_READ)) -> list[dict[str, Any]]:
    return reports.list()


def _ranged(name: str) -> Any:
    """The query parameter ``name`` with its default and bounds (``hotline report`` checks
    its options against the same ones)."""
    r = RUN_PARAMETERS[name]
    return Query(r.default, gt=r.gt, ge=r.ge, lt=r.lt, le=r.le)


@router.get(
    "/reports/{name}",
    summary="Run a report",
    description="Days, weeks and months are the hotline's local calendar days (`time_zone` setting, DST included): "
    "such a bucket is the local date it starts on (`2026-11-27`). An hour or half-hour bucket, and every other time "
    "(`params.from`, `params.to`, the backlog's `params.as_of`), is an ISO 8601 time with its offset in that zone "
    "(`2026-11-27T09:00:00+01:00`); `params.time_zone` names the zone.",
    responses={
        200: {
            "description": "The report in the format asked for",
            "content": {
                **{t: {"schema": {"type": "string", "format": "binary"}} for t in MEDIA_TYPES.values()},
                "application/json": {"schema": ReportTable.model_json_schema(ref_template="#/components/schemas/{model}")},
            },
        }
    },
)
def run_report(
    name: str,
    from_: datetime | None = Query(
        None,
        alias="from",
        description="Start: a date (local midnight), a time without an offset (the hotline's local time, "
        "`time_zone` setting) or with one. Default: a window of whole local days ending with the latest data",
    ),
    to: datetime | None = Query(None, description="End, exclusive (read as `from`)"),
    by: str | None = Query(None, description="hour, interval, day, week, month, total, queue, channel, agent, department …"),
    format: str = Query("json", pattern="^(json|csv|parquet|png|html)$"),
    sl_threshold: float = _ranged("sl_threshold"),
    short_abandon: float = _ranged("short_abandon"),
    fcr_days: int = _ranged("fcr_days"),
    repeat_days: int = _ranged("repeat_days"),
    target_sl: float = _ranged("target_sl"),
    shrinkage: float = _ranged("shrinkage"),
    reports: Reports = Depends(get_reports),
    actor: Actor = allow(Action.REPORTS_READ),
) -> Response:
    params = KpiParams(sl_threshold_seconds=sl_threshold, short_abandon_seconds=short_abandon, fcr_days=fcr_days, repeat_days=repeat_days)
    # A ReportError is answered by api/errors.py with the status the report layer chose.
    result = reports.run(name, from_, to, by, params, {"target_sl": target_sl, "shrinkage": shrinkage})
    body = render(result, format)
    headers = {}
    if format in ("csv", "parquet", "png"):
        headers["Content-Disposition"] = f'attachment; filename="{name}.{format}"'
    return Response(body, media_type=MEDIA_TYPES[format], headers=headers)


class SaveReport(BaseModel):
    name: str = Field(..., description="lower-case letters, digits and _")
    sql: str = Field(..., description="One SELECT over the fact views; parameters $from, $to, $by, $sl_threshold, $short_abandon")
    title: str | None = None
    description: str | None = None
    formulas: dict[str, str] = Field(default_factory=dict, description="column → SQL expression over the result's columns")
    formats: dict[str, str] = Field(default_factory=dict, description="column → percent | seconds | number | integer | text | datetime")
    chart: dict[str, Any] | None = Field(None, description='{"kind": "line|bar|heatmap|none", "x": column, "y": [columns]}')


@router.post(
    "/reports",
    status_code=201,
    response_model=ReportSaved,
    summary="Save a report (validated: read-only and time-limited test run)",
    responses={409: {"description": "A report of that name belongs to someone else (report_exists)", "model": ErrorResponse}},
)
def save_report(
    body: SaveReport = Body(...),
    reports: Reports = Depends(get_reports),
    actor: Actor = allow(Action.REPORTS_MANAGE),
) -> JSONResponse:
    report = SavedReport(**body.model_dump(), owner=actor.id)
    sample = reports.save(report)
    return JSONResponse(
        {"name": report.name, "columns": sample.columns, "sample_rows": len(sample.rows), "url": f"/reports/{report.name}"},
        status_code=201,
    )


@router.delete(
    "/reports/{name}",
    status_code=204,
    summary="Delete a saved report (an analyst their own; a supervisor any)",
    responses={
        403: {"description": "The report is someone else's", "model": ErrorResponse},
        404: {"description": "No saved report of that name", "model": ErrorResponse},
        409: {"description": "A standard report, which cannot be deleted (standard_report)", "model": ErrorResponse},
    },
)
def delete_report(name: str, reports: Reports = Depends(get_reports), actor: Actor = allow(Action.REPORTS_DELETE)) -> Response:
    def owners_only(report: SavedReport) -> None:
        # One saved before owners were recorded has none: a supervisor's call alone.
        authorize(actor, Action.REPORTS_DELETE, Access(subject=report.owner))

    reports.delete(name, owners_only)
    return Response(status_code=204)


@router.get("/staffing/erlang-c", response_model=Staffing, summary="Erlang C: agents needed (or the figures for a given number of agents)")
def erlang_c(
    calls: float = Query(..., ge=0, le=10_000_000, description="Contacts arriving per interval"),
    aht: float = Query(..., gt=0, le=86_400, description="Average handle time, seconds"),
    interval: float = Query(1800, gt=0, le=86_400, description="Interval length, seconds"),
    agents: int | None = Query(None, ge=0, le=100_000, description="Evaluate this many agents instead of finding the number needed"),
    target_sl: float = Query(0.8, gt=0, lt=1),
    target_seconds: float = Query(20.0, ge=0, le=86_400),
    shrinkage: float = Query(0.0, ge=0, lt=1),
    max_occupancy: float | None = Query(None, gt=0, le=1),
    actor: Actor = allow(Action.STAFFING_READ),
) -> dict[str, Any]:
    try:
        if agents is not None:
            s = erlang.evaluate(calls, interval, aht, agents, target_seconds, shrinkage)
        else:
            s = erlang.agents_needed(calls, interval, aht, target_sl, target_seconds, shrinkage, max_occupancy)
    except ValueError as e:
        raise InvalidCommand(str(e)) from None
    return s.as_dict()
