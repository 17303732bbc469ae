"""Readiness: can this API process serve? (``GET /readyz``; ``/healthz`` only says it lives.)

Embedded mode: the event store and the read store answer. Distributed mode, also:
- the relay: events stored but not published (store head − relay position) within
  ``readyz_max_relay_lag``, and not behind without moving for ``readyz_stall_seconds``;
- the projection consumers: the group's lag from its committed offsets against the
  brokers' end offsets (never a self-report), with the same two bounds;
- Kafka answers those offset requests within ``readyz_kafka_timeout_seconds``;
- with PostgreSQL and ``readyz_router``: some process holds the router's leader lock.

The analytics consumers' group is watched too, with the same bounds, but only warns
(``warnings``): reports going stale is no reason to stop serving the operators.

A dead relay or consumer is seen as lag that stops moving, so an idle system (nothing to
publish, nothing to apply) stays ready: nobody waits for anything. Everything is cached
for ``readyz_cache_seconds``; the Kafka requests run on a thread of their own (one at a
time), so a broker that hangs makes ``/readyz`` answer 503 quickly instead of hanging it.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

import sqlalchemy as sa

from infra.runtime import Hotline

log = logging.getLogger("hotline.readiness")

# The router's advisory lock (consumers/router.py LOCK_KEY) as pg_locks shows a bigint key.
_ROUTER_LOCK_SQL = """
SELECT count(*) FROM pg_locks
WHERE locktype = 'advisory' AND granted AND objsubid = 1 AND classid = %(high)s AND objid = %(low)s
  AND database = (SELECT oid FROM pg_database WHERE datname = current_database())
