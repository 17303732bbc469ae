"""A hotline, its router, the ARI adapter process and the Asterisk stand-in, talking over
real loopback sockets. Shared by the ARI scenario tests (``test_ari_*.py``)."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from consumers.router import Router
from domain.base import Actor, FixedClock
from domain.contact_center import commands as cc
from domain.contact_center.contacts import Contact, contact_uuid_for
from domain.handling import Command
from domain.requests.commands import RegisterRequest
from infra.runtime import Hotline
from infra.settings import Settings
from telephony_adapter.ari_client import AriClient
from telephony_adapter.process import TelephonyProcess
from telephony_adapter.standin.model import AriModel
from telephony_adapter.standin.server import Recorded, StandIn
from tests.conftest import load_catalogue
from tests.contact_center.harness import START

MODEL_DIR = Path(__file__).parent / "ari_model"
MODEL = AriModel(MODEL_DIR)
SUPERVISOR = Actor("sup1", "supervisor")
MARIO = "+39 06 1234 5678"  # a citizen the hotline knows (a request registered before)
MARIO_ON_THE_WIRE = "0612345678"  # how the network presents the number


@dataclass
class Pbx:
    hotline: Hotline
    standin: StandIn
    router: Router
    adapters: list[TelephonyProcess] = field(default_factory=list)

    # ------------------------------------------------------------------ set-up
    def run(self, cmd: Command, actor: Actor = SUPERVISOR) -> dict[str, Any]:
        return self.hotline.bus.execute(cmd, actor).result

    def adapter(self, name: str = "telephony", **kw: Any) -> TelephonyProcess:
        kw.setdefault("backoff_initial", 0.05)
        kw.setdefault("backoff_max", 0.4)
        kw.setdefault("poll", 0.05)
        client = AriClient(self.standin.url, self.standin.user, self.standin.password, "hotline")
        process = TelephonyProcess(self.hotline.store, self.hotline.bus, client, name=name, **kw)
        self.adapters.append(process.start())
        wait(lambda: process.connected.is_set(), what=f"{name} connected")
        return process

    def known_citizen(self, phone: str = MARIO) -> str:
        r = self.run(
            RegisterRequest.model_validate(
                {
                    "kind": "information",
                    "channel": "phone",
                    "description": "Opening hours?",
                    "contact": {"name": "Mario Rossi", "phone": phone},
                }
            ),
            Actor("A1", "agent"),
        )
        return str(r["citizen_id"])

    # ------------------------------------------------------------------ reading
    def contact_of(self, channel_id: str) -> str:
        return str(contact_uuid_for(f"ari:{channel_id}"))

    def contact(self, contact_id: str) -> Contact:
        found: Contact = self.hotline.store.checkout(uuid.UUID(contact_id))
        return found

    def events_of(self, contact_id: str) -> list[str]:
        return [e.name for e in self.hotline.store.iter_envelopes() if e.aggregate_id == contact_id]

    def event(self, contact_id: str, name: str) -> dict[str, Any]:
        return next(e.data for e in self.hotline.store.iter_envelopes() if e.aggregate_id == contact_id and e.name == name)

    def status(self, contact_id: str) -> str | None:
        try:
            return self.contact(contact_id).status
        except Exception:
            return None

    def wait_status(self, contact_id: str, *statuses: str, timeout: float = 5.0) -> None:
        wait(lambda: self.status(contact_id) in statuses, timeout, f"contact {contact_id} {statuses} (is {self.status(contact_id)})")

    def wait_events(self, contact_id: str, *names: str, timeout: float = 5.0) -> None:
        wait(lambda: all(n in self.events_of(contact_id) for n in names), timeout, f"{names} in {self.events_of(contact_id)}")

    def ops(self, *nicknames: str) -> list[str]:
        return [r.operation or "?" for r in self.standin.ops(*nicknames)]

    def requests_on(self, channel_or_bridge: str) -> list[Recorded]:
        return [r for r in self.standin.requests if channel_or_bridge in r.path or channel_or_bridge in str(r.query)]

    def agent_leg(self, contact_id: str, agent_id: str) -> str:
        found = [c for c in self.standin.channels if c.startswith(f"hl-agent.{contact_id}.{agent_id}.")]
        assert found, f"no channel of agent {agent_id} for {contact_id}: {list(self.standin.channels)}"
        return found[-1]

    def quiet(self, seconds: float = 0.15) -> None:
        """Lets in-flight events and requests settle."""
        time.sleep(seconds)

    def close(self) -> None:
        """Adapters, router, stand-in and store stopped (a fixture's teardown)."""
        for adapter in self.adapters:
            adapter.stop()
        self.router.stop()
        self.standin.stop()
        self.hotline.close()

    def assert_valid(self) -> None:
        """Every event sent and every request received matched Asterisk's model."""
        assert self.standin.violations == [], self.standin.violations
        for adapter in self.adapters:
            assert adapter.stats.request_errors == 0, adapter.stats.errors


def wait(predicate: Callable[[], bool], timeout: float = 5.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.005)
    raise AssertionError(f"timed out waiting for {what}")


def in_order(seen: list[str], expected: list[str]) -> bool:
    """``expected`` is a subsequence of ``seen``."""
    it = iter(seen)
    return all(any(s == e for s in it) for e in expected)


def start_pbx(tmp_path: Path, **standin: Any) -> Pbx:
    hotline = Hotline.start(Settings(data_dir=tmp_path), FixedClock(START))
    load_catalogue(hotline)
    pbx = Pbx(hotline, StandIn(MODEL, **standin).start(), Router(hotline.store, hotline.bus, name="router-test"))
    pbx.run(cc.DefineQueue(queue_id="general", wrap_seconds=0, offer_timeout_seconds=60))
    pbx.run(cc.DefineQueue(queue_id="experts", wrap_seconds=0))
    pbx.router.start()
    return pbx


def login(pbx: Pbx, agent_id: str, queues: list[str], ready: bool = True) -> None:
    pbx.run(cc.LoginAgent(agent_id=agent_id, queues=queues, languages=["it", "en"], ready=ready), Actor(agent_id, "agent"))


@pytest.fixture
def pbx(tmp_path: Path) -> Iterator[Pbx]:
    p = start_pbx(tmp_path)
    try:
        yield p
    finally:
        p.close()
