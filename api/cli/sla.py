"""``hotline timers``, ``hotline notify``, ``hotline load-calendars``: the SLA processes."""

from __future__ import annotations

import json
import signal
import threading
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any

import typer
from pydantic import BaseModel, BeforeValidator, ConfigDict, ValidationError
from rich.console import Console

from api.cli.shell import read_document, refusals
from infra.settings import Settings, get_settings

commands = typer.Typer()
console = Console()
DEFAULT_CALENDARS = Path(__file__).resolve().parents[2] / "infra" / "data" / "calendars.yaml"


def _clock(at: str | None) -> Any:
    """The real clock, or a fixed one (simulations and tests inject time)."""
    from domain.base import FixedClock, SystemClock

    if at is None:
        return SystemClock()
    try:
        when = datetime.fromisoformat(at)
    except ValueError:
        raise typer.BadParameter(f"{at!r} is not an ISO 8601 time like 2026-11-20T10:00:00+00:00", param_hint="--clock") from None
    if when.tzinfo is None:
        raise typer.BadParameter("needs a time zone, e.g. 2026-11-20T10:00:00+00:00", param_hint="--clock")
    return FixedClock(when)


def _settings_for(clock: str | None, copy: bool, purpose: str, **updates: Any) -> Settings:
    """The live store with the real clock; a scratch store with an injected one."""
    from infra import scratch

    settings = get_settings().model_copy(update=updates)
    if clock is None:
        if copy:
            raise typer.BadParameter("--copy goes with --clock (the real clock runs on the live store)")
        return settings
    try:
        chosen = scratch.for_injected_clock(settings, purpose, copy=copy)
    except scratch.LiveStore as exc:
        raise typer.BadParameter(str(exc), param_hint="--clock") from None
    if chosen is not settings:
        console.print(f"[yellow]--clock: running on a scratch copy in {chosen.data_dir} (the live store is untouched)[/]")
    return chosen


def _stop_on_signals(stop: threading.Event) -> None:
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())


@commands.command()
def timers(
    clock: str = typer.Option(None, help="Run at this fixed time (ISO 8601): only on a scratch store (see --copy)"),
    copy: bool = typer.Option(False, "--copy", help="With --clock: run on a scratch copy of the embedded store"),
    once: bool = typer.Option(False, help="Fire what is due, then exit"),
    batch: int = typer.Option(None, help="Timers per page (default HOTLINE_TIMERS_BATCH)"),
    poll: float = typer.Option(None, help="Seconds between ticks (default HOTLINE_TIMERS_POLL_SECONDS)"),
    slow_path: bool = typer.Option(False, "--slow-path", help="Load every request instead of appending at the known version"),
) -> None:
    """Run the SLA timer process: warnings, misses, reminders, escalations, callbacks."""
    from consumers.timers import TimerProcess, configure_sla
    from infra.runtime import Hotline

    fixed = _clock(clock)  # before a scratch copy is made for it
    settings = _settings_for(clock, copy, "timers")
    hotline = Hotline.start(settings, fixed)
    configure_sla(hotline)
    process = TimerProcess(hotline, batch=batch or settings.timers_batch, fast_path=not slow_path)
    if not once:
        from consumers.timers import timer_metrics
        from infra.metrics import start_process_metrics

        start_process_metrics(settings, "timers", timer_metrics(process))
    stop = threading.Event()
    _stop_on_signals(stop)
    try:
        if once:
            fired = process.tick()
            console.print_json(json.dumps({"fired": fired, **process.status()}))
        else:
            console.print(f"[bold]timers[/] {settings.mode} mode, polling every {poll or settings.timers_poll_seconds}s")
            process.run(stop, poll or settings.timers_poll_seconds)
    finally:
        hotline.close()


