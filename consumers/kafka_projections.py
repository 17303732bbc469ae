"""``hotline consume projections``: the read models fed from Kafka (distributed mode).

One consumer group; each process owns some of the partitions. For each polled batch,
the events of every partition are applied to every projection in ONE database
transaction together with the position each projection reached in that partition
(``projection_positions(name, feed, position)``). Kafka offsets are committed after that
transaction. A process killed in between gets the events again and skips them: their
positions are at or below what its transaction recorded.

Personal data arrives masked (the topics are also read by integrators); events that
carry a ``personal`` field are completed from the event store, which stays the only
place personal data lives (so that it can be crypto-shredded).
"""

from __future__ import annotations

import heapq
import json
import logging
import os
import signal
import socket
import threading
import time
import zlib
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from kafka import KafkaConsumer, TopicPartition
from kafka.consumer.subscription_state import ConsumerRebalanceListener
from kafka.errors import KafkaError
from kafka.structs import OffsetAndMetadata
from sqlalchemy.engine import Connection

from consumers.kafka_contract import (
    create_tables_safely,
    feed_id,
    is_applied,
    prune_routes,
    public_streams,
    record_lag,
    relay_md,
    topic_for,
)
from domain.envelope import Envelope
from infra.eventstore import EventStore
from infra.read_store import WHOLE_LOG, ReadStore, SqlRows, _upsert, make_engine, positions
from infra.settings import Settings
from projections.base import Projection

log = logging.getLogger("hotline.consumer")


def projection_lock_key(name: str) -> int:
    """Advisory-lock key of a projection: consumers take it shared, a replay's switch exclusive."""
    return zlib.crc32(f"hotline-projection:{name}".encode()) & 0x7FFFFFFF


def lock_projections(conn: Connection, names: Sequence[str], *, exclusive: bool = False) -> None:
    if conn.dialect.name != "postgresql":
        return  # SQLite: one writer at a time anyway
    fn = "pg_advisory_xact_lock" if exclusive else "pg_advisory_xact_lock_shared"
    for name in sorted(names):
        conn.execute(sa.text(f"SELECT {fn}(:k)"), {"k": projection_lock_key(name)})


def ensure_position_rows(conn: Connection, names: Sequence[str], feeds: Sequence[int]) -> None:
    """Position rows exist before anyone applies, so ``FOR UPDATE`` always has a row to lock."""
    if not feeds:
        return
    insert: Any
    if conn.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert
    from consumers.kafka_contract import now

    stmt = insert(positions).on_conflict_do_nothing(index_elements=["name", "partition"])
    conn.execute(stmt, [{"name": n, "partition": f, "position": 0, "updated_at": now()} for n in names for f in feeds])


class PrefetchRows(SqlRows):
    """SqlRows that loads, per table keyed by one column, the rows of a whole batch's
    aggregates in one query instead of one query per ``get`` (the consumer's main cost)."""

    def prefetch(self, keys: set[str]) -> None:
        if not keys:
            return
        ordered = sorted(keys)
        for name, table in self.tables.items():
            pk = list(table.primary_key.columns)
            if len(pk) != 1 or not isinstance(pk[0].type, sa.String):
                continue
            found: dict[Any, dict[str, Any]] = {}
            for i in range(0, len(ordered), 1000):
                chunk = ordered[i : i + 1000]
                for row in self.conn.execute(sa.select(table).where(pk[0].in_(chunk))).mappings():
                    found[row[pk[0].name]] = dict(row)
            for key in ordered:
                self.cache.setdefault((name, (key,)), found.get(key))


