"""The composition root: builds the event store, the command bus and the read side from
settings. The API, the CLI, the simulator and the tests all start the hotline here."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from domain.base import Clock, SystemClock
from domain.config import Deps
from domain.requests.intake import IntakePolicy, phone_region
from infra.bus import CommandBus
from infra.eventstore import EventStore
from infra.group_commit import GroupCommitter
from infra.identity.service import Identity
from infra.read_store import ReadStore, make_engine
from infra.settings import Settings, get_settings


def tune_gc(settings: Settings) -> None:
    """Collect garbage less often in a process that runs commands or applies events."""
    import gc

    if settings.gc_young_threshold > 0:
        _, older, oldest = gc.get_threshold()
        gc.set_threshold(settings.gc_young_threshold, max(older, 20), max(oldest, 100))


@dataclass
class Hotline:
    settings: Settings
    clock: Clock
    store: EventStore
    committer: GroupCommitter
    read_store: ReadStore
    bus: CommandBus
    identity: Identity
    projector: Any = None  # consumers.inprocess.InProcessProjector in the embedded mode
    attachments: Any = None  # infra.attachments.AttachmentStore: attachments' bytes
    extras: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def start(cls, settings: Settings | None = None, clock: Clock | None = None, deps: Deps | None = None) -> Hotline:
        from consumers.inprocess import InProcessProjector
        from infra.wiring import HANDLERS, all_projections

        settings = settings or get_settings()
        clock = clock or SystemClock()
        store = EventStore(settings)
        committer = GroupCommitter(store, settings.group_commit_max_batch, settings.group_commit_max_wait_ms)
        read_store = ReadStore(make_engine(settings.read_store_url, settings.pg_pool_size), all_projections())
        read_store.create_tables()
        deps = deps or Deps(
            policy=IntakePolicy(
                allow_anonymous=settings.allow_anonymous,
                default_region=phone_region(settings.jurisdiction, settings.default_region),
                default_language=settings.default_language,
            ),
            jurisdiction=settings.jurisdiction,
        )
        identity = Identity(settings, store)
        if deps.secrets is None:
            deps.secrets = identity.secrets
        projector = InProcessProjector(store, read_store) if settings.projections_inprocess else None
        bus = CommandBus(store, committer, deps, clock, HANDLERS, after_commit=projector.catch_up if projector else None)
        hotline = cls(settings, clock, store, committer, read_store, bus, identity, projector)
        from infra.attachments import AttachmentStore

        hotline.attachments = AttachmentStore.for_settings(settings, read_store.engine)
        from consumers.timers import configure_sla

        configure_sla(hotline)
        if projector:
            projector.catch_up()
        tune_gc(settings)
        return hotline

    def close(self) -> None:
        if (stop := self.extras.get("live_feed_stop")) is not None:
            stop.set()  # the live feed's LISTEN thread (distributed mode)
        self.committer.close()
        self.read_store.engine.dispose()
        self.store.close()
