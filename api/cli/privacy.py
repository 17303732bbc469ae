"""``hotline privacy …``: erasure and retention of citizens' personal data (domain/privacy)."""

from __future__ import annotations

import json

import typer
from rich.console import Console

from api.cli.shell import positive, refusals
from infra.settings import get_settings

commands = typer.Typer()
privacy = typer.Typer(help="Citizens' personal data: erase one citizen, apply the retention rule, key counts")
commands.add_typer(privacy, name="privacy")
console = Console()


@privacy.command("retention")
def retention(
    years: float = typer.Option(None, help="Erase citizens whose requests all closed this many years ago (HOTLINE_RETENTION_YEARS)"),
) -> None:
    """Apply the retention rule once (a scheduler runs this, or HOTLINE_RETENTION_INPROCESS)."""
    from infra.privacy import apply_retention
    from infra.runtime import Hotline

    positive(years, "--years")
    hotline = Hotline.start(get_settings())
    try:
        outcome = apply_retention(hotline, years)
    finally:
        hotline.close()
    typer.echo(json.dumps({"cutoff": outcome["cutoff"], "erased": len(outcome["erased"]), "kept": len(outcome["kept"])}))


@privacy.command("erase")
def erase(
    citizen_id: str = typer.Argument(..., help="The citizen's id"),
    reason: str = typer.Option(..., "--reason", help="Why (recorded on the erasure event)"),
    admin: str = typer.Option("cli", "--as", help="The administrator acting (recorded as the actor)"),
) -> None:
    """The same as ``POST /citizens/{id}/erasure``, from an operator's shell."""
    from domain.base import Actor
    from infra.privacy import erase_citizen
    from infra.runtime import Hotline

    hotline = Hotline.start(get_settings())
    try:
        with refusals():  # an unknown citizen, a reason too short
            outcome = erase_citizen(hotline, citizen_id, reason, Actor(id=admin, role="administrator"))
    finally:
        hotline.close()
    typer.echo(json.dumps(outcome))


@privacy.command("resume")
def resume() -> None:
    """Finish erasures a stopped process left half-done (their event committed, the keys or
    files not yet gone); the retention loop does this too."""
    from infra.privacy import resume_erasures
    from infra.runtime import Hotline

    hotline = Hotline.start(get_settings())
    try:
        finished = resume_erasures(hotline)
    finally:
        hotline.close()
    typer.echo(json.dumps({"finished": finished}))


@privacy.command("keys")
def keys() -> None:
    """How many citizen keys exist, live and destroyed."""
    from infra.runtime import Hotline

    hotline = Hotline.start(get_settings())
    try:
        typer.echo(json.dumps(hotline.store.keys.counts()))
    finally:
        hotline.close()
