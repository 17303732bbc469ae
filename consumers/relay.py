"""``hotline relay``: the outbox relay from the event store to Kafka.

The event store *is* the outbox: every committed event has a global position in its
notification log. The relay follows that log and publishes each public event to the
topic of its aggregate type (``hotline.requests`` …), key = aggregate id (so one
aggregate's events stay in order in one partition), value = a CloudEvents 1.0 JSON
envelope with personal data masked.

Delivery is at-least-once: a batch is sent, the producer is flushed, every send is
checked, and only then is the relay's position (and the batch's routes, for
read-your-writes) written. A relay killed mid-batch re-sends that batch on restart;
consumers deduplicate by position and integrators by the CloudEvents ``id``.

One relay publishes at a time (:mod:`consumers.leadership`). PostgreSQL: the leader holds
a session-level advisory lock, and writes its position on that same session, so a relay
that lost the lock cannot record anything (fenced); standbys try for the lock every half
second and the server frees it the moment a leader's connection drops, so a standby takes
over within a second or two of a leader dying. It resumes from the recorded position: the
one batch the dead leader sent but did not record goes out again (at-least-once). SQLite:
an exclusive ``flock`` on ``<data_dir>/relay-<name>.lock`` plays the lock's part (one machine).

Each relay serves Prometheus ``/metrics`` (leader or not) on ``HOTLINE_METRICS_BASE_PORT`` + 6, or
``HOTLINE_METRICS_PORT`` (infra/metrics.py, like every long-running process).
"""

from __future__ import annotations

import contextlib
import functools
import json
import logging
import select
import signal
import threading
import time
from collections import Counter as Tally
from collections.abc import Callable, Iterator
from typing import Any

from kafka import KafkaProducer
from kafka.admin import KafkaAdminClient, NewTopic
from kafka.errors import KafkaConfigurationError, KafkaError, TopicAlreadyExistsError
from kafka.partitioner.default import DefaultPartitioner, murmur2
from prometheus_client import Counter, Histogram
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from consumers.fast_decode import decoder_for
from consumers.kafka_contract import (
    INTERNAL_STREAMS,
    RELAY_NAME,
    check_feed_ids,
    create_relay_tables,
    feed_id,
    now,
    public_streams,
    relay_position,
    relay_positions,
    relay_routes,
    topic_for,
)
from consumers.leadership import AdvisoryLockLeadership, FileLockLeadership, Leadership, named_lock_key
from infra.eventstore import EventStore
from infra.read_store import _upsert, make_engine
from infra.runtime import tune_gc
from infra.settings import Settings

log = logging.getLogger("hotline.relay")


try:  # orjson: the same compact UTF-8 JSON, several times faster
    from orjson import dumps as _dumps
except ImportError:  # pragma: no cover
    _dumps = None  # type: ignore[assignment]


def encode(value: dict[str, Any]) -> bytes:
    if _dumps is not None:
        try:
            return _dumps(value)
        except TypeError:  # something orjson does not serialise (e.g. a big int): the standard way
            pass
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode()


@functools.lru_cache(maxsize=65_536)
def _key_hash(key: bytes) -> int:
    return murmur2(key) & 0x7FFFFFFF


def same_partition_as_java(key: bytes | None, all_partitions: list[int], available: list[int]) -> int:
    """Kafka's default partitioner (murmur2 of the key, as the Java client and kafka-python
    compute it), with the hash remembered per key: kafka-python's murmur2 is pure Python,
    and an aggregate's events, all keyed by its id, come one after another."""
    if key is None:
        return DefaultPartitioner()(key, all_partitions, available)
    return all_partitions[_key_hash(key) % len(all_partitions)]


def make_producer(settings: Settings, **overrides: Any) -> KafkaProducer:
    config: dict[str, Any] = {
        "bootstrap_servers": settings.kafka_bootstrap_servers,
        "acks": "all",
        "enable_idempotence": True,  # broker drops a retried duplicate of the same batch
        "retries": 2_147_483_647,
        # kafka-python's idempotent producer keeps order with one request in flight.
        "max_in_flight_requests_per_connection": 1,
        "linger_ms": 2,
        "batch_size": 256 * 1024,
        "compression_type": None,
        "request_timeout_ms": 15_000,
        "delivery_timeout_ms": 30_000,
        "reconnect_backoff_max_ms": 2_000,
        "client_id": "hotline-relay",
        "partitioner": same_partition_as_java,
    }
    config.update(overrides)
    return KafkaProducer(**config)


