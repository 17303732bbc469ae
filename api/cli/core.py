"""``hotline serve``, ``demo``, ``status`` and ``replay``: the API and the read models."""

from __future__ import annotations

import json
import logging
from typing import Any

import typer
from rich.console import Console

from api.cli.shell import refuse
from infra.settings import Settings, get_settings

commands = typer.Typer()
console = Console()


@commands.command()
def serve(
    host: str = typer.Option(None, help="Default: HOTLINE_HOST or 127.0.0.1"),
    port: int = typer.Option(None, help="Default: HOTLINE_PORT or 8000"),
    demo: bool = typer.Option(False, help="Load the demo data first if the store is empty"),
    workers: int = typer.Option(1, help="Uvicorn worker processes (distributed mode only)"),
) -> None:
    """Run the API (OpenAPI docs at /docs)."""
    import uvicorn

    settings = get_settings()
    if demo:
        from api.demo import load_demo

        load_demo(settings, only_if_empty=True, console=console)
    console.print(f"[bold]Hotline[/] {settings.mode} mode, data in {settings.database_url or settings.data_dir}")
    console.print(f"API on http://{host or settings.host}:{port or settings.port}  (docs: /docs)")
    from consumers.notifications import runs_in_serve
    from infra.outbox import outbox_root

    if not runs_in_serve(settings):
        console.print("Replies are sent by `hotline notify` (run it beside the API)")
    elif settings.smtp_host is None or settings.sms_gateway_url is None:
        console.print(f"Replies without an SMTP server or SMS gateway go to the outbox: {outbox_root(settings)} (GET /outbox)")
    if workers > 1 and settings.mode == "embedded":
        raise typer.BadParameter("several workers need the distributed mode (SQLite has one writer)")
    if settings.database_url:
        _check_connection_budget(settings, workers)
    uvicorn.run(
        "api.main:app",
        host=host or settings.host,
        port=port or settings.port,
        workers=workers,
        log_level=settings.log_level,
        log_config=None,  # uvicorn's loggers go through infra/logging.py like the rest
        # SIGTERM: requests in flight get this long, then are cancelled (a slow upload, a
        # live feed, a long query would otherwise hold the server up for ever).
        timeout_graceful_shutdown=settings.shutdown_grace_seconds,
        timeout_worker_healthcheck=settings.worker_healthcheck_seconds,
    )


def _check_connection_budget(settings: Settings, workers: int) -> None:
    """Warn before starting when the API processes' pools may exceed PostgreSQL's
    connections: under load, requests would fail with "too many clients"."""
    import psycopg

    from infra.pg_connections import budget

    try:
        warning = budget(settings, workers).warning(workers, settings)
    except psycopg.OperationalError:
        return  # PostgreSQL unreachable: the API's start reports it
    if warning:
        console.print(f"[bold yellow]Warning:[/] {warning}")
        logging.getLogger("hotline.serve").warning(warning)


@commands.command()
def demo(reset: bool = typer.Option(False, help="Delete the embedded data folder first")) -> None:
    """Load demo data: the catalogue and a few days of requests in every state."""
    from api.demo import load_demo

    settings = get_settings()
    if reset and settings.database_url is None and settings.data_dir.exists():
        import shutil

        shutil.rmtree(settings.data_dir)
    load_demo(settings, only_if_empty=False, console=console)


@commands.command()
def replay(name: str = typer.Argument(..., help="Projection name, or 'all'")) -> None:
    """Rebuild a projection from the event store."""
    from consumers.replay import replay_projection
    from infra.wiring import all_projections
    from infra.wiring import projection_named as by_name

    settings = get_settings()
    try:
        targets = all_projections() if name == "all" else [by_name(name)]
    except KeyError:
        known = ", ".join(p.name for p in all_projections())
        refuse(f"no projection {name!r}; give 'all' or one of: {known}")
    for p in targets:
        stats = replay_projection(settings, p, console=console)
        console.print(f"{p.name}: {stats['events']} events in {stats['seconds']:.2f}s ({stats['events_per_second']:,.0f}/s)")


@commands.command()
def status() -> None:
    """Positions of the event store and of each projection: a projection's position is the
    highest up to which it has applied every event (from Kafka: every published one), its
    lag the stored events beyond it."""
    from infra.runtime import Hotline

    hotline = Hotline.start(get_settings())
    try:
        position = hotline.store.max_position()
        applied = hotline.read_store.positions()
        projections = {
            p.name: {"position": applied.get(p.name, 0), "lag": max(0, position - applied.get(p.name, 0))}
            for p in hotline.read_store.projections
        }
        out: dict[str, Any] = {"mode": hotline.settings.mode, "event_store_position": position, "projections": projections}
        console.print_json(json.dumps(out))
    finally:
        hotline.close()
