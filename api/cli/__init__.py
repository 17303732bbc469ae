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
    try:
        app()
    except Exception as exc:
        problem = service_problem(exc)
        if problem is None:
            raise
        # A service the settings name does not answer: say which, and the setting, in one
        # line (a Kafka client's retries and a pool's timeout said neither).
        typer.echo(f"Error: {problem}", err=True)
        raise SystemExit(1) from None


def service_problem(exc: BaseException) -> str | None:
    """What an operator needs to read when a process cannot reach PostgreSQL or Kafka at
    start-up, or None for any other error."""
    import eventsourcing.persistence
    import psycopg
    import psycopg_pool
    import sqlalchemy.exc
    from kafka.errors import NoBrokersAvailable

    settings = get_settings()
    if isinstance(exc, NoBrokersAvailable):
        return f"no Kafka broker answers at {settings.kafka_bootstrap_servers} (HOTLINE_KAFKA_BOOTSTRAP_SERVERS): is Kafka running there?"
    unreachable = (
        psycopg_pool.PoolTimeout,
        psycopg.OperationalError,
        eventsourcing.persistence.OperationalError,
        sqlalchemy.exc.OperationalError,
    )
    if isinstance(exc, unreachable) and settings.database_url:
        from sqlalchemy.engine import make_url

        where = make_url(settings.database_url).render_as_string(hide_password=True)
        try:  # the pool says only that it timed out: ask the server why
            psycopg.connect(settings.database_url, connect_timeout=5).close()
            reason = str(exc).strip()
        except psycopg.Error as refused:
            reason = str(refused).strip()
        return f"PostgreSQL at {where} (HOTLINE_DATABASE_URL): {reason.splitlines()[0] if reason else type(exc).__name__}"
    return None