def ensure_topics(settings: Settings, topics: list[str], admin: KafkaAdminClient | None = None) -> None:
    """Creates missing topics with the partitions and retention the settings name."""
    own = admin is None
    admin = admin or KafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap_servers, client_id="hotline-relay-admin")
    try:
        existing = set(admin.list_topics())
        missing = [t for t in topics if t not in existing]
        if missing:
            new = [
                NewTopic(
                    name=t,
                    num_partitions=settings.kafka_topic_partitions,
                    replication_factor=1,
                    topic_configs={"retention.ms": str(settings.kafka_topic_retention_ms)},
                )
                for t in missing
            ]
            # Another relay (or a test) may have created one meanwhile.
            with contextlib.suppress(TopicAlreadyExistsError):
                admin.create_topics(new, validate_only=False)
            log.info("created topics %s", missing)
    finally:
        if own:
            admin.close()


_RECORD_SQL = """
WITH routes AS (
    INSERT INTO relay_routes (feed, first_position, last_position)
    SELECT * FROM unnest(%(feeds)s::integer[], %(firsts)s::bigint[], %(lasts)s::bigint[])
    ON CONFLICT (feed, last_position) DO UPDATE SET first_position = EXCLUDED.first_position
)
INSERT INTO relay_positions (name, position, published, updated_at)
VALUES (%(name)s, %(position)s, %(published)s, now())
ON CONFLICT (name) DO UPDATE
SET position = EXCLUDED.position, published = EXCLUDED.published, updated_at = EXCLUDED.updated_at
"""


class LostLeadership(RuntimeError):
    """This relay no longer holds the lock (its session dropped): it must stop publishing."""


_BATCH_SECONDS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


class RelayMetrics:
    """The relay's own series. Kept out of the shared registry (the API imports this module
    and must not show them); :class:`RelayCollector` exposes them in the relay process."""

    def __init__(self) -> None:
        self.published = Counter(
            "hotline_relay_published_messages",
            "Messages published by this relay process and acknowledged by Kafka, by topic and partition",
            ["topic", "partition"],
            registry=None,
        )
        self.batch_entries = Histogram(
            "hotline_relay_batch_entries",
            "Log entries one relay batch moved past (public and internal events)",
            buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096),
            registry=None,
        )
        self.batch_seconds = Histogram(
            "hotline_relay_batch_duration_seconds",
            "Time to read, publish, flush and record one batch",
            buckets=_BATCH_SECONDS,
            registry=None,
        )
        self.takeovers = Counter("hotline_relay_leadership_acquired", "Times this process became the active relay", registry=None)
        # Last global position sent to each (topic, partition) by this process.
        self.partition_position: dict[tuple[str, int], int] = {}

    def record_batch(self, entries: int, seconds: float, sent: Tally[tuple[str, int]], last: dict[tuple[str, int], int]) -> None:
        self.batch_entries.observe(entries)
        self.batch_seconds.observe(seconds)
        for (topic, partition), n in sent.items():
            self.published.labels(topic, str(partition)).inc(n)
        self.partition_position.update(last)


