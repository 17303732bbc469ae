"""An "as of" the auditor's views cannot use is refused, never a 500 or a traceback: a
"version" of digits ``int`` does not read (``²``), and times whose UTC falls beyond the
years a datetime holds (API, console, CLI)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import typer
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from api.app import create_app
from api.cli import audit as audit_cli
from api.console.audit import as_of_version, parse_as_of
from domain.audit import AsOf
from domain.base import Actor, DomainError
from domain.requests import commands as c
from infra.runtime import Hotline
from tests.auth import bearer, token_for
from tests.cli_refusals import refused

AGENT = Actor("op-asof", "agent")
NOT_VERSIONS = ("²", "¹²", "٣", "１２")  # digits to str.isdigit, not ASCII (int refuses ²)
OUT_OF_RANGE = ("9999-12-31T23:59:59-12:00", "0001-01-01T00:00:00+14:00", "9999-12-31T23:59:59+00:00", "0001-01-01T00:00:00Z")


@pytest.fixture
def ref(hotline: Hotline) -> str:
    registered = hotline.bus.execute(
        c.RegisterRequest(
            kind="action",
            subtype="complaint",
            channel="phone",
            description="Pothole",
            contact=c.Contact(name="Mario Rossi", phone="+39 06 1234 5678"),
            urgency="urgent",
            problem_code="pothole",
        ),
        AGENT,
    )
    return str(registered.result["reference"])


@pytest.fixture
def client(hotline: Hotline) -> Iterator[TestClient]:
    with TestClient(create_app(hotline=hotline)) as client:
        yield client


@pytest.fixture
def cli(hotline: Hotline, monkeypatch: pytest.MonkeyPatch) -> typer.Typer:
    monkeypatch.setattr(audit_cli, "get_settings", lambda: hotline.settings)
    return audit_cli.commands


def test_parsing_refuses_what_it_cannot_use() -> None:
    for text in NOT_VERSIONS:
        with pytest.raises(DomainError, match="neither a version"):
            AsOf.parse(text)
        assert as_of_version(text, []) is None
        with pytest.raises(DomainError):
            parse_as_of(text, "Europe/Rome")
    for text in OUT_OF_RANGE:
        with pytest.raises(DomainError, match="out of range"):
            AsOf.parse(text)
    with pytest.raises(DomainError, match="at most"):
        AsOf.parse("9" * 30)
    for local in ("0001-01-01T00:00", "9999-12-31T23:59"):  # the console's local times (Rome: +00:49 in year 1)
        with pytest.raises(DomainError, match="out of range"):
            parse_as_of(local, "Europe/Rome")
    assert AsOf.parse("12") == AsOf(version=12)
    assert parse_as_of("2026-11-20T09:00", "Europe/Rome") is not None


def test_the_api_and_the_console_answer_422(hotline: Hotline, client: TestClient, ref: str) -> None:
    auditor = bearer(hotline.settings, "auditor-asof", "auditor")
    for text in NOT_VERSIONS:
        answer = client.get(f"/audit/request/{ref}", params={"as_of": text}, headers=auditor)
        assert answer.status_code == 422 and answer.json()["error"]["code"] == "invalid_command", answer.text
    for text in OUT_OF_RANGE:
        for path in (f"/audit/request/{ref}", "/audit/read-models/sla-breaches", "/audit/read-models/department-workloads"):
            answer = client.get(path, params={"as_of": text}, headers=auditor)
            assert answer.status_code == 422, (path, text, answer.text)
            assert "out of range" in answer.json()["error"]["message"]
    client.cookies.set("hotline_session", token_for(hotline.settings, "auditor-omar", "auditor"))
    for text in (*NOT_VERSIONS, "0001-01-01T00:00", "9999-12-31T23:59", *OUT_OF_RANGE):
        assert client.get(f"/console/audit/{ref}", params={"as_of": text}).status_code == 422, text
    assert client.get(f"/console/audit/{ref}", params={"as_of": "1"}).status_code == 200


def test_the_cli_refuses_in_one_line(cli: typer.Typer, ref: str) -> None:
    runner = CliRunner()
    for text in NOT_VERSIONS[:2]:
        refused(runner.invoke(cli, ["audit", "history", "request", ref, "--as-of", text]), "neither a version")
        refused(runner.invoke(cli, ["audit", "as-of", "request", ref, text]), "neither a version")
    for text in OUT_OF_RANGE[:2]:
        refused(runner.invoke(cli, ["audit", "read-model", "sla-breaches", "--as-of", text]), "out of range")
        refused(runner.invoke(cli, ["audit", "history", "request", ref, "--as-of", text]), "out of range")
    refused(runner.invoke(cli, ["audit", "as-of", "request", ref, " "]), "give a version")
