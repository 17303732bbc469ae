"""``hotline audit …``: the auditor's views from the command line, as JSON and as tables."""

from __future__ import annotations

import json
import sqlite3
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import typer
from typer.testing import CliRunner

from api.cli import audit as audit_cli
from domain.base import Actor, FixedClock
from domain.requests import commands as c
from domain.requests.aggregate import request_id_for
from infra.logging import configure_logging
from infra.runtime import Hotline

AGENT = Actor("op-cli", "agent")


@pytest.fixture
def cli(hotline: Hotline, monkeypatch: pytest.MonkeyPatch) -> typer.Typer:
    monkeypatch.setattr(audit_cli, "get_settings", lambda: hotline.settings)
    configure_logging(hotline.settings)  # as the CLI's callback does: log lines on stderr, never in the output
    return audit_cli.commands


def _json(output: str) -> Any:
    return json.loads(output)


def test_history_as_of_trace_and_read_model_from_the_command_line(hotline: Hotline, cli: typer.Typer) -> None:
    assert isinstance(hotline.clock, FixedClock)
    ref = hotline.bus.execute(
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
    ).result["reference"]
    hotline.clock.advance(minutes=5)
    hotline.bus.execute(c.Dispatch(ref=ref), AGENT)
    stored: list[Any] = list(hotline.store.events.get(request_id_for(ref)))
    runner = CliRunner()

    r = runner.invoke(cli, ["audit", "history", "request", ref, "--as-of", "1", "--json"])
    assert r.exit_code == 0, r.output
    shown = _json(r.stdout)
    assert [s["version"] for s in shown["history"]] == [e.originator_version for e in stored]
    assert shown["state"]["status"] == "registered" and shown["as_of"]["version"] == 1
    r = runner.invoke(cli, ["audit", "history", "request", ref])
    assert r.exit_code == 0 and "dispatched" in r.output and "op-cli" in r.output

    r = runner.invoke(cli, ["audit", "as-of", "request", ref, stored[-1].timestamp.isoformat(), "--json"])
    assert r.exit_code == 0, r.output
    assert _json(r.stdout)["state"]["status"] == "dispatched"

    r = runner.invoke(cli, ["audit", "trace", ref, "--json"])
    assert r.exit_code == 0, r.output
    trace = _json(r.stdout)
    assert trace["mode"] == "case"
    assert {(s["stream"], s["version"]) for s in trace["events"]} >= {("request", e.originator_version) for e in stored}

    due = stored[0].due_at  # type: ignore[attr-defined]
    after = (due + timedelta(hours=1)).isoformat()
    r = runner.invoke(cli, ["audit", "read-model", "sla-breaches", "--as-of", after, "--reference", ref, "--json"])
    assert r.exit_code == 0, r.output
    assert _json(r.stdout)["reference"]["overdue"] is True
    r = runner.invoke(cli, ["audit", "read-model", "sla-breaches", "--as-of", after, "--reference", ref])
    assert f"{ref}: on the overdue list" in r.output
    before = (stored[0].timestamp + timedelta(minutes=1)).isoformat()
    r = runner.invoke(cli, ["audit", "read-model", "sla-breaches", "--as-of", before, "--reference", ref, "--json"])
    assert _json(r.stdout)["reference"]["overdue"] is False
    r = runner.invoke(cli, ["audit", "read-model", "department-workloads", "--as-of", after, "--json"])
    assert [d["department_id"] for d in _json(r.stdout)["departments"]] == ["transport"]

    r = runner.invoke(cli, ["audit", "history", "request", "no-such-ref"])
    assert r.exit_code == 2 and "no request" in r.output


def test_verify_and_checkpoint_from_the_command_line(hotline: Hotline, cli: typer.Typer, tmp_path: Path) -> None:
    runner = CliRunner()
    r = runner.invoke(cli, ["audit", "verify", "--json"])
    assert r.exit_code == 0, r.output
    report = _json(r.stdout)
    assert report["ok"] is True and report["events_checked"] > 0 and report["first_break"] is None
    marks = tmp_path / "checkpoints.jsonl"
    r = runner.invoke(cli, ["audit", "checkpoint", "--file", str(marks), "--json"])
    assert r.exit_code == 0, r.output
    mark = _json(r.stdout)
    assert mark["position"] == hotline.store.max_position() and mark["global_hash"] == report["head_hash"]
    assert str(mark["position"]) in marks.read_text()
    r = runner.invoke(cli, ["audit", "verify", "--checkpoints", str(marks)])
    assert r.exit_code == 0 and "True" in r.output
    if hotline.store.is_postgres:
        return
    # A changed byte in a stored event: the command fails and names the first broken link.
    with sqlite3.connect(hotline.settings.sqlite_events_path) as db:
        position, state = db.execute("SELECT rowid, state FROM stored_events ORDER BY rowid LIMIT 1 OFFSET 3").fetchone()
        flipped = bytes(state).replace(b"Deep", b"Deap", 1) if b"Deep" in bytes(state) else bytes(state)[:-2] + b" }"
        db.execute("UPDATE stored_events SET state = ? WHERE rowid = ?", (flipped, position))
    r = runner.invoke(cli, ["audit", "verify", "--json"])
    assert r.exit_code == 1
    assert _json(r.stdout)["first_break"]["position"] == position
