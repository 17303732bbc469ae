"""Distributed-mode commands: ``hotline relay``, ``hotline consume projections``,
``hotline consume analytics``, ``hotline asyncapi`` and ``hotline kafka-status``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import typer
from rich.console import Console

from api.cli.shell import refuse

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
    max_records: int = typer.Option(2000, min=1, help="Records per poll: one read-model transaction each"),
) -> None:
    """Apply events from Kafka to the read models (run several to share the partitions)."""
    from consumers.kafka_projections import main

    main(group=group, once=once, max_records=max_records)


@consume.command("analytics")
def consume_analytics(
    group: str = typer.Option(None, help="Consumer group (default: HOTLINE_KAFKA_ANALYTICS_GROUP)"),
) -> None:
    """Feed the analytics database (DuckDB) from Kafka: the distributed mode's ingest."""
    from consumers.analytics_ingest import main

    main(group=group)


@commands.command()
def asyncapi(out: Path = typer.Option(None, dir_okay=False, help="Write here instead of printing (in an existing folder)")) -> None:
    """The AsyncAPI document of the Kafka topics, generated from the event classes."""
    from api.asyncapi import render

    text = render()
    if out is None:
        typer.echo(text)
        return
    try:
        out.write_text(text, encoding="utf-8")
    except OSError as exc:
        refuse(f"--out {out}: cannot be written ({exc.strerror or exc})")
    console.print(f"wrote {out}")


@commands.command("kafka-status")
def kafka_status(
    group: list[str] = typer.Option(None, help="Consumer groups to show (default: every group the brokers know)"),
    timeout: float = typer.Option(5.0, help="Seconds to wait for the brokers"),
) -> None:
    """Relay position and lag, and each consumer group's lag per partition: the group's
    committed offsets against the brokers' end offsets (what kafka-consumer-groups.sh shows)."""
    import sqlalchemy as sa

    from consumers.kafka_contract import KafkaLag, create_relay_tables, relay_positions
    from infra.eventstore import EventStore
    from infra.read_store import make_engine
    from infra.settings import get_settings

    settings = get_settings()
    if not settings.kafka_bootstrap_servers:
        raise typer.BadParameter("HOTLINE_KAFKA_BOOTSTRAP_SERVERS is not set (embedded mode: see `hotline status`)")
    store = EventStore(settings)
    engine = make_engine(settings.read_store_url, 2)
    lag = KafkaLag(settings, timeout_ms=int(timeout * 1000))
    try:
        create_relay_tables(engine)
        head = store.max_position()
        with engine.connect() as conn:
            relays = {r.name: {"position": r.position, "lag": max(0, head - r.position)} for r in conn.execute(sa.select(relay_positions))}
        try:
            groups: dict[str, Any] = {g: v.as_dict() for g, v in lag.group_lags(group or lag.groups()).items()}
        except Exception as exc:  # the brokers did not answer: say so, with what is known
            groups = {"error": f"{type(exc).__name__}: {exc}"}
        console.print_json(json.dumps({"event_store_position": head, "relays": relays, "consumer_groups": groups}))
    finally:
        lag.close()
        engine.dispose()
        store.close()