class RelayCollector(Collector):
    """What the relay's ``/metrics`` shows: its counters, whether it leads, and the store's
    head against the recorded relay position (read at scrape time, so a standby shows the
    leader's lag too)."""

    def __init__(self, relay: Relay) -> None:
        self.relay = relay

    def collect(self) -> Iterator[Metric]:
        relay = self.relay
        m = relay.metrics
        yield from m.published.collect()
        yield from m.batch_entries.collect()
        yield from m.batch_seconds.collect()
        yield from m.takeovers.collect()
        yield GaugeMetricFamily(
            "hotline_relay_leader", "1 if this process is the active relay, 0 if it stands by", value=int(relay.is_leader)
        )
        position = GaugeMetricFamily(
            "hotline_relay_partition_position", "Last global position this relay published to the partition", labels=["topic", "partition"]
        )
        for (topic, partition), at in sorted(m.partition_position.items()):
            position.add_metric([topic, str(partition)], at)
        yield position
        up = GaugeMetricFamily("hotline_relay_store_up", "1 if the event store and the relay's bookkeeping answered this scrape")
        try:
            head = relay.store.max_position()
            recorded = relay._load_position()
        except Exception:
            up.add_metric([], 0)
            yield up
            return
        up.add_metric([], 1)
        yield up
        yield GaugeMetricFamily(
            "hotline_relay_position", "Global position up to which the relay has published and recorded", value=recorded
        )
        yield GaugeMetricFamily(
            "hotline_relay_lag_events",
            "Log entries stored but not yet published (the relay follows one ordered log)",
            value=max(0, head - recorded),
        )