def apply_feeds(
    read_store: ReadStore, batches: dict[int, list[Envelope]], projections: Sequence[Projection] | None = None
) -> dict[int, int]:
    """Applies each feed's envelopes in one transaction; returns the positions reached per feed.

    Envelopes of all feeds are applied in global order (a merge by position), so a batch
    that holds a citizen's registration and that citizen's request applies them in the
    order they happened. An envelope at or below what a projection recorded for its feed
    (or below the floor a replay set, partition -1) is skipped: redelivery changes nothing.
    """
    projections = list(projections or read_store.projections)
    names = [p.name for p in projections]
    merged = list(
        heapq.merge(*([(env.position, feed, env) for env in envs] for feed, envs in batches.items()), key=lambda t: t[0])
    )
    reached: dict[int, int] = {}
    with read_store.engine.begin() as conn:
        lock_projections(conn, names)
        rows = PrefetchRows(conn, read_store.tables)
        rows.prefetch({env.aggregate_id for _, _, env in merged})
        floors = dict(
            conn.execute(
                sa.select(positions.c.name, positions.c.position).where(
                    positions.c.name.in_(names), positions.c.partition == WHOLE_LOG
                )
            ).all()
        )
        feeds = sorted(batches)
        # One statement locks every (projection, feed) row of the batch, in a fixed order.
        stmt = (
            sa.select(positions.c.name, positions.c.partition, positions.c.position)
            .where(positions.c.name.in_(names), positions.c.partition.in_(feeds))
            .order_by(positions.c.name, positions.c.partition)
        )
        if conn.dialect.name == "postgresql":
            stmt = stmt.with_for_update()
        recorded = {(n, int(f)): int(pos) for n, f, pos in conn.execute(stmt).all()}
        changed = []
        stamp = datetime.now(UTC)
        for p in projections:
            floor = int(floors.get(p.name, 0))
            last = {f: max(recorded.get((p.name, f), 0), floor) for f in feeds}
            for position, feed, env in merged:
                if position <= last[feed]:
                    continue  # already applied: redelivery changes nothing
                p.apply(env, rows)
                last[feed] = position
            for f in feeds:
                if last[f] > recorded.get((p.name, f), 0):
                    changed.append({"name": p.name, "partition": f, "position": last[f], "updated_at": stamp})
                reached[f] = max(reached.get(f, 0), last[f])
        rows.flush()
        if changed:
            _upsert(conn, positions, changed)
    return reached


class PersonalData:
    """Completes masked ``personal`` fields from the event store (by global position)."""

    def __init__(self, store: EventStore | None) -> None:
        self.store = store

    def restore(self, envelopes: list[Envelope]) -> list[Envelope]:
        if self.store is None:
            return envelopes
        out = []
        for env in envelopes:
            # Only the citizen read model shows personal data; other streams stay masked,
            # which saves a store read per request event.
            if env.stream == "citizen" and env.data.get("personal") is not None:
                found = self.store.notifications(env.position - 1, 1)
                if found and found[0].id == env.position:
                    original = self.store.to_envelope(found[0])
                    env = Envelope(**{**env.__dict__, "data": {**env.data, "personal": original.data.get("personal")}})
            out.append(env)
        return out


