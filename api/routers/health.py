"""Liveness (``/healthz``), readiness (``/readyz``) and Prometheus metrics (``/metrics``).

``/healthz`` answers while the process lives (a liveness probe restarts it when not), with
the store's head and each projection's position and lag. ``/readyz``
says whether it can serve: 503 with the checks that failed (infra/readiness.py), for load
balancers and for an on-call engineer."""

from __future__ import annotations

import hmac
from typing import Any

from fastapi import Depends, Request, Response
from fastapi.responses import JSONResponse
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from api.auth import OPEN
from api.deps import get_hotline
from api.errors import Unauthenticated
from api.responses import NotReady, ReadinessReport
from api.routing import HotlineRouter
from api.schemas import Health
from infra.metrics import CONTENT_TYPE_LATEST, ProjectionPositions, exposition
from infra.readiness import Readiness
from infra.runtime import Hotline

router = HotlineRouter(tags=["health"])


@router.get("/healthz", response_model=Health)
def healthz(hotline: Hotline = Depends(get_hotline), _: None = OPEN) -> Health:
    """The process is alive. Also the store's head and each projection's position (the
    highest position up to which it has applied every event) and lag;
    an unreachable store is reported here but makes this no failure (see /readyz)."""
    try:
        position, applied = Readiness.of(hotline).positions()
    except Exception as exc:
        return Health(status="ok", mode=hotline.settings.mode, event_store=f"unreachable: {type(exc).__name__}", position=0, projections={})
    return Health(
        status="ok",
        mode=hotline.settings.mode,
        event_store="postgresql" if hotline.store.is_postgres else "sqlite",
        position=position,
        projections={
            p.name: {"position": applied.get(p.name, 0), "lag": max(0, position - applied.get(p.name, 0))}
            for p in hotline.read_store.projections
        },
    )


@router.get(
    "/readyz",
    response_model=ReadinessReport,
    responses={
        200: {"description": "Ready: every check passed"},
        503: {"model": NotReady, "description": "Not ready: ``problems`` names each failed check"},
    },
)
def readyz(hotline: Hotline = Depends(get_hotline), _: None = OPEN) -> JSONResponse:
    """Can this process serve? The stores answer and, in the distributed mode, the relay,
    the projection consumers (committed offsets against end offsets) and Kafka are within
    the ``HOTLINE_READYZ_*`` bounds, and a router leads. Cached for a second."""
    report = Readiness.of(hotline).report()
    ready = report["status"] == "ready"
    # Checked against the model it documents; the report itself is answered (a JSONResponse
    # bypasses response_model, and the 503 needs one).
    (ReadinessReport if ready else NotReady).model_validate(report)
    return JSONResponse(report, status_code=200 if ready else 503)


class ReadinessMetrics(Collector):
    """``/readyz`` as gauges, so that alerts need no blackbox prober."""

    def __init__(self, readiness: Readiness) -> None:
        self.readiness = readiness

    def collect(self) -> Any:
        report = self.readiness.report()
        yield GaugeMetricFamily("hotline_ready", "1 when /readyz answers 200", value=1 if report["status"] == "ready" else 0)
        check = GaugeMetricFamily("hotline_ready_check", "1 when the /readyz check passes", labels=["check"])
        warning = GaugeMetricFamily("hotline_ready_warning", "1 when the /readyz check warns (not a failure)", labels=["check"])
        for name, c in report["checks"].items():
            check.add_metric([name], 1 if c["ok"] else 0)
            warning.add_metric([name], 1 if c.get("warning") else 0)
        yield check
        yield warning
        relay = report["checks"].get("relay", {})
        if "lag" in relay:
            yield GaugeMetricFamily("hotline_readiness_relay_lag_events", "Stored events the relay has not published", value=relay["lag"])
        groups = [c for name in ("consumers", "analytics") if "lag" in (c := report["checks"].get(name, {}))]
        if groups:
            lag = GaugeMetricFamily(
                "hotline_readiness_consumer_lag_messages", "Consumer group lag: end offsets minus committed offsets", labels=["group"]
            )
            for c in groups:
                lag.add_metric([c["group"]], c["lag"])
            yield lag


def _collectors(hotline: Hotline) -> tuple[Collector, ...]:
    found = hotline.extras.get("metrics_collectors")
    if found is None:
        readiness = Readiness.of(hotline)

        def positions() -> tuple[int, dict[str, int], list[str]]:
            head, applied = readiness.positions()
            return head, applied, [p.name for p in hotline.read_store.projections]

        found = hotline.extras.setdefault("metrics_collectors", (ProjectionPositions(positions), ReadinessMetrics(readiness)))
    return found + _background(hotline)  # type: ignore[no-any-return]


def _background(hotline: Hotline) -> tuple[Collector, ...]:
    """The figures of what ``hotline serve`` runs in threads (consumers/background.py puts
    them in ``extras``), as their own processes show them on their own ports."""
    kept: dict[str, Collector] = hotline.extras.setdefault("background_collectors", {})
    for key in ("router", "timers", "notifier"):
        worker = hotline.extras.get(key)
        if worker is not None and key not in kept:
            if key == "router":
                from consumers.router import router_metrics as make
            elif key == "timers":
                from consumers.timers import timer_metrics as make  # type: ignore[assignment]
            else:
                from consumers.notifications import notifier_metrics as make  # type: ignore[assignment]
            kept[key] = make(worker)
    return tuple(kept.values())


@router.get("/metrics", include_in_schema=False)
def metrics(request: Request, hotline: Hotline = Depends(get_hotline), _: None = OPEN) -> Response:
    """Prometheus text format: commands, group commit, HTTP latency, each projection's
    position and lag, and readiness. With ``HOTLINE_METRICS_TOKEN`` set, the scraper sends
    it as a bearer token."""
    expected = hotline.settings.metrics_token
    if expected and not hmac.compare_digest(request.headers.get("authorization", ""), f"Bearer {expected}"):
        raise Unauthenticated("/metrics wants 'Authorization: Bearer <HOTLINE_METRICS_TOKEN>'")
    return Response(exposition(*_collectors(hotline)), media_type=CONTENT_TYPE_LATEST)
