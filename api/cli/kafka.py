"""Distributed-mode commands: ``hotline relay``, ``hotline consume projections``,
``hotline consume analytics``, ``hotline asyncapi`` and ``hotline kafka-status``."""

from __future__ import annotations

import json
from pathlib import Path

import typer
from rich.console import Console

commands = typer.Typer()
consume = typer.Typer(help="Kafka consumer groups: projections (read models) or analytics (DuckDB)", no_args_is_help=True)
commands.add_typer(consume, name="consume")
console = Console()


@commands.command()
def relay() -> None:
    """Publish the event store to Kafka (CloudEvents, one topic per aggregate type)."""
    from consumers.relay import main

    main()


@consume.command("projections")
def consume_projections(
    group: str = typer.Option(None, help="Consumer group (default: HOTLINE_KAFKA_CONSUMER_GROUP)"),
    once: bool = typer.Option(False, help="Stop when caught up (no new message for 3 s)"),
    max_records: int = typer.Option(2000, help="Records per poll: one read-model transaction each"),
) -> None:
    """Apply events from Kafka to the read models (run several to share the partitions)."""
    from consumers.kafka_projections import main

    main(group=group, once=once, max_records=max_records)


@consume.command("analytics")
def consume_analytics(
    group: str = typer.Option("hotline-analytics", help="Consumer group"),
) -> None:
    """Feed the analytics database (DuckDB) from Kafka: the distributed mode's ingest."""
    from consumers.analytics_ingest import main

    main(group=group)


@commands.command()
def asyncapi(out: Path = typer.Option(None, help="Write here instead of printing")) -> None:
    """The AsyncAPI document of the Kafka topics, generated from the event classes."""
    from api.asyncapi import render

    text = render()
    if out is None:
        typer.echo(text)
    else:
        out.write_text(text, encoding="utf-8")
        console.print(f"wrote {out}")


@commands.command("kafka-status")
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
