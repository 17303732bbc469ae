"""The router (ACD) process: an in-memory view fed by the event log, decisions written as
commands through the CommandBus.

Loop: read new events into the :class:`~domain.contact_center.routing.RoutingView`; run
due timers (offer timeouts, wrap-up ends, maximum waits); decide matches and write them
in one ``offer_contacts`` command (one transaction); read the events back; repeat.
Every write goes through the Contact and Agent aggregates with optimistic concurrency,
so a second router, or an agent grabbing work, can never cause a double assignment: the
loser's commit conflicts, the bus reruns the handler on fresh state and the lost
decisions are skipped.

With PostgreSQL, one router is active at a time: the leader holds a session-level
advisory lock on its own connection; standbys try to take it every ``poll`` seconds and
the lock is released by the server as soon as the leader's connection dies, so a
standby takes over within seconds. A new leader rebuilds its view from the events.
Embedded (SQLite) mode runs one router, in a background thread of ``hotline serve``
or in the simulator's loop.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import Any, Protocol

from domain.base import Actor, DomainError
from domain.contact_center import commands as cc
from domain.contact_center import services as ccs
from domain.contact_center.agents import agent_uuid
from domain.contact_center.routing import Action, Decision, RoutingView
from infra.bus import CommandBus
from infra.eventstore import EventStore

log = logging.getLogger("hotline.router")
ROUTER_ACTOR = Actor(id="router", role="system", name="ACD router")
LOCK_KEY = 0x486F746C696E65  # "Hotline": the advisory lock every router contends for


class Leadership(Protocol):
    def acquire(self) -> bool: ...

    def still_leader(self) -> bool: ...

    def release(self) -> None: ...


class AlwaysLeader:
    """Embedded mode: one process, one router."""

    def acquire(self) -> bool:
        return True

    def still_leader(self) -> bool:
        return True

    def release(self) -> None:
        pass


class AdvisoryLockLeadership:
    """Leader election on PostgreSQL: ``pg_try_advisory_lock`` held by one connection.

    The lock lives as long as the session: if the leader process dies or its connection
    breaks, PostgreSQL releases it and the next standby's attempt succeeds."""

    def __init__(self, dsn: str, key: int = LOCK_KEY) -> None:
        self.dsn = dsn
        self.key = key
        self.conn: Any = None

    def acquire(self) -> bool:
        import psycopg

        try:
            if self.conn is None or self.conn.closed:
                self.conn = psycopg.connect(self.dsn, autocommit=True, connect_timeout=5)
            row = self.conn.execute("SELECT pg_try_advisory_lock(%s)", (self.key,)).fetchone()
            return bool(row and row[0])
        except Exception as exc:
            log.warning("leader election: %s", exc)
            self._drop()
            return False

    def still_leader(self) -> bool:
        try:
            if self.conn is None or self.conn.closed:
                return False
            row = self.conn.execute(
                "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND pid = pg_backend_pid()"
                " AND classid = %s AND objid = %s AND granted",
                (self.key >> 32, self.key & 0xFFFFFFFF),
            ).fetchone()
            return bool(row and row[0])
        except Exception:
            self._drop()
            return False

    def release(self) -> None:
        try:
            if self.conn is not None and not self.conn.closed:
                self.conn.execute("SELECT pg_advisory_unlock(%s)", (self.key,))
        except Exception:
            pass
        self._drop()

    def _drop(self) -> None:
        try:
            if self.conn is not None:
                self.conn.close()
        except Exception:
            pass
        self.conn = None


