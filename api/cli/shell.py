"""What the CLI's commands share: the operator at the shell as an actor, a started
hotline closed when the command ends, and how a command refuses the operator's input.

Input an operator gives (a file, a time, an id) that is wrong is refused in one line on
stderr with exit code 2, the code click gives a wrong option: scripts tell it from a
command's own failure (exit 1, e.g. ``audit verify``'s broken chain) and never see a
traceback, which is kept for bugs.
"""

from __future__ import annotations

import getpass
import json
import math
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn

import typer
import yaml
from pydantic import ValidationError

from domain.base import Actor, DomainError
from infra.settings import Settings

INPUT_ERROR = 2


def shell_actor(role: str) -> Actor:
    """The operator running the command, in ``role`` (the actor its events record)."""
    try:
        user = getpass.getuser()
    except Exception:  # no user name in a container: still the role, named by the tool
        user = "unknown"
    return Actor(f"cli:{user}", role, name=user)


@contextmanager
def started_hotline(settings: Settings) -> Iterator[Any]:
    """The hotline of these settings' data folder (or database), closed when the command ends."""
    from infra.runtime import Hotline

    hotline = Hotline.start(settings)
    try:
        yield hotline
    finally:
        hotline.close()


def refuse(message: str) -> NoReturn:
    """Bad input: one line on stderr (plain text: never wrapped or read as markup), exit 2."""
    typer.echo(f"Error: {message}", err=True)
    raise typer.Exit(INPUT_ERROR)


@contextmanager
def refusals(where: str = "") -> Iterator[None]:
    """A command built from the operator's input and refused by the hotline (its rules, or
    its model's validation) ends as one line, ``where`` first (the file, the option)."""
    prefix = f"{where}: " if where else ""
    try:
        yield
    except DomainError as exc:
        refuse(prefix + exc.message)
    except ValidationError as exc:
        refuse(prefix + describe_errors(exc))


def positive(value: float | None, option: str) -> float | None:
    """A finite number above 0, or None (the setting): a retention period of 0, less, or
    NaN would reach everything there is."""
    if value is not None and not (math.isfinite(value) and value > 0):
        refuse(f"{option}: must be a number of more than 0, not {value}")
    return value


def dotted(loc: Sequence[str | int]) -> str:
    """A pydantic location as an operator reads it: ``departments[0].names``."""
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else f".{part}" if out else str(part)
    return out


def describe_errors(exc: ValidationError, document: Document | None = None, under: Sequence[str | int] = ()) -> str:
    """The first error of ``exc`` in one line (its line in ``document`` when found, the
    field, what is wrong) and how many more there are."""
    errors = exc.errors(include_url=False)
    loc = (*under, *errors[0]["loc"])
    line = document.line_of(loc) if document is not None else None
    problem = "unknown key" if errors[0]["type"] == "extra_forbidden" else errors[0]["msg"].removeprefix("Value error, ")
    text = f"{dotted(loc) or 'the document'}: {problem}"
    if len(errors) > 1:
        text += f" (and {len(errors) - 1} more)"
    return f"line {line}: {text}" if line else text


@dataclass(frozen=True)
class Document:
    """A YAML or JSON file an operator gave, as read."""

    path: Path
    text: str
    data: Any

    def invalid(self, exc: ValidationError, under: Sequence[str | int] = ()) -> NoReturn:
        refuse(f"{self.path} {describe_errors(exc, self, under)}")

    def line_of(self, loc: Sequence[str | int]) -> int | None:
        """The line (from 1) of the value at ``loc``, or of the nearest thing above it that
        is there (a missing field: its object); None when the text cannot tell."""
        try:
            node = yaml.compose(self.text, Loader=yaml.SafeLoader)
        except yaml.YAMLError:
            return None
        if node is None:
            return None
        line = node.start_mark.line
        for part in loc:
            child = None
            if isinstance(node, yaml.MappingNode):
                for key, value in node.value:
                    if key.value == str(part):
                        child, line = value, key.start_mark.line
                        break
            elif isinstance(node, yaml.SequenceNode) and isinstance(part, int) and 0 <= part < len(node.value):
                child = node.value[part]
                line = child.start_mark.line
            if child is None:
                break
            node = child
        return line + 1


def read_document(path: Path, what: str) -> Document:
    """``path`` read as JSON (``.json``) or YAML, a mapping at the top; refused, naming the
    line, when it cannot be read, is not UTF-8, not JSON or YAML, or not ``what``."""
    try:
        raw = path.read_bytes()
    except OSError as exc:
        refuse(f"{path}: cannot be read ({exc.strerror or exc})")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        refuse(f"{path} line {line}: not UTF-8 text (is it {what}?)")
    if path.suffix.lower() == ".json":
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            refuse(f"{path} line {exc.lineno}, column {exc.colno}: not JSON: {exc.msg}")
    else:
        try:
            data = yaml.safe_load(text)
        except yaml.MarkedYAMLError as exc:
            mark = exc.problem_mark or exc.context_mark
            at = f" line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
            refuse(f"{path}{at}: not YAML: {exc.problem or exc.context}")
        except yaml.YAMLError as exc:
            refuse(f"{path}: not YAML: {exc}")
    if not isinstance(data, dict):
        found = "nothing" if data is None else "a list" if isinstance(data, list) else "text" if isinstance(data, str) else repr(data)
        refuse(f"{path}: not {what}: expected a mapping of keys at the top, found {found}")
    return Document(path, text, data)
