"""``hotline email-in``: the citizens' channels that run as their own process."""

from __future__ import annotations

import signal
import threading

import typer
from rich.console import Console

from api.cli.shell import refuse
from infra.settings import get_settings

commands = typer.Typer()
console = Console()


@commands.command("email-in")
def email_in(
    host: str = typer.Option(None, help="Address to listen on (default HOTLINE_EMAIL_IN_HOST)"),
    port: int = typer.Option(None, min=0, max=65535, help="SMTP port (default HOTLINE_EMAIL_IN_PORT)"),
) -> None:
    """Run the SMTP listener: citizens' email becomes requests, replies join theirs."""
    from consumers.email_in import start_listener
    from infra.runtime import Hotline

    updates = {k: v for k, v in {"email_in_host": host, "email_in_port": port}.items() if v is not None}
    hotline = Hotline.start(get_settings().model_copy(update=updates))
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    try:
        listener = start_listener(hotline)
    except OSError as exc:  # the address is taken or not this machine's
        hotline.close()
        refuse(f"cannot listen on {hotline.settings.email_in_host}:{hotline.settings.email_in_port}: {exc.strerror or exc}")
    try:
        console.print(f"[bold]email-in[/] SMTP on {listener.host}:{listener.port}")
        stop.wait()
    finally:
        listener.stop()
        hotline.close()
