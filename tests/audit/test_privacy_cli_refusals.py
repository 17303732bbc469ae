"""``hotline privacy retention`` and ``hotline recordings retention`` refuse a period that
would reach everything in one line (exit 2), as the CLI's other refusals, not click's
boxed usage panel."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from api.cli import privacy as privacy_cli
from api.cli import recordings as recordings_cli
from tests.cli_refusals import refused


@pytest.mark.parametrize("years", ["-1", "0", "nan"])
def test_retention_refuses_a_period_of_no_years_in_one_line(years: str) -> None:
    result = CliRunner().invoke(privacy_cli.commands, ["privacy", "retention", "--years", years])
    refused(result, "--years", "more than 0")


@pytest.mark.parametrize("days", ["-1", "0", "nan"])
def test_recordings_retention_refuses_a_period_of_no_days_in_one_line(days: str) -> None:
    result = CliRunner().invoke(recordings_cli.commands, ["recordings", "retention", "--days", days])
    refused(result, "--days", "more than 0")