class Relay:
    """Follows the notification log and publishes to Kafka; one active relay per store
    (and ``name``): the others stand by until the leader's lock is free."""

    def __init__(
        self,
        settings: Settings,
        store: EventStore | None = None,
        *,
        batch: int = 2000,
        idle_wait: float = 0.05,
        name: str = RELAY_NAME,
        producer: KafkaProducer | None = None,
        leadership: Leadership | None = None,
        standby_poll: float = 0.5,
    ) -> None:
        if not settings.kafka_bootstrap_servers:
            raise ValueError("the relay needs HOTLINE_KAFKA_BOOTSTRAP_SERVERS")
        self.settings = settings
        self.store = store or EventStore(settings)
        self._own_store = store is None
        self.engine = make_engine(settings.read_store_url, 2)
        create_relay_tables(self.engine)
        self.batch = batch
        self.idle_wait = idle_wait
        self.name = name
        self.producer = producer
        self.known_topics: set[str] = set()
        self.decoder = decoder_for(self.store, masked=True)  # it publishes personal data masked
        self.position = self._load_position()
        self.published = 0  # messages sent by this process
        self.stopping = threading.Event()
        self._listener: Any = None
        self._bookkeeping: Any = None  # PostgreSQL without the lock's session: the connection _record_pg writes on
        self.leadership = leadership or self._default_leadership()
        self.standby_poll = standby_poll  # how often a standby tries for the lock
        self.is_leader = False
        self._proven = 0.0  # when the lock was last known held (monotonic)
        self.metrics = RelayMetrics()

    def _default_leadership(self) -> Leadership:
        key = named_lock_key(f"relay:{self.name}")
        if self.store.is_postgres and self.settings.database_url:
            # The lock's session is also the bookkeeping connection (_record_pg).
            return AdvisoryLockLeadership(self.settings.database_url, key, prepare_threshold=0)
        return FileLockLeadership(self.settings.data_dir / f"relay-{self.name}.lock")

    # ----------------------------------------------------------------- leadership
    def _lead(self) -> bool:
        """True when this relay may publish: it holds the lock, or has just taken it (then
        it resumes from the recorded position, where the last leader stopped)."""
        now_ = time.monotonic()
        if self.is_leader:
            # A recorded batch proves the lock's session alive; idle, ask at most once a second.
            if now_ - self._proven < 1.0:
                return True
            if self.leadership.still_leader():
                self._proven = now_
                return True
            log.warning("relay %s: lost leadership; standing by", self.name)
            self._step_down()
            return False
        if not self.leadership.acquire():
            return False
        self.is_leader = True
        self._proven = now_
        self.position = self._load_position()
        self.metrics.takeovers.inc()
        log.info("relay %s: leader now, publishing from position %d", self.name, self.position)
        return True

    def _step_down(self) -> None:
        self.is_leader = False
        self.leadership.release()

    def _lock_session(self) -> Any:
        """The lock-holding PostgreSQL session, when the leadership has one."""
        if isinstance(self.leadership, AdvisoryLockLeadership):
            conn = self.leadership.conn
            if conn is None or conn.closed:
                raise LostLeadership(f"relay {self.name}: the lock's session is gone")
            return conn
        return None

    # ----------------------------------------------------------------- bookkeeping
    def _load_position(self) -> int:
        with self.engine.connect() as conn:
            return relay_position(conn, self.name)

    def lag(self) -> int:
        return max(0, self.store.max_position() - self.position)

    def _record(self, position: int, routes: dict[int, tuple[int, int]], sent: int) -> None:
        if self.store.is_postgres:
            self._record_pg(position, routes, sent)
            return
        with self.engine.begin() as conn:
            if routes:
                _upsert(
                    conn,
                    relay_routes,
                    [{"feed": f, "first_position": first, "last_position": last} for f, (first, last) in routes.items()],
                )
            _upsert(
                conn,
                relay_positions,
                [{"name": self.name, "position": position, "published": sent, "updated_at": now()}],
            )

    def _record_pg(self, position: int, routes: dict[int, tuple[int, int]], sent: int) -> None:
        """Routes and position in one statement, one round trip (autocommit: a statement is
        atomic on its own). The record is on the path of every read-your-writes wait.

        Written on the session that holds the leader's lock: if that session died, the lock
        is another relay's now and this write fails instead of moving the position."""
        import psycopg

        conn = self._lock_session()
        if conn is None:
            if self._bookkeeping is None:
                self._bookkeeping = psycopg.connect(self.settings.database_url or "", autocommit=True, prepare_threshold=0)
            conn = self._bookkeeping
        feeds = list(routes)
        params = {
            "feeds": feeds,
            "firsts": [routes[f][0] for f in feeds],
            "lasts": [routes[f][1] for f in feeds],
            "name": self.name,
            "position": position,
            "published": sent,
        }
        try:
            conn.execute(_RECORD_SQL, params)
        except psycopg.OperationalError as exc:
            if conn is not self._bookkeeping:
                self._step_down()
                raise LostLeadership(f"relay {self.name}: the lock's session failed ({exc}); the batch will be sent again") from exc
            self._bookkeeping.close()  # reconnect on the next batch
            self._bookkeeping = None
            raise
        if conn is not self._bookkeeping:
            self._proven = time.monotonic()

    # ----------------------------------------------------------------- publishing
    def _producer(self) -> KafkaProducer:
        if self.producer is None:
            self.producer = make_producer(self.settings)
        return self.producer

    def _topic(self, stream: str) -> str:
        topic = topic_for(self.settings, stream)
        if topic not in self.known_topics:
            ensure_topics(self.settings, [topic])
            check_feed_ids({*self.known_topics, topic}, self.settings.kafka_topic_partitions)
            self.known_topics.add(topic)
        return topic

    def prepare(self) -> None:
        """Creates every public topic up front (integrators can subscribe before traffic)."""
        topics = [topic_for(self.settings, s) for s in public_streams()]
        ensure_topics(self.settings, topics)
        check_feed_ids(topics, self.settings.kafka_topic_partitions)
        self.known_topics.update(topics)

    def publish_once(self) -> int:
        """Publishes the next batch; returns how many log entries it moved past (0: nothing new).
        Only the leader publishes (:meth:`run` takes the lock first)."""
        if not self.is_leader:
            raise LostLeadership(f"relay {self.name} is not the leader")
        started = time.perf_counter()
        notifications = self.store.notifications(self.position, self.batch)
        if not notifications:
            return 0
        producer = self._producer()
        mask_text = self.settings.encrypt_citizen_text
        futures = []
        routes: dict[int, tuple[int, int]] = {}
        for n in notifications:
            env = self.decoder.envelope(n)
            if env.stream in INTERNAL_STREAMS:
                continue
            topic = self._topic(env.stream)
            value = encode(env.to_cloudevent(mask_personal=True, mask_citizen_text=mask_text))
            futures.append((env.position, producer.send(topic, key=env.aggregate_id.encode(), value=value)))
        producer.flush(timeout=self.settings_flush_timeout)
        sent: Tally[tuple[str, int]] = Tally()
        reached: dict[tuple[str, int], int] = {}
        for position, future in futures:
            # Raises if the broker did not acknowledge: the position is then not recorded.
            metadata = future.get(timeout=0)
            f = feed_id(metadata.topic, metadata.partition)
            first, _ = routes.get(f, (position, position))
            routes[f] = (first, position)
            where = (metadata.topic, metadata.partition)
            sent[where] += 1
            reached[where] = position
        last = notifications[-1].id
        self.published += len(futures)
        self._record(last, routes, self.published)
        self.position = last
        self.metrics.record_batch(len(notifications), time.perf_counter() - started, sent, reached)
        return len(notifications)

    settings_flush_timeout = 30.0

    # ----------------------------------------------------------------- the loop
    def _wait_for_events(self) -> None:
        """Sleeps until the store NOTIFYs a commit (PostgreSQL) or ``idle_wait`` passes."""
        if self._listener is None and self.store.is_postgres:
            try:
                import psycopg

                url = self.settings.database_url or ""
                conn = psycopg.connect(url, autocommit=True)
                channel = getattr(self.store.recorder, "channel_name", "hotline_events")
                conn.execute(f'LISTEN "{channel}"')
                self._listener = conn
            except Exception:
                log.exception("LISTEN failed; polling")
                self._listener = False
        if self._listener:
            conn = self._listener
            ready, _, _ = select.select([conn.fileno()], [], [], self.idle_wait)
            if ready:
                for _ in conn.notifies(timeout=0, stop_after=1000):
                    pass
            return
        self.stopping.wait(self.idle_wait)

    def run(self, until: Callable[[Relay], bool] | None = None, report: Callable[[Relay], None] | None = None) -> None:
        self.prepare()
        backoff = 0.2
        last_report = 0.0
        try:
            while not self.stopping.is_set():
                if report and time.monotonic() - last_report > 5:
                    report(self)
                    last_report = time.monotonic()
                if not self._lead():
                    # Standby: try for the lock again shortly (a dead leader's lock is free at once).
                    self.stopping.wait(self.standby_poll)
                    continue
                try:
                    moved = self.publish_once()
                    backoff = 0.2
                except LostLeadership as exc:
                    log.warning("%s", exc)
                    self._step_down()
                    continue
                except KafkaConfigurationError:
                    raise
                except KafkaError as exc:
                    # Broker away: keep the position, resend the batch when it is back.
                    log.warning("Kafka unavailable (%s); retrying in %.1fs", exc, backoff)
                    self._reset_producer()
                    self.stopping.wait(backoff)
                    backoff = min(backoff * 2, 5.0)
                    continue
                if until is not None and until(self):
                    return
                if not moved:
                    self._wait_for_events()
                    if self.settings.relay_gather_ms > 0:
                        self.stopping.wait(self.settings.relay_gather_ms / 1000)
                elif moved < self.batch and self.settings.relay_gather_ms > 0:
                    # Caught up: let the next commits gather before the next read.
                    self.stopping.wait(self.settings.relay_gather_ms / 1000)
        finally:
            if self.is_leader:
                self._step_down()  # a standby takes over at once, not when the session times out

    def _reset_producer(self) -> None:
        if self.producer is not None:
            with contextlib.suppress(Exception):
                self.producer.close(timeout=1)
            self.producer = None

    def close(self) -> None:
        self.stopping.set()
        if self.is_leader:
            self._step_down()
        if self.producer is not None:
            self.producer.close(timeout=5)
            self.producer = None
        if self._listener:
            self._listener.close()
        if self._bookkeeping is not None:
            self._bookkeeping.close()
        self.engine.dispose()
        if self._own_store:
            self.store.close()


def main(settings: Settings | None = None) -> None:
    """The ``hotline relay`` process (the CLI has configured logging)."""
    from infra.metrics import start_process_metrics
    from infra.settings import get_settings

    relay = Relay(settings or get_settings())
    tune_gc(relay.settings)
    signal.signal(signal.SIGTERM, lambda *_: relay.stopping.set())
    # Another relay on this host with the same port: logged, and this one relays without metrics.
    start_process_metrics(relay.settings, "relay", RelayCollector(relay))

    def report(r: Relay) -> None:
        role = "leader" if r.is_leader else "standby"
        log.info("relay %s: position %d, lag %d, published %d", role, r.position, r.lag(), r.published)

    try:
        relay.run(report=report)
    except KeyboardInterrupt:
        pass
    finally:
        relay.close()
