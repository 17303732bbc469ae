"""``hotline ivr …``: publish IVR flows and try them without a phone.

hotline ivr publish infra/data/ivr/main.json [--note "new tax menu"]
hotline ivr list
hotline ivr show main [--version 2]
printf '2\\n1\\n261116047377\\nh\\n' | hotline ivr try main [--caller "+39 06 1234 5678"] [--dialled 12345] [--at 2026-11-29T22:00:00+01:00]

``try`` runs the flow's engine (``telephony_adapter/ivr/engine.py``) on this data folder's
hotline, with the real ports: a status lookup reads the request-status read model, the
opening hours come from the flow's calendar, a message left registers a real request
with its recording attached. It reads one input a line from stdin:

* digits (``1``, ``261116047377#``): keyed one after the other;
* ``t``: the caller keys nothing until the timeout;
* ``p``: the prompt finished playing;
* ``r SECONDS``: the recording asked for finished after SECONDS (silence is recorded);
* ``h``: the caller hangs up.

and prints what the PBX would play and do. ``--at`` sets the time the flow sees (opening
hours, deadlines read back); the commands a message registers are stamped with the real
time, as a call's would be.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from contextlib import AbstractContextManager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, NoReturn

import typer

from api.cli.shell import refuse, shell_actor, started_hotline
from domain.base import Actor, DomainError
from domain.ivr import commands as ic
from infra.settings import get_settings
from telephony_adapter.ivr.actions import Collect, HandOver, Hangup, IvrAction, OfferCallback, Play, Record
from telephony_adapter.ivr.engine import Flow, IvrSession

commands = typer.Typer()
ivr = typer.Typer(help="IVR flows: publish a flow document, list them, try one from the keyboard", no_args_is_help=True)
commands.add_typer(ivr, name="ivr")


def _actor() -> Actor:
    return shell_actor("administrator")


def _hotline() -> AbstractContextManager[Any]:
    return started_hotline(get_settings())


def _fail(message: str) -> NoReturn:
    refuse(message)  # the operator's input refused: one line on stderr, exit 2


@ivr.command("publish")
def publish(
    file: Path = typer.Argument(..., exists=True, dir_okay=False, readable=True, help="The flow document (JSON)"),
    note: str = typer.Option(None, help="What changed, for the audit trail"),
) -> None:
    """Publish a flow document as the next version of its flow (checked against the schema)."""
    try:
        document = json.loads(file.read_text("utf-8"))
    except ValueError as exc:
        _fail(f"{file} is not JSON: {exc}")
    with _hotline() as hotline:
        try:
            result = hotline.bus.execute(ic.PublishFlow(document=document, note=note), _actor()).result
        except DomainError as exc:
            _fail(f"{exc.message}")
    state = "published" if result["published"] else "unchanged (the current version is this document)"
    print(f"flow {result['flow_id']} version {result['flow_version']}: {state}; sha256 {result['sha256']}")


@ivr.command("list")
def list_flows() -> None:
    """The flows and their current versions."""
    from projections import ivr as rm

    with _hotline() as hotline, hotline.read_store.engine.connect() as conn:
        for row in rm.flows(conn):
            print(f"{row['flow_id']}\tversion {row['current_version']}\t{row['published_at']}\t{row['title'] or ''}")


@ivr.command("show")
def show(flow: str = typer.Argument(...), version: int = typer.Option(None, min=1, help="Default: the current version")) -> None:
    """A published flow's document."""
    from telephony_adapter.ivr.ports import current_flow

    with _hotline() as hotline:
        try:
            found = current_flow(hotline, flow, version)
        except LookupError as exc:
            _fail(str(exc))
        print(json.dumps(found.document, indent=2, ensure_ascii=False))


def describe(action: IvrAction) -> str:
    """One action as a line of the transcript."""
    if isinstance(action, Play):
        return "PLAY " + " ".join(action.media)
    if isinstance(action, Collect):
        until = f", or {action.terminator}" if action.terminator else ""
        return f"COLLECT up to {action.max_digits} digit(s){until}; timeout {action.timeout_s:g} s"
    if isinstance(action, Record):
        return f"RECORD {action.name} (at most {action.max_seconds} s{', after a beep' if action.beep else ''})"
    if isinstance(action, HandOver):
        return f"HANDOVER queue {action.queue_id} skill {action.skill or '-'} language {action.language} priority {action.priority}"
    if isinstance(action, OfferCallback):
        return f"CALLBACK from queue {action.queue_id} to {action.number} (keeping the place in line)"
    assert isinstance(action, Hangup)
    return "HANGUP"


