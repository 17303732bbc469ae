"""The router (ACD) process: an in-memory view fed by the event log, decisions written as
commands through the CommandBus.

Loop: read new events into the :class:`~domain.contact_center.routing.RoutingView`; run
due timers (offer timeouts, wrap-up ends, maximum waits, callbacks too old); decide
matches and write them in one ``offer_contacts`` command (one transaction); take the
written events into the view; repeat. Every write goes through the Contact and Agent aggregates with optimistic
concurrency, so a second router, or an agent grabbing work, can never cause a double
assignment: the loser's commit conflicts, the bus reruns the handler on fresh state and
the lost decisions are skipped.

What keeps it fast (``tests/bench/bench_routing.py``): the router keeps the Contact and
Agent aggregates it writes to, fed from the same log it reads for its view, so a batch
loads nothing (:class:`BatchLoader`); its own events go into the view as they were
written, not decoded back from the log (:meth:`Router._absorb`); a decision is two
events (``contact.offered``, and ``agent.reserved`` carrying the agent's new state).

With PostgreSQL, one router is active at a time: the leader holds a session-level
advisory lock on its own connection; standbys try to take it every ``poll`` seconds and
the lock is released by the server as soon as the leader's connection dies, so a
standby takes over within seconds. A new leader rebuilds its view from the events.
Embedded (SQLite) mode runs one router, in a background thread of ``hotline serve``
or in the simulator's loop.
"""

from __future__ import annotations

import copy
import gc
import logging
import threading
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from dataclasses import fields as dataclass_fields
from datetime import UTC, tzinfo
from typing import Any
from zoneinfo import ZoneInfo

from eventsourcing.persistence import Notification, Recording

from consumers.fast_decode import decoder_for
from consumers.leadership import LOCK_KEY, AdvisoryLockLeadership, AlwaysLeader, Leadership  # noqa: F401 (LOCK_KEY: re-exported)
from domain.base import Actor, Context, DomainError, _owner_of, event_type_name
from domain.contact_center import commands as cc
from domain.contact_center import handlers as contact_center
from domain.contact_center.agents import agent_uuid
from domain.contact_center.routing import Action, Decision, RoutingView
from domain.envelope import Envelope, to_jsonable
from domain.handling import CommandHandlers, Handlers, UnitOfWork
from infra.bus import CommandBus
from infra.eventstore import EventStore
from infra.group_commit import GroupCommitter

log = logging.getLogger("hotline.router")
ROUTER_ACTOR = Actor(id="router", role="system", name="ACD router")
KEPT_STREAMS = ("contact", "agent")  # the aggregates routing decisions write to


class BatchLoader:
    """Keeps the Contact and Agent aggregates the router writes to, up to date without
    reading them again.

    An aggregate is loaded from the store once (every one missing from a batch with one
    query: on PostgreSQL a join on ``unnest(ids)``). From then on the router's catch-up,
    which reads every event of the log in order anyway, hands each event of a kept
    aggregate to :meth:`feed`; the router's own writes change the very objects kept
    here. So before a batch nothing is read for the aggregates already kept.

    It hands out its own objects, not copies: after a successful commit they are exactly
    what was stored; after a failed one the router calls :meth:`forget`. They are only a
    starting point: if anybody wrote to one of these aggregates after the router last
    caught up, the commit conflicts on the version (the store refuses a second event at
    the same version) and the bus reruns the handler, which then loads from the store."""

    def __init__(self, store: EventStore, max_cached: int = 100_000) -> None:
        self.store = store
        self.max_cached = max_cached
        self.cache: dict[uuid.UUID, Any] = {}

    def load(self, ids: list[uuid.UUID]) -> dict[uuid.UUID, Any]:
        if len(self.cache) > self.max_cached:
            self.cache.clear()
        missing = [i for i in ids if i not in self.cache]
        if missing:
            for stored in self._select(missing):
                event: Any = self.store.mapper.to_domain_event(stored)
                self.feed(event, create=True)
        return {i: self.cache[i] for i in ids if i in self.cache}

    def feed(self, event: Any, *, create: bool = False) -> None:
        """The next event of an aggregate, read from the log in order: applied to the
        kept aggregate (or, with ``create``, a first event makes it kept). Events it
        already has (it was loaded after the router's view read them) are ignored; a
        gap (never expected) drops the aggregate, which is then loaded afresh. A contact
        that has ended is dropped: nothing is routed to it any more."""
        oid = event.originator_id
        agg = self.cache.get(oid)
        if agg is None:
            if not (create and event.originator_version == 1):
                return
            agg = self.cache[oid] = event.mutate(None)
        elif event.originator_version == agg.version + 1:
            event.mutate(agg)
        elif event.originator_version > agg.version:
            del self.cache[oid]
            return
        if getattr(agg, "is_terminal", False):
            del self.cache[oid]

    def forget(self, ids: list[uuid.UUID]) -> None:
        for i in ids:
            self.cache.pop(i, None)

    def clear(self) -> None:
        self.cache.clear()

    def _select(self, ids: list[uuid.UUID]) -> list[Any]:
        recorder: Any = self.store.recorder
        if getattr(self.store, "is_postgres", False) and hasattr(recorder, "events_table_name"):
            from eventsourcing.persistence import StoredEvent
            from psycopg.sql import SQL, Identifier

            statement = SQL(
                "SELECT e.originator_id, e.originator_version, e.topic, e.state FROM {schema}.{table} e "
                "WHERE e.originator_id = ANY(%s::uuid[]) ORDER BY e.originator_id, e.originator_version"
            ).format(schema=Identifier(recorder.datastore.schema), table=Identifier(recorder.events_table_name))
            with recorder.datastore.get_connection() as conn, conn.cursor() as curs:
                curs.execute(statement, [ids])
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
        for i in ids:
            found.extend(recorder.select_events(i))
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

    def checkout(self, aggregate_id: uuid.UUID) -> Any:
        found = self.prefetched.pop(aggregate_id, None)
        return found if found is not None else self._store.checkout(aggregate_id)

    def remember(self, aggregates: Any) -> None:
        """The batch loader keeps the router's aggregates, which the router goes on
        changing: the shared cache gets copies. Without them the next command on an offered
        agent (the answer, from the desk or the PBX) rebuilt the agent from its whole
        stream, a day of contacts (the demo: 767 rebuilds of 240 events on average)."""
        self._store.remember([copy.deepcopy(a) for a in aggregates])