class BatchLoader:
    """Loads every Contact and Agent of a routing batch with one query.

    Keeps the aggregates it loaded and, before each batch, reads only the events written
    since (for all of them at once: on PostgreSQL a join on ``unnest(ids, versions)``).
    It hands out its own objects, not copies: after a successful commit they are exactly
    what was stored; after a failed one the router calls :meth:`forget`. They are only a
    starting point: if anybody wrote to one of these aggregates after this read, the
    commit conflicts on the version and the bus reruns the handler, which then loads
    from the store as usual."""

    def __init__(self, store: EventStore, max_cached: int = 100_000) -> None:
        self.store = store
        self.max_cached = max_cached
        self.cache: dict[uuid.UUID, Any] = {}

    def load(self, ids: list[uuid.UUID]) -> dict[uuid.UUID, Any]:
        if len(self.cache) > self.max_cached:
            self.cache.clear()
        versions = {i: (self.cache[i].version if i in self.cache else 0) for i in ids}
        for stored in self._select(versions):
            event: Any = self.store.mapper.to_domain_event(stored)
            self.cache[stored.originator_id] = event.mutate(self.cache.get(stored.originator_id))
        return {i: self.cache[i] for i in ids if i in self.cache}

    def forget(self, ids: list[uuid.UUID]) -> None:
        for i in ids:
            self.cache.pop(i, None)

    def _select(self, versions: dict[uuid.UUID, int]) -> list[Any]:
        recorder: Any = self.store.recorder
        if getattr(self.store, "is_postgres", False) and hasattr(recorder, "events_table_name"):
            from eventsourcing.persistence import StoredEvent
            from psycopg.sql import SQL, Identifier

            statement = SQL(
                "SELECT e.originator_id, e.originator_version, e.topic, e.state FROM {schema}.{table} e "
                "JOIN unnest(%s::uuid[], %s::bigint[]) AS k(id, v) ON e.originator_id = k.id AND e.originator_version > k.v "
                "ORDER BY e.originator_id, e.originator_version"
            ).format(schema=Identifier(recorder.datastore.schema), table=Identifier(recorder.events_table_name))
            ids = list(versions)
            with recorder.datastore.get_connection() as conn, conn.cursor() as curs:
                curs.execute(statement, [ids, [versions[i] for i in ids]])
                return [
                    StoredEvent(
                        originator_id=r["originator_id"],
                        originator_version=r["originator_version"],
                        topic=r["topic"],
                        state=bytes(r["state"]),
                    )
                    for r in curs.fetchall()
                ]
        found: list[Any] = []
        for i, v in versions.items():
            found.extend(recorder.select_events(i, gt=v or None))
        return found


class _PrefetchedStore:
    """The event store as the router's own bus sees it: a ``repository.get`` that first
    serves the aggregates the :class:`BatchLoader` prefetched for this batch (each once:
    a rerun after a conflict loads fresh from the store)."""

    def __init__(self, store: EventStore) -> None:
        self._store = store
        self.prefetched: dict[uuid.UUID, Any] = {}

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)

    @property
    def repository(self) -> _PrefetchedStore:
        return self

    def get(self, aggregate_id: uuid.UUID, **kw: Any) -> Any:
        found = self.prefetched.pop(aggregate_id, None)
        return found if found is not None else self._store.repository.get(aggregate_id, **kw)


@dataclass
class RouterStats:
    decisions: int = 0
    offered: int = 0
    skipped: int = 0
    actions: int = 0
    batches: int = 0
    decide_seconds: list[float] = field(default_factory=list)  # per batch, for the benchmark