def run_transcript(
    session: IvrSession, lines: Iterator[str], start: datetime, emit: Any, durations: dict[str, float] | None = None
) -> None:
    """Drives ``session`` with the inputs of ``lines`` (see the module), calling ``emit``
    with each line of the transcript; ``durations`` learns each recording's length before
    the session hears it finished (what the recording ports then fetch)."""
    now = start
    waiting: Collect | None = None

    def show(actions: list[IvrAction]) -> None:
        nonlocal waiting
        for action in actions:
            emit(describe(action))
            if isinstance(action, Collect):
                waiting = action

    show(session.start(now))
    for raw in lines:
        line = raw.strip()
        if not line or session.done:
            continue
        emit(f"> {line}")
        now += timedelta(seconds=1)
        if line == "t":
            now += timedelta(seconds=waiting.timeout_s if waiting else 5)
            show(session.on_timeout(now))
        elif line == "h":
            show(session.on_hangup(now))
        elif line == "p":
            show(session.on_playback_finished(now))
        elif line.startswith("r"):
            try:
                seconds = float(line[1:].strip() or "5")
            except ValueError:
                emit("(not understood: r SECONDS)")
                continue
            now += timedelta(seconds=seconds)
            name = session.recording or ""
            if durations is not None:
                durations[name] = seconds
            show(session.on_recording_finished(name, seconds, now))
        elif all(ch in "0123456789*#" for ch in line):
            for digit in line:
                show(session.on_digit(digit, now))
        else:
            emit("(not understood: digits, t, p, r SECONDS or h)")
    if not session.done:
        emit("(end of input: the caller hangs up)")
        show(session.on_hangup(now))
    record = session.record()
    if record["message_reference"]:
        emit(f"MESSAGE registered as request {record['message_reference']}")
    emit(f"END {record['outcome']} after {record['steps']} steps: {' > '.join(record['path'])}")


@ivr.command("try")
def try_flow(
    flow: str = typer.Argument(..., help="A published flow's id, or a flow document (JSON file) not yet published"),
    version: int = typer.Option(None, min=1, help="A published version (default: the current one)"),
    caller: str = typer.Option("+39 06 1234 5678", help="The caller's number (empty: withheld)"),
    dialled: str = typer.Option("12345", help="The number dialled (may choose the language)"),
    at: str = typer.Option(None, help="The time the flow sees (default: now), e.g. 2026-11-29T22:00:00+01:00"),
) -> None:
    """Run a flow from the keyboard: digits, t (timeout), p (prompt played), r SECONDS (recorded), h (hang up)."""
    from telephony_adapter.ivr.ports import HotlinePorts, current_flow, silence_wav

    try:
        start = datetime.fromisoformat(at) if at else datetime.now(UTC)
    except ValueError:
        _fail(f"--at {at!r} is not a time like 2026-11-29T22:00:00+01:00")
    if start.tzinfo is None:
        _fail("--at needs a time zone, e.g. 2026-11-29T22:00:00+01:00")
    path = Path(flow)
    with _hotline() as hotline:
        try:
            if path.suffix == ".json" and path.is_file():
                chosen = Flow.of(json.loads(path.read_text("utf-8")))
            else:
                chosen = current_flow(hotline, flow, version)
        except (LookupError, ValueError, OSError) as exc:  # OSError: a flow file that cannot be read
            _fail(str(exc))
        except DomainError as exc:
            _fail(exc.message)
        durations: dict[str, float] = {}

        def recorded(name: str) -> bytes:
            return silence_wav(durations.get(name, 5.0))

        ports = HotlinePorts.for_flow(hotline, chosen, recorded)
        session = IvrSession(chosen, caller, dialled, start, ports)
        print(f"flow {chosen.flow_id} version {chosen.version or '(file)'}; caller {caller or '(withheld)'} dialled {dialled}")
        run_transcript(session, iter(sys.stdin), start, print, durations)
