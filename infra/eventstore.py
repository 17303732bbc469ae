"""The event store: the ``eventsourcing`` library on SQLite (embedded) or PostgreSQL.

Nothing but events is stored here. The notification log gives every event a global
position; projections, the Kafka relay and the timers follow it.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from collections.abc import Iterator, Sequence
from typing import Any
from urllib.parse import unquote, urlparse

from eventsourcing.application import AggregateNotFoundError, Application, LRUCache, ProcessingEvent, Repository
from eventsourcing.domain import DomainEvent
from eventsourcing.persistence import Notification, Recording
from eventsourcing.sqlite import SQLiteDatastore
from eventsourcing.utils import register_topic

from domain.envelope import Envelope, envelope_of
from infra.audit_chain import Checkpointer, checkpoint_file
from infra.citizen_keys import CitizenKeys
from infra.group_read import GroupReader
from infra.pg_recorder import HotlinePostgresRecorder
from infra.settings import Settings
from infra.transcoder import FastJSONTranscoder, SealingMapper, register_sealed

# Connections the event store's pool opens beyond pg_pool_size at a burst (infra/pg_connections.py counts them).
PG_STORE_OVERFLOW = 8
# Connections the event store's pool opens at start (the rest of pg_pool_size on demand).
PG_STORE_OPEN = 2


def store_env(settings: Settings) -> dict[str, str]:
    if settings.database_url:
        url = urlparse(settings.database_url)
        return {
            "PERSISTENCE_MODULE": "eventsourcing.postgres",
            "POSTGRES_DBNAME": url.path.lstrip("/") or "hotline",
            "POSTGRES_HOST": url.hostname or "127.0.0.1",
            "POSTGRES_PORT": str(url.port or 5432),
            "POSTGRES_USER": unquote(url.username or "postgres"),
            "POSTGRES_PASSWORD": unquote(url.password or ""),
            # The library's pool opens its POOL_SIZE connections at start: every process
            # (API worker, relay, consumer, timers, notifier) held pg_pool_size of them idle,
            # 17-20 each, and a deployment filled PostgreSQL's max_connections. A few are
            # opened at start and the rest when needed, up to the same maximum.
            "POSTGRES_POOL_SIZE": str(min(PG_STORE_OPEN, settings.pg_pool_size)),
            "POSTGRES_MAX_OVERFLOW": str(max(0, settings.pg_pool_size - PG_STORE_OPEN) + PG_STORE_OVERFLOW),
            "POSTGRES_LOCK_TIMEOUT": "10",
            "CREATE_TABLE": "y",
            "APPLICATION_RECORDER_TOPIC": f"infra.pg_recorder:{'Hotline' if settings.audit_chain else 'Unchained'}PostgresRecorder",
            **CACHE,
        }
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    return {
        "PERSISTENCE_MODULE": "eventsourcing.sqlite",
        "SQLITE_DBNAME": str(settings.sqlite_events_path),
        "SQLITE_LOCK_TIMEOUT": "30",
        "CREATE_TABLE": "y",
        "APPLICATION_RECORDER_TOPIC": f"infra.sqlite_recorder:{'Hotline' if settings.audit_chain else 'Unchained'}SQLiteRecorder",
        **CACHE,
    }


# Aggregates are cached as this process last wrote or read them, and commands trust the
# cache: a command that acted on a stale copy writes a version somebody else already
# wrote, the insert conflicts and the bus runs it again from the store. A command the
# domain refuses is run once more from the store too, so a stale copy never refuses a
# command on its own (see CommandBus). Reference data is fast-forwarded when it is read
# (see ``load``). No query per command to ask "has this changed?".
def keep_old_topics() -> None:
    """Events stored before the bounded contexts became packages name their classes by the
    old module paths (``domain.requests:ServiceRequest.Registered``): map those to the
    classes, so a store written by an earlier version still loads."""
    from domain.calendars.aggregate import JurisdictionCalendar
    from domain.catalogue.aggregate import Catalogue
    from domain.citizens.aggregate import Citizen, CitizenIdentity
    from domain.notifications.aggregate import Notification as NotificationAggregate
    from domain.requests.aggregate import ServiceRequest
    from domain.work_orders.aggregate import WorkOrder

    for old_module, cls in (
        ("domain.requests", ServiceRequest),
        ("domain.work_orders", WorkOrder),
        ("domain.citizens", Citizen),
        ("domain.citizens", CitizenIdentity),
        ("domain.catalogue", Catalogue),
        ("domain.calendars", JurisdictionCalendar),
        ("domain.notifications", NotificationAggregate),
    ):
        register_topic(f"{old_module}:{cls.__qualname__}", cls)  # the same mapping twice is a no-op


CACHE = {"AGGREGATE_CACHE_MAXSIZE": "20000", "AGGREGATE_CACHE_FASTFORWARD": "n"}


class ReferenceCache:
    """Reference data (catalogue, calendars, identity claims) as commands read it.

    Entries live ``ttl`` seconds and are dropped at once when this process saves events
    of that aggregate; another API node's change is seen within ``ttl``. An expired entry
    is kept until it is checked: if the store has nothing newer it lives on, so the
    catalogue is not rebuilt every ``ttl``. Absent aggregates are cached too, so "is there
    a calendar?" costs no query per command.
    """

    def __init__(self, ttl: float = 2.0, max_entries: int = 50_000) -> None:
        self.ttl = ttl
        self.max_entries = max_entries  # identity claims of every caller would pile up
        self._entries: dict[Any, tuple[float, Any]] = {}
        self._lock = threading.Lock()

    def get(self, key: Any, load: Any) -> Any:
        """``load(previous)`` gives the current value; ``previous`` is the expired one or None."""
        now = time.monotonic()
        entry = self._entries.get(key)
        if entry is not None and entry[0] > now:
            return entry[1]
        value = load(entry[1] if entry is not None else None)
        with self._lock:
            if len(self._entries) >= self.max_entries:
                self._entries = {k: e for k, e in self._entries.items() if e[0] > now}
                if len(self._entries) >= self.max_entries:
                    self._entries.clear()
            self._entries[key] = (now + self.ttl, value)
        return value

    def expire(self) -> None:
        """Every entry is checked against the store when next read."""
        with self._lock:
            self._entries = {key: (0.0, value) for key, (_, value) in self._entries.items()}

    def forget(self, keys: Any) -> None:
        with self._lock:
            for key in keys:
                self._entries.pop(key, None)


def _peek(cache: Any, key: Any) -> Any:
    """The cached value without touching its recency (most saved aggregates are new
    and not cached: no lock, no exception for them)."""
    link = cache.cache.get(key)
    if link is None:
        return None
    return link[3] if isinstance(cache, LRUCache) else link


def replay(aggregate: Any, domain_events: Any) -> Any:
    """The library's ``project_aggregate`` (eventsourcing 9.5) less its ``assert
    isinstance(event, CanMutateProtocol)`` on every event: a check against a runtime
    Protocol costs about 40 µs on Python 3.11, more than most events' own mutation, and
    every rebuild of an aggregate paid it once per stored event."""
    for domain_event in domain_events:
        aggregate = domain_event.mutate(aggregate)
    return aggregate


class HotlineRepository(Repository[Any]):
    """The library's repository, rebuilding aggregates with :func:`replay`."""

    def get(
        self,
        aggregate_id: Any,
        *,
        version: int | None = None,
        projector_func: Any = replay,
        fastforward_skipping: bool = False,
        deepcopy_from_cache: bool = True,
    ) -> Any:
        return super().get(
            aggregate_id,
            version=version,
            projector_func=projector_func,
            fastforward_skipping=fastforward_skipping,
            deepcopy_from_cache=deepcopy_from_cache,
        )


