from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import duckdb
import pytest
import typer

from domain.envelope import Envelope
from infra.settings import Settings
from tests.analytics.traffic import generate, published, utc

DAY = utc(2024, 5, 6)  # a Monday


@pytest.fixture(scope="session")
def traffic() -> list[Envelope]:
    return generate(DAY, days=2)


@pytest.fixture(scope="session")
def loaded_db(tmp_path_factory: pytest.TempPathFactory, traffic: list[Envelope]) -> Path:
    """An analytics database with two days of traffic, its snapshot published."""
    return published(tmp_path_factory.mktemp("analytics") / "analytics.duckdb", traffic, batch=700)


@pytest.fixture()
def reader(loaded_db: Path) -> Iterator[duckdb.DuckDBPyConnection]:
    from analytics.reports import connect_reader

    conn = connect_reader(loaded_db)
    yield conn
    conn.close()


def reports_cli(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> typer.Typer:
    """``hotline report …`` on ``settings`` (api/cli/reports.py), as the CLI runs it."""
    from api.cli import reports

    monkeypatch.setattr(reports, "get_settings", lambda: settings)
    app = typer.Typer()

    @app.command()
    def version() -> None:  # a second command so that typer keeps subcommand names
        pass

    app.add_typer(reports.commands)
    return app
