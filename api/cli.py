"""The one command line: ``hotline``. Subcommands of other areas live in api/cli_*.py."""

from __future__ import annotations

import importlib
import json
from pathlib import Path
from typing import Any

import typer
import yaml
from rich.console import Console

from infra.settings import get_settings

app = typer.Typer(help="Hotline: citizen-service hotline and contact center backend", no_args_is_help=True)
console = Console()
DEFAULT_CATALOGUE = Path(__file__).resolve().parent.parent / "infra" / "data" / "catalogue.yaml"


@app.command()
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
    if workers > 1 and settings.mode == "embedded":
        raise typer.BadParameter("several workers need the distributed mode (SQLite has one writer)")
    uvicorn.run(
        "api.main:app",
        host=host or settings.host,
        port=port or settings.port,
        workers=workers,
        log_level=settings.log_level,
    )


@app.command("load-catalogue")
def load_catalogue(path: Path = typer.Argument(DEFAULT_CATALOGUE, exists=True, readable=True)) -> None:
    """Load a catalogue file (YAML or JSON) as events; entries already present are kept."""
    from domain.base import SYSTEM
    from domain.catalogue import commands as catc
    from infra.runtime import Hotline

    document = yaml.safe_load(path.read_text(encoding="utf-8"))
    hotline = Hotline.start(get_settings())
    try:
        result = hotline.bus.execute(catc.ImportCatalogue(document=document), SYSTEM)
    finally:
        hotline.close()
    console.print(f"catalogue: {result.result['added']} entries added (version {result.result['version']})")


@app.command()
def demo(reset: bool = typer.Option(False, help="Delete the embedded data folder first")) -> None:
    """Load demo data: the catalogue and a few days of requests in every state."""
    from api.demo import load_demo

    settings = get_settings()
    if reset and settings.database_url is None and settings.data_dir.exists():
        import shutil

        shutil.rmtree(settings.data_dir)
    load_demo(settings, only_if_empty=False, console=console)


@app.command()
def replay(name: str = typer.Argument(..., help="Projection name, or 'all'")) -> None:
    """Rebuild a projection from the event store."""
    from consumers.replay import replay_projection
    from projections import all_projections, by_name

    settings = get_settings()
    targets = all_projections() if name == "all" else [by_name(name)]
    for p in targets:
        stats = replay_projection(settings, p, console=console)
        console.print(f"{p.name}: {stats['events']} events in {stats['seconds']:.2f}s ({stats['events_per_second']:,.0f}/s)")


@app.command()
def status() -> None:
    """Positions of the event store and of each projection."""
    from infra.runtime import Hotline

    hotline = Hotline.start(get_settings())
    try:
        position = hotline.store.max_position()
        applied = hotline.read_store.positions()
        out: dict[str, Any] = {"mode": hotline.settings.mode, "event_store_position": position, "projections": applied}
        console.print_json(json.dumps(out))
    finally:
        hotline.close()


# Modules that add commands: each exposes ``register(app)``.
SUBCOMMANDS: list[str] = ["cli_sla", "cli_reports", "cli_kafka", "cli_contact_center"]


def _register_subcommands() -> None:
    for name in SUBCOMMANDS:
        module = importlib.import_module(f"api.{name}")
        module.register(app)


def main() -> None:
    _register_subcommands()
    app()
