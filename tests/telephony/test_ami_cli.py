"""``hotline ami replay FILE`` refuses a file with no AMI event in it (exit 2, one line)
rather than replaying nothing and reporting success."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

import api.cli as cli
from api.cli import ami as ami_cli
from infra.settings import Settings
from tests.cli_refusals import refused

SESSIONS = Path(__file__).parent / "ami_sessions"


@pytest.fixture
def data(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    folder = tmp_path / "data"
    settings = Settings(data_dir=folder, database_url=None)
    monkeypatch.setattr(ami_cli, "get_settings", lambda: settings)
    monkeypatch.chdir(tmp_path)
    yield folder


def test_a_file_without_ami_events_is_refused(data: Path, tmp_path: Path) -> None:
    runner = CliRunner()
    readme = runner.invoke(cli.app, ["ami", "replay", str(SESSIONS / "README.md")])
    refused(readme, "README.md: no AMI event in it")
    empty = tmp_path / "empty.ami"
    empty.write_text("", "utf-8")
    refused(runner.invoke(cli.app, ["ami", "replay", str(empty)]), "empty.ami: no AMI event in it")
    headers_only = tmp_path / "response.ami"
    headers_only.write_text("Response: Success\r\nMessage: Authentication accepted\r\n\r\n", "utf-8")
    refused(runner.invoke(cli.app, ["ami", "replay", str(headers_only)]), "no AMI event")
    assert not data.exists() or not any(data.iterdir())  # refused before any store was made


def test_a_recorded_session_is_replayed(data: Path) -> None:
    result = CliRunner().invoke(cli.app, ["ami", "replay", str(SESSIONS / "app_queue_day.ami")])
    assert result.exit_code == 0, result.output
    assert '"handled"' in result.stdout
