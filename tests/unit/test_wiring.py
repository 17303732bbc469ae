"""The wiring is explicit and complete: every command has one handler, every handler is
reached by an HTTP route or by the process that declares it issues the command, and
nothing is found by module-name strings."""

from __future__ import annotations

import importlib
import inspect
import re
import types
import typing
from pathlib import Path

from fastapi.routing import APIRoute

from domain.handling import Command
from infra.wiring import CONTEXTS, HANDLERS, ROUTERS

ROOT = Path(__file__).resolve().parents[2]
CODE = ("domain", "projections", "api", "consumers", "analytics", "telephony_adapter", "infra")


def _all_commands() -> set[type[Command]]:
    found: set[type[Command]] = set()
    todo = list(Command.__subclasses__())
    while todo:
        cls = todo.pop()
        found.add(cls)
        todo.extend(cls.__subclasses__())
    return found


def _concrete(commands: set[type[Command]]) -> set[type[Command]]:
    # A class that other commands extend is a base (RequestCommand, ContactCommand …).
    return {c for c in commands if c.__module__.startswith("domain.") and not c.__subclasses__()}


def _routed_commands() -> set[type]:
    routed: set[type] = set()
    for module in ROUTERS:
        for route in module.router.routes:
            if not isinstance(route, APIRoute):
                continue
            for param in route.dependant.body_params:
                annotation = param.field_info.annotation
                options = typing.get_args(annotation) if isinstance(annotation, types.UnionType) else (annotation,)
                routed.update(o for o in options if isinstance(o, type) and issubclass(o, Command))
    return routed


def test_every_command_has_exactly_one_handler() -> None:
    missing = sorted(c.__name__ for c in _concrete(_all_commands()) if c not in HANDLERS)
    assert not missing, f"commands without a handler (add @handles in their context): {missing}"


def test_every_handler_is_reached_by_a_route_or_a_declared_caller() -> None:
    routed = _routed_commands()
    unreached = []
    for registration in HANDLERS:
        if registration.command in routed:
            continue
        if not registration.issued_by:
            unreached.append(registration.command.__name__)
            continue
        for issuer in registration.issued_by:
            source = inspect.getsource(importlib.import_module(issuer))
            assert re.search(rf"\b{registration.command.__name__}\b", source), (
                f"{issuer} is declared to issue {registration.command.__name__} but never builds it"
            )
    assert not unreached, f"handlers no route or process reaches (add a route or issued_by=): {unreached}"


def test_every_context_has_the_same_parts() -> None:
    for handlers_module in CONTEXTS:
        package = Path(handlers_module.__file__ or "").parent
        assert (package / "commands.py").exists(), package
        assert (package / "handlers.py").exists(), package
        assert (package / "aggregate.py").exists() or len(list(package.glob("*.py"))) > 3, package


def test_nothing_is_found_by_module_name_strings() -> None:
    offenders = []
    for folder in CODE:
        for path in (ROOT / folder).rglob("*.py"):
            text = path.read_text("utf-8")
            if re.search(r"importlib\.import_module\(|pkgutil\.|__import__\(", text):
                offenders.append(str(path.relative_to(ROOT)))
    assert not offenders, f"module discovery by name in {offenders}: import and register explicitly"


def test_no_event_type_is_taken_apart() -> None:
    offenders = []
    for folder in (*CODE, "tests"):
        for path in (ROOT / folder).rglob("*.py"):
            for n, line in enumerate(path.read_text("utf-8").splitlines(), 1):
                if re.search(r"""type\w*["'\]]*\.split\(["']\.["']\)""", line):
                    offenders.append(f"{path.relative_to(ROOT)}:{n}")
    assert not offenders, f"event types split into parts (dispatch by class instead): {offenders}"