class ProjectionConsumer:
    """A member of the projections consumer group."""

    def __init__(
        self,
        settings: Settings,
        *,
        group: str | None = None,
        projections: Sequence[Projection] | None = None,
        store: EventStore | None = None,
        max_records: int = 2000,
        poll_ms: int = 50,
        before_commit: Callable[[dict[TopicPartition, int]], None] | None = None,
    ) -> None:
        from projections import all_projections

        if not settings.kafka_bootstrap_servers:
            raise ValueError("the projection consumer needs HOTLINE_KAFKA_BOOTSTRAP_SERVERS")
        self.settings = settings
        self.group = group or settings.kafka_consumer_group
        self.read_store = ReadStore(make_engine(settings.read_store_url, 4), projections or all_projections())
        from infra.read_store import tracking_md

        create_tables_safely(self.read_store.engine, tracking_md, relay_md, *[p.metadata for p in self.read_store.projections])
        self.names = [p.name for p in self.read_store.projections]
        self.store = store if store is not None else (EventStore(settings) if settings.database_url else None)
        self.personal = PersonalData(self.store)
        self.max_records = max_records
        self.poll_ms = poll_ms
        self.before_commit = before_commit
        self.member = f"{socket.gethostname()}:{os.getpid()}"
        self.stopping = threading.Event()
        self.applied_events = 0
        self.known_feeds: set[int] = set()
        self.consumer = KafkaConsumer(
            bootstrap_servers=settings.kafka_bootstrap_servers,
            group_id=self.group,
            client_id=f"hotline-projections-{os.getpid()}",
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            max_poll_records=max_records,
            session_timeout_ms=10_000,
            heartbeat_interval_ms=1_000,
            metadata_max_age_ms=5_000,  # new topics are picked up quickly
            fetch_max_wait_ms=20,
            check_crcs=False,  # kafka-python checks CRCs in pure Python; TCP already does on loopback
        )
        # The topics are created first and subscribed by name: a pattern subscription that
        # sees topics appear in the middle of a group rebalance can stall kafka-python.
        from consumers.relay import ensure_topics

        self.topics = [topic_for(settings, s) for s in public_streams()]
        ensure_topics(settings, self.topics)
        self.consumer.subscribe(topics=self.topics, listener=_Listener(self))
        self._last_lag = 0.0

    # ----------------------------------------------------------------- one step
    def poll_once(self, gather_ms: float = 25.0) -> int:
        polled = self.consumer.poll(timeout_ms=self.poll_ms, max_records=self.max_records)
        if not polled:
            self._maybe_report()
            return 0
        # Gather what else arrives within a few ms: one transaction and one offset commit
        # for many events costs far less than one per small fetch.
        total = sum(len(r) for r in polled.values())
        until = time.monotonic() + gather_ms / 1000
        while total < self.max_records and time.monotonic() < until:
            more = self.consumer.poll(timeout_ms=5, max_records=self.max_records - total)
            if not more:
                continue
            for tp, records in more.items():
                polled.setdefault(tp, []).extend(records)
                total += len(records)
        batches: dict[int, list[Envelope]] = {}
        offsets: dict[TopicPartition, int] = {}
        count = 0
        for tp, records in polled.items():
            envelopes = [Envelope.from_cloudevent(json.loads(r.value)) for r in records]
            batches[feed_id(tp.topic, tp.partition)] = self.personal.restore(envelopes)
            offsets[tp] = records[-1].offset + 1
            count += len(records)
        new_feeds = [f for f in batches if f not in self.known_feeds]
        if new_feeds:
            with self.read_store.engine.begin() as conn:
                ensure_position_rows(conn, self.names, new_feeds)
            self.known_feeds.update(new_feeds)
        apply_feeds(self.read_store, batches)
        if self.before_commit is not None:
            self.before_commit(offsets)  # tests: a crash between the transaction and the commit
        self.consumer.commit({tp: OffsetAndMetadata(o, "", -1) for tp, o in offsets.items()})
        self.applied_events += count
        self._maybe_report()
        return count

    def _maybe_report(self, every: float = 2.0) -> None:
        if time.monotonic() - self._last_lag < every:
            return
        self._last_lag = time.monotonic()
        try:
            lags = self.lags()
            with self.read_store.engine.begin() as conn:
                record_lag(conn, self.group, self.member, lags)
                prune_routes(conn, self.names, [feed_id(t, p) for t, p in lags])
        except Exception:
            log.exception("lag report failed")

    def lags(self) -> dict[tuple[str, int], tuple[int, int]]:
        """Per owned partition: (messages behind the log end, next offset)."""
        assigned = list(self.consumer.assignment())
        if not assigned:
            return {}
        ends = self.consumer.end_offsets(assigned)
        out = {}
        for tp in assigned:
            pos = self.consumer.position(tp)
            out[(tp.topic, tp.partition)] = (max(0, ends.get(tp, 0) - pos), pos)
        return out

    def total_lag(self) -> int:
        return sum(lag for lag, _ in self.lags().values())

    def run(self, once: bool = False, idle_exit: float | None = None) -> None:
        idle_since = time.monotonic()
        backoff = 0.2
        while not self.stopping.is_set():
            try:
                n = self.poll_once()
                backoff = 0.2
            except KafkaError as exc:
                # Broker away, or the group rebalanced under us (offset commit refused): the
                # read models are consistent either way, and what was not committed comes
                # again and is skipped. Poll again: that rejoins the group.
                log.warning("Kafka: %s; retrying in %.1fs", exc, backoff)
                self.stopping.wait(backoff)
                backoff = min(backoff * 2, 5.0)
                continue
            if n:
                idle_since = time.monotonic()
            elif once and time.monotonic() - idle_since > (idle_exit or 3.0) and self.consumer.assignment():
                return

    def close(self) -> None:
        self.stopping.set()
        try:
            self.consumer.close(autocommit=False)
        finally:
            self.read_store.engine.dispose()
            if self.store is not None:
                self.store.close()