class Router:
    def __init__(
        self,
        store: EventStore,
        bus: CommandBus,
        *,
        batch: int = 200,
        leadership: Leadership | None = None,
        name: str = "router",
    ) -> None:
        self.store = store
        self.bus = bus
        self.clock = bus.clock
        self.batch = batch
        self.leadership = leadership or AlwaysLeader()
        self.name = name
        self.view = RoutingView()
        self.stats = RouterStats()
        # Decisions go through a bus of their own whose loads come from the batch loader.
        self.loader = BatchLoader(store)
        self._prefetch = _PrefetchedStore(store)
        self.write_bus = CommandBus(self._prefetch, bus.committer, bus.deps, bus.clock, after_commit=bus.after_commit)  # type: ignore[arg-type]
        self.is_leader = False
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # ------------------------------------------------------------------ one step
    def catch_up(self) -> int:
        applied = 0
        while True:
            envelopes = self.store.envelopes(self.view.position, 2000)
            if not envelopes:
                return applied
            self.view.apply_all(envelopes)
            applied += len(envelopes)

    def rebuild(self) -> None:
        """Forget the view and read it again from the events (a new leader, a restart)."""
        self.view = RoutingView()
        self.catch_up()

    def step(self) -> int:
        """Catch up, run due timers, make and write one batch of decisions. Returns how
        many things it did (0: nothing to do until new events or the next timer)."""
        self.catch_up()
        done = 0
        started = time.perf_counter()
        decisions = self.view.decide(self.clock.now(), self.batch)
        if decisions:
            self.stats.decide_seconds.append(time.perf_counter() - started)
            self._write(decisions)
            done += len(decisions)
        # Timers after decisions: a contact that could be offered now does not overflow.
        for action in self.view.due(self.clock.now()):
            self._run(action)
            done += 1
        if self.view.dirty_contacts or self.view.dirty_agents:
            done += 1  # timers made contacts eligible (relaxation, callbacks due): decide again
        return done

    def run_until_idle(self, max_steps: int = 10_000) -> int:
        """Steps until nothing is left to do now (tests and the simulator)."""
        total = 0
        for _ in range(max_steps):
            n = self.step()
            total += n
            if n == 0:
                return total
        return total

    def _write(self, decisions: list[Decision]) -> None:
        self.stats.batches += 1
        self.stats.decisions += len(decisions)
        ids = [uuid.UUID(d.contact_id) for d in decisions] + list({agent_uuid(d.agent_id) for d in decisions})
        attempts = 0

        def offer_contacts(uow: Any, ctx: Any, deps: Any, pairs: list[tuple[str, str]]) -> dict[str, Any]:
            nonlocal attempts
            attempts += 1
            return ccs.offer_contacts(uow, ctx, deps, pairs)

        clean = False
        try:
            self._prefetch.prefetched = self.loader.load(ids)
            result = self.write_bus.execute(offer_contacts, ROUTER_ACTOR, [(d.contact_id, d.agent_id) for d in decisions]).result
            self.stats.offered += len(result["offered"])
            self.stats.skipped += len(result["skipped"])
            clean = attempts == 1
        except DomainError as exc:
            log.info("routing batch refused: %s", exc.message)
            self.stats.skipped += len(decisions)
        finally:
            self._prefetch.prefetched = {}
            if not clean:  # a failed attempt changed the loader's objects without storing them
                self.loader.forget(ids)
        self.catch_up()
        self.view.settle(decisions)

    def _run(self, action: Action) -> None:
        self.stats.actions += 1
        try:
            if action.kind == "offer_timeout":
                self.bus.execute(ccs.time_out_offer, ROUTER_ACTOR, action.contact_id, action.agent_id)
            elif action.kind == "wrap_timeout":
                self.bus.execute(
                    ccs.wrap_up_contact, ROUTER_ACTOR, action.contact_id, cc.WrapUp(agent_id=action.agent_id, timed_out=True)
                )
            elif action.kind == "overflow":
                self.bus.execute(
                    ccs.overflow_contact,
                    ROUTER_ACTOR,
                    action.contact_id,
                    cc.OverflowContact.model_validate({"reason": action.reason or "max_wait"}),
                )
        except DomainError as exc:
            # The world moved on (the agent answered just in time, the caller hung up).
            log.debug("router action %s on %s not needed: %s", action.kind, action.contact_id, exc.message)

    # ------------------------------------------------------------------ the process
    def run(self, poll: float = 0.2, standby_poll: float = 1.0) -> None:
        """Runs until :meth:`stop`: as leader when the lock is ours, else as standby."""
        while not self._stop.is_set():
            if not self.is_leader:
                if self.leadership.acquire():
                    self.is_leader = True
                    log.info("%s: leader now; rebuilding the view from events", self.name)
                    self.rebuild()
                else:
                    self._stop.wait(standby_poll)
                    continue
            try:
                done = self.step()
            except Exception:
                log.exception("%s: routing step failed", self.name)
                done = 0
                self._stop.wait(poll)
            if not self.leadership.still_leader():
                log.warning("%s: lost leadership", self.name)
                self.is_leader = False
                continue
            if done == 0:
                self._idle_wait(poll)
        if self.is_leader:
            self.leadership.release()
            self.is_leader = False

    def _idle_wait(self, poll: float) -> None:
        nxt = self.view.next_timer()
        wait = poll
        if nxt is not None:
            wait = max(0.0, min(poll, nxt - self.clock.now().timestamp()))
        if wait > 0:
            self.store.wait_for_events(wait)

    def start(self) -> Router:
        self._thread = threading.Thread(target=self.run, name=self.name, daemon=True)
        self._thread.start()
        return self

    def stop(self, timeout: float = 10) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)


def enable_aggregate_cache(store: EventStore, maxsize: int = 20_000) -> None:
    """Keeps loaded aggregates in memory and, on each load, reads only the events written
    since (eventsourcing's repository cache with fast-forward). Agents' streams grow all
    day long (every contact adds events); without this each routing decision replays
    an agent's whole day. Correct with several writers: a cached aggregate is brought
    up to date from the store before every use, and a stale write still conflicts.
    (Recommended as a store setting: ``AGGREGATE_CACHE_MAXSIZE``.)"""
    from eventsourcing.application import Repository

    current = store.repository
    if getattr(current, "cache", None) is not None:
        return
    store._repository = Repository(  # type: ignore[attr-defined]
        event_store=store.events, snapshot_store=store.snapshots, cache_maxsize=maxsize, fastforward=True
    )


def leadership_for(database_url: str | None) -> Leadership:
    return AdvisoryLockLeadership(database_url) if database_url else AlwaysLeader()


def start_embedded(hotline: Any) -> Router:
    """The router in a background thread of ``hotline serve`` (embedded or PostgreSQL)."""
    router = Router(hotline.store, hotline.bus, leadership=leadership_for(hotline.settings.database_url))
    hotline.extras["router"] = router
    return router.start()
