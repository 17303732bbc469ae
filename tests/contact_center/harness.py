"""A contact center on an in-memory event store, driven through the real CommandBus and
the real router, with a hand-moved clock. Shared by the contact-center tests."""

from __future__ import annotations

import threading
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from consumers.router import Router
from domain.base import Actor, FixedClock
from domain.config import Deps
from domain.contact_center import commands as cc
from domain.envelope import Envelope
from domain.handling import Command
from infra import eventstore
from infra.bus import CommandBus, CommandResult
from infra.eventstore import EventStore
from infra.group_commit import GroupCommitter
from infra.settings import Settings
from infra.wiring import HANDLERS

SUPERVISOR = Actor("sup1", "supervisor")
SYSTEM = Actor("pbx", "system")
START = datetime(2025, 3, 3, 9, 0, tzinfo=UTC)  # a Monday


_ENV_LOCK = threading.Lock()


class MemoryEventStore(EventStore):
    """The hotline's EventStore on eventsourcing's in-memory (POPO) persistence."""

    def __init__(self) -> None:
        with _ENV_LOCK:
            original = eventstore.store_env
            eventstore.store_env = lambda settings: {
                "PERSISTENCE_MODULE": "eventsourcing.popo",
                "AGGREGATE_CACHE_MAXSIZE": "10000",
            }
            try:
                super().__init__(Settings(data_dir=Path("/nonexistent-unused")))
            finally:
                eventstore.store_env = original


class Center:
    def __init__(self, store: EventStore | None = None, clock: FixedClock | None = None) -> None:
        self.clock = clock or FixedClock(START)
        self.store = store or MemoryEventStore()
        self.committer = GroupCommitter(self.store)
        self.bus = CommandBus(self.store, self.committer, Deps(), self.clock, HANDLERS)
        self.router = Router(self.store, self.bus)

    def close(self) -> None:
        self.committer.close()

    # ------------------------------------------------------------------ commands
    def run(self, cmd: Command, actor: Actor = SYSTEM) -> dict[str, Any]:
        result: CommandResult = self.bus.execute(cmd, actor)
        return result.result

    def queue(self, queue_id: str, **config: Any) -> dict[str, Any]:
        return self.run(cc.DefineQueue(queue_id=queue_id, **config), actor=SUPERVISOR)

    def login(self, agent_id: str, queues: list[str], skills: dict[str, int] | None = None, **kw: Any) -> dict[str, Any]:
        return self.run(cc.LoginAgent(agent_id=agent_id, queues=queues, skills=skills or {}, **kw), actor=Actor(agent_id, "agent"))

    def arrive(self, queue_id: str, channel: str = "phone", **kw: Any) -> str:
        kw.setdefault("phone", "+390612345678")
        return str(self.run(cc.ContactArrives.model_validate({"channel": channel, "queue_id": queue_id, **kw}))["id"])

    def as_agent(self, agent_id: str, cmd: Command) -> dict[str, Any]:
        return self.run(cmd, actor=Actor(agent_id, "agent"))

    def answer(self, contact_id: str, agent_id: str) -> dict[str, Any]:
        return self.as_agent(agent_id, cc.Answer(contact_id=contact_id, agent_id=agent_id))

    def connected(self, agent: str, queue: str = "q") -> str:
        """A contact that arrived in ``queue``, was offered to ``agent`` and answered."""
        cid = self.arrive(queue)
        self.route()
        assert self.offered_to(cid) == agent
        self.answer(cid, agent)
        return cid

    def end(self, contact_id: str, agent_id: str) -> dict[str, Any]:
        return self.as_agent(agent_id, cc.End(contact_id=contact_id, agent_id=agent_id))

    def wrap(self, contact_id: str, agent_id: str, disposition: str | None = "resolved") -> dict[str, Any]:
        return self.as_agent(agent_id, cc.WrapUp(contact_id=contact_id, agent_id=agent_id, disposition=disposition))

    def presence(self, agent_id: str, presence: str, reason: str | None = None) -> dict[str, Any]:
        return self.as_agent(agent_id, cc.SetPresence.model_validate({"agent_id": agent_id, "presence": presence, "reason": reason}))

    def register_request(self, agent_id: str = "A") -> tuple[str, str]:
        """A request registered by an agent: (its id, its reference)."""
        from domain.requests import commands as rc

        details = rc.Contact(name="Mario Rossi", phone="+390612345678")
        cmd = rc.RegisterRequest(kind="action", subtype="complaint", channel="phone", description="Pothole", contact=details)
        done = self.run(cmd, actor=Actor(agent_id, "agent"))
        return str(done["id"]), str(done["reference"])

    def route(self) -> int:
        return self.router.run_until_idle()

    def tick(self, seconds: float) -> int:
        self.clock.advance(seconds=seconds)
        return self.route()

    # ------------------------------------------------------------------ reading
    def envelopes(self) -> list[Envelope]:
        return list(self.store.iter_envelopes())

    def events_of(self, contact_id: str) -> list[str]:
        return [e.name for e in self.envelopes() if e.aggregate_id == contact_id]

    def offered_to(self, contact_id: str) -> str | None:
        c = self.router.view.contacts.get(contact_id)
        return c.offered_to if c else None

    def offers(self) -> dict[str, str]:
        """contact -> agent for every outstanding routing offer."""
        return {cid: c.offered_to for cid, c in self.router.view.contacts.items() if c.offered_to and c.offer_kind == "route"}

    def agent_state(self, agent_id: str) -> str:
        return self.router.view.agents[agent_id].state

    def terminal_counts(self) -> Counter[str]:
        terminal = {"wrapped_up", "abandoned", "callback_gave_up"}
        counts: Counter[str] = Counter()
        for e in self.envelopes():
            kind = e.name
            if e.stream == "contact" and (kind in terminal or (kind == "overflowed" and e.data["to"] == "voicemail")):
                counts[e.aggregate_id] += 1
        return counts