class _Listener(ConsumerRebalanceListener):
    def __init__(self, owner: ProjectionConsumer) -> None:
        self.owner = owner

    def on_partitions_revoked(self, revoked: Any) -> None:
        log.info("revoked %s", sorted((tp.topic, tp.partition) for tp in revoked))

    def on_partitions_assigned(self, assigned: Any) -> None:
        feeds = [feed_id(tp.topic, tp.partition) for tp in assigned]
        with self.owner.read_store.engine.begin() as conn:
            ensure_position_rows(conn, self.owner.names, feeds)
        self.owner.known_feeds.update(feeds)
        log.info("assigned %s", sorted((tp.topic, tp.partition) for tp in assigned))


# ------------------------------------------------------------------ read-your-writes
def position_visible(read_store: ReadStore, position: int) -> bool:
    """Read-your-writes: has every projection applied every event up to ``position``?"""
    with read_store.engine.connect() as conn:
        try:
            return is_applied(conn, position, [p.name for p in read_store.projections])
        except sa.exc.ProgrammingError:
            return False  # the relay has not created its tables yet: nothing is published


def wait_until_applied(read_store: ReadStore, position: int, timeout: float, poll: float = 0.01) -> tuple[bool, int]:
    """Blocks until every projection of ``read_store`` applied ``position`` (distributed mode)."""
    deadline = time.monotonic() + timeout
    while True:
        if position_visible(read_store, position):
            return True, position
        if time.monotonic() >= deadline:
            return False, read_store.applied_position()
        time.sleep(poll)


def _fault_injection() -> Callable[[dict[TopicPartition, int]], None] | None:
    """Tests set HOTLINE_FAULT_KILL_BEFORE_COMMIT=N: the process SIGKILLs itself after writing
    its N-th batch to the read models and before committing the Kafka offsets."""
    after = int(os.environ.get("HOTLINE_FAULT_KILL_BEFORE_COMMIT", "0"))
    if after <= 0:
        return None
    seen = [0]

    def hook(offsets: dict[TopicPartition, int]) -> None:
        seen[0] += 1
        if seen[0] >= after:
            log.warning("fault injection: killed before committing %s", offsets)
            os.kill(os.getpid(), signal.SIGKILL)

    return hook


def main(group: str | None = None, once: bool = False, settings: Settings | None = None, max_records: int = 2000) -> None:
    """Entry point for ``python -m consumers.kafka_projections`` and ``hotline consume projections``."""
    from infra.settings import get_settings

    logging.basicConfig(level=os.environ.get("HOTLINE_LOG_LEVEL", "INFO").upper(), format="%(asctime)s %(name)s %(message)s")
    consumer = ProjectionConsumer(
        settings or get_settings(), group=group, max_records=max_records, before_commit=_fault_injection()
    )
    signal.signal(signal.SIGTERM, lambda *_: consumer.stopping.set())
    try:
        consumer.run(once=once)
    except KeyboardInterrupt:
        pass
    finally:
        consumer.close()


if __name__ == "__main__":
    import argparse

    parser = argparse.ArgumentParser()
    parser.add_argument("--group", default=None)
    parser.add_argument("--once", action="store_true")
    parser.add_argument("--max-records", type=int, default=2000)
    args = parser.parse_args()
    main(args.group, args.once, max_records=args.max_records)


__all__ = ["ProjectionConsumer", "_upsert", "apply_feeds", "wait_until_applied"]
