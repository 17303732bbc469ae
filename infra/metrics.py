"""Prometheus metrics: one registry per process, exposed by the API at ``/metrics``.

Every process (the API, and later the relay, the consumers, the router, the timers …)
records into :data:`REGISTRY`; what must be read at scrape time (projection positions
from the read store) is a collector added to the scrape (:func:`exposition`) or, in a
process that exposes the registry itself, registered once (:func:`serve_metrics`).

The write path records every command: the label children are looked up once per
(command class, outcome) and kept, so a command costs a dict lookup, a counter increment
and a histogram observation (about a microsecond and a half).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    GC_COLLECTOR,
    PLATFORM_COLLECTOR,
    PROCESS_COLLECTOR,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
    generate_latest,
    start_http_server,
)
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

__all__ = [
    "CONTENT_TYPE_LATEST",
    "REGISTRY",
    "ProjectionPositions",
    "StatsCollector",
    "exposition",
    "metrics_port",
    "serve_metrics",
    "start_process_metrics",
]

disable_created_metrics()  # no *_created series: half the scrape, and Prometheus does not use them
REGISTRY = CollectorRegistry()
for _collector in (PROCESS_COLLECTOR, PLATFORM_COLLECTOR, GC_COLLECTOR):  # process_*, python_* (as the default registry has)
    REGISTRY.register(_collector)

_LATENCY = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

# --- commands (infra/bus.py) -------------------------------------------------------------
COMMANDS = Counter(
    "hotline_commands",
    "Commands executed by the command bus, by command class and outcome (ok, replayed, refused, conflict, error)",
    ["command", "outcome"],
    registry=REGISTRY,
)
COMMAND_SECONDS = Histogram(
    "hotline_command_duration_seconds",
    "Time from the bus receiving a command to its answer (handler, retries, group commit, after-commit work)",
    ["command", "outcome"],
    buckets=_LATENCY,
    registry=REGISTRY,
)
_command_children: dict[tuple[str, str], tuple[Any, Any]] = {}


def observe_command(command: str, outcome: str, seconds: float) -> None:
    key = (command, outcome)
    children = _command_children.get(key)
    if children is None:
        children = _command_children.setdefault(key, (COMMANDS.labels(*key), COMMAND_SECONDS.labels(*key)))
    children[0].inc()
    children[1].observe(seconds)


# --- group commit (infra/group_commit.py) ------------------------------------------------
GROUP_COMMIT_BATCH = Histogram(
    "hotline_group_commit_batch_commands",
    "Commands stored together in one group-commit transaction",
    buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256, 512),
    registry=REGISTRY,
)
GROUP_COMMIT_SECONDS = Histogram(
    "hotline_group_commit_duration_seconds",
    "Time to store one group-commit batch (conflict handling included)",
    buckets=_LATENCY,
    registry=REGISTRY,
)

# --- HTTP (api/app.py) -------------------------------------------------------------------
HTTP_SECONDS = Histogram(
    "hotline_http_request_duration_seconds",
    "HTTP requests by method, route template and status, time spent in the application",
    ["method", "route", "status"],
    buckets=_LATENCY,
    registry=REGISTRY,
)
_http_children: dict[tuple[str, str, int], Any] = {}


def observe_http(method: str, route: str, status: int, seconds: float) -> None:
    key = (method, route, status)
    child = _http_children.get(key)
    if child is None:
        child = _http_children.setdefault(key, HTTP_SECONDS.labels(method, route, str(status)))
    child.observe(seconds)


# --- projection consumers (consumers/kafka_projections.py) --------------------------------
CONSUMER_EVENTS = Counter("hotline_consumer_events", "Events applied to the read models from Kafka", ["group"], registry=REGISTRY)
CONSUMER_BATCH = Histogram(
    "hotline_consumer_batch_events",
    "Events applied in one read-model transaction",
    ["group"],
    buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048),
    registry=REGISTRY,
)
CONSUMER_APPLY_SECONDS = Histogram(
    "hotline_consumer_apply_duration_seconds", "Time to apply one batch to the read models", ["group"], buckets=_LATENCY, registry=REGISTRY
)
CONSUMER_LAG = Gauge(
    "hotline_consumer_lag_messages",
    "Messages of an assigned partition not yet consumed (end offset minus this member's position), every 2 s",
    ["group", "topic", "partition"],
    registry=REGISTRY,
)
CONSUMER_COMMITS = Counter(
    "hotline_consumer_offset_commits",
    "Offset commits sent by a consumer, by reason (interval: at most every offset_commit_interval; forced: revocation, close)",
    ["group", "reason"],
    registry=REGISTRY,
)


# --- read at scrape time -----------------------------------------------------------------
PositionSource = Callable[[], tuple[int, Mapping[str, int], Iterable[str]]]


class ProjectionPositions(Collector):
    """The event store's head, and each projection's position and lag, read when scraped.
    ``source`` returns (head position, applied position by projection, projection names)."""

    def __init__(self, source: PositionSource) -> None:
        self.source = source

    def collect(self) -> Iterator[Metric]:
        up = GaugeMetricFamily("hotline_read_store_up", "1 if the event store and read store answered this scrape")
        try:
            head, applied, names = self.source()
        except Exception:
            up.add_metric([], 0)
            yield up
            return
        up.add_metric([], 1)
        yield up
        yield GaugeMetricFamily("hotline_event_store_position", "Global position of the last stored event", value=head)
        position = GaugeMetricFamily("hotline_projection_position", "Last event position applied by the projection", labels=["projection"])
        lag = GaugeMetricFamily("hotline_projection_lag_events", "Stored events the projection has not applied", labels=["projection"])
        for name in names:
            at = applied.get(name, 0)
            position.add_metric([name], at)
            lag.add_metric([name], max(0, head - at))
        yield position
        yield lag


class _Scrape:
    """The registry plus collectors that belong to one scrape only."""

    def __init__(self, extra: tuple[Collector, ...]) -> None:
        self.extra = extra

    def collect(self) -> Iterator[Metric]:
        yield from REGISTRY.collect()
        for collector in self.extra:
            yield from collector.collect()


def exposition(*extra: Collector) -> bytes:
    """The registry in Prometheus' text format, with ``extra`` collectors read now."""
    return generate_latest(_Scrape(extra))  # type: ignore[arg-type]


