"""``hotline audit …``: the auditor's views from the command line, as a table or ``--json``.

hotline audit history request 261116047377 [--as-of 12 | --as-of 2026-11-20T09:00:00+01:00]
hotline audit as-of request 261116047377 2026-11-20T09:00:00+01:00
hotline audit trace 261116047377            # a request's case; or a correlation id
hotline audit read-model sla-breaches --as-of 2026-11-23T09:00:00+01:00 --reference 261116047377
hotline audit verify [--checkpoints FILE]   # the tamper-evident chains (infra/audit_chain.py)
hotline audit checkpoint                    # write the chain head where an operator copies it from

The same functions as ``GET /audit/…`` (``api/routers/audit.py``). The shell's user reads
as an auditor, and reads of personal data are recorded as the API records them.
"""

from __future__ import annotations

import json
import sys
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any, NoReturn

import typer
from rich.console import Console
from rich.table import Table

from api.cli.shell import refuse, shell_actor, started_hotline
from domain.base import Actor, DomainError
from infra.settings import get_settings

commands = typer.Typer()
audit = typer.Typer(help="The auditor's views: histories as of any moment, case traces, read models then, the chains", no_args_is_help=True)
commands.add_typer(audit, name="audit")
console = Console(stderr=True)
out = Console(width=None if sys.stdout.isatty() else 250)

JSON_OPTION = typer.Option(False, "--json", help="JSON instead of a table")


def _actor() -> Actor:
    return shell_actor("auditor")


def _hotline() -> AbstractContextManager[Any]:
    return started_hotline(get_settings())


def _fail(exc: DomainError) -> NoReturn:
    refuse(exc.message)


def _print_json(value: Any) -> None:
    out.print_json(json.dumps(value, ensure_ascii=False, default=str))


def _steps_table(title: str, steps: list[dict[str, Any]], with_stream: bool) -> Table:
    table = Table(title=title)
    for name in (
        "position",
        *(("stream", "id") if with_stream else ()),
        "version",
        "event",
        "at",
        "actor",
        "role",
        "correlation",
        "causation",
    ):
        table.add_column(name, overflow="fold")
    for s in steps:
        row = [str(s.get("position") or "")]
        if with_stream:
            row += [s["stream"], s["id"]]
        row += [
            str(s["version"]),
            s["name"],
            s["at"],
            s["actor_id"] or "",
            s["actor_role"] or "",
            s["correlation_id"] or "",
            s["causation_id"] or "",
        ]
        table.add_row(*row)
    return table


def _state_table(title: str, state: dict[str, Any] | None) -> Table:
    table = Table(title=title)
    table.add_column("attribute")
    table.add_column("value", overflow="fold")
    for key, value in (state or {}).items():
        table.add_row(key, value if isinstance(value, str) else json.dumps(value, ensure_ascii=False))
    return table


@audit.command()
def history(
    stream: str = typer.Argument(..., help="request, workorder, citizen, contact, agent, queue, knowledge_article, catalogue …"),
    key: str = typer.Argument(..., help="The aggregate's id, or its natural key (a request's reference, an agent's id)"),
    as_of: str = typer.Option(None, "--as-of", help="A version (12) or an ISO 8601 time with its offset"),
    as_json: bool = JSON_OPTION,
) -> None:
    """Every event of one aggregate (who, role, when, correlation, causation) and its state as of a version or a time."""
    from api.routers.audit import history as view

    with _hotline() as hotline:
        try:
            shown = view(hotline, _actor(), stream, key, as_of, _read("audit: aggregate history"))
        except DomainError as exc:
            _fail(exc)
    if as_json:
        _print_json(shown)
        return
    out.print(_steps_table(f"{stream} {shown['id']}: {shown['versions']} events", shown["history"], with_stream=False))
    version = shown["as_of"]["version"]
    out.print(_state_table(f"state as of version {version}" if version else "did not exist yet", shown["state"]))


@audit.command("as-of")
def as_of(
    stream: str = typer.Argument(...),
    key: str = typer.Argument(...),
    moment: str = typer.Argument(..., help="A version (12) or an ISO 8601 time with its offset"),
    as_json: bool = JSON_OPTION,
) -> None:
    """One aggregate's state as of a version or a time, rebuilt from its events."""
    from api.routers.audit import rebuild_as_of
    from domain.audit import AsOf, public_state

    with _hotline() as hotline:
        try:
            asked = AsOf.parse(moment)
            if asked is None:
                refuse("give a version (12) or an ISO 8601 time with its offset")
            version, aggregate = rebuild_as_of(hotline, stream, key, asked)
        except DomainError as exc:
            _fail(exc)
    state = public_state(aggregate) if aggregate is not None else None
    if state is not None and state.get("personal"):
        _read("audit: state as of").record(_actor(), what=f"{stream} state", subject=key, citizen_ids=[state.get("citizen_id")])
    shown = {"stream": stream, "key": key, "as_of": moment, "version": version, "state": state}
    if as_json:
        _print_json(shown)
        return
    out.print(_state_table(f"{stream} {key} as of {moment}: version {version}" if version else "did not exist yet", state))


@audit.command()
def trace(
    key: str = typer.Argument(..., help="A correlation id, or a request's reference or id (its whole case)"),
    as_json: bool = JSON_OPTION,
) -> None:
    """A case trace: every event sharing a correlation id (or a request's case) across aggregates, in global order."""
    from api.routers.audit import trace as view

    with _hotline() as hotline:
        try:
            shown = view(hotline, _actor(), key, _read("audit: case trace"))
        except DomainError as exc:
            _fail(exc)
    if as_json:
        _print_json(shown)
        return
    title = f"{shown['mode']} {key}: {len(shown['events'])} events, {len(shown['aggregates'])} aggregates"
    out.print(_steps_table(title, shown["events"], with_stream=True))