class _Collected(ProcessingEvent[Any]):
    """``ProcessingEvent`` that recognises pre-built events by their class.

    The library tests every saved object against a runtime-checkable Protocol, which
    costs more than encoding the event on Python 3.11; the timer process saves
    thousands of pre-built events at a time. Aggregates take the library's path."""

    def collect_events(self, *objs: Any, **kwargs: Any) -> None:
        for obj in objs:
            if isinstance(obj, DomainEvent):
                self.events.append(obj)
            else:
                super().collect_events(obj)
        self.saved_kwargs.update(kwargs)


class EventStore(Application):
    """The hotline's one write model. Aggregates are loaded and saved through it."""

    name = "hotline"

    def __init__(self, settings: Settings) -> None:
        keep_old_topics()
        # Settings decide the store, not stray POSTGRES_* variables of the process.
        env = store_env(settings)
        saved = {k: os.environ.pop(k) for k in list(os.environ) if k.startswith(("POSTGRES_", "SQLITE_", "PERSISTENCE_MODULE"))}
        try:
            super().__init__(env=env)
        finally:
            os.environ.update(saved)
        self.is_postgres = settings.database_url is not None
        self._new_events = threading.Condition()
        self.reference_cache = ReferenceCache()
        # Lookups of reference data that is not cached (mostly "is this caller known?")
        # share queries under load; SQLite answers in-process and needs no batching.
        self.group_reader = GroupReader(self.recorder) if self.is_postgres else None
        self._cache_lock = threading.Lock()
        # Tamper evidence: the recorders chain every event; checkpoints of the chain head go
        # to this file (and the log) every ``audit_checkpoint_every`` events.
        self.audit_checkpoint_file = checkpoint_file(settings)
        self.checkpointer = Checkpointer(self, settings.audit_checkpoint_every if settings.audit_chain else 0)
        # Personal data: a key per citizen, in the store's own database (infra/citizen_keys.py).
        # The in-memory store of some tests has no database: its keys go to an in-memory SQLite.
        datastore = getattr(self.recorder, "datastore", None) or SQLiteDatastore(":memory:")
        self.keys = CitizenKeys(datastore, postgres=self.is_postgres, dsn=settings.database_url)
        self.keys.on_erasure.append(self.forget_personal_data)
        if isinstance(self.recorder, HotlinePostgresRecorder):  # its append writes the batch's keys
            self.recorder.citizen_keys = self.keys
            self.keys.append_keys = True
        mapper: Any = self.mapper
        mapper.keys = self.keys
        mapper.encrypt = settings.encrypt_personal
        mapper.encrypt_text = settings.encrypt_citizen_text

    def construct_repository(self) -> Repository[Any]:
        library = super().construct_repository()
        repository = HotlineRepository(
            event_store=library.event_store,
            snapshot_store=library.snapshot_store,
            fastforward=library.fastforward,
            fastforward_skipping=library.fastforward_skipping,
            deepcopy_from_cache=library.deepcopy_from_cache,
        )
        repository.cache = library.cache  # as the library sized it (HOTLINE's env)
        return repository

    def construct_transcoder(self) -> FastJSONTranscoder:
        transcoder = FastJSONTranscoder()
        self.register_transcodings(transcoder)
        register_sealed(transcoder)
        return transcoder

    def construct_mapper(self) -> Any:
        # Keys are attached once the recorder (their database) exists, in __init__.
        return SealingMapper(self.construct_transcoder(), None, compressor=self.factory.compressor(), cipher=self.factory.cipher())  # type: ignore[arg-type]

    def forget_personal_data(self) -> None:
        """After an erasure: no cached aggregate or reference keeps personal data in memory."""
        cache = self.repository.cache
        if cache is not None:
            with self._cache_lock:
                cache.cache.clear()
        self.reference_cache.forget(list(self.reference_cache._entries))

    def save(self, *objs: Any, **kwargs: Any) -> list[Recording[Any]]:
        """``Application.save`` (eventsourcing 9.5) with the faster collection above."""
        processing_event = _Collected()
        processing_event.collect_events(*objs, **kwargs)
        mapper: Any = self.mapper
        if mapper.encrypt:  # the batch's keys, stored before its events (one transaction)
            mapper.prepare(processing_event.events)
        recordings = self._record(processing_event)
        self.checkpointer.after_commit(recordings)
        self._take_snapshots(processing_event)
        self._notify(recordings)
        self.notify(processing_event.events)  # deprecated hook, kept as the library calls it
        return recordings

    # ------------------------------------------------------------------ aggregate cache
    def read_reference(self, aggregate_id: Any, previous: Any = None) -> Any:
        """Reference data for the :class:`ReferenceCache`: ``previous`` if the store has
        nothing newer, else rebuilt from the store; None if absent. Never an object of
        the aggregate cache, which commands check out and change."""
        if previous is not None and not any(True for _ in self.events.get(aggregate_id, gt=previous.version, limit=1)):
            return previous
        if self.group_reader is not None:
            stored = self.group_reader.stored_events(aggregate_id)
            return replay(None, (self.mapper.to_domain_event(e) for e in stored)) if stored else None
        try:
            return self._rebuild(aggregate_id)
        except AggregateNotFoundError:
            return None

    def reference(self, aggregate_id: Any) -> Any:
        """The aggregate as reference data (read, never changed): from the
        :class:`ReferenceCache`, checked against the store after its ``ttl``; None if absent."""
        return self.reference_cache.get(aggregate_id, lambda previous: self.read_reference(aggregate_id, previous))

    def _rebuild(self, aggregate_id: Any) -> Any:
        """From the store, bypassing the cache (the library's own reconstruction)."""
        repository: Any = self.repository
        return repository._reconstruct_aggregate(aggregate_id, None, replay)

    def checkout(self, aggregate_id: Any) -> Any:
        """The aggregate for a command to change: taken out of the cache, not copied (a
        copy of a busy request cost more than the rest of a command). Until the bus puts
        it back with ``remember`` after the commit, other commands load it from the store.
        Raises ``AggregateNotFoundError``."""
        cache = self.repository.cache
        if cache is not None:
            with self._cache_lock:
                if _peek(cache, aggregate_id) is not None:
                    return cache.get(aggregate_id, evict=True)
        return self._rebuild(aggregate_id)

    def remember(self, aggregates: Any) -> None:
        """Committed (or checked out and left unchanged) aggregates go back into the
        cache, unless a newer copy is there."""
        cache = self.repository.cache
        if cache is None:
            return
        with self._cache_lock:
            for aggregate in aggregates:
                cached = _peek(cache, aggregate.id)
                if cached is None or cached.version < aggregate.version:
                    cache.put(aggregate.id, aggregate)

    def forget_aggregates(self, ids: Any) -> None:
        cache = self.repository.cache
        if cache is None:
            return
        with self._cache_lock:
            for aggregate_id in ids:
                if _peek(cache, aggregate_id) is not None:
                    with contextlib.suppress(KeyError):
                        cache.get(aggregate_id, evict=True)

    def _notify(self, recordings: Any) -> None:
        # Whoever saved (the bus, the timers, the router) the cached copies are now old;
        # the bus puts its committed aggregates back at once (``remember``).
        ids = {r.domain_event.originator_id for r in recordings}
        self.reference_cache.forget(ids)
        self.forget_aggregates(ids)
        with self._new_events:
            self._new_events.notify_all()

    def wait_for_events(self, timeout: float) -> None:
        with self._new_events:
            self._new_events.wait(timeout)

    # ------------------------------------------------------------------ reading the log
    def max_position(self) -> int:
        return self.recorder.max_notification_id() or 0

    def notifications(self, after: int, limit: int = 1000, stop: int | None = None) -> Sequence[Notification]:
        return self.recorder.select_notifications(after + 1, limit, stop=stop)

    def envelopes(self, after: int, limit: int = 1000, stop: int | None = None) -> list[Envelope]:
        return [self.to_envelope(n) for n in self.notifications(after, limit, stop)]

    def to_envelope(self, notification: Notification) -> Envelope:
        return envelope_of(self.mapper.to_domain_event(notification), notification.id)

    def iter_envelopes(self, after: int = 0, batch: int = 2000, stop: int | None = None) -> Iterator[Envelope]:
        position = after
        while True:
            page = self.notifications(position, batch, stop)
            if not page:
                return
            for n in page:
                yield self.to_envelope(n)
            position = page[-1].id

    def close(self) -> None:
        if self.group_reader is not None:
            self.group_reader.close()
        self.keys.close()
        super().close()
