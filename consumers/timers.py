"""The timer process: fires SLA timers when they fall due (``hotline timers``).

Timers live on disk, in the read store's ``rm_sla_timers`` table (projection
``projections/sla_timers.py``), indexed by (state, due time). Each tick the process
brings that table up to date from the event log, reads one page of pending timers due by
the injected clock's ``now``, and fires them, page after page, until none is due. Memory
holds one page, whatever the number of open requests.

Firing a timer is an event on the request (``DeadlineApproaching``, ``DeadlineMissed``,
``ReminderSent``, ``Escalated``, ``InterimReplyDue``, ``SatisfactionCallbackDue``)
carrying the timer key; the request refuses a key twice. That makes it crash-safe: a
timer is fired exactly when its event is committed; after a crash the process finds the
timer still pending (the table had not caught up) and tries again, which changes nothing.

Two paths, one outcome:

* **fast path**: the timer row knows the request's latest version, so the event is
  appended at exactly the next version without loading the request, a page of them in
  one group-committed transaction. If anything happened to a request meanwhile, its
  append conflicts (optimistic concurrency) and that timer goes to the slow path.
* **slow path**: the ``fire_timers`` command through the command bus loads each request
  and lets the aggregate decide (already fired, replanned, not due).

Throughput (``tests/bench/bench_timers.py``): per page, one indexed due query, the
events built in memory, one group-committed append, and two bulk UPDATEs that record
the page in the timer table (the projection's ``fired`` handler in bulk, valid because
the table stands just before the page's positions; otherwise it catches up from the
log). Nothing per timer goes to the database apart from the event itself.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from eventsourcing.persistence import IntegrityError

from domain.base import Actor, Context
from domain.envelope import Envelope
from domain.requests import commands as c
from domain.requests.aggregate import TIMER_EVENTS
from infra.read_store import WHOLE_LOG, SqlRows, read_position, write_position
from infra.runtime import Hotline
from projections import sla_timers

log = logging.getLogger("hotline.timers")
TIMER_ACTOR = Actor("timers", "system", "Timer process")
SLOW_CHUNK = 200
Item = tuple[dict[str, Any], Any]  # a due row and the event that fires it


@dataclass
class TimerStats:
    fired: int = 0
    fast: int = 0
    slow: int = 0
    skipped: int = 0
    conflicts: int = 0
    ticks: int = 0
    last_tick_at: str | None = None
    errors: int = 0
    last_error: str | None = None
    # Seconds spent per phase (find the due page, build events, commit them, update the
    # timer table, catch up from the log, slow path): where a tick's time goes.
    seconds: dict[str, float] = field(default_factory=dict)
    started_at: float = field(default_factory=time.monotonic)

    def as_dict(self) -> dict[str, Any]:
        d = dict(self.__dict__)
        d.pop("started_at")
        d["seconds"] = {k: round(v, 3) for k, v in self.seconds.items()}
        return d

    def took(self, phase: str, since: float) -> float:
        """Adds the time since ``since`` to ``phase``; returns now (perf_counter)."""
        now = time.perf_counter()
        self.seconds[phase] = self.seconds.get(phase, 0.0) + now - since
        return now


class TimerProcess:
    def __init__(
        self,
        hotline: Hotline,
        *,
        batch: int = 1000,
        fast_path: bool = True,
        on_fired: Callable[[int], None] | None = None,
    ) -> None:
        self.hotline = hotline
        self.batch = batch
        self.fast_path = fast_path
        self.on_fired = on_fired  # called with the number fired after each commit (tests, metrics)
        self.stats = TimerStats()
        self._lock = threading.Lock()

    # -------------------------------------------------------------- the timer table
    def catch_up(self) -> int:
        """Applies new events to the timer table; returns the position reached."""
        position = self.hotline.read_store.position(sla_timers.projection.name)
        while True:
            envelopes = self.hotline.store.envelopes(position, 2000)
            if not envelopes:
                return position
            self.apply(envelopes)
            position = envelopes[-1].position

    def apply(self, envelopes: list[Envelope]) -> None:
        """Applies a page of envelopes to the timer table, like ``ReadStore.apply`` (same
        position tracking, same transaction) but with the page's rows read in bulk first:
        one query per 500 requests instead of two per event."""
        rs = self.hotline.read_store
        proj = sla_timers.projection
        with rs.engine.begin() as conn:
            start = read_position(conn, proj.name, WHOLE_LOG, for_update=True)
            todo = [e for e in envelopes if e.position > start and proj.handles(e.type)]
            rows = SqlRows(conn, rs.tables)
            ids = sorted({e.aggregate_id for e in todo})
            for i in range(0, len(ids), 500):
                chunk = ids[i : i + 500]
                for table in (sla_timers.REQUESTS, sla_timers.TIMERS):
                    for row in conn.execute(sa.select(table).where(table.c.request_id.in_(chunk))).mappings():
                        pk = tuple(row[c.name] for c in table.primary_key.columns)
                        rows.cache[(table.name, pk)] = dict(row)
                for rid in chunk:
                    rows.cache.setdefault((sla_timers.REQUESTS.name, (rid,)), None)
            for env in todo:
                proj.apply(env, rows)
            if envelopes[-1].position > start:
                write_position(conn, proj.name, WHOLE_LOG, envelopes[-1].position)
            rows.flush()

    def due(self, now: datetime, limit: int | None = None) -> list[dict[str, Any]]:
        with self.hotline.read_store.engine.connect() as conn:  # one transaction, rolled back
            sla_timers.walk_due_index(conn)
            return sla_timers.due_timers(conn, now, limit or self.batch, full=False)

    def _mark_fired(self, fired: list[tuple[str, str, int, int]], now: datetime) -> bool:
        """Records in the timer table the timer events just committed (``(request_id,
        key, version, position)``, contiguous positions) without reading them back: the
        projection's ``fired`` handler in bulk (``sla_timers.mark_fired``) and the new
        position, in one transaction.

        Only when the table stands just before these events; returns False otherwise
        (others' events in between, or part of the page applied already by someone
        else), and the caller's ``catch_up`` reads the log. True as well when all of
        them were applied already."""
        first, last = fired[0][3], fired[-1][3]
        name = sla_timers.projection.name
        with self.hotline.read_store.engine.begin() as conn:
            start = read_position(conn, name, WHOLE_LOG, for_update=True)
            if start >= last:
                return True
            if start != first - 1:
                return False
            sla_timers.mark_fired(conn, fired, now)
            write_position(conn, name, WHOLE_LOG, last)
        return True

    # -------------------------------------------------------------- firing
    def tick(self) -> int:
        """Fires everything due now; returns how many timer events were recorded."""
        with self._lock:
            self.stats.ticks += 1
            t = time.perf_counter()
            self.catch_up()
            self.stats.took("catch_up", t)
            now = self.hotline.clock.now()
            self.stats.last_tick_at = now.isoformat()
            total = 0
            while True:
                t = time.perf_counter()
                rows = self.due(now)
                self.stats.took("find", t)
                if not rows:
                    return total
                fired = self._fire(rows, now)
                total += fired
                if fired == 0:
                    return total  # nothing fireable in this page (obsolete rows): next tick

    def _fire(self, rows: list[dict[str, Any]], now: datetime) -> int:
        """Fires one page of due rows; the timer table knows the outcome on return."""
        if not self.fast_path:
            return self._slow_path(rows)
        items, slow = self._build(rows, now)
        fired = self._commit_fast(items, slow, now)
        if slow:
            fired += self._slow_path(slow)
        return fired

    def _build(self, rows: list[dict[str, Any]], now: datetime) -> tuple[list[Item], list[dict[str, Any]]]:
        """The page's events at the versions that follow the table's, and the rows that
        need the slow path."""
        t = time.perf_counter()
        fast: list[Item] = []
        slow: list[dict[str, Any]] = []
        next_version: dict[str, int] = {}
        for row in rows:
            if row["last_event_at"] > now:  # events of one request never go back in time
                slow.append(row)
                continue
            version = next_version.get(row["request_id"], row["version"]) + 1
            next_version[row["request_id"]] = version
            fast.append((row, self._event(row, version, now)))
        self.stats.took("build", t)
        return fast, slow

    @staticmethod
    def _event(row: dict[str, Any], version: int, now: datetime) -> Any:
        # The case's correlation (the request id for a request projected before it was kept).
        correlation = row.get("correlation_id") or row["request_id"]
        ctx = Context(TIMER_ACTOR, now, correlation_id=correlation, causation_id=f"timer:{row['key']}")
        event_class: Any = TIMER_EVENTS[row["kind"]]
        return event_class(
            originator_id=uuid.UUID(row["request_id"]),
            originator_version=version,
            timestamp=now,
            meta=ctx.meta(),
            timer_key=row["key"],
            due_at=row["deadline"],
            detail=row["detail"],
            department_id=row["department_id"],
        )

    def _commit_fast(self, items: list[Item], slow: list[dict[str, Any]], now: datetime) -> int:
        """Commits items in one transaction and waits; on a conflict, halves them."""
        if not items:
            return 0
        t = time.perf_counter()
        try:
            recordings = self.hotline.committer.commit([e for _, e in items])
        except IntegrityError:
            self.stats.took("commit_wait", t)
            return self._conflicted(items, slow, now)
        self.stats.took("commit_wait", t)
        return self._recorded(items, recordings, now)

    def _conflicted(self, items: list[Item], slow: list[dict[str, Any]], now: datetime) -> int:
        """Items whose transaction conflicted: halves them to find the culprits, which go
        to the slow path (``slow``); returns how many of the others fired."""
        self.stats.conflicts += 1
        # Halve by request, keeping the page's order: one request's events stay in one
        # transaction, since a later one is only right after the earlier (it would not
        # conflict if the earlier one did and were left out).
        ids = list(dict.fromkeys(row["request_id"] for row, _ in items))
        if len(ids) == 1:
            slow.extend(row for row, _ in items)
            return 0
        left = set(ids[: len(ids) // 2])
        first = [item for item in items if item[0]["request_id"] in left]
        second = [item for item in items if item[0]["request_id"] not in left]
        return self._commit_fast(first, slow, now) + self._commit_fast(second, slow, now)

    def _recorded(self, items: list[Item], recordings: list[Any], now: datetime) -> int:
        """Items committed: counts them and records them in the timer table."""
        t = time.perf_counter()
        self.stats.fast += len(items)
        self.stats.fired += len(items)
        # The timer table learns of these events from memory (no read-back and decode);
        # if that is not possible, catch_up reads whatever others wrote.
        fired = [
            (row["request_id"], row["key"], e.originator_version, rec.notification.id)
            for (row, e), rec in zip(items, recordings, strict=True)
        ]
        positions = [f[3] for f in fired]
        contiguous = positions == list(range(positions[0], positions[0] + len(positions)))
        if not (contiguous and self._mark_fired(fired, now)):
            self.catch_up()
        t = self.stats.took("table", t)
        self._after_commit(positions[-1])
        self.stats.took("projections", t)
        if self.on_fired:
            self.on_fired(len(items))
        return len(items)

    def _slow_path(self, rows: list[dict[str, Any]]) -> int:
        t = time.perf_counter()
        fired = self._slow(rows)
        self.catch_up()  # the table learns what the aggregates decided
        self.stats.took("slow", t)
        if self.on_fired:
            self.on_fired(fired)
        return fired

    def _slow(self, rows: list[dict[str, Any]]) -> int:
        fired = 0
        for i in range(0, len(rows), SLOW_CHUNK):
            chunk = rows[i : i + SLOW_CHUNK]
            cmd = c.FireTimers(timers=[c.DueTimer(request_id=r["request_id"], key=r["key"]) for r in chunk])
            result = self.hotline.bus.execute(cmd, TIMER_ACTOR).result
            fired += len(result["fired"])
            self.stats.skipped += len(result["skipped"])
        self.stats.slow += fired
        self.stats.fired += fired
        return fired

    def _after_commit(self, position: int) -> None:
        after = self.hotline.bus.after_commit
        if after and position:
            after(position)

    # -------------------------------------------------------------- running
    def run(self, stop: threading.Event, poll_seconds: float = 1.0, until_idle: bool = False) -> None:
        """Ticks until ``stop`` is set (or, with ``until_idle``, until nothing is due)."""
        while not stop.is_set():
            try:
                fired = self.tick()
            except Exception as exc:  # a long-running process reports and goes on
                self.stats.errors += 1
                self.stats.last_error = f"{type(exc).__name__}: {exc}"
                log.exception("timer tick failed")
                fired = 0
            if until_idle and fired == 0:
                return
            stop.wait(poll_seconds)

    def status(self) -> dict[str, Any]:
        with self.hotline.read_store.engine.connect() as conn:
            table = sla_timers.timer_status(conn, self.hotline.clock.now())
        return {"process": self.stats.as_dict(), "table": table}


def timer_metrics(process: TimerProcess) -> Any:
    """The timer process's figures for /metrics: its counters, and the backlog (timers due
    and not fired) read from the timer table at scrape time."""
    from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

    from infra.metrics import StatsCollector

    def build() -> Any:
        s = process.stats
        yield CounterMetricFamily("hotline_timers_fired", "Timers fired (events committed)", value=s.fired)
        yield CounterMetricFamily("hotline_timers_conflicts", "Timer batches that met a concurrent write", value=s.conflicts)
        yield CounterMetricFamily("hotline_timers_errors", "Ticks that failed", value=s.errors)
        yield CounterMetricFamily("hotline_timers_ticks", "Ticks run", value=s.ticks)
        with process.hotline.read_store.engine.connect() as conn:
            table = sla_timers.timer_status(conn, process.hotline.clock.now())
        yield GaugeMetricFamily("hotline_timer_backlog", "Timers due now and not fired yet", value=table["pending_due"])
        yield GaugeMetricFamily("hotline_timers_pending", "Timers planned for later", value=table["pending_later"])

    return StatsCollector("hotline_timers", build)


def configure_sla(hotline: Hotline) -> None:
    """Applies the SLA settings to the command handlers' dependencies: the jurisdiction's
    timer policy and, when a calendars file is configured, its calendar as the fallback
    for jurisdictions without a calendar aggregate."""
    from pathlib import Path

    import yaml

    from domain.calendars.aggregate import load_calendars
    from domain.requests.sla import SlaPolicy

    settings = hotline.settings
    deps = hotline.bus.deps
    if settings.sla_policy:
        deps.sla = SlaPolicy.from_dict(settings.sla_policy)
    path: Path | None = settings.calendars_file
    if path is not None and deps.calendar is None:
        calendars = load_calendars(yaml.safe_load(Path(path).read_text("utf-8")))
        deps.calendar = calendars.get(deps.jurisdiction) or calendars.get("default")
