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
"""

from __future__ import annotations

import contextlib
import json
import logging
import select
import signal
import threading
import time
from collections.abc import Callable
from typing import Any

from kafka import KafkaProducer
from kafka.admin import KafkaAdminClient, NewTopic
from kafka.errors import KafkaConfigurationError, KafkaError, TopicAlreadyExistsError

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


class Relay:
    """Follows the notification log and publishes to Kafka; one active relay per store."""

    def __init__(
        self,
        settings: Settings,
        store: EventStore | None = None,
        *,
        batch: int = 2000,
        idle_wait: float = 0.05,
        name: str = RELAY_NAME,
        producer: KafkaProducer | None = None,
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
        self.decoder = decoder_for(self.store)
        self.position = self._load_position()
        self.published = 0  # messages sent by this process
        self.stopping = threading.Event()
        self._listener: Any = None
        self._bookkeeping: Any = None  # PostgreSQL: the connection _record_pg writes on

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
        atomic on its own). The record is on the path of every read-your-writes wait."""
        import psycopg

        if self._bookkeeping is None:
            self._bookkeeping = psycopg.connect(self.settings.database_url or "", autocommit=True, prepare_threshold=0)
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
            self._bookkeeping.execute(_RECORD_SQL, params)
        except psycopg.OperationalError:
            self._bookkeeping.close()  # reconnect on the next batch
            self._bookkeeping = None
            raise

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
        """Publishes the next batch; returns how many log entries it moved past (0: nothing new)."""
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
        for position, future in futures:
            # Raises if the broker did not acknowledge: the position is then not recorded.
            metadata = future.get(timeout=0)
            f = feed_id(metadata.topic, metadata.partition)
            first, _ = routes.get(f, (position, position))
            routes[f] = (first, position)
        last = notifications[-1].id
        self.published += len(futures)
        self._record(last, routes, self.published)
        self.position = last
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
        while not self.stopping.is_set():
            try:
                moved = self.publish_once()
                backoff = 0.2
            except KafkaConfigurationError:
                raise
            except KafkaError as exc:
                # Broker away: keep the position, resend the batch when it is back.
                log.warning("Kafka unavailable (%s); retrying in %.1fs", exc, backoff)
                self._reset_producer()
                self.stopping.wait(backoff)
                backoff = min(backoff * 2, 5.0)
                continue
            if report and time.monotonic() - last_report > 5:
                report(self)
                last_report = time.monotonic()
            if until is not None and until(self):
                return
            if not moved:
                self._wait_for_events()
                if self.settings.relay_gather_ms > 0:
                    self.stopping.wait(self.settings.relay_gather_ms / 1000)
            elif moved < self.batch and self.settings.relay_gather_ms > 0:
                # Caught up: let the next commits gather before the next read.
                self.stopping.wait(self.settings.relay_gather_ms / 1000)

    def _reset_producer(self) -> None:
        if self.producer is not None:
            with contextlib.suppress(Exception):
                self.producer.close(timeout=1)
            self.producer = None

    def close(self) -> None:
        self.stopping.set()
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
    from infra.settings import get_settings

    relay = Relay(settings or get_settings())
    tune_gc(relay.settings)
    signal.signal(signal.SIGTERM, lambda *_: relay.stopping.set())

    def report(r: Relay) -> None:
        log.info("relay position %d, lag %d, published %d", r.position, r.lag(), r.published)

    try:
        relay.run(report=report)
    except KeyboardInterrupt:
        pass
    finally:
        relay.close()
