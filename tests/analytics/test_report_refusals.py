"""What QA found in the reports (HTTP and ``hotline report``): CSV cells that a spreadsheet
would run as formulas, a saved report replaced by another user, windows beyond the years
a datetime holds, messages naming the CLI's options over HTTP, and the CLI's refusals
(one line, exit 2) and ranges (the API's)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import typer
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from analytics.reports import RUN_PARAMETERS, ReportResult, SavedReport, SavedReports
from api.cli import reports as reports_cli_module
from infra.settings import Settings
from tests.analytics.conftest import reports_cli, reports_client, settings_over
from tests.cli_refusals import refused

SARA = {"X-Actor-Id": "analyst-sara", "X-Actor-Role": "analyst"}
LI = {"X-Actor-Id": "sup-li", "X-Actor-Role": "supervisor"}
SQL = "SELECT count(*) AS n FROM contacts_between($from, $to)"


@pytest.fixture()
def settings(tmp_path: Path, loaded_db: Path) -> Settings:
    return settings_over(tmp_path, loaded_db)


@pytest.fixture()
def client(settings: Settings) -> Iterator[TestClient]:
    yield from reports_client(settings)


@pytest.fixture()
def cli(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> typer.Typer:
    return reports_cli(settings, monkeypatch)


def error(response: Any, status: int, code: str) -> str:
    assert response.status_code == status, response.text
    body = response.json()["error"]
    assert (body["status"], body["code"]) == (status, code), body
    return str(body["message"])


# ---------------------------------------------------------------------- CSV injection
def test_csv_cells_that_start_like_a_formula_stay_text() -> None:
    typed = ['=HYPERLINK("http://evil.example/x","click")', "+cmd|calc!A0", "-2+3", "@SUM(A1)", "\tx", "\rx"]
    section = ReportResult("unanswered", "Unanswered", ["query", "searches"], [[q, 1] for q in typed])
    result = ReportResult("knowledge", "Knowledge", ["=bucket", "rate"], [["total", -0.5]], sections=[section])
    lines = result.to_csv().splitlines()
    assert lines[0] == "'=bucket,rate"  # a column named by a saved report's SQL too
    assert lines[1] == "total,-0.5"  # numbers stay numbers, negative ones too
    cells = [line.rsplit(",", 1)[0] for line in lines[5:]]
    assert cells[0] == '"\'=HYPERLINK(""http://evil.example/x"",""click"")"'
    assert cells[1:4] == ["'+cmd|calc!A0", "'-2+3", "'@SUM(A1)"]
    assert not any(c.lstrip('"').startswith(("=", "+", "-", "@", "\t", "\r")) for c in cells)


# ---------------------------------------------------------------------- saved reports' owners
def test_a_report_of_another_owner_is_not_replaced(client: TestClient, cli: typer.Typer) -> None:
    assert client.post("/reports", json={"name": "q_ok", "sql": SQL}, headers=SARA).status_code == 201
    taken = client.post("/reports", json={"name": "q_ok", "sql": "SELECT 2 AS other"}, headers=LI)
    message = error(taken, 409, "report_exists")
    assert "analyst-sara" in message and "q_ok" in message
    kept = [r for r in client.get("/reports", headers=SARA).json() if r["name"] == "q_ok"]
    assert [r["sql"] for r in kept] == [SQL]
    # Its owner replaces it.
    mine = client.post("/reports", json={"name": "q_ok", "sql": SQL + " WHERE answered"}, headers=SARA)
    assert mine.status_code == 201, mine.text
    # Nor from the command line (the shell's user is another owner).
    refused(CliRunner().invoke(cli, ["report", "save", "q_ok", "--sql", "SELECT 3 AS a"]), "q_ok", "analyst-sara")
    kept = [r for r in client.get("/reports", headers=SARA).json() if r["name"] == "q_ok"]
    assert [r["sql"] for r in kept] == [SQL + " WHERE answered"]
    # The CLI's user replaces a report of their own.
    runner = CliRunner()
    assert runner.invoke(cli, ["report", "save", "mine", "--sql", "SELECT 1 AS a"]).exit_code == 0
    assert runner.invoke(cli, ["report", "save", "mine", "--sql", "SELECT 2 AS a"]).exit_code == 0
    error(client.post("/reports", json={"name": "mine", "sql": SQL}, headers=SARA), 409, "report_exists")


def test_a_saved_report_is_deleted_by_its_owner_or_a_supervisor(client: TestClient, cli: typer.Typer) -> None:
    tom = {"X-Actor-Id": "analyst-tom", "X-Actor-Role": "analyst"}
    for name in ("sara_q", "sara_r"):
        assert client.post("/reports", json={"name": name, "sql": SQL}, headers=SARA).status_code == 201
    message = error(client.delete("/reports/sara_q", headers=tom), 403, "forbidden")
    assert "reports.delete" in message
    names = {r["name"] for r in client.get("/reports", headers=SARA).json()}
    assert {"sara_q", "sara_r"} <= names  # the refused one is still there
    assert client.delete("/reports/sara_q", headers=SARA).status_code == 204
    error(client.delete("/reports/sara_q", headers=SARA), 404, "not_found")
    error(client.delete("/reports/daily", headers=LI), 409, "standard_report")
    assert client.delete("/reports/sara_r", headers=LI).status_code == 204  # a supervisor's call
    # The command line deletes its own user's reports, another's only when told to.
    assert client.post("/reports", json={"name": "sara_s", "sql": SQL}, headers=SARA).status_code == 201
    runner = CliRunner()
    refused(runner.invoke(cli, ["report", "delete", "sara_s"]), "analyst-sara", "--any-owner")
    assert "sara_s" in {r["name"] for r in client.get("/reports", headers=SARA).json()}
    assert runner.invoke(cli, ["report", "delete", "sara_s", "--any-owner"]).exit_code == 0
    assert runner.invoke(cli, ["report", "save", "cli_q", "--sql", "SELECT 1 AS a"]).exit_code == 0
    assert runner.invoke(cli, ["report", "delete", "cli_q"]).exit_code == 0
    assert not {"sara_s", "cli_q"} & {r["name"] for r in client.get("/reports", headers=SARA).json()}
    # One saved before owners were recorded is a supervisor's call.
    legacy = SavedReport(name="legacy_q", sql=SQL)
    assert legacy.owner is None
    SavedReports(client.app.state.hotline.read_store.engine).save(legacy)  # type: ignore[attr-defined]
    error(client.delete("/reports/legacy_q", headers=SARA), 403, "forbidden")
    assert client.delete("/reports/legacy_q", headers=LI).status_code == 204


# ---------------------------------------------------------------------- windows out of range
@pytest.mark.parametrize(
    "params",
    [
        {"from": "0001-01-01", "to": "2026-12-01"},
        {"from": "0001-01-01", "to": "9999-12-31"},
        {"from": "9999-12-30"},
        {"from": "0001-01-01T00:00:00+01:00", "to": "2026-12-01"},
        {"to": "0001-01-03"},
    ],
)
def test_a_window_beyond_the_years_a_report_holds_is_422(client: TestClient, params: dict[str, str]) -> None:
    message = error(client.get("/reports/daily", params=params, headers=SARA), 422, "report_invalid")
    assert "out of range" in message and "--" not in message, message


@pytest.mark.parametrize(
    "args",
    [
        ["--from", "0001-01-01", "--to", "2026-12-01"],
        ["--from", "9999-12-30"],
        ["--from", "0001-01-01T00:00:00+01:00", "--to", "2026-12-01"],
    ],
)
def test_the_cli_refuses_a_window_out_of_range_in_one_line(cli: typer.Typer, args: list[str]) -> None:
    result = CliRunner().invoke(cli, ["report", "daily", *args, "--format", "csv", "--no-catch-up"])
    assert "--from" in refused(result, "out of range")


# ---------------------------------------------------------------------- names of the bounds
def test_api_messages_name_its_parameters_and_the_cli_its_options(client: TestClient, cli: typer.Typer) -> None:
    message = error(client.get("/reports/daily", params={"from": "2026-12-05", "to": "2026-12-01"}, headers=SARA), 422, "report_invalid")
    assert message == "'to' must be after 'from'"
    result = CliRunner().invoke(cli, ["report", "daily", "--from", "2026-12-05", "--to", "2026-12-01", "--no-catch-up"])
    refused(result, "--to must be after --from")


# ---------------------------------------------------------------------- the CLI's refusals
def test_the_cli_refuses_in_one_line(cli: typer.Typer) -> None:
    runner = CliRunner()
    refused(runner.invoke(cli, ["report", "delete", "nosuch_report"]), "no saved report 'nosuch_report'")
    refused(runner.invoke(cli, ["report", "save", "q", "--sql", "SELECT 1 AS a", "--formula", "oops"]), "--formula", "'oops'")
    refused(runner.invoke(cli, ["report", "save", "q", "--sql", "SELECT 1 AS a", "--col-format", "a"]), "--col-format")
    refused(runner.invoke(cli, ["report", "save", "q"]), "--sql")
    refused(runner.invoke(cli, ["report", "save", "q", "--sql-file", "/nonexistent/q.sql"]), "--sql-file", "q.sql")
    refused(runner.invoke(cli, ["report", "save", "bad", "--sql", "UPDATE events SET type = 'x'"]), "not saved")


@pytest.mark.parametrize(
    ("option", "value"),
    [
        ("--sl-threshold", "0"),
        ("--sl-threshold", "nan"),
        ("--sl-threshold", "86401"),
        ("--short-abandon", "-1"),
        ("--fcr-days", "0"),
        ("--repeat-days", "366"),
        ("--target-sl", "1"),
        ("--target-sl", "0"),
        ("--shrinkage", "1"),
    ],
)
def test_the_cli_takes_the_apis_ranges(cli: typer.Typer, client: TestClient, option: str, value: str) -> None:
    base = ["report", "daily", "--from", "2024-05-06", "--to", "2024-05-08", "--no-catch-up", "--format", "json"]
    refused(CliRunner().invoke(cli, [*base, option, value]), option, "must be")
    param = option.removeprefix("--").replace("-", "_")
    api = client.get("/reports/daily", params={"from": "2024-05-06", "to": "2024-05-08", param: value}, headers=SARA)
    error(api, 422, "invalid_request")


def test_the_cli_and_the_api_share_their_defaults_and_bounds() -> None:
    options = {p.name: p for p in typer.main.get_command(reports_cli_module.report_app).commands["run"].params}  # type: ignore[attr-defined]
    for name, bounds in RUN_PARAMETERS.items():
        assert options[name].default == bounds.default, name
