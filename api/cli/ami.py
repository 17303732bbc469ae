"""``hotline ami``: the AMI observer (``telephony_adapter/ami.py``) as a long-running
process, and ``hotline ami replay FILE``: a recorded AMI session into a scratch store."""

from __future__ import annotations

import asyncio
import json
import signal
from pathlib import Path

import typer
from rich.console import Console

from api.cli.shell import refuse
from domain.limits import SECONDS_MAX
from infra.settings import get_settings

commands = typer.Typer()
ami = typer.Typer(help="Asterisk AMI observer: app_queue's queue and call events as contact events")
commands.add_typer(ami, name="ami")
console = Console()


@ami.command("run")
def run(
    host: str = typer.Option(None, help="AMI host (HOTLINE_AMI_HOST)"),
    port: int = typer.Option(None, help="AMI port (HOTLINE_AMI_PORT)"),
) -> None:
    """Connect to the PBX's manager interface and observe until SIGTERM / Ctrl-C
    (reconnecting by itself after a drop)."""
    from infra.runtime import Hotline
    from telephony_adapter.ami import AmiConnection, AmiObserver

    settings = get_settings()
    if not settings.ami_secret:
        raise typer.BadParameter("set HOTLINE_AMI_SECRET (and HOTLINE_AMI_USERNAME) to the manager.conf login")
    hotline = Hotline.start(settings)
    observer = AmiObserver(hotline.bus, queue_map=settings.ami_queue_map, agent_map=settings.ami_agent_map)
    connection = AmiConnection(observer, host or settings.ami_host, port or settings.ami_port, settings.ami_username, settings.ami_secret)

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await connection.run(stop)

    try:
        asyncio.run(main())
    finally:
        connection.close()
        hotline.close()
    console.print_json(json.dumps({"handled": observer.handled, "ignored": len(observer.ignored)}))


@ami.command("replay")
def replay(
    session: Path = typer.Argument(
        ..., exists=True, dir_okay=False, help="A recorded AMI session (Key: Value lines, blank-line separated)"
    ),
    wrap_seconds: int = typer.Option(
        0, min=0, max=SECONDS_MAX, help="Wrap-up time of the queues the session names (defined on the scratch store)"
    ),
) -> None:
    """Replay a recorded session on a new scratch store, at the times its Timestamp
    headers say (never on the live store: the events carry the recorded day's times).
    The queues it names are defined there first; prints what became of the calls."""
    from collections import Counter
    from datetime import UTC, datetime

    from domain.base import SYSTEM, FixedClock
    from domain.contact_center import commands as cc
    from infra import scratch
    from infra.runtime import Hotline
    from telephony_adapter.ami import AmiObserver, parse_session

    try:
        events = parse_session(session.read_text("utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        refuse(f"{session}: cannot be read as an AMI session ({exc})")
    # Any text with "Key: Value" lines parses; an AMI session has events (an Event header).
    if not any(k.lower() == "event" and v for e in events for k, v in e.items()):
        refuse(f"{session}: no AMI event in it (messages of Key: Value lines with an Event header, a blank line after each)")
    stamps = []
    for number, event in enumerate(events, 1):
        # As the observer reads it (any case); checked before anything is replayed.
        stamp = next((v for k, v in event.items() if k.lower() == "timestamp" and v), None)
        if stamp is None:
            continue
        try:
            stamps.append(datetime.fromtimestamp(float(stamp), UTC).timestamp())
        except (ValueError, OverflowError, OSError):
            refuse(f"{session}: message {number}: Timestamp {stamp!r} is not a Unix time like 1764582000.123")
    settings = scratch.new(get_settings(), "ami-replay")
    clock = FixedClock(datetime.fromtimestamp(stamps[0], UTC) if stamps else datetime.now(UTC))
    hotline = Hotline.start(settings, clock)
    try:
        observer = AmiObserver(hotline.bus, queue_map=settings.ami_queue_map, agent_map=settings.ami_agent_map, clock=clock)
        for queue_id in dict.fromkeys(observer.queue_of({k.lower(): v for k, v in e.items()}) for e in events if e.get("Queue")):
            hotline.bus.execute(cc.DefineQueue(queue_id=queue_id, wrap_seconds=wrap_seconds), SYSTEM)
        handled = observer.replay(events)
        outcomes = Counter(e.name for e in hotline.store.iter_envelopes() if e.stream == "contact")
    finally:
        hotline.close()
    summary = {"scratch_store": str(settings.data_dir), "events": len(events), "handled": handled, "contacts": dict(outcomes)}
    console.print_json(json.dumps({**summary, "ignored": observer.ignored}))
