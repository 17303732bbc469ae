"""``hotline load-catalogue``, ``hotline load-knowledge``: the reference data a hotline ships with."""

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


@commands.command("load-knowledge")
def load_knowledge(path: Path | None = typer.Argument(None, exists=True, readable=True)) -> None:
    """Load knowledge articles (YAML: infra/data/knowledge.yaml by default), each drafted,
    reviewed and published; articles whose title is already there are kept as they are."""
    from domain.base import SYSTEM
    from infra.knowledge_data import KNOWLEDGE_FILE, load_articles, read_articles
    from infra.runtime import Hotline

    hotline = Hotline.start(get_settings())
    try:
        added = len(load_articles(hotline, read_articles(path or KNOWLEDGE_FILE), SYSTEM))
    finally:
        hotline.close()
    console.print(f"knowledge: {added} articles published")
