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

import zlib
from collections.abc import Iterable, Sequence
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
from infra.read_store import WHOLE_LOG, positions
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
        if conn.dialect.name == "postgresql":
            conn.exec_driver_sql("SELECT pg_advisory_xact_lock(727274)")
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


def lag_report(conn: Connection) -> dict[str, Any]:
    rows = conn.execute(sa.select(consumer_lag)).mappings().all()
    groups: dict[str, Any] = {}
    for r in rows:
        g = groups.setdefault(r["consumer_group"], {"lag": 0, "partitions": []})
        g["lag"] += r["lag"]
        g["partitions"].append({"topic": r["topic"], "partition": r["partition"], "lag": r["lag"], "member": r["member"]})
    return groups