@commands.command()
def notify(
    clock: str = typer.Option(None, help="Run at this fixed time (ISO 8601): only on a scratch store (see --copy)"),
    copy: bool = typer.Option(False, "--copy", help="With --clock: run on a scratch copy of the embedded store"),
    once: bool = typer.Option(False, help="Send what is due, then exit"),
    smtp_host: str = typer.Option(None, help="Default HOTLINE_SMTP_HOST"),
    smtp_port: int = typer.Option(None, help="Default HOTLINE_SMTP_PORT"),
    gateway_url: str = typer.Option(None, help="SMS/fax/voicemail provider URL (default HOTLINE_SMS_GATEWAY_URL)"),
    poll: float = typer.Option(None, help="Seconds between rounds (default HOTLINE_NOTIFY_POLL_SECONDS)"),
) -> None:
    """Run the notification consumer: replies and alerts by email, SMS, fax and voicemail."""
    from consumers.notifications import NotificationConsumer
    from consumers.timers import configure_sla
    from infra.runtime import Hotline

    updates = {k: v for k, v in {"smtp_host": smtp_host, "smtp_port": smtp_port, "sms_gateway_url": gateway_url}.items() if v is not None}
    fixed = _clock(clock)  # before a scratch copy is made for it
    settings = _settings_for(clock, copy, "notify", **updates)
    hotline = Hotline.start(settings, fixed)
    configure_sla(hotline)
    consumer = NotificationConsumer.from_settings(hotline)
    if not once:
        from consumers.notifications import notifier_metrics
        from infra.metrics import start_process_metrics

        start_process_metrics(settings, "notify", notifier_metrics(consumer))
    stop = threading.Event()
    _stop_on_signals(stop)
    try:
        if once:
            done = consumer.run_once()
            console.print_json(json.dumps({"processed": done, **consumer.status()}, default=str))
        else:
            where = consumer.delivery()
            console.print(f"[bold]notify[/] email to {where['email']}; sms, fax and voicemail to {where['sms']}")
            consumer.run(stop, poll or settings.notify_poll_seconds)
    finally:
        hotline.close()


# The shape of a calendars file as the import reads it (domain/calendars/aggregate.py
# ``load_calendars``), checked here so that a wrong type is named with its line rather than
# crash the handler; what the values mean (times, dates, rules, unknown keys) stays the
# domain's to refuse.
def _intervals(value: Any) -> Any:
    if value is None or isinstance(value, str | list):
        return value
    raise ValueError("expected a list of [start, end] intervals, or text like 08:30-13:00,14:00-17:30")


Intervals = Annotated[Any, BeforeValidator(_intervals)]


def _makeup_days(value: Any) -> Any:
    if isinstance(value, dict):
        for day, hours in value.items():
            if not (hours is None or isinstance(hours, str | list)):
                raise ValueError(f"{day}: expected a list of [start, end] intervals, or text like 08:30-13:00")
        return value
    if value is None or isinstance(value, list):
        return value
    raise ValueError("expected a list of dates, or dates mapped to their working hours")


class _Calendar(BaseModel):
    model_config = ConfigDict(extra="allow")  # the domain refuses unknown keys, listing the known ones
    time_zone: str | None = None
    working_hours: dict[str, Intervals] | None = None
    holiday_rules: list[Any] | None = None
    annual_holidays: list[Any] | None = None
    holidays: list[Any] | None = None
    makeup_working_days: Annotated[Any, BeforeValidator(_makeup_days)] = None
    makeup_day_hours: Intervals = None
    published_years: list[Any] | None = None


class CalendarsFile(BaseModel):
    model_config = ConfigDict(extra="forbid")  # a misspelt "calendars" would load nothing
    calendars: dict[str, _Calendar] | None = None
    aliases: dict[str, str] | None = None


@commands.command("load-calendars")
def load_calendars(path: Path = typer.Argument(DEFAULT_CALENDARS, exists=True, dir_okay=False, readable=True)) -> None:
    """Load business calendars (YAML) as events; unchanged calendars stay as they are.
    A file that is not a calendars file is refused, naming the line (exit 2)."""
    from domain.base import SYSTEM
    from domain.calendars import commands as calc
    from infra.runtime import Hotline

    document = read_document(path, "a calendars file")
    try:
        CalendarsFile.model_validate(document.data)
    except ValidationError as exc:
        document.invalid(exc)
    hotline = Hotline.start(get_settings())
    try:
        with refusals(str(path)):
            result = hotline.bus.execute(calc.ImportCalendars(document=document.data), SYSTEM)
    finally:
        hotline.close()
    console.print(f"calendars changed: {result.result['changed'] or 'none'}")
