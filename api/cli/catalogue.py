"""``hotline load-catalogue``, ``hotline load-knowledge``: the reference data a hotline ships with."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer
from pydantic import BaseModel, ConfigDict, Field, StrictBool, ValidationError
from rich.console import Console

from api.cli.shell import read_document, refusals
from infra.settings import get_settings

commands = typer.Typer()
console = Console()
DEFAULT_CATALOGUE = Path(__file__).resolve().parents[2] / "infra" / "data" / "catalogue.yaml"


# The shape of a catalogue file, as the import handler reads it (domain/catalogue/handlers.py):
# checked here so that a missing or misspelt key is named with its line, never a KeyError in
# the handler or an entry silently skipped. Names, ids, templates and deadlines stay the
# domain's rules (its refusals name the entry).
class _Entry(BaseModel):
    model_config = ConfigDict(extra="forbid")
    names: dict[str, Any]


class _ProblemCode(_Entry):
    code: str
    work_order_template: dict[str, Any]
    fields_to_collect: list[dict[str, Any]] | None = None
    deadlines: dict[str, Any] | None = None
    duplicate_radius_m: float | None = None


class _Category(_Entry):
    id: str
    problem_codes: list[_ProblemCode] = Field(default_factory=list)


class _Provider(_Entry):
    id: str
    categories: list[_Category] = Field(default_factory=list)


class _Department(_Entry):
    id: str
    control_office: StrictBool = False  # strict: the handler reads "false" as true
    providers: list[_Provider] = Field(default_factory=list)


class CatalogueFile(BaseModel):
    model_config = ConfigDict(extra="forbid")
    departments: list[_Department] = Field(default_factory=list)


@commands.command("load-catalogue")
def load_catalogue(path: Path = typer.Argument(DEFAULT_CATALOGUE, exists=True, dir_okay=False, readable=True)) -> None:
    """Load a catalogue file (YAML or JSON) as events; entries already present are kept.
    A file that is not a catalogue is refused, naming the line (exit 2)."""
    from domain.base import SYSTEM
    from domain.catalogue import commands as catc
    from infra.runtime import Hotline

    document = read_document(path, "a catalogue file")
    try:
        CatalogueFile.model_validate(document.data)
    except ValidationError as exc:
        document.invalid(exc)
    hotline = Hotline.start(get_settings())
    try:
        with refusals(str(path)):
            result = hotline.bus.execute(catc.ImportCatalogue(document=document.data), SYSTEM)
    finally:
        hotline.close()
    console.print(f"catalogue: {result.result['added']} entries added (version {result.result['version']})")


class KnowledgeFile(BaseModel):
    articles: list[dict[str, Any]]


# What infra/knowledge_data.py reads of an article to draft it.
_ARTICLE_FIELDS = ("translations", "phones", "url", "problem_codes", "categories", "tags")


@commands.command("load-knowledge")
def load_knowledge(path: Path | None = typer.Argument(None, exists=True, dir_okay=False, readable=True)) -> None:
    """Load knowledge articles (YAML: infra/data/knowledge.yaml by default), each drafted,
    reviewed and published; articles whose title is already there are kept as they are.
    A file that is not a knowledge file is refused, naming the line (exit 2)."""
    from domain.base import SYSTEM
    from domain.knowledge import commands as kc
    from infra.knowledge_data import KNOWLEDGE_FILE, load_articles
    from infra.runtime import Hotline

    source = path or KNOWLEDGE_FILE
    document = read_document(source, "a knowledge file")
    try:
        articles = KnowledgeFile.model_validate(document.data).articles
    except ValidationError as exc:
        document.invalid(exc)
    # Each article checked as the command it becomes before the first is loaded: a bad one
    # halfway would leave the file half loaded.
    for number, article in enumerate(articles):
        try:
            kc.DraftArticle.model_validate({k: article[k] for k in _ARTICLE_FIELDS if k in article})
        except ValidationError as exc:
            document.invalid(exc, under=("articles", number))
    hotline = Hotline.start(get_settings())
    try:
        with refusals(str(source)):
            added = len(load_articles(hotline, articles, SYSTEM))
    finally:
        hotline.close()
    console.print(f"knowledge: {added} articles published")
