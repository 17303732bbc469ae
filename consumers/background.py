"""The work `hotline serve` runs beside the API in its own process, each part switched by
a ``Settings`` field and started from the app's lifespan (``api/app.py``).

Only with the real clock: a fixed (test or simulation) clock is moved by whoever holds
it, so a background thread reading it would act at the wrong time.
"""

from __future__ import annotations

import logging
import sys
import threading
from collections.abc import Callable

from domain.base import SystemClock
from infra.runtime import Hotline

Stop = Callable[[], None]
log = logging.getLogger("hotline.background")


def in_thread(name: str, run: Callable[[threading.Event, float], None], poll_seconds: float) -> Stop:
    """Runs a process's ``run(stop, poll_seconds)`` loop in a daemon thread; returns what
    stops it (and waits up to 10 s for the round in progress)."""
    stop = threading.Event()
    thread = threading.Thread(target=run, args=(stop, poll_seconds), name=name, daemon=True)
    thread.start()

    def halt() -> None:
        stop.set()
        thread.join(timeout=10)

    return halt


def start_timers(hotline: Hotline) -> Stop | None:
    """SLA timers in a thread (the embedded mode; ``hotline timers`` elsewhere)."""
    from consumers.timers import TimerProcess

    if hotline.settings.mode != "embedded" or not hotline.settings.timers_inprocess:
        return None
    process = hotline.extras["timers"] = TimerProcess(hotline)
    return in_thread("sla-timers", process.run, hotline.settings.timers_poll_seconds)


def start_router(hotline: Hotline) -> Stop | None:
    """The ACD router in a thread (embedded or PostgreSQL, where the advisory lock keeps
    one active across processes)."""
    from consumers.router import enable_aggregate_cache, start_embedded

    if not hotline.settings.router_inprocess:
        return None
    enable_aggregate_cache(hotline.store)
    return start_embedded(hotline).stop


def start_analytics_ingest(hotline: Hotline) -> Stop | None:
    """Events reach DuckDB from a thread, so commits never wait for analytics (the
    distributed mode's `hotline consume analytics` does it from Kafka instead)."""
    from analytics.ingest import start_background

    if hotline.settings.mode != "embedded" or not hotline.settings.analytics_inprocess:
        return None
    return start_background(hotline.store, hotline.settings.duckdb_path, gather=hotline.settings.analytics_gather_seconds)


def start_notifier(hotline: Hotline) -> Stop | None:
    """Replies and alerts sent from a thread: by default on the embedded default, where
    nothing else would send them (``hotline notify`` with PostgreSQL or Kafka)."""
    from consumers.notifications import NotificationConsumer, runs_in_serve

    if not runs_in_serve(hotline.settings):
        log.info("notifier: not in this process; run `hotline notify` to send replies (HOTLINE_NOTIFIER_INPROCESS)")
        return None
    notifier = hotline.extras["notifier"] = NotificationConsumer.from_settings(hotline)
    where = notifier.delivery()
    log.info("notifier: email to %s; sms, fax and voicemail to %s (GET /outbox shows the outbox)", where["email"], where["sms"])
    return in_thread("notifier", notifier.run, hotline.settings.notify_poll_seconds)


def start_email_in(hotline: Hotline) -> Stop | None:
    """The SMTP listener for citizens' email (``hotline email-in`` on its own)."""
    from consumers.email_in import start_listener

    if not hotline.settings.email_in_inprocess:
        return None
    return start_listener(hotline).stop


def start_retention(hotline: Hotline) -> Stop | None:
    """The retention rule on a schedule (``HOTLINE_RETENTION_INPROCESS``; or a cron job
    running ``hotline privacy retention``)."""
    from infra.privacy import run_retention

    if not hotline.settings.retention_inprocess:
        return None
    return in_thread("retention", lambda stop, poll: run_retention(hotline, stop, poll), hotline.settings.retention_interval_hours * 3600)


def start_recording_retention(hotline: Hotline) -> Stop | None:
    """Call recordings' retention beside the privacy retention, on the same switch and interval."""
    from infra.recordings import run_recording_retention

    if not hotline.settings.retention_inprocess:
        return None
    every = hotline.settings.retention_interval_hours * 3600
    return in_thread("recording-retention", lambda stop, poll: run_recording_retention(hotline, stop, poll), every)


def start_telephony(hotline: Hotline) -> Stop | None:
    """The Asterisk ARI adapter (``HOTLINE_ARI_INPROCESS``; or ``hotline telephony``): with
    PostgreSQL one is active per Stasis application across processes (advisory lock)."""
    from telephony_adapter.process import from_hotline

    if not hotline.settings.ari_inprocess:
        return None
    sys.setswitchinterval(hotline.settings.telephony_switch_interval)  # the process's callers wait on its event loop
    process = hotline.extras["telephony"] = from_hotline(hotline).start()
    return process.stop


# What `hotline serve` may run beside the API, in start order.
BACKGROUND: tuple[Callable[[Hotline], Stop | None], ...] = (
    start_timers,
    start_router,
    start_analytics_ingest,
    start_notifier,
    start_email_in,
    start_retention,
    start_recording_retention,
    start_telephony,
)


def start_background(hotline: Hotline) -> list[Stop]:
    """Starts what the settings ask for; returns the stop functions, to call in reverse."""
    if not isinstance(hotline.clock, SystemClock):
        return []
    stops = []
    for start in BACKGROUND:
        stop = start(hotline)
        if stop is not None:
            stops.append(stop)
    return stops
