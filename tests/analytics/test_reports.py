"""Standard reports in every format, and the report builder's validation."""

from __future__ import annotations

import io
import json
from datetime import timedelta
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import sqlalchemy as sa

from analytics import kpis
from analytics.reports import STANDARD, ReportError, Reports, SavedReport, SavedReports, render
from domain.envelope import Envelope
from tests.analytics.conftest import DAY

FROM, TO = DAY.date().isoformat(), (DAY + timedelta(days=2)).date().isoformat()


@pytest.fixture()
def reports(loaded_db: Path, tmp_path: Path) -> Reports:
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'read.sqlite'}")
    return Reports(loaded_db, SavedReports(engine), timeout=2.0)


@pytest.mark.parametrize("name", sorted(STANDARD))
def test_every_standard_report_renders_in_every_format(reports: Reports, name: str) -> None:
    result = reports.run(name, FROM, TO)
    assert result.rows, name
    doc = json.loads(render(result, "json"))
    assert doc["report"] == name and len(doc["rows"]) == len(result.rows)
    assert render(result, "csv").decode().splitlines()[0].split(",") == result.columns
    table = pq.read_table(io.BytesIO(render(result, "parquet")))
    assert table.num_rows == len(result.rows) and table.column_names == result.columns
    assert render(result, "png")[:8] == b"\x89PNG\r\n\x1a\n"
    page = render(result, "html").decode()
    assert page.startswith("<!doctype html>") and "<svg" in page and "<table>" in page
    assert "src=" not in page and "<script" not in page  # self-contained


def test_daily_report_matches_kpis(reports: Reports, loaded_db: Path) -> None:
    result = reports.run("daily", FROM, TO)
    recs = result.records()
    assert len(recs) == 2
    from analytics.reports import connect_reader

    conn = connect_reader(loaded_db)
    try:
        day1 = kpis.contact_kpis(conn, FROM, DAY + timedelta(days=1))[0]
    finally:
        conn.close()
    assert recs[0]["offered"] == day1["offered"] and recs[0]["service_level"] == pytest.approx(day1["service_level"])


def test_defaults_choose_the_latest_data(reports: Reports, traffic: list[Envelope]) -> None:
    last = max(e.time for e in traffic)  # (UTC: these reports' zone)
    result = reports.run("daily")
    assert result.params["to"] == last.replace(hour=0, minute=0, second=0, microsecond=0) + timedelta(days=1)
    assert result.params["to"] - result.params["from"] == timedelta(days=7)
    assert sum(r["offered"] or 0 for r in result.records()) > 600


def test_bad_grouping_is_refused(reports: Reports) -> None:
    with pytest.raises(ReportError, match="grouped by"):
        reports.run("daily", FROM, TO, by="agent")
    with pytest.raises(ReportError, match="no report"):
        reports.run("nonexistent", FROM, TO)


SL_SQL = """
SELECT date_trunc('day', started_at) AS day,
       count(*) FILTER (answered) AS answered,
       count(*) FILTER (answered AND wait_seconds <= $sl_threshold) AS fast
FROM contacts_between($from, $to)
WHERE direction = 'inbound'
GROUP BY ALL ORDER BY day
"""


def test_saved_report_runs_like_a_standard_one(reports: Reports) -> None:
    report = SavedReport(
        name="my_sl",
        sql=SL_SQL,
        title="My service level",
        formulas={"sl": "fast / answered"},
        formats={"sl": "percent"},
        chart={"kind": "line", "x": "day", "y": ["sl"]},
    )
    sample = reports.save(report)
    assert sample.columns == ["day", "answered", "fast", "sl"]
    assert any(r["name"] == "my_sl" and r["kind"] == "saved" for r in reports.list())
    result = reports.run("my_sl", FROM, TO)
    standard = reports.run("daily", FROM, TO).records()
    for mine, std in zip(result.records(), standard, strict=True):
        assert mine["sl"] == pytest.approx(std["service_level"])
    assert render(result, "png")[:4] == b"\x89PNG"
    assert "%" in render(result, "html").decode()


@pytest.mark.parametrize(
    "sql",
    [
        "DELETE FROM events",
        "INSERT INTO events SELECT * FROM events",
        "CREATE TABLE x AS SELECT 1",
        "SELECT 1; DROP TABLE events",
        "COPY (SELECT * FROM events) TO '/tmp/leak.csv'",
        "ATTACH '/tmp/other.duckdb' AS o",
        "PRAGMA database_list",
        "SET threads = 1",
        "WITH x AS (SELECT 1) DELETE FROM events",
    ],
)
def test_a_saved_report_that_writes_is_refused(reports: Reports, sql: str) -> None:
    with pytest.raises(ReportError) as e:
        reports.save(SavedReport(name="evil", sql=sql))
    assert e.value.code in ("report_not_read_only", "report_invalid")
    assert reports.saved is not None and reports.saved.get("evil") is None


def test_formula_injection_is_refused(reports: Reports) -> None:
    bad = SavedReport(name="evil", sql="SELECT 1 AS a", formulas={"b": "a) AS b FROM (SELECT 1 AS a) x; DELETE FROM events; SELECT (1"})
    with pytest.raises(ReportError, match="exactly one"):
        reports.save(bad)


def test_a_saved_report_that_reads_files_is_refused(reports: Reports) -> None:
    with pytest.raises(ReportError) as e:
        reports.save(SavedReport(name="peek", sql="SELECT * FROM read_csv('/etc/passwd')"))
    assert e.value.code == "report_not_read_only"


def test_a_saved_report_that_runs_too_long_is_refused(reports: Reports) -> None:
    slow = SavedReport(name="slow", sql="SELECT count(*) FROM range(100000000000) a")
    with pytest.raises(ReportError) as e:
        reports.save(slow)
    assert e.value.code == "report_timeout"
    assert reports.saved is not None and reports.saved.get("slow") is None


def test_names_and_parameters_are_checked(reports: Reports) -> None:
    with pytest.raises(ReportError, match="standard report"):
        reports.save(SavedReport(name="daily", sql="SELECT 1"))
    with pytest.raises(ReportError, match="lower-case"):
        reports.save(SavedReport(name="Bad Name", sql="SELECT 1"))
    with pytest.raises(ReportError, match="unknown parameters"):
        reports.save(SavedReport(name="p", sql="SELECT $secret"))
    with pytest.raises(ReportError, match="format"):
        reports.save(SavedReport(name="f", sql="SELECT 1 AS a", formats={"a": "bogus"}))
