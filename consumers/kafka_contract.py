"""What the relay and the projection consumers share: topic names, feeds, bookkeeping tables,
and the read-your-writes check of the distributed mode.

A *feed* is one Kafka partition of one topic. Projection consumers record, per
projection and feed, the highest global position they applied (``projection_positions``);
the relay publishes in global order, so within a feed positions only grow and "applied up
to a" means "every event of this feed at or below a is applied".

Read-your-writes needs more than a minimum over feeds (a quiet partition never advances)
and more than the feed of the last event (a command writes several aggregates). The
relay therefore records, per published batch and feed, the range of positions it sent
there (``relay_routes``). Position P is visible once the relay has published up to P and,
for every feed, no route holds an event at or below P that a projection has not applied.
The check is conservative: a batch's range may make a waiter wait for a later event of
the same feed, never the reverse.
"""

from __future__ import annotations

import bisect
import contextlib
import threading
import zlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from domain.base import HotlineAggregate
from domain.citizens.aggregate import CitizenIdentity
from domain.idempotency import IdempotencyRecord
from domain.identity.api_keys import ApiKey
from domain.identity.sign_in import CitizenSignIn
from domain.identity.staff import StaffCredential
from infra.read_store import WHOLE_LOG, lock_ddl, positions
from infra.settings import Settings

# Streams that stay inside: idempotency records hold whole command answers, and identity
# claims are keyed by a hash of a phone number or email (guessable, so personal data).
INTERNAL_STREAMS = frozenset(
    {IdempotencyRecord.STREAM, CitizenIdentity.STREAM, StaffCredential.STREAM, ApiKey.STREAM, CitizenSignIn.STREAM}
)  # the aggregates with PUBLISHED = False
RELAY_NAME = "kafka"

relay_md = sa.MetaData()
relay_positions = sa.Table(
    "relay_positions",
    relay_md,
    sa.Column("name", sa.String(100), primary_key=True),
    sa.Column("position", sa.BigInteger, nullable=False),
    sa.Column("published", sa.BigInteger, nullable=False, server_default="0"),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
)
relay_routes = sa.Table(
    "relay_routes",
    relay_md,
    sa.Column("feed", sa.Integer, primary_key=True),
    sa.Column("last_position", sa.BigInteger, primary_key=True),
    sa.Column("first_position", sa.BigInteger, nullable=False),
    sa.Index("ix_relay_routes_last", "last_position"),
)
consumer_lag = sa.Table(
    "consumer_lag",
    relay_md,
    sa.Column("consumer_group", sa.String(100), primary_key=True),
    sa.Column("topic", sa.String(200), primary_key=True),
    sa.Column("partition", sa.Integer, primary_key=True),
    sa.Column("member", sa.String(200)),
    sa.Column("lag", sa.BigInteger, nullable=False),
    sa.Column("position", sa.BigInteger, nullable=False),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
)


def topic_for(settings: Settings, stream: str) -> str:
    """``hotline.requests`` for the stream ``request`` (the prefix is a setting)."""
    return f"{settings.kafka_topic_prefix}.{stream}s"


def topic_pattern(settings: Settings) -> str:
    import re

    return f"^{re.escape(settings.kafka_topic_prefix)}\\.[a-z_]+s$"


def feed_id(topic: str, partition: int) -> int:
    """A stable integer for (topic, partition): the ``partition`` column of the position table."""
    if not 0 <= partition < 1000:
        raise ValueError(f"partition {partition} out of range")
    return (zlib.crc32(topic.encode()) % 1_000_000) * 1000 + partition


def check_feed_ids(topics: Iterable[str], partitions: int) -> None:
    seen: dict[int, tuple[str, int]] = {}
    for t in topics:
        for p in range(partitions):
            f = feed_id(t, p)
            if f in seen and seen[f] != (t, p):
                raise RuntimeError(f"feed id collision between {seen[f]} and {(t, p)}: rename a topic")
            seen[f] = (t, p)


def public_aggregates() -> dict[str, type[HotlineAggregate]]:
    """Every aggregate class published to Kafka, by stream (one topic each): the domain's
    aggregates (:func:`domain.events.aggregates`, all defined once ``infra/wiring.py`` is
    loaded) but those of the internal streams."""
    import infra.wiring  # noqa: F401  (every context, so every aggregate class is defined)
    from domain.events import published_aggregates

    return dict(sorted((cls.STREAM, cls) for cls in published_aggregates()))


def public_streams() -> list[str]:
    return list(public_aggregates())


def create_tables_safely(engine: Engine, *metadatas: sa.MetaData) -> None:
    """CREATE TABLE IF NOT EXISTS from several processes at once (relay, consumers, API):
    PostgreSQL's catalog races are avoided with an advisory lock held by the creator."""
    with engine.begin() as conn:
        lock_ddl(conn)
        for md in metadatas:
            md.create_all(conn)


