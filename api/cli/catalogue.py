"""``hotline load-catalogue``: departments, providers, categories and problem codes from a file."""

from __future__ import annotations

from pathlib import Path

import typer
import yaml
from rich.console import Console

from infra.settings import get_settings

commands = typer.Typer()
console = Console()
DEFAULT_CATALOGUE = Path(__file__).resolve().parents[2] / "infra" / "data" / "catalogue.yaml"


@commands.command("load-catalogue")
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