@audit.command("read-model")
def read_model(
    name: str = typer.Argument(..., help="sla-breaches or department-workloads"),
    as_of: str = typer.Option(..., "--as-of", help="ISO 8601 time with its offset: 2026-11-23T09:00:00+01:00"),
    reference: str = typer.Option(None, "--reference", help="Was this request on the list then?"),
    department: str = typer.Option(None, "--department"),
    due_within_hours: float | None = typer.Option(None, "--due-within-hours", help="Default: the live list's (4 or 24 h)"),
    as_json: bool = JSON_OPTION,
) -> None:
    """What a read model showed at a time: the log replayed up to then into a scratch database."""
    from api.routers.audit import parse_moment, read_model_as_of

    with _hotline() as hotline:
        try:
            shown = read_model_as_of(
                hotline,
                _actor(),
                name,
                parse_moment(as_of),
                reference=reference,
                due_within_hours=due_within_hours,
                department_id=department,
            )
        except DomainError as exc:
            _fail(exc)
    if as_json:
        _print_json(shown)
        return
    if name == "sla-breaches":
        for listed in ("overdue", "due_soon"):
            table = Table(title=f"{listed.replace('_', ' ')} at {as_of} (log position {shown['position']})")
            for column in ("reference", "status", "department", "due_at", "hours"):
                table.add_column(column)
            for row in shown[listed]:
                hours = row.get("overdue_hours", row.get("hours_left"))
                table.add_row(
                    row["reference"] or row["request_id"], row["status"], row["department_id"] or "", str(row["due_at"]), str(hours)
                )
            out.print(table)
    else:
        table = Table(title=f"department workloads at {as_of} (log position {shown['position']})")
        for column in ("department", "open", "by state", "overdue", "due soon"):
            table.add_column(column)
        for dep in shown["departments"]:
            table.add_row(
                dep["department_id"], str(dep["open"]), json.dumps(dep["by_state"]), str(dep["overdue"]["overdue"]), str(dep["due_soon"])
            )
        out.print(table)
    if reference is not None:
        found = shown.get("reference") or {}
        listed_as = found.get("listed")
        out.print(f"{reference}: {'on the ' + listed_as.replace('_', ' ') + ' list' if listed_as else 'not on the list'} at {as_of}")


def _read(purpose: str) -> Any:
    from api.read_log import PersonalDataRead

    return PersonalDataRead(endpoint="cli hotline audit", purpose=purpose, purpose_given=False, client="cli")


@audit.command()
def verify(
    checkpoints: Path = typer.Option(None, "--checkpoints", help="A checkpoint file copied out earlier (default: the store's own)"),
    as_json: bool = JSON_OPTION,
) -> None:
    """Check every stream's hash chain, the global chain and the checkpoints; report the first broken link.

    Exit status: 0 every link holds; 1 a link is broken (the first is shown); 2 nothing was
    checked because the checkpoint file cannot be read (missing, not JSON, a line that is no
    checkpoint: the file and line are named)."""
    from infra.audit_chain import CheckpointFileError
    from infra.audit_chain import verify as check
    from infra.eventstore import EventStore

    store = EventStore(get_settings())
    try:
        report = check(store, checkpoints=checkpoints) if checkpoints else check(store)
    except CheckpointFileError as exc:
        refuse(f"checkpoint file {exc}")
    finally:
        store.close()
    shown = report.as_dict()
    if as_json:
        _print_json(shown)
    else:
        table = Table(title="hotline audit verify")
        table.add_column("")
        table.add_column("", overflow="fold")
        for key in (
            "ok",
            "events_checked",
            "unchained_before_start",
            "head_position",
            "head_hash",
            "checkpoints_checked",
            "events_per_second",
        ):
            table.add_row(key.replace("_", " "), str(shown[key]))
        out.print(table)
        first = shown["first_break"]
        if first:
            out.print(f"[red]first broken link[/]: {json.dumps(first, ensure_ascii=False)}")
    if not report.ok:
        raise typer.Exit(1)


@audit.command()
def checkpoint(
    file: Path = typer.Option(
        None, "--file", help="Append here instead of the store's checkpoint file (a new file in an existing folder, or a checkpoint file)"
    ),
    as_json: bool = JSON_OPTION,
) -> None:
    """Write the chain head (position and hash) to the checkpoint file and the log, for an operator to copy out."""
    from infra.audit_chain import CheckpointFileError, read_checkpoints, write_checkpoint
    from infra.eventstore import EventStore

    if file is not None:
        # A mistyped --file must not create folders, nor append to a file that is not a
        # checkpoint file (verify would then refuse to read it).
        if file.is_dir():
            refuse(f"--file {file}: is a folder, not a checkpoint file")
        if not file.parent.is_dir():
            refuse(f"--file {file}: no folder {file.parent} (create it first)")
        if file.exists():
            try:
                read_checkpoints(file)
            except CheckpointFileError as exc:
                refuse(f"--file {file} is not a checkpoint file, not appended to ({exc})")
    store = EventStore(get_settings())
    try:
        mark = write_checkpoint(store, file, reason="hotline audit checkpoint")
    except OSError as exc:
        refuse(f"cannot write the checkpoint to {exc.filename or file}: {exc.strerror or exc}")
    finally:
        store.close()
    if mark is None:
        console.print("nothing chained yet: no checkpoint")
        raise typer.Exit(1)
    shown = {"position": mark.position, "global_hash": mark.global_hash, "at": mark.at, "reason": mark.reason}
    if as_json:
        _print_json(shown)
    else:
        out.print(f"checkpoint: position {mark.position}, hash {mark.global_hash}, at {mark.at}")
