"""What the CLI's refusal of an operator's bad input looks like (api/cli/shell.py): exit 2
and one line on stderr, no traceback."""

from __future__ import annotations

from typer.testing import Result


def refused(result: Result, *expected: str) -> str:
    """Exit 2 and one line on stderr holding ``expected``; the line."""
    assert result.exit_code == 2, (result.exit_code, result.output, result.exception)
    assert "Traceback" not in result.output
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    for text in expected:
        assert text in lines[0], (text, lines[0])
    return lines[0]