def serve_metrics(port: int, *collectors: Collector, addr: str = "127.0.0.1") -> None:
    """For a process without the API (relay, consumers, router …): register its
    scrape-time collectors and serve the registry on ``port`` from a daemon thread."""
    for collector in collectors:
        REGISTRY.register(collector)
    start_http_server(port, addr=addr, registry=REGISTRY)


class StatsCollector(Collector):
    """Families built at scrape time by ``build`` (a process's own counters and the
    tables it reads), so that the work loop pays nothing for them. A failing ``build``
    yields ``<prefix>_scrape_ok 0`` instead of breaking the scrape."""

    def __init__(self, prefix: str, build: Callable[[], Iterable[Metric]]) -> None:
        self.prefix = prefix
        self.build = build

    def collect(self) -> Iterator[Metric]:
        try:
            families = list(self.build())
        except Exception:
            families = []
            ok = 0
        else:
            ok = 1
        yield GaugeMetricFamily(f"{self.prefix}_scrape_ok", "1 if this process's own figures could be read for this scrape", value=ok)
        yield from families


# --- a port per process ------------------------------------------------------------------
# ``metrics_base_port`` + the offset (HOTLINE_METRICS_PORT overrides it for one process).
PROCESS_PORT_OFFSETS = {"consumer": 1, "analytics": 2, "router": 3, "timers": 4, "notify": 5, "relay": 6}


def metrics_port(settings: Any, process: str) -> int | None:
    """The port ``process`` serves /metrics on (None: not served)."""
    if settings.metrics_port is not None:
        return int(settings.metrics_port)
    if not settings.metrics_base_port:
        return None
    return int(settings.metrics_base_port) + PROCESS_PORT_OFFSETS[process]


def start_process_metrics(settings: Any, process: str, *collectors: Collector) -> int | None:
    """Serves the registry (with ``collectors``) for a long-running process; returns the
    port, or None when switched off or the port is taken (logged: the process runs on)."""
    import logging

    port = metrics_port(settings, process)
    if port is None:
        return None
    try:
        serve_metrics(port, *collectors, addr=settings.metrics_addr)
    except OSError as exc:
        logging.getLogger("hotline.metrics").warning("/metrics of %s not served on port %d: %s", process, port, exc)
        return None
    logging.getLogger("hotline.metrics").info("%s metrics on http://%s:%d/metrics", process, settings.metrics_addr, port)
    return port