def create_relay_tables(engine: Engine) -> None:
    create_tables_safely(engine, relay_md)


def now() -> datetime:
    return datetime.now(UTC)


def relay_position(conn: Connection, name: str = RELAY_NAME) -> int:
    value = conn.execute(sa.select(relay_positions.c.position).where(relay_positions.c.name == name)).scalar()
    return int(value) if value is not None else 0


# --------------------------------------------------------------------- read-your-writes
def effective_positions(conn: Connection, names: Sequence[str]) -> tuple[dict[tuple[str, int], int], dict[str, int]]:
    """Per (projection, feed) applied positions, and per projection the floor a replay set."""
    rows = conn.execute(
        sa.select(positions.c.name, positions.c.partition, positions.c.position).where(positions.c.name.in_(list(names)))
    ).all()
    floor = {n: 0 for n in names}
    by_feed: dict[tuple[str, int], int] = {}
    for name, partition, position in rows:
        if partition == WHOLE_LOG:
            floor[name] = int(position)
        else:
            by_feed[(name, int(partition))] = int(position)
    return by_feed, floor


def is_applied(conn: Connection, position: int, projection_names: Sequence[str], relay: str = RELAY_NAME) -> bool:
    """Has every projection named applied every published event at or below ``position``?"""
    if position <= 0:
        return True
    if conn.dialect.name == "postgresql":
        return applied_frontier(conn, projection_names, relay) >= position
    if relay_position(conn, relay) < position:
        return False
    by_feed, floor = effective_positions(conn, projection_names)
    lowest = min(floor.values(), default=0)
    if lowest >= position:
        return True
    routes = conn.execute(
        sa.select(relay_routes.c.feed, relay_routes.c.last_position).where(
            relay_routes.c.first_position <= position, relay_routes.c.last_position > lowest
        )
    ).all()
    for feed, last in routes:
        for name in projection_names:
            applied = max(by_feed.get((name, int(feed)), 0), floor[name])
            if applied < last and applied < position:
                # The route's range may hold an event <= position beyond what is applied.
                return False
    return True


# ``applied_frontier`` in one statement: the rule below, evaluated by PostgreSQL next to the
# rows (the Python form reads every position row and every open route on each check, and
# API waiters and the lag benchmark check every few milliseconds).
_FRONTIER_SQL = """
WITH relay AS (
    SELECT coalesce((SELECT position FROM relay_positions WHERE name = %(relay)s), 0) AS frontier
), floors AS (
    SELECT n.name, coalesce(p.position, 0) AS floor
    FROM unnest(%(names)s::text[]) AS n(name)
    LEFT JOIN projection_positions p ON p.name = n.name AND p.partition = %(whole_log)s
), lowest AS (
    SELECT coalesce(min(floor), 0) AS lowest FROM floors
), open_routes AS (
    SELECT r.feed, r.first_position, r.last_position
    FROM relay_routes r, relay, lowest
    WHERE r.first_position <= relay.frontier AND r.last_position > lowest.lowest
), behind AS (
    SELECT f.feed, min(greatest(coalesce(p.position, 0), fl.floor)) AS applied
    FROM (SELECT DISTINCT feed FROM open_routes) f
    CROSS JOIN floors fl
    LEFT JOIN projection_positions p ON p.name = fl.name AND p.partition = f.feed
    GROUP BY f.feed
)
SELECT CASE
    WHEN lowest.lowest >= relay.frontier THEN relay.frontier
    ELSE greatest(
        least(relay.frontier, coalesce((
            SELECT min(greatest(r.first_position, b.applied + 1) - 1)
            FROM open_routes r JOIN behind b ON b.feed = r.feed
            WHERE b.applied < r.last_position
        ), relay.frontier)),
        lowest.lowest)
    END
FROM relay, lowest
"""


def applied_frontier(conn: Connection, projection_names: Sequence[str], relay: str = RELAY_NAME) -> int:
    """The highest position P with ``is_applied(P)`` (the same rule, evaluated once for all
    positions): a route holding events a projection has not applied makes every position
    from ``max(first, applied + 1)`` on invisible."""
    if conn.dialect.name == "postgresql":
        params = {"relay": relay, "names": list(projection_names), "whole_log": WHOLE_LOG}
        return int(conn.exec_driver_sql(_FRONTIER_SQL, params).scalar_one())
    return applied_frontier_by_rows(conn, projection_names, relay)


