"""``hotline ivr try`` and ``hotline ivr publish``: digits piped on stdin, the prompts and
actions printed, against an embedded store holding a real request. The first run is the
installed command in a shell's pipe (marked slow: a process start takes seconds on a busy
machine); the others run the same Typer app in-process (CliRunner pipes their stdin)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from api.cli import ivr as ivr_cli
from domain.base import SYSTEM, Actor
from domain.contact_center import commands as cc
from domain.requests import commands as rc
from infra.runtime import Hotline
from infra.settings import Settings
from projections import attachments, request_status
from telephony_adapter.ivr.demo import publish_demo_flows
from tests.conftest import load_catalogue

ROOT = Path(__file__).resolve().parents[2]
HOTLINE = str(Path(sys.executable).with_name("hotline"))
MONDAY_MORNING = "2026-11-30T10:00:00+01:00"
SUNDAY_NIGHT = "2026-11-29T22:30:00+01:00"


def hotline_cli(data: Path, *args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "HOTLINE_DATA_DIR": str(data), "HOTLINE_LOG_LEVEL": "WARNING"}
    env.pop("HOTLINE_DATABASE_URL", None)
    return subprocess.run([HOTLINE, *args], input=stdin, env=env, capture_output=True, text=True, timeout=300, cwd=ROOT)


def in_process(monkeypatch: pytest.MonkeyPatch, data: Path, *args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    monkeypatch.setattr(ivr_cli, "get_settings", lambda: Settings(data_dir=data))
    result = CliRunner().invoke(ivr_cli.commands, list(args), input=stdin)
    return subprocess.CompletedProcess(args, result.exit_code, result.stdout, result.stderr)


def test_try_a_flow_from_the_keyboard(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    hotline = Hotline.start(Settings(data_dir=tmp_path))
    try:
        load_catalogue(hotline)
        publish_demo_flows(hotline)
        register = rc.RegisterRequest(
            kind="action", channel="phone", description="Pothole", contact=rc.Contact(name="Mario Rossi", phone="+39 06 1234 5678")
        )
        reference = hotline.bus.execute(register, Actor("op-anna", "agent")).result["reference"]
    finally:
        hotline.close()

    # Staffed: the status of the request, then a person for taxes, waiting in line.
    run = in_process(
        monkeypatch, tmp_path, "ivr", "try", "main", "--dialled", "1234501", "--at", MONDAY_MORNING, stdin=f"2\n1\n{reference}\n2\n2\n1\n"
    )
    assert run.returncode == 0, run.stderr
    lines = run.stdout.splitlines()
    assert lines[0] == "flow main version 1; caller +39 06 1234 5678 dialled 1234501"
    assert f"PLAY sound:hotline/en/request digits:{reference} sound:hotline/en/status-registered sound:hotline/en/main-menu" in lines
    assert "HANDOVER queue tax skill tax language en priority 0" in lines
    assert lines[-1] == "END handover after 9 steps: welcome > language > hours > main > status > main > topic > wait-tax > queue-tax"

    # Unstaffed: a message of 8 seconds, registered with its recording.
    run = in_process(monkeypatch, tmp_path, "ivr", "try", "main", "--at", SUNDAY_NIGHT, stdin="1\n2\nr 8\n")
    assert run.returncode == 0, run.stderr
    assert "PLAY sound:hotline/it/closed-now sound:hotline/it/closed-menu" in run.stdout
    found = re.search(r"^MESSAGE registered as request (\d+)$", run.stdout, re.M)
    assert found, run.stdout
    hotline = Hotline.start(Settings(data_dir=tmp_path))
    try:
        with hotline.read_store.engine.connect() as conn:
            row = request_status.by_reference(conn, found[1])
            assert row is not None
            (file,) = attachments.of_request(conn, row["id"])
        assert file["source"] == "voicemail" and file["content_type"] == "audio/x-wav" and file["size"] == 16_000 * 8 + 44
    finally:
        hotline.close()

    # Input that ends without a terminal action: the caller hangs up.
    run = in_process(monkeypatch, tmp_path, "ivr", "try", "main", "--at", MONDAY_MORNING, stdin="1\nx\n")
    assert "(not understood: digits, t, p, r SECONDS or h)" in run.stdout and run.stdout.splitlines()[-1].startswith("END caller_hung_up")


def test_publish_refuses_a_bad_flow_naming_the_problem(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    bad = json.loads((ROOT / "infra" / "data" / "ivr" / "main.json").read_text("utf-8"))
    bad["nodes"]["main"]["options"]["1"]["next"] = "nowhere"
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(bad), "utf-8")
    run = in_process(monkeypatch, tmp_path / "data", "ivr", "publish", str(path))
    assert run.returncode == 2 and "nodes/main/options/1/next" in run.stderr and len(run.stderr.strip().splitlines()) == 1
    # The queues the flow hands callers to must exist.
    unknown = in_process(monkeypatch, tmp_path / "data", "ivr", "publish", str(ROOT / "infra" / "data" / "ivr" / "main.json"))
    assert unknown.returncode == 2 and "queue 'general', which is not defined" in unknown.stderr
    hotline = Hotline.start(Settings(data_dir=tmp_path / "data"))
    try:
        for queue_id in ("general", "tax", "environment"):
            hotline.bus.execute(cc.DefineQueue(queue_id=queue_id), SYSTEM)
    finally:
        hotline.close()
    good = in_process(monkeypatch, tmp_path / "data", "ivr", "publish", str(ROOT / "infra" / "data" / "ivr" / "main.json"))
    assert good.returncode == 0 and good.stdout.startswith("flow main version 1: published")
    listed = in_process(monkeypatch, tmp_path / "data", "ivr", "list")
    assert listed.stdout.startswith("main\tversion 1\t")


@pytest.mark.slow
def test_the_installed_command_in_a_pipe(tmp_path: Path) -> None:
    hotline = Hotline.start(Settings(data_dir=tmp_path))
    try:
        publish_demo_flows(hotline)
    finally:
        hotline.close()
    run = hotline_cli(tmp_path, "ivr", "try", "main", "--at", MONDAY_MORNING, stdin="3\n1\n1\n999999999999\nt\nt\n")
    assert run.returncode == 0, run.stderr
    lines = run.stdout.splitlines()
    assert "PLAY sound:hotline/zh/reference-unknown sound:hotline/zh/enter-reference" in lines
    assert lines[-2:] == [
        "HANDOVER queue general skill - language zh priority 0",
        "END handover after 6 steps: welcome > language > hours > main > status > queue-general",
    ]