class _KeepingCommitter:
    """The group committer as the router's write bus sees it: keeps the recordings of
    the last successful commit (the bus only returns the last position)."""

    def __init__(self, committer: GroupCommitter) -> None:
        self._committer = committer
        self.kept: list[Recording[Any]] = []

    def __getattr__(self, name: str) -> Any:
        return getattr(self._committer, name)

    def commit(self, events: list[Any], *, was_preparing: bool = False) -> list[Recording[Any]]:
        recordings = self._committer.commit(events, was_preparing=was_preparing)
        self.kept = list(recordings)
        return recordings


_EVENT_TYPES: dict[type, tuple[str, str, tuple[str, ...]]] = {}
_BOOKKEEPING = {"originator_id", "originator_version", "timestamp", "originator_topic", "meta"}
_PLAIN = (str, int, float, bool, type(None))


def _jsonable(value: Any) -> Any:
    return value if type(value) in _PLAIN else to_jsonable(value)


def own_envelope(event: Any, position: int) -> Envelope:
    """:func:`~domain.envelope.envelope_of` for the router's own events (equal result;
    the type name, stream and field names are worked out once per event class)."""
    cls = type(event)
    known = _EVENT_TYPES.get(cls)
    if known is None:
        names = tuple(f.name for f in dataclass_fields(event) if f.name not in _BOOKKEEPING)
        known = _EVENT_TYPES[cls] = (event_type_name(cls), _owner_of(cls).STREAM, names)
    return Envelope(
        type=known[0],
        stream=known[1],
        aggregate_id=str(event.originator_id),
        version=event.originator_version,
        position=position,
        time=event.timestamp,
        data={name: _jsonable(getattr(event, name)) for name in known[2]},
        meta=dict(event.meta),
    )


@dataclass
class RouterStats:
    decisions: int = 0
    offered: int = 0
    skipped: int = 0
    actions: int = 0
    batches: int = 0
    decide_seconds: list[float] = field(default_factory=list)  # per batch, for the benchmark
    # Where the time goes (seconds, cumulative): catch_up, decide, load (aggregates not
    # kept yet), handle (the aggregates' rules and events), commit, readback.
    phases: dict[str, float] = field(default_factory=dict)

    def timed(self, phase: str, started: float) -> float:
        now = time.perf_counter()
        self.phases[phase] = self.phases.get(phase, 0.0) + now - started
        return now


