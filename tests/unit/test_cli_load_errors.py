"""The CLI refuses an operator's bad input (a file, a time, an id, a number) in one line on
stderr with exit code 2, never a traceback, and before it writes anything: the catalogue,
calendar and knowledge files (the line and field named), and the other commands' options."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

import api.cli as cli
from api.cli import ami as ami_cli
from api.cli import recordings as recordings_cli
from infra.settings import Settings
from tests.cli_refusals import refused

ROOT = Path(__file__).resolve().parents[2]
HOTLINE = str(Path(sys.executable).with_name("hotline"))


@pytest.fixture
def data(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """Every CLI module reads this data folder (embedded store)."""
    folder = tmp_path / "data"
    settings = Settings(data_dir=folder, database_url=None)
    for module in (cli, *cli.AREAS, ami_cli, recordings_cli):
        if hasattr(module, "get_settings"):
            monkeypatch.setattr(module, "get_settings", lambda: settings)
    monkeypatch.chdir(tmp_path)
    yield folder


def run(*args: str) -> Result:
    return CliRunner().invoke(cli.app, list(args))


def events(data: Path) -> int:
    if not (data / "events.sqlite").exists():
        return 0
    with sqlite3.connect(data / "events.sqlite") as db:
        return int(db.execute("SELECT count(*) FROM stored_events").fetchone()[0])


def write(path: Path, text: str | bytes) -> str:
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, "utf-8")
    return str(path)


NAMES = "{zh: 甲, ar: ب, it: c, en: d}"


def test_a_bad_catalogue_file_is_named_by_line_and_field(data: Path, tmp_path: Path) -> None:
    refused(run("load-catalogue", write(tmp_path / "bad.yaml", "foo: [unclosed\n")), "bad.yaml line 2, column 1: not YAML")
    refused(
        run("load-catalogue", write(tmp_path / "bad2.json", '{"departments":[{"id":"x"}]}')),
        "bad2.json line 1: departments[0].names: Field required",
    )
    refused(run("load-catalogue", write(tmp_path / "bad3.json", '{"departments": [}')), "bad3.json line 1, column 18: not JSON")
    nested = (
        f"departments:\n  - id: x\n    names: {NAMES}\n    providers:\n"
        f"      - id: p\n        names: {NAMES}\n        categories:\n          - id: c\n"
    )
    where = "c.yaml line 8: departments[0].providers[0].categories[0].names: Field required"
    refused(run("load-catalogue", write(tmp_path / "c.yaml", nested)), where)
    typo = f"departments:\n  - id: x\n    names: {NAMES}\n    provider: []\n"
    refused(run("load-catalogue", write(tmp_path / "typo.yaml", typo)), "typo.yaml line 4: departments[0].provider: unknown key")
    quoted = f'departments:\n  - id: x\n    control_office: "false"\n    names: {NAMES}\n'
    refused(run("load-catalogue", write(tmp_path / "q.yaml", quoted)), "q.yaml line 3: departments[0].control_office")
    refused(run("load-catalogue", write(tmp_path / "bin.yaml", b"departments:\n\xff\n")), "bin.yaml line 2: not UTF-8 text")
    refused(run("load-catalogue", write(tmp_path / "list.yaml", "- a\n")), "list.yaml: not a catalogue file", "found a list")
    assert not data.exists(), "refused before the store was opened"
    # The domain's own rules, once the shape is right: the entry named.
    one_language = "departments:\n  - id: x\n    names: {zh: 甲}\n"
    refused(run("load-catalogue", write(tmp_path / "lang.yaml", one_language)), "lang.yaml: department x: names missing for languages")
    assert events(data) == 0
    ok = run("load-catalogue")
    assert ok.exit_code == 0, ok.output
    assert "entries added" in ok.stdout and events(data) > 0


def test_a_bad_calendars_file_is_named_by_line_and_field(data: Path, tmp_path: Path) -> None:
    passwd = "root:x:0:0:root:/root:/bin/bash\ndaemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin\n"
    refused(run("load-calendars", write(tmp_path / "passwd", passwd)), "passwd: not a calendars file", "found text")
    hours = "calendars:\n  rome:\n    time_zone: Europe/Rome\n    working_hours: 5\n"
    refused(run("load-calendars", write(tmp_path / "h.yaml", hours)), "h.yaml line 4: calendars.rome.working_hours")
    day = "calendars:\n  rome:\n    working_hours:\n      mon: 9\n"
    refused(run("load-calendars", write(tmp_path / "d.yaml", day)), "d.yaml line 4: calendars.rome.working_hours.mon: expected a list")
    makeup = "calendars:\n  rome:\n    makeup_working_days:\n      2026-01-03: 5\n"
    refused(run("load-calendars", write(tmp_path / "m.yaml", makeup)), "m.yaml line 3: calendars.rome.makeup_working_days: 2026-01-03")
    refused(run("load-calendars", write(tmp_path / "t.yaml", "calendar:\n  rome: {}\n")), "t.yaml line 1: calendar: unknown key")
    alias = "calendars: {}\naliases:\n  default: [rome]\n"
    refused(run("load-calendars", write(tmp_path / "a.yaml", alias)), "a.yaml line 3: aliases.default")
    assert not data.exists()
    unknown = "calendars:\n  rome:\n    working_hours: {mon: [['09:00', '17:00']]}\n    holiday: []\n"
    refused(run("load-calendars", write(tmp_path / "u.yaml", unknown)), "u.yaml: calendar 'rome': unknown keys ['holiday']")
    assert events(data) == 0


def test_a_bad_knowledge_file_loads_nothing(data: Path, tmp_path: Path) -> None:
    refused(run("load-knowledge", write(tmp_path / "k.yaml", "x: 1\n")), "k.yaml line 1: articles: Field required")
    good = "  - translations: {en: {title: Bins, body: Tuesdays}}\n"
    bad = "  - translations:\n      en: {title: Parking}\n"
    k2 = write(tmp_path / "k2.yaml", "articles:\n" + good + bad)
    line = refused(run("load-knowledge", k2), "k2.yaml line 4: articles[1].translations.en.body")
    assert "Field required" in line
    assert not data.exists(), "the first, good, article was not loaded either"


def test_operators_values_are_refused_before_anything_runs(data: Path, tmp_path: Path) -> None:
    refused(run("replay", "nosuch"), "no projection 'nosuch'", "request_status")
    assert run("simulate", "--start", "monday", "--hours", "0.1").exit_code == 2
    assert run("simulate", "--hours", "inf").exit_code == 2
    assert run("timers", "--once", "--copy", "--clock", "tomorrow").exit_code == 2
    refused(run("asyncapi", "--out", str(tmp_path / "no" / "such" / "asyncapi.json")), "--out", "No such file or directory")
    assert not (tmp_path / "no").exists()
    refused(run("keys", "retire", "no-such-kid"), "no signing key 'no-such-kid'")
    for years in ("0", "-1", "nan", "inf"):
        assert run("privacy", "retention", "--years", years).exit_code == 2, years
    assert run("recordings", "retention", "--days", "-1").exit_code == 2
    refused(run("privacy", "erase", "nobody", "--reason", "x"), "reason: String should have at least 5 characters")
    refused(run("privacy", "erase", "nobody", "--reason", "the citizen asked"), "no citizen nobody")
    refused(run("staff", "enrol", "bob", "--name", "Bob", "--role", "wizard", "--password", "pw-12345678"), "not a staff role")
    session = write(tmp_path / "ami.txt", "Event: QueueCallerJoin\r\nTimestamp: soon\r\nQueue: q\r\n\r\n")
    refused(run("ami", "replay", session), "ami.txt: message 1: Timestamp 'soon' is not a Unix time")
    refused(run("ami", "replay", write(tmp_path / "ami.bin", b"\xff\xfe")), "ami.bin: cannot be read as an AMI session")


def test_the_installed_command_refuses_in_one_line(tmp_path: Path) -> None:
    bad = write(tmp_path / "bad2.json", '{"departments":[{"id":"x"}]}')
    env = {**os.environ, "HOTLINE_DATA_DIR": str(tmp_path / "data"), "HOTLINE_LOG_LEVEL": "WARNING"}
    env.pop("HOTLINE_DATABASE_URL", None)
    done = subprocess.run([HOTLINE, "load-catalogue", bad], env=env, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 2, done.stderr
    assert done.stderr.strip() == f"Error: {bad} line 1: departments[0].names: Field required"