"""


class _Progress:
    """Remembers since when a value (a position, committed offsets) has not changed."""

    def __init__(self) -> None:
        self.value: Any = None
        self.since = time.monotonic()

    def stalled_for(self, value: Any, behind: bool) -> float:
        now = time.monotonic()
        if value != self.value or not behind:
            self.value = value
            self.since = now
        return now - self.since


class Readiness:
    """One per API process (``Readiness.of(hotline)``)."""

    def __init__(self, hotline: Hotline) -> None:
        self.hotline = hotline
        self.settings = hotline.settings
        self.distributed = bool(self.settings.kafka_bootstrap_servers)
        self._lock = threading.Lock()
        self._report: tuple[float, dict[str, Any]] | None = None
        self._relay = _Progress()
        self._consumers = _Progress()
        self._analytics = _Progress()
        # Kafka: the last answer, and the request in flight.
        self._lag_reader: Any = None
        self._kafka_answer: tuple[float, dict[str, dict[str, Any]]] | None = None  # (when, each group's lag)
        self._kafka_error: str | None = None
        self._kafka_started: float | None = None  # a request in flight since
        self._kafka_done = threading.Event()

    @classmethod
    def of(cls, hotline: Hotline) -> Readiness:
        found = hotline.extras.get("readiness")
        if found is None:
            found = hotline.extras.setdefault("readiness", cls(hotline))
        return found  # type: ignore[no-any-return]

    # ------------------------------------------------------------------ positions
    def positions(self) -> tuple[int, dict[str, int]]:
        """(store head, each projection's position): two or three small queries, read now
        (a position just written must show: tests and operators compare it with a commit)."""
        return self.hotline.store.max_position(), self.hotline.read_store.positions()

    # ------------------------------------------------------------------ the report
    def report(self) -> dict[str, Any]:
        with self._lock:
            now = time.monotonic()
            if self._report is not None and now - self._report[0] < self.settings.readyz_cache_seconds:
                return self._report[1]
            checks: dict[str, dict[str, Any]] = {}
            self._check("event_store", checks, self._event_store)
            if self.distributed:
                self._check("relay", checks, self._relay_check)
                self._check("kafka", checks, self._kafka_check)
                self._check("consumers", checks, self._consumer_check)
                self._check("analytics", checks, self._analytics_check)
            if self.settings.database_url and self.settings.readyz_router:
                self._check("router", checks, self._router_check)
            problems = [f"{name}: {c['problem']}" for name, c in checks.items() if not c["ok"]]
            warnings = [f"{name}: {c['warning']}" for name, c in checks.items() if c.get("warning")]
            report = {
                "status": "not ready" if problems else "ready",
                "mode": self.settings.mode,
                "problems": problems,
                "warnings": warnings,
                "checks": checks,
            }
            self._report = (time.monotonic(), report)
            return report

    @staticmethod
    def _check(name: str, checks: dict[str, dict[str, Any]], fn: Callable[[], dict[str, Any]]) -> None:
        try:
            out = fn()
        except Exception as exc:  # a check that cannot run is a check that fails
            out = {"problem": f"{type(exc).__name__}: {str(exc)[:200]}"}
        out.setdefault("problem", None)
        out["ok"] = out["problem"] is None
        checks[name] = out

    def _event_store(self) -> dict[str, Any]:
        head = self.hotline.store.max_position()
        with self.hotline.read_store.engine.connect() as conn:
            conn.execute(sa.text("SELECT 1"))
        return {"position": head}

    def _relay_check(self) -> dict[str, Any]:
        from consumers.kafka_contract import relay_position

        head = self.hotline.store.max_position()
        try:
            with self.hotline.read_store.engine.connect() as conn:
                published = relay_position(conn)
        except sa.exc.ProgrammingError:  # no relay has ever run here
            published = 0
        lag = max(0, head - published)
        stalled = self._relay.stalled_for(published, lag > 0)
        out: dict[str, Any] = {"position": published, "lag": lag}
        if lag > self.settings.readyz_max_relay_lag:
            out["problem"] = f"{lag} events not published (bound {self.settings.readyz_max_relay_lag})"
        elif lag > 0 and stalled > self.settings.readyz_stall_seconds:
            out["problem"] = f"{lag} events not published and the relay has not moved for {stalled:.1f} s: is it running?"
        return out

    # ------------------------------------------------------------------ Kafka
    def _refresh_kafka(self) -> None:
        from consumers.kafka_contract import KafkaLag

        try:
            if self._lag_reader is None:
                self._lag_reader = KafkaLag(self.settings, timeout_ms=int(1000 * self.settings.readyz_kafka_timeout_seconds))
            groups = [self.settings.kafka_consumer_group, self.settings.kafka_analytics_group]
            lags = self._lag_reader.group_lags(groups)
            self._kafka_answer = (time.monotonic(), {g: lags[g].as_dict() | {"committed": lags[g].committed()} for g in groups})
            self._kafka_error = None
        except Exception as exc:
            self._kafka_error = f"{type(exc).__name__}: {str(exc)[:200]}"
        finally:
            self._kafka_started = None
            self._kafka_done.set()

    def _kafka_state(self) -> tuple[dict[str, dict[str, Any]] | None, str | None]:
        """The last answer if fresh enough, else a new one (waited for, up to the Kafka
        timeout), or the problem. Answering from the previous probe's figures while a new
        request ran made every answer one probe late: a probe after two quiet minutes saw
        committed offsets two minutes old and called a healthy consumer stalled."""
        timeout = self.settings.readyz_kafka_timeout_seconds
        now = time.monotonic()
        answer_at = self._kafka_answer[0] if self._kafka_answer else None
        due = answer_at is None or now - answer_at >= self.settings.readyz_cache_seconds
        if self._kafka_started is None and due:
            self._kafka_started = now
            self._kafka_done.clear()
            threading.Thread(target=self._refresh_kafka, name="readyz-kafka", daemon=True).start()
        if due:  # this probe's answer, or the timeout's problem below (a broker that hangs)
            self._kafka_done.wait(max(0.0, timeout + 0.5 - (time.monotonic() - (self._kafka_started or now))))
        if self._kafka_started is not None and time.monotonic() - self._kafka_started > timeout:
            return None, f"no answer from {self.settings.kafka_bootstrap_servers} for {time.monotonic() - self._kafka_started:.1f} s"
        if self._kafka_error is not None:
            return None, self._kafka_error
        if self._kafka_answer is None:
            return None, "no answer yet"
        return self._kafka_answer[1], None

    def _kafka_check(self) -> dict[str, Any]:
        answer, problem = self._kafka_state()
        out: dict[str, Any] = {"bootstrap_servers": self.settings.kafka_bootstrap_servers}
        if problem is not None:
            out["problem"] = problem
        elif answer is not None and self._kafka_answer is not None:
            out["answered_seconds_ago"] = round(time.monotonic() - self._kafka_answer[0], 3)
        return out

    def _group_lag(self, group: str, progress: _Progress, field: str) -> dict[str, Any]:
        """A consumer group's lag; what is wrong with it, if anything, in ``field``."""
        answers, problem = self._kafka_state()
        if answers is None:
            return {"group": group, field: f"lag unknown ({problem})"}
        answer = answers[group]
        lag = int(answer["lag"])
        committed = answer["committed"]
        stalled = progress.stalled_for(committed, lag > 0)
        out: dict[str, Any] = {"group": group, "lag": lag, "partitions_behind": [p for p in answer["partitions"] if p["lag"]]}
        if lag > self.settings.readyz_max_consumer_lag:
            out[field] = f"group {group} is {lag} messages behind (bound {self.settings.readyz_max_consumer_lag})"
        elif lag > 0 and stalled > self.settings.readyz_stall_seconds:
            out[field] = (
                f"group {group} is {lag} messages behind, nothing committed for {stalled:.1f} s: its consumers are down"
                " or stuck (one applying a very large batch commits only at its end)"
            )
        return out

    def _consumer_check(self) -> dict[str, Any]:
        return self._group_lag(self.settings.kafka_consumer_group, self._consumers, "problem")

    def _analytics_check(self) -> dict[str, Any]:
        group = self.settings.kafka_analytics_group
        try:
            out = self._group_lag(group, self._analytics, "warning")
        except Exception as exc:  # only ever a warning: never a 503 for the reports' sake
            out = {"group": group, "warning": f"lag unknown ({type(exc).__name__}: {str(exc)[:200]})"}
        if out.get("warning"):
            out["warning"] += ": reports are stale until `hotline consume analytics` catches up"
        return out

    # ------------------------------------------------------------------ router
    def _router_check(self) -> dict[str, Any]:
        from consumers.router import LOCK_KEY

        raw = self.hotline.read_store.engine.raw_connection()
        try:
            cur = raw.cursor()
            cur.execute(_ROUTER_LOCK_SQL, {"high": LOCK_KEY >> 32, "low": LOCK_KEY & 0xFFFFFFFF})
            row = cur.fetchone()
            holders = int(row[0]) if row else 0
            raw.rollback()
        finally:
            raw.close()
        if holders == 0:
            return {"leader": False, "problem": "no router holds the leader lock: is `hotline router` (or serve's router) running?"}
        return {"leader": True}


__all__ = ["Readiness"]