class Router:
    def __init__(
        self,
        store: EventStore,
        bus: CommandBus,
        *,
        batch: int = 200,
        leadership: Leadership | None = None,
        name: str = "router",
        freeze_heap: bool = False,
        time_zone: str | None = None,
    ) -> None:
        self.store = store
        self.zone: tzinfo = ZoneInfo(time_zone) if time_zone else UTC  # the hotline's local day (Settings.time_zone)
        self.freeze_heap = freeze_heap
        self.bus = bus
        self.clock = bus.clock
        self.batch = batch
        self.leadership = leadership or AlwaysLeader()
        self.name = name
        self.view = RoutingView(self.zone)
        self.stats = RouterStats()
        # Decisions go through a bus of their own whose loads come from the batch loader
        # and whose committer keeps the recordings (the router's own events, with their
        # positions: the view takes them as they are instead of decoding them back).
        self.loader = BatchLoader(store)
        self._prefetch = _PrefetchedStore(store)
        self._committer = _KeepingCommitter(bus.committer)
        # The bus of decisions knows one command: the batch of offers, timed (attempts and
        # time in the handler) for the router's statistics.
        timed = Handlers("router")
        timed(cc.OfferContacts)(self._offer_contacts)
        self.write_bus = CommandBus(
            self._prefetch,  # type: ignore[arg-type]
            self._committer,  # type: ignore[arg-type]
            bus.deps,
            bus.clock,
            CommandHandlers(timed),
            after_commit=bus.after_commit,
        )
        self._attempts = 0
        self._handling = 0.0
        self._decoder = decoder_for(store)
        self._own: dict[int, Envelope] = {}  # own events not applied yet, by position
        self.is_leader = False
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # ------------------------------------------------------------------ one step
    def catch_up(self) -> int:
        """Reads the log since the view's position into the view (and into the aggregates
        the batch loader keeps). Returns how many events it read."""
        applied = 0
        while True:
            page = self.store.notifications(self.view.position, 2000)
            if not page:
                break
            self.view.apply_all(self._envelopes(page))
            applied += len(page)
        if self._own:  # written by this router and now behind the view
            self._own = {p: e for p, e in self._own.items() if p > self.view.position}
        return applied

    def _envelopes(self, page: Sequence[Notification]) -> list[Envelope]:
        kept = self.loader.cache
        out: list[Envelope] = []
        for n in page:
            own = self._own.pop(n.id, None)
            if own is not None:
                out.append(own)  # this router's own event: known already, not decoded again
            elif n.originator_id in kept or (n.originator_version == 1 and self._kept_stream(n.topic)):
                # A Contact or Agent the router may write to: decoded once, for the
                # loader's aggregate and for the view.
                event = self.store.mapper.to_domain_event(n)
                self.loader.feed(event, create=True)
                out.append(own_envelope(event, n.id))
            else:
                out.append(self._decoder.envelope(n))
        return out

    def _kept_stream(self, topic: str) -> bool:
        known = self._decoder.type_of(topic)
        return known is not None and known[1] in KEPT_STREAMS

    def _absorb(self, recordings: Sequence[Recording[Any]]) -> None:
        """The router's own events, just committed: into the view without reading them
        back when nothing else was written before them since the view's position (else
        the catch-up reads the log and takes these from ``_own`` instead of decoding)."""
        envelopes = [own_envelope(r.domain_event, r.notification.id) for r in recordings]
        if not envelopes:
            return
        first = envelopes[0].position
        if first == self.view.position + 1 and all(e.position == first + k for k, e in enumerate(envelopes)):
            self.view.apply_all(envelopes)
        else:
            self._own.update((e.position, e) for e in envelopes)

    def rebuild(self) -> None:
        """Forget the view and read it again from the events (a new leader, a restart).

        With ``freeze_heap`` (the router's own process: ``hotline router``), the rebuilt
        view and aggregates are then moved out of the garbage collector's sight
        (``gc.freeze``): they live as long as the process, and each full collection
        would otherwise walk every one of them (about 0.1 s with 10,000 waiting contacts,
        a pause in routing every few thousand decisions). Objects freed later by their
        reference count are freed as usual; the freeze is undone before a rebuild."""
        if self.freeze_heap:
            gc.unfreeze()  # the old view may be collected
        self.view = RoutingView(self.zone)
        self._own.clear()
        self.loader.clear()
        self.catch_up()
        if self.freeze_heap:
            gc.collect()
            gc.freeze()

    def step(self) -> int:
        """Catch up, run due timers, make and write one batch of decisions. Returns how
        many things it did (0: nothing to do until new events or the next timer)."""
        started = time.perf_counter()
        self.catch_up()
        started = self.stats.timed("catch_up", started)
        done = 0
        decisions = self.view.decide(self.clock.now(), self.batch)
        self.stats.timed("decide", started)
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
        self._attempts, self._handling = 0, 0.0
        clean = False
        self._committer.kept = []
        started = time.perf_counter()
        try:
            self._prefetch.prefetched = self.loader.load(ids)
            started = self.stats.timed("load", started)
            result = self.write_bus.execute(
                cc.OfferContacts(decisions=[(d.contact_id, d.agent_id) for d in decisions]), ROUTER_ACTOR
            ).result
            self.stats.offered += len(result["offered"])
            self.stats.skipped += len(result["skipped"])
            clean = self._attempts == 1
        except DomainError as exc:
            log.info("routing batch refused: %s", exc.message)
            self.stats.skipped += len(decisions)
        finally:
            self._prefetch.prefetched = {}
            if not clean:  # a failed attempt changed the loader's objects without storing them
                self.loader.forget(ids)
            recordings, self._committer.kept = self._committer.kept, []
            # "handle": the aggregates decide and record; "commit": the rest of the
            # command (the group committer's transaction, retries).
            self.stats.phases["handle"] = self.stats.phases.get("handle", 0.0) + self._handling
            started = self.stats.timed("commit", started + self._handling)
        self._absorb(recordings)
        self.catch_up()
        self.view.settle(decisions)
        self.stats.timed("readback", started)

    def _offer_contacts(self, uow: UnitOfWork, ctx: Context, cmd: cc.OfferContacts) -> dict[str, Any]:
        self._attempts += 1
        began = time.perf_counter()
        try:
            return contact_center.offer_contacts(uow, ctx, cmd)
        finally:
            self._handling += time.perf_counter() - began

    def _run(self, action: Action) -> None:
        self.stats.actions += 1
        try:
            if action.kind == "offer_timeout" and action.agent_id is not None:
                self.bus.execute(cc.TimeOutOffer(contact_id=action.contact_id, agent_id=action.agent_id), ROUTER_ACTOR)
            elif action.kind == "wrap_timeout":
                self.bus.execute(cc.WrapUp(contact_id=action.contact_id, agent_id=action.agent_id, timed_out=True), ROUTER_ACTOR)
            elif action.kind == "overflow":
                self.bus.execute(
                    cc.OverflowContact.model_validate({"contact_id": action.contact_id, "reason": action.reason or "max_wait"}),
                    ROUTER_ACTOR,
                )
            elif action.kind == "give_up":
                self.bus.execute(
                    cc.GiveUpCallback.model_validate({"contact_id": action.contact_id, "reason": action.reason or "max_age"}), ROUTER_ACTOR
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


def router_metrics(router: Router) -> Any:
    """The router's figures for /metrics, read at scrape time from its counters and view
    (nothing is added to the routing loop)."""
    from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

    from infra.metrics import StatsCollector

    def build() -> Any:
        s = router.stats
        yield GaugeMetricFamily("hotline_router_leader", "1 while this router holds the leader lock", value=1 if router.is_leader else 0)
        yield CounterMetricFamily("hotline_router_decisions", "Routing decisions taken (offers and skips)", value=s.decisions)
        yield CounterMetricFamily("hotline_router_offers", "Contacts offered to agents", value=s.offered)
        yield CounterMetricFamily("hotline_router_skipped", "Decisions not written: the world moved on", value=s.skipped)
        yield CounterMetricFamily("hotline_router_actions", "Timeouts, wrap-ups and overflows the router issued", value=s.actions)
        yield CounterMetricFamily("hotline_router_batches", "Decision batches committed", value=s.batches)
        yield GaugeMetricFamily("hotline_router_view_position", "Event position the routing view has applied", value=router.view.position)
        depth = GaugeMetricFamily("hotline_router_queue_depth", "Callers waiting in the queue (router's view)", labels=["queue"])
        waiting: dict[str, int] = dict.fromkeys(list(router.view.queues), 0)
        for contact in list(router.view.contacts.values()):
            if contact.status == "queued" and not contact.virtual:  # a callback has nobody on the line (as the wallboard)
                waiting[contact.queue_id] = waiting.get(contact.queue_id, 0) + 1
        for queue, n in sorted(waiting.items()):
            depth.add_metric([queue], n)
        yield depth

    return StatsCollector("hotline_router", build)


def leadership_for(database_url: str | None) -> Leadership:
    return AdvisoryLockLeadership(database_url) if database_url else AlwaysLeader()


def start_embedded(hotline: Any) -> Router:
    """The router in a background thread of ``hotline serve`` (embedded or PostgreSQL)."""
    router = Router(
        hotline.store, hotline.bus, leadership=leadership_for(hotline.settings.database_url), time_zone=hotline.settings.time_zone
    )
    hotline.extras["router"] = router
    return router.start()
