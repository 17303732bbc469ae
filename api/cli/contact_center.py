"""``hotline simulate`` (a contact-center day through the real command path) and
``hotline router`` (the ACD router process, with leader election on PostgreSQL)."""

from __future__ import annotations

import json
import signal
import threading
from datetime import UTC, datetime

import typer
from rich.console import Console
from rich.table import Table

from infra.settings import get_settings

commands = typer.Typer()
console = Console()


@commands.command()
def simulate(
    hours: float = typer.Option(12.0, help="Simulated hours, from the start time"),
    agents: int = typer.Option(24, help="Agents logged in"),
    speed: float = typer.Option(0.0, help="Simulated seconds per real second (0: as fast as possible; 60: a minute a second)"),
    seed: int = typer.Option(12345, help="Random seed: the same seed gives the same day"),
    start: str = typer.Option(None, help="Start (ISO 8601 with time zone); default: today 08:00 UTC"),
    breaks: bool = typer.Option(True, help="Agents take 15-minute breaks every 2 hours"),
    as_json: bool = typer.Option(False, "--json", help="Print the report as JSON"),
) -> None:
    """Simulate a contact-center day: Poisson arrivals by hour, lognormal handle times,
    abandons, several queues and skills, agents with breaks. Writes real events (the
    wallboard and analytics see them) with an injected clock."""
    from consumers.router import Router, enable_aggregate_cache
    from domain.base import FixedClock
    from infra.runtime import Hotline
    from telephony_adapter.simulator import SimConfig, Simulator

    if start:
        begin = datetime.fromisoformat(start)
        if begin.tzinfo is None:
            raise typer.BadParameter("--start needs a time zone, e.g. 2026-03-02T08:00:00+00:00")
    else:
        begin = datetime.now(UTC).replace(hour=8, minute=0, second=0, microsecond=0)
    clock = FixedClock(begin)
    hotline = Hotline.start(get_settings(), clock=clock)
    try:
        latest = hotline.store.max_position()
        if latest:
            last = hotline.store.envelopes(latest - 1, 1)
            if last and last[-1].time > begin:
                raise typer.BadParameter(f"the store already has events up to {last[-1].time.isoformat()}: start later (--start)")
        enable_aggregate_cache(hotline.store)
        config = SimConfig.default_day(hours=hours, agents=agents, seed=seed, speed=speed or None)
        config.start, config.breaks = begin, breaks
        console.print(
            f"Simulating {hours} h with {agents} agents from {begin.isoformat()} "
            f"({'as fast as possible' if not speed else f'{speed}x real time'}) …"
        )
        report = Simulator(hotline.store, hotline.bus, clock, config, router=Router(hotline.store, hotline.bus)).run()
    finally:
        hotline.close()
    summary = report.as_dict()
    if as_json:
        console.print_json(json.dumps(summary))
        return
    table = Table(
        title=f"{summary['simulated_hours']} h simulated in {summary['wall_seconds']} s "
        f"({summary['commands']} commands, {summary['events']} events)"
    )
    for col in ("queue", "arrived", "answered", "abandoned", "overflowed", "service level", "ASA s"):
        table.add_column(col)
    for queue_id, q in summary["queues"].items():
        overflowed = sum(v for k, v in q.items() if k.startswith("overflowed_"))
        sl = f"{q['service_level']:.1%} in {q['sl_threshold_seconds']} s" if q["service_level"] is not None else "-"
        table.add_row(queue_id, str(q["arrived"]), str(q["answered"]), str(q["abandoned"]), str(overflowed), sl, str(q["asa_seconds"]))
    console.print(table)


@commands.command()
def router(
    batch: int = typer.Option(200, help="Routing decisions written per transaction"),
    poll: float = typer.Option(0.2, help="Seconds between looks at the event log when idle"),
    name: str = typer.Option("router", help="This instance's name in the logs"),
) -> None:
    """Run the ACD router. With PostgreSQL several may run: one leads (advisory lock), the
    others stand by and take over within seconds when it dies."""
    from consumers.router import Router, enable_aggregate_cache, leadership_for
    from infra.runtime import Hotline

    settings = get_settings()
    hotline = Hotline.start(settings)
    enable_aggregate_cache(hotline.store)
    acd = Router(hotline.store, hotline.bus, batch=batch, leadership=leadership_for(settings.database_url), name=name, freeze_heap=True)
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    acd.start()
    console.print(f"[bold]{name}[/]: {'standing by for the leader lock' if settings.database_url else 'routing (embedded)'} …")
    try:
        while not stop.wait(5):
            s = acd.stats
            console.print(
                f"{name}: leader={acd.is_leader} offered={s.offered} skipped={s.skipped} actions={s.actions} position={acd.view.position}"
            )
    finally:
        acd.stop()
        hotline.close()
