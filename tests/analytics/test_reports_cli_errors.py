"""``hotline report``'s usage errors: one line naming the option and what it takes, exit
status 2, nothing written; and its dates are the hotline's local days."""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from analytics.ingest import snapshot_path_for
from infra.settings import Settings
from tests.analytics.conftest import reports_cli

BASE = ["--from", "2024-05-06", "--to", "2024-05-08", "--no-catch-up"]


@pytest.fixture()
def cli(tmp_path: Path, loaded_db: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[typer.Typer]:
    settings = Settings(data_dir=tmp_path / "data")
    settings.data_dir.mkdir(parents=True)
    shutil.copyfile(snapshot_path_for(loaded_db).resolve(), settings.duckdb_path)
    app = reports_cli(settings, monkeypatch)
    # Run where a stray file would show.
    work = tmp_path / "cwd"
    work.mkdir()
    before = Path.cwd()
    os.chdir(work)
    try:
        yield app
    finally:
        os.chdir(before)


def one_line_error(output: str) -> str:
    lines = [line for line in output.splitlines() if line.strip()]
    assert len(lines) == 1, output
    assert "Traceback" not in output
    return lines[0]


@pytest.mark.parametrize("fmt", ["parquet", "png"])
def test_binary_formats_need_out(cli: typer.Typer, fmt: str) -> None:
    r = CliRunner().invoke(cli, ["report", "requests", *BASE, "--format", fmt])
    assert r.exit_code == 2, r.output
    line = one_line_error(r.output)
    assert f"--format {fmt}" in line and "--out" in line
    assert not list(Path.cwd().iterdir()), "nothing is written"


@pytest.mark.parametrize(
    ("args", "option"),
    [
        (["--from", "garbage"], "--from"),
        (["--from", "2024-05-06", "--to", "2024-13-40"], "--to"),
        (["--from", "06/05/2024"], "--from"),
    ],
)
def test_a_bad_date_is_named(cli: typer.Typer, args: list[str], option: str) -> None:
    r = CliRunner().invoke(cli, ["report", "requests", *args, "--no-catch-up"])
    assert r.exit_code == 2, r.output
    line = one_line_error(r.output)
    assert line.startswith(option) and "2026-11-26" in line and "ISO 8601" in line, line


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["--format", "xlsx"], "--format 'xlsx'"),
        (["--by", "galaxy"], "grouped by"),
        (["--from", "2024-05-08", "--to", "2024-05-06"], "--to must be after --from"),
    ],
)
def test_other_bad_choices_are_one_line(cli: typer.Typer, args: list[str], says: str) -> None:
    r = CliRunner().invoke(cli, ["report", "requests", "--no-catch-up", *args])
    assert r.exit_code == 2, r.output
    assert says in one_line_error(r.output)


def test_an_unknown_report_is_one_line(cli: typer.Typer) -> None:
    r = CliRunner().invoke(cli, ["report", "nonexistent", *BASE])
    assert r.exit_code == 2 and "no report 'nonexistent'" in one_line_error(r.output)


def test_binary_formats_with_out_and_text_formats_to_stdout(cli: typer.Typer, tmp_path: Path) -> None:
    out = tmp_path / "r.parquet"
    r = CliRunner().invoke(cli, ["report", "requests", *BASE, "--format", "parquet", "--out", str(out)])
    assert r.exit_code == 0, r.output
    assert out.read_bytes()[:4] == b"PAR1"
    r = CliRunner().invoke(cli, ["report", "daily", *BASE, "--format", "json"])
    assert r.exit_code == 0, r.output
    doc = json.loads(r.stdout)
    # The hotline's local days (Europe/Rome by default).
    assert doc["params"]["from"] == "2024-05-06T00:00:00+02:00" and doc["params"]["time_zone"] == "Europe/Rome"
    assert [row["bucket"] for row in doc["rows"]] == ["2024-05-06", "2024-05-07"]