def applied_frontier_by_rows(conn: Connection, projection_names: Sequence[str], relay: str = RELAY_NAME) -> int:
    """``applied_frontier`` computed here from the rows (SQLite; and the reference the SQL
    form is tested against)."""
    frontier = relay_position(conn, relay)
    by_feed, floor = effective_positions(conn, projection_names)
    lowest = min(floor.values(), default=0)
    if lowest >= frontier:
        return frontier
    routes = conn.execute(
        sa.select(relay_routes.c.feed, relay_routes.c.first_position, relay_routes.c.last_position).where(
            relay_routes.c.first_position <= frontier, relay_routes.c.last_position > lowest
        )
    ).all()
    # Per feed, the projection furthest behind decides (max(first, applied + 1) grows with
    # applied): one pass over the routes instead of one per route and projection.
    behind: dict[int, int] = {}
    for feed, first, last in routes:
        feed = int(feed)
        applied = behind.get(feed)
        if applied is None:
            applied = behind[feed] = min(max(by_feed.get((name, feed), 0), floor[name]) for name in projection_names)
        if applied < last:
            frontier = min(frontier, max(int(first), applied + 1) - 1)
    return max(frontier, lowest)


def projection_frontiers(conn: Connection, projection_names: Sequence[str], relay: str = RELAY_NAME) -> dict[str, int]:
    """Each projection's own position: the highest P such that it has applied every
    published event at or below P (``applied_frontier``'s rule for one projection at a
    time). Not the minimum over its per-feed rows: a partition that never had an event
    keeps position 0 there, and a quiet one stays at its last event."""
    frontier = relay_position(conn, relay)
    by_feed, floor = effective_positions(conn, projection_names)
    lowest = min(floor.values(), default=0)
    routes = conn.execute(
        sa.select(relay_routes.c.feed, relay_routes.c.last_position, relay_routes.c.first_position)
        .where(relay_routes.c.first_position <= frontier, relay_routes.c.last_position > lowest)
        .order_by(relay_routes.c.feed, relay_routes.c.last_position)
    ).all()
    # Per feed: the routes' ends in order, and the smallest start from each route on (a
    # projection that applied a feed up to ``a`` misses events from max(first, a + 1) of
    # the first route ending beyond ``a`` or of any later one).
    lasts: dict[int, list[int]] = {}
    firsts: dict[int, list[int]] = {}
    for feed, last, first in routes:
        lasts.setdefault(int(feed), []).append(int(last))
        firsts.setdefault(int(feed), []).append(int(first))
    suffix_min = {}
    for feed, fs in firsts.items():
        mins = fs[:]
        for i in range(len(mins) - 2, -1, -1):
            mins[i] = min(mins[i], mins[i + 1])
        suffix_min[feed] = mins
    out: dict[str, int] = {}
    for name in projection_names:
        reached = frontier
        own_floor = floor[name]
        if own_floor < frontier:
            for feed, ends in lasts.items():
                applied = max(by_feed.get((name, feed), 0), own_floor)
                i = bisect.bisect_right(ends, applied)
                if i < len(ends):
                    reached = min(reached, max(suffix_min[feed][i], applied + 1) - 1)
        out[name] = max(reached, own_floor)
    return out


def prune_routes(conn: Connection, projection_names: Sequence[str], feeds: Iterable[int]) -> int:
    """Forget routes every projection has applied (they can no longer make anyone wait)."""
    by_feed, floor = effective_positions(conn, projection_names)
    removed = 0
    for feed in feeds:
        applied = min(max(by_feed.get((n, feed), 0), floor[n]) for n in projection_names)
        if applied > 0:
            result = conn.execute(sa.delete(relay_routes).where(relay_routes.c.feed == feed, relay_routes.c.last_position <= applied))
            removed += result.rowcount or 0
    return removed


def record_lag(conn: Connection, group: str, member: str, lags: dict[tuple[str, int], tuple[int, int]]) -> None:
    from infra.read_store import _upsert

    if not lags:
        return
    stamp = now()
    _upsert(
        conn,
        consumer_lag,
        [
            {
                "consumer_group": group,
                "topic": t,
                "partition": p,
                "member": member,
                "lag": lag,
                "position": pos,
                "updated_at": stamp,
            }
            for (t, p), (lag, pos) in lags.items()
        ],
    )


def lag_report(conn: Connection, stale_after: float = 10.0) -> dict[str, Any]:
    """The members' own lag reports (``consumer_lag``). A report older than ``stale_after``
    seconds is marked ``stale``: its member stopped reporting (killed, or the partition
    moved), so its figure says nothing now. The group's real lag is ``KafkaLag``'s
    (committed offsets against end offsets: ``hotline kafka-status``, ``/readyz``)."""
    rows = conn.execute(sa.select(consumer_lag)).mappings().all()
    groups: dict[str, Any] = {}
    stamp = now()
    for r in rows:
        updated = r["updated_at"] if r["updated_at"].tzinfo else r["updated_at"].replace(tzinfo=UTC)
        age = (stamp - updated).total_seconds()
        g = groups.setdefault(r["consumer_group"], {"lag": 0, "partitions": [], "stale": False})
        g["lag"] += r["lag"]
        g["stale"] = g["stale"] or age > stale_after
        g["partitions"].append(
            {
                "topic": r["topic"],
                "partition": r["partition"],
                "lag": r["lag"],
                "member": r["member"],
                "age_seconds": round(age, 1),
                "stale": age > stale_after,
            }
        )
    return groups


