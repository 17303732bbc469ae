"""The reports over HTTP and on the command line."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import typer
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from infra.settings import Settings
from tests.analytics.conftest import reports_cli, reports_client, settings_over

ANALYST = {"X-Actor-Id": "ana", "X-Actor-Role": "analyst"}


@pytest.fixture()
def settings(tmp_path: Path, loaded_db: Path) -> Settings:
    return settings_over(tmp_path, loaded_db)


@pytest.fixture()
def client(settings: Settings) -> Iterator[TestClient]:
    yield from reports_client(settings)


def test_api_lists_and_runs_reports(client: TestClient) -> None:
    names = [r["name"] for r in client.get("/reports", headers=ANALYST).json()]
    assert {"daily", "service_level", "backlog", "staffing", "heatmap"} <= set(names)
    # Dates are the hotline's local days (Europe/Rome), each bucket its local date.
    r = client.get("/reports/daily", params={"from": "2024-05-06", "to": "2024-05-08"}, headers=ANALYST)
    assert r.status_code == 200, r.text
    doc = r.json()
    assert [row["bucket"] for row in doc["rows"]] == ["2024-05-06", "2024-05-07"] and doc["rows"][0]["offered"] > 300
    assert (doc["params"]["from"], doc["params"]["time_zone"]) == ("2024-05-06T00:00:00+02:00", "Europe/Rome")
    csv_ = client.get("/reports/service_level", params={"by": "queue", "format": "csv", "from": "2024-05-06T00:00:00Z"}, headers=ANALYST)
    assert csv_.headers["content-type"].startswith("text/csv") and "q-tax" in csv_.text
    pq_ = client.get("/reports/agents", params={"format": "parquet", "from": "2024-05-06T00:00:00Z"}, headers=ANALYST)
    assert pq.read_table(io.BytesIO(pq_.content)).num_rows == 10
    png = client.get("/reports/heatmap", params={"format": "png"}, headers=ANALYST)
    assert png.content[:4] == b"\x89PNG"
    page = client.get("/reports/backlog", params={"format": "html"}, headers=ANALYST)
    assert "<svg" in page.text and "open_requests" in page.text


def test_api_errors_are_clear(client: TestClient) -> None:
    assert client.get("/reports/nope", headers=ANALYST).status_code == 404
    bad_by = client.get("/reports/daily", params={"by": "agent"}, headers=ANALYST)
    assert bad_by.status_code == 422 and "grouped by" in bad_by.json()["error"]["message"]
    citizen = client.get("/reports", headers={"X-Actor-Id": "c", "X-Actor-Role": "citizen"})
    assert citizen.status_code == 403


def test_api_report_builder(client: TestClient) -> None:
    body = {
        "name": "queue_asa",
        "sql": "SELECT queue_id, avg(wait_seconds) FILTER (answered) AS asa FROM contacts_between($from, $to) GROUP BY ALL ORDER BY 1",
        "formats": {"asa": "seconds"},
        "chart": {"kind": "bar", "x": "queue_id", "y": ["asa"]},
    }
    r = client.post("/reports", json=body, headers=ANALYST)
    assert r.status_code == 201, r.text
    run = client.get("/reports/queue_asa", params={"from": "2024-05-06T00:00:00Z", "to": "2024-05-07T00:00:00Z"}, headers=ANALYST)
    assert [row["queue_id"] for row in run.json()["rows"]] == ["q-general", "q-tax", "q-waste"]
    evil = client.post("/reports", json={"name": "evil", "sql": "DROP TABLE events"}, headers=ANALYST)
    assert evil.status_code == 422 and evil.json()["error"]["code"] == "report_not_read_only"


def test_api_erlang_c(client: TestClient) -> None:
    r = client.get("/staffing/erlang-c", params={"calls": 100, "aht": 180, "agents": 14}, headers=ANALYST).json()
    assert round(r["probability_of_waiting"], 4) == 0.1741 and round(r["service_level"], 3) == 0.888
    need = client.get("/staffing/erlang-c", params={"calls": 100, "aht": 180, "target_sl": 0.8, "shrinkage": 0.3}, headers=ANALYST).json()
    assert (need["agents"], need["scheduled_agents"]) == (14, 20)
    assert client.get("/staffing/erlang-c", params={"calls": 100, "aht": 0}, headers=ANALYST).status_code == 422


@pytest.fixture()
def cli(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> typer.Typer:
    return reports_cli(settings, monkeypatch)


def test_cli_report_formats(cli: typer.Typer, tmp_path: Path) -> None:
    runner = CliRunner()
    base = ["--from", "2024-05-06", "--to", "2024-05-08", "--no-catch-up"]
    r = runner.invoke(cli, ["report", "daily", *base, "--format", "json"])
    assert r.exit_code == 0, r.output
    assert len(json.loads(r.stdout)["rows"]) == 2
    r = runner.invoke(cli, ["report", "daily", *base])
    assert r.exit_code == 0 and "Daily statistics" in r.stdout
    for fmt in ("csv", "parquet", "png", "html"):
        out = tmp_path / f"daily.{fmt}"
        r = runner.invoke(cli, ["report", "service_level", *base, "--by", "day", "--format", fmt, "--out", str(out)])
        assert r.exit_code == 0, r.output
        assert out.stat().st_size > 100
    r = runner.invoke(cli, ["report", "list", "--json"])
    assert "staffing" in r.stdout


def test_cli_save_and_run(cli: typer.Typer) -> None:
    runner = CliRunner()
    sql = (
        "SELECT date_trunc('day', started_at) AS day, count(*) AS n, count(*) FILTER (abandoned) AS ab "
        "FROM contacts_between($from, $to) GROUP BY 1 ORDER BY 1"
    )
    r = runner.invoke(
        cli,
        [
            "report",
            "save",
            "abandons",
            "--sql",
            sql,
            "--formula",
            "rate=ab / n",
            "--col-format",
            "rate=percent",
            "--chart",
            "line:day:rate",
        ],
    )
    assert r.exit_code == 0, r.output
    r = runner.invoke(cli, ["report", "abandons", "--from", "2024-05-06", "--to", "2024-05-08", "--no-catch-up", "--format", "csv"])
    assert r.exit_code == 0, r.output
    assert r.stdout.splitlines()[0] == "day,n,ab,rate"
    r = runner.invoke(cli, ["report", "save", "bad", "--sql", "UPDATE events SET type = 'x'"])
    assert r.exit_code == 2 and "not saved" in r.output


def test_cli_erlang_c(cli: typer.Typer) -> None:
    r = CliRunner().invoke(cli, ["erlang-c", "--calls", "100", "--aht", "180", "--agents", "14"])
    assert r.exit_code == 0, r.output
    assert round(json.loads(r.stdout)["asa_seconds"], 2) == 7.84
