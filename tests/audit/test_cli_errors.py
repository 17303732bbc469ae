"""``hotline audit verify`` and ``checkpoint`` with a checkpoint file that cannot be used:
exit 2 and one line naming the file, the line and what is wrong, never exit 1 (which says
the chain is broken) and never a traceback; ``checkpoint --file`` creates no folder."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from api.cli import audit as audit_cli
from infra import audit_chain
from infra.runtime import Hotline
from infra.settings import Settings
from tests.cli_refusals import refused
from tests.conftest import load_catalogue

ROOT = Path(__file__).resolve().parents[2]
HOTLINE = str(Path(sys.executable).with_name("hotline"))
HASH = "ab" * 32


@pytest.fixture
def settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Settings]:
    """An embedded store holding the catalogue's events, and the audit CLI reading it."""
    chosen = Settings(data_dir=tmp_path / "data", database_url=None)
    hotline = Hotline.start(chosen)
    try:
        load_catalogue(hotline)
    finally:
        hotline.close()
    monkeypatch.setattr(audit_cli, "get_settings", lambda: chosen)
    yield chosen


def run(*args: str) -> Result:
    return CliRunner().invoke(audit_cli.commands, ["audit", *args])


def checkpoints(path: Path, *lines: str) -> str:
    path.write_text("".join(line + "\n" for line in lines), "utf-8")
    return str(path)


def test_verify_with_a_checkpoint_file_it_cannot_read_exits_2(settings: Settings, tmp_path: Path) -> None:
    refused(run("verify", "--checkpoints", str(tmp_path / "missing.jsonl")), "missing.jsonl: no such file")
    refused(run("verify", "--checkpoints", str(tmp_path)), "is a directory")
    refused(run("verify", "--checkpoints", checkpoints(tmp_path / "g.jsonl", "garbage")), "g.jsonl line 1: not JSON")
    good = json.dumps({"position": 1, "global_hash": HASH})
    line = refused(
        run("verify", "--checkpoints", checkpoints(tmp_path / "k.jsonl", good, "", '{"position":5,"hash":"x"}')),
        'k.jsonl line 3: no "global_hash"',
    )
    assert "'hash'" in line
    for bad, what in (
        ({"position": 5, "global_hash": "x"}, "global_hash 'x' is not a SHA-256"),
        ({"position": 0, "global_hash": HASH}, "position 0 is not a whole number"),
        ({"position": 5.5, "global_hash": HASH}, "position 5.5"),
        ({"position": True, "global_hash": HASH}, "position True"),
        ([5, HASH], "not a checkpoint"),
    ):
        refused(run("verify", "--checkpoints", checkpoints(tmp_path / "b.jsonl", json.dumps(bad))), "b.jsonl line 1", what)
    (tmp_path / "u.jsonl").write_bytes(good.encode() + b"\n\xff\n")
    refused(run("verify", "--checkpoints", str(tmp_path / "u.jsonl")), "u.jsonl line 2: not UTF-8")
    # The store's own file, e.g. cut short by a crash mid-line, is named too.
    own = audit_chain.checkpoint_file(settings)
    own.write_text(good[:10], "utf-8")
    refused(run("verify"), f"{own} line 1: not JSON")


def test_verify_still_exits_1_for_a_broken_link(settings: Settings, tmp_path: Path) -> None:
    marks = tmp_path / "marks.jsonl"
    assert run("checkpoint", "--file", str(marks)).exit_code == 0
    assert run("verify", "--checkpoints", str(marks)).exit_code == 0
    with sqlite3.connect(settings.sqlite_events_path) as db:
        position, state = db.execute("SELECT rowid, state FROM stored_events ORDER BY rowid LIMIT 1 OFFSET 3").fetchone()
        db.execute("UPDATE stored_events SET state = ? WHERE rowid = ?", (bytes(state)[:-2] + b" }", position))
    broken = run("verify", "--checkpoints", str(marks), "--json")
    assert broken.exit_code == 1
    assert json.loads(broken.stdout)["first_break"]["position"] == position


def test_checkpoint_file_must_be_in_an_existing_folder_and_a_checkpoint_file(settings: Settings, tmp_path: Path) -> None:
    refused(run("checkpoint", "--file", str(tmp_path / "nonexistent" / "dir" / "x.jsonl")), "no folder", "create it first")
    assert not (tmp_path / "nonexistent").exists()
    refused(run("checkpoint", "--file", str(tmp_path)), "is a folder")
    notes = tmp_path / "notes.txt"
    notes.write_text("my notes\n", "utf-8")
    refused(run("checkpoint", "--file", str(notes)), "notes.txt is not a checkpoint file, not appended to", "line 1")
    assert notes.read_text("utf-8") == "my notes\n"
    marks = tmp_path / "marks.jsonl"
    for _ in range(2):  # a new file, then appended to
        assert run("checkpoint", "--file", str(marks)).exit_code == 0
    assert len(audit_chain.read_checkpoints(marks)) == 2


def test_the_installed_command_exits_2_for_a_missing_checkpoint_file(tmp_path: Path) -> None:
    env = {**os.environ, "HOTLINE_DATA_DIR": str(tmp_path / "data"), "HOTLINE_LOG_LEVEL": "WARNING"}
    env.pop("HOTLINE_DATABASE_URL", None)
    done = subprocess.run(
        [HOTLINE, "audit", "verify", "--checkpoints", "/missing"], env=env, cwd=ROOT, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 2, done.stderr
    assert done.stderr.strip() == "Error: checkpoint file /missing: no such file"
