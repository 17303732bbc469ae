"""``hotline telephony``: the Asterisk ARI adapter as a long-running process."""

from __future__ import annotations

import signal
import sys
import threading

import typer
from rich.console import Console

from infra.settings import get_settings

commands = typer.Typer()
console = Console()


@commands.command()
def telephony(
    name: str = typer.Option("telephony", help="This instance's name in the logs"),
) -> None:
    """Connect to Asterisk's ARI (HOTLINE_ARI_URL, _USER, _PASSWORD, _APP): calls entering
    the Stasis application become contacts, the router's decisions become ARI calls. With
    PostgreSQL several may run: one is active per application (advisory lock), the others
    stand by."""
    from infra.runtime import Hotline
    from telephony_adapter.process import from_hotline

    settings = get_settings()
    sys.setswitchinterval(settings.telephony_switch_interval)
    hotline = Hotline.start(settings)
    try:
        process = from_hotline(hotline, name=name)
    except ValueError as exc:
        hotline.close()
        raise typer.BadParameter(str(exc)) from exc
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    process.start()
    console.print(f"[bold]{name}[/]: ARI {settings.ari_url} application {settings.ari_app}")
    try:
        while not stop.wait(5):
            s = process.stats
            console.print(
                f"{name}: leader={process.is_leader} connected={process.connected.is_set()} events={s.events} "
                f"commands={s.commands} requests={s.requests} errors={s.request_errors} resyncs={s.resyncs}"
            )
            if process.stopped_because == "replaced":
                console.print(f"{name}: replaced by another client of {settings.ari_app}; exiting")
                break
    finally:
        process.stop()
        hotline.close()
