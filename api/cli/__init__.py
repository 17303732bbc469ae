"""The one command line: ``hotline`` (``pyproject.toml``: ``hotline = "api.cli:main"``).

One module per area, each with its own ``commands`` (a Typer app whose commands join the
top level), registered here in help order. Every long-running process is a subcommand:
``serve``, ``relay``, ``consume projections``, ``consume analytics``, ``router``,
``timers``, ``notify``.

A new area: write ``api/cli/<area>.py`` with ``commands = typer.Typer()`` and its
``@commands.command()`` functions, and add the module to :data:`AREAS`.
"""

from __future__ import annotations

import typer

from api.cli import ami as ami_cli
from api.cli import audit, catalogue, channels, contact_center, core, identity, kafka, privacy, reports, sla, telephony
from api.cli import ivr as ivr_cli
from api.cli import recordings as recordings_cli
from infra.logging import configure_logging
from infra.settings import get_settings

AREAS = (core, catalogue, sla, contact_center, kafka, reports, identity, channels, privacy, audit, telephony, ivr_cli)

app = typer.Typer(help="Hotline: citizen-service hotline and contact center backend", no_args_is_help=True)


@app.callback()
def _configure() -> None:
    """Runs before every subcommand: logging as the settings say, once per process."""
    configure_logging(get_settings())


for _area in AREAS:
    app.add_typer(_area.commands)
for _area in (ami_cli, recordings_cli):  # the AMI observer; call recordings' retention
    app.add_typer(_area.commands)


def main() -> None:
    app()
