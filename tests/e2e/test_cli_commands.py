"""The ``hotline`` CLI is the one entry point: every command is in the README's CLI
section, no module of the product is a ``python -m`` entry point, and the installed
script answers."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import typer

from api.cli import app

ROOT = Path(__file__).resolve().parents[2]
HOTLINE = str(Path(sys.executable).parent / "hotline")
CODE = ("domain", "projections", "api", "consumers", "analytics", "telephony_adapter", "infra")


def _commands() -> list[str]:
    root = typer.main.get_command(app)
    ctx = root.make_context("hotline", [], resilient_parsing=True)
    found: list[str] = []

    def walk(cmd: Any, path: list[str]) -> None:
        if not hasattr(cmd, "list_commands"):
            found.append(" ".join(path))
            return
        for name in cmd.list_commands(ctx):
            sub = cmd.get_command(ctx, name)
            if not sub.hidden:  # `report run` is reached as `report NAME`
                walk(sub, [*path, name])

    walk(root, ["hotline"])
    return found


def _readme_section(title: str) -> str:
    text = (ROOT / "README.md").read_text("utf-8")
    start = text.index(f"\n## {title}\n")
    end = text.find("\n## ", start + 1)
    return text[start : end if end >= 0 else None]


def test_the_readme_lists_every_command() -> None:
    commands = _commands()
    assert "hotline consume analytics" in commands and "hotline serve" in commands
    section = _readme_section("CLI")
    missing = [c for c in commands if not re.search(rf"`{re.escape(c)}[` ]", section)]
    assert not missing, f"commands missing from the README's CLI section: {missing}"


def test_no_python_m_entry_points() -> None:
    mains = [str(p.relative_to(ROOT)) for folder in CODE for p in (ROOT / folder).rglob("*.py") if "__main__" in p.read_text("utf-8")]
    assert not mains, f"entry points outside the hotline CLI: {mains}"
    readme = (ROOT / "README.md").read_text("utf-8")
    assert not re.search(rf"python3? -m ({'|'.join(CODE)})\b", readme)


def test_the_installed_script_answers() -> None:
    result = subprocess.run([HOTLINE, "--help"], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert "consume" in result.stdout and "serve" in result.stdout
