from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import duckdb
import pytest
import typer
from fastapi.testclient import TestClient

from domain.base import Clock, SystemClock
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


def settings_over(tmp_path: Path, db: Path) -> Settings:
    """Settings whose analytics file is a copy of ``db``'s snapshot (a database nobody writes to)."""
    import shutil

    from analytics.ingest import snapshot_path_for

    s = Settings(data_dir=tmp_path / "data")
    s.data_dir.mkdir(parents=True)
    shutil.copyfile(snapshot_path_for(db).resolve(), s.duckdb_path)
    return s


def reports_client(settings: Settings, clock: Clock | None = None) -> Iterator[TestClient]:
    """The reports router over HTTP, signed in as the headers say. Reports need no event
    store: a stand-in hotline with the read side, sign-in and a clock."""
    from types import SimpleNamespace
    from typing import Any, cast

    import sqlalchemy as sa
    from fastapi import FastAPI

    from api import errors
    from api.deps import get_hotline
    from api.routers import reports as reports_router
    from infra.identity.service import Identity
    from tests.auth import SignedInClient

    app = FastAPI()
    errors.install(app)
    app.include_router(reports_router.router)
    hotline = SimpleNamespace(
        settings=settings,
        read_store=SimpleNamespace(engine=sa.create_engine(settings.read_store_url)),
        identity=Identity(settings, cast(Any, None)),
        extras={},
        clock=clock or SystemClock(),
    )
    app.state.hotline = hotline
    app.dependency_overrides[get_hotline] = lambda: hotline
    with SignedInClient(app) as c:
        yield c
