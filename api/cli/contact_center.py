"""``hotline simulate`` (a contact-center day through the real command path) and
``hotline router`` (the ACD router process, with leader election on PostgreSQL)."""

from __future__ import annotations

import json
import math
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
    agents: int = typer.Option(24, min=1, max=2000, help="Agents logged in"),
    speed: float = typer.Option(0.0, min=0, help="Simulated seconds per real second (0: as fast as possible; 60: a minute a second)"),
    seed: int = typer.Option(12345, help="Random seed: the same seed gives the same day"),
    start: str = typer.Option(None, help="Start (ISO 8601 with time zone); default: today 08:00 UTC (scratch store only)"),
    breaks: bool = typer.Option(True, help="Agents take 15-minute breaks every 2 hours"),
    live: bool = typer.Option(False, "--live", help="Run on the live store, in real time from now (agents log out at the end)"),
    single_queue: bool = typer.Option(
        False, "--single-queue", help="One queue as Erlang C models it (Poisson, exponential, FCFS, no abandons), compared with theory"
    ),
    calls: float = typer.Option(200.0, min=0.1, help="--single-queue: calls per hour"),
    aht: float = typer.Option(180.0, min=1, help="--single-queue: average handle time, seconds"),
    sl_seconds: int = typer.Option(20, min=0, help="--single-queue: service-level threshold, seconds"),
    as_json: bool = typer.Option(False, "--json", help="Print the report as JSON"),
) -> None:
    """Simulate contact-center traffic through the real command path and router: Poisson
    arrivals by hour, lognormal handle times, abandons, several queues and skills, agents
    with breaks (or, with --single-queue, the M/M/N queue of Erlang C).

    The simulation's clock is its own, so it writes into a new scratch store (reported)
    and never into the live one; --live runs it on the live store in real time instead."""
    from consumers.router import Router, enable_aggregate_cache
    from domain.base import FixedClock
    from infra import scratch
    from infra.runtime import Hotline
    from telephony_adapter.simulator import SimConfig, Simulator

    # The options' own bounds let inf and nan through: a day that never ends.
    for option, value in (("--hours", hours), ("--speed", speed), ("--calls", calls), ("--aht", aht)):
        if not math.isfinite(value):
            raise typer.BadParameter(f"must be a finite number, not {value}", param_hint=option)
    if hours <= 0:
        raise typer.BadParameter(f"must be above 0, not {hours}", param_hint="--hours")
    now = datetime.now(UTC)
    if live:
        if start or speed not in (0.0, 1.0):
            raise typer.BadParameter("--live runs from now in real time: leave out --start and --speed")
        begin, speed = now, 1.0
        settings = get_settings()
    else:
        if start:
            try:
                begin = datetime.fromisoformat(start)
            except ValueError:
                raise typer.BadParameter(
                    f"{start!r} is not an ISO 8601 time like 2026-03-02T08:00:00+00:00", param_hint="--start"
                ) from None
            if begin.tzinfo is None:
                raise typer.BadParameter("--start needs a time zone, e.g. 2026-03-02T08:00:00+00:00")
        else:
            begin = now.replace(hour=8, minute=0, second=0, microsecond=0)
        settings = scratch.new(get_settings(), "simulate")
        if not as_json:
            console.print(f"scratch store: {settings.data_dir} (the live store is untouched; --live runs on it in real time)")
    clock = FixedClock(begin)
    if single_queue:
        from telephony_adapter.simulator import single_queue as single

        config = single(calls, aht, agents, hours, sl_seconds=sl_seconds, seed=seed)
        config.speed = speed or None
    else:
        config = SimConfig.default_day(hours=hours, agents=agents, seed=seed, speed=speed or None)
        config.breaks = breaks
    config.start, config.close_at_end = begin, live
    hotline = Hotline.start(settings, clock=clock)
    try:
        latest = hotline.store.max_position()
        if latest:
            last = hotline.store.envelopes(latest - 1, 1)
            if last and last[-1].time > begin:
                raise typer.BadParameter(f"the store already has events up to {last[-1].time.isoformat()}: start later (--start)")
        enable_aggregate_cache(hotline.store)
        if not as_json:
            console.print(
                f"Simulating {hours} h with {agents} agents from {begin.isoformat()} "
                f"({'as fast as possible' if not speed else f'{speed}x real time'}) …"
            )
        report = Simulator(
            hotline.store, hotline.bus, clock, config, router=Router(hotline.store, hotline.bus, time_zone=settings.time_zone)
        ).run()
    finally:
        hotline.close()
    summary = report.as_dict()
    summary["store"] = "live" if live else str(settings.data_dir)
    if single_queue:
        summary["erlang_c"] = _theory(calls, aht, agents, sl_seconds)
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
    if single_queue:
        theory = summary["erlang_c"]
        sl = "unstable" if theory["unstable"] else f"{theory['service_level']:.1%} in {sl_seconds} s"
        asa = "∞" if theory["asa_seconds"] is None else str(round(theory["asa_seconds"], 2))
        table.add_row("Erlang C", "", "", "", "", sl, asa)
    console.print(table)


def _theory(calls_per_hour: float, aht: float, agents: int, sl_seconds: int) -> dict[str, object]:
    from analytics import erlang

    return erlang.evaluate(calls_per_hour, 3600, aht, agents, sl_seconds).as_dict()


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
    acd = Router(
        hotline.store,
        hotline.bus,
        batch=batch,
        leadership=leadership_for(settings.database_url),
        name=name,
        freeze_heap=True,
        time_zone=settings.time_zone,
    )
    from consumers.router import router_metrics
    from infra.metrics import start_process_metrics

    start_process_metrics(settings, "router", router_metrics(acd))
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
