"""Distributed-mode commands: ``hotline relay``, ``hotline consume projections``,
``hotline asyncapi`` and ``hotline kafka-status``."""

from __future__ import annotations

import json
from pathlib import Path

import typer
from rich.console import Console

console = Console()
consume = typer.Typer(help="Kafka consumer groups", no_args_is_help=True)


def relay() -> None:
    """Publish the event store to Kafka (CloudEvents, one topic per aggregate type)."""
    from consumers.relay import main

    main()


@consume.command("projections")
def consume_projections(
    group: str = typer.Option(None, help="Consumer group (default: HOTLINE_KAFKA_CONSUMER_GROUP)"),
    once: bool = typer.Option(False, help="Stop when caught up (no new message for 3 s)"),
) -> None:
    """Apply events from Kafka to the read models (run several to share the partitions)."""
    from consumers.kafka_projections import main

    main(group=group, once=once)


def asyncapi(out: Path = typer.Option(None, help="Write here instead of printing")) -> None:
    """The AsyncAPI document of the Kafka topics, generated from the event classes."""
    from api.asyncapi import render

    text = render()
    if out is None:
        typer.echo(text)
    else:
        out.write_text(text, encoding="utf-8")
        console.print(f"wrote {out}")


def kafka_status() -> None:
    """Relay position and lag, and each consumer group's lag per partition."""
    import sqlalchemy as sa

    from consumers.kafka_contract import create_relay_tables, lag_report, relay_positions
    from infra.eventstore import EventStore
    from infra.read_store import make_engine
    from infra.settings import get_settings

    settings = get_settings()
    store = EventStore(settings)
    engine = make_engine(settings.read_store_url, 2)
    try:
        create_relay_tables(engine)
        head = store.max_position()
        with engine.connect() as conn:
            relays = {r.name: {"position": r.position, "lag": max(0, head - r.position)} for r in conn.execute(sa.select(relay_positions))}
            groups = lag_report(conn)
        console.print_json(json.dumps({"event_store_position": head, "relays": relays, "consumer_groups": groups}))
    finally:
        engine.dispose()
        store.close()


def register(app: typer.Typer) -> None:
    app.command("relay")(relay)
    app.add_typer(consume, name="consume")
    app.command("asyncapi")(asyncapi)
    app.command("kafka-status")(kafka_status)