# ------------------------------------------------------------------ consumer group lag
@dataclass
class GroupLag:
    """A consumer group's lag the standard way (as ``kafka-consumer-groups.sh`` shows it):
    per partition, the broker's end offset minus the group's committed offset. A partition
    the group never committed counts from the log's start (``auto_offset_reset=earliest``)."""

    group: str
    partitions: dict[tuple[str, int], tuple[int | None, int, int]] = field(default_factory=dict)  # (committed, end, lag)

    @property
    def total(self) -> int:
        return sum(lag for _, _, lag in self.partitions.values())

    def committed(self) -> dict[tuple[str, int], int | None]:
        return {tp: c for tp, (c, _, _) in self.partitions.items()}

    def as_dict(self) -> dict[str, Any]:
        return {
            "lag": self.total,
            "partitions": [
                {"topic": t, "partition": p, "committed": c, "end": e, "lag": lag}
                for (t, p), (c, e, lag) in sorted(self.partitions.items())
            ],
        }


class KafkaLag:
    """Reads consumer groups' committed offsets (``KafkaAdminClient``) and the partitions'
    end offsets (``KafkaConsumer.end_offsets``) with short timeouts; the clients are made
    on first use and kept (made again after a failure). Not thread-safe: one caller at a time."""

    def __init__(self, settings: Settings, timeout_ms: int = 2000) -> None:
        if not settings.kafka_bootstrap_servers:
            raise ValueError("consumer lag needs HOTLINE_KAFKA_BOOTSTRAP_SERVERS")
        self.bootstrap = settings.kafka_bootstrap_servers
        self.topics = [topic_for(settings, s) for s in public_streams()]
        self.timeout_ms = timeout_ms
        self._admin: Any = None
        self._consumer: Any = None
        self._lock = threading.Lock()

    def _clients(self) -> tuple[Any, Any]:
        from kafka import KafkaAdminClient, KafkaConsumer

        common = {
            "bootstrap_servers": self.bootstrap,
            "request_timeout_ms": self.timeout_ms,
            "api_version_auto_timeout_ms": self.timeout_ms,
            "reconnect_backoff_max_ms": 500,
        }
        if self._admin is None:
            self._admin = KafkaAdminClient(client_id="hotline-lag-admin", **common)
        if self._consumer is None:
            self._consumer = KafkaConsumer(
                client_id="hotline-lag", group_id=None, enable_auto_commit=False, fetch_max_wait_ms=100, **common
            )
        return self._admin, self._consumer

    def partitions(self) -> list[Any]:
        from kafka import TopicPartition

        _, consumer = self._clients()
        out: list[Any] = []
        for topic in self.topics:
            found = consumer.partitions_for_topic(topic)
            out.extend(TopicPartition(topic, p) for p in sorted(found or ()))
        return out

    def groups(self) -> list[str]:
        admin, _ = self._clients()
        return sorted(g[0] for g in admin.list_consumer_groups())

    def group_lags(self, groups: Sequence[str]) -> dict[str, GroupLag]:
        """Lag of each group over the hotline's topics; raises ``KafkaError`` (or a timeout)
        when the brokers do not answer in time."""
        with self._lock:
            try:
                admin, consumer = self._clients()
                tps = self.partitions()
                ends = consumer.end_offsets(tps) if tps else {}
                starts = consumer.beginning_offsets(tps) if tps else {}
                out = {}
                for group in groups:
                    committed = admin.list_consumer_group_offsets(group, partitions=tps or None)
                    lag = GroupLag(group)
                    for tp in tps:
                        meta = committed.get(tp)
                        offset = meta.offset if meta is not None and meta.offset >= 0 else None
                        base = offset if offset is not None else starts.get(tp, 0)
                        lag.partitions[(tp.topic, tp.partition)] = (offset, ends[tp], max(0, ends[tp] - base))
                    out[group] = lag
                return out
            except Exception:
                self.close()  # fresh clients next time (a broker restarted, a connection hung)
                raise

    def close(self) -> None:
        for client in (self._admin, self._consumer):
            if client is not None:
                with contextlib.suppress(Exception):  # closing a client whose broker is gone
                    client.close()
        self._admin = self._consumer = None
