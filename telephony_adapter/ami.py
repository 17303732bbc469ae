"""Asterisk Manager Interface (AMI) → contact-center commands: the observer for PBXs whose
calls stay in their own dialplan (``Queue()``, app_queue) instead of entering ARI.

A site with an existing app_queue gets Hotline's reporting without changing its dialplan:
app_queue routes the calls, and this observer turns what it reports into the same
contact commands the ARI adapter (``telephony_adapter/ari.py``) issues, so the contact
events, read models and KPIs are the same facts:

=====================  ==========================================================
AMI event              command
=====================  ==========================================================
QueueCallerJoin        ContactArrives (external id ``ami:<Uniqueid>``, caller's number)
AgentCalled            OfferContact (app_queue rang the member)
AgentRingNoAnswer      TimeOutOffer
AgentConnect           Answer (offered first when the AgentCalled was not seen)
AgentComplete          End (``Reason: caller`` → ended by the citizen, else the agent)
QueueCallerAbandon     Abandon
QueueMemberAdded       LoginAgent, or MoveAgent into one more queue
QueueMemberRemoved     MoveAgent out of the queue, LogoutAgent out of the last one
QueueMemberPause       SetPresence not_ready (the pause reason) / available
=====================  ==========================================================

Event fields as Asterisk documents them (docs.asterisk.org, *AMI Events*: QueueCallerJoin,
AgentCalled, AgentConnect, AgentComplete, QueueCallerAbandon, AgentRingNoAnswer,
QueueMemberAdded …). Queue names map to Hotline queue ids and members (``MemberName``,
else ``Interface`` such as ``PJSIP/op-anna``) to agent ids through
``HOTLINE_AMI_QUEUE_MAP`` / ``HOTLINE_AMI_AGENT_MAP``; an unmapped queue keeps its name
and an unmapped interface its last part.

Time: live, the commands take the bus's clock. A recorded session replayed into a
scratch store (``clock`` given) takes each event's ``Timestamp`` header (manager.conf
``timestampevents = yes``), so waits and talk times are those of the recorded day.
Re-delivered or out-of-place events are refused by the aggregates and noted in
``ignored``, never raised.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from domain.base import Actor, DomainError, FixedClock, InvalidTransition
from domain.contact_center import commands as cc
from domain.contact_center.agents import Agent, agent_uuid
from domain.contact_center.contacts import Contact, contact_uuid_for
from domain.handling import Command
from infra.bus import CommandBus

log = logging.getLogger("hotline.telephony.ami")
AMI_ACTOR = Actor("asterisk-ami", "system", "Asterisk AMI observer")
EOL = "\r\n"


def external_id(uniqueid: str) -> str:
    """The contact's external id for an app_queue caller channel (its ``Uniqueid``)."""
    return f"ami:{uniqueid}"


def parse_session(text: str) -> list[dict[str, str]]:
    """AMI's wire format (``Key: Value`` lines, a blank line after each message) as dicts.
    Lines are CRLF on the wire; LF alone is accepted for files kept by hand."""
    messages: list[dict[str, str]] = []
    for block in text.replace(EOL, "\n").split("\n\n"):
        message: dict[str, str] = {}
        for line in block.split("\n"):
            key, sep, value = line.partition(": ")
            if sep:
                message[key.strip()] = value.strip()
        if message:
            messages.append(message)
    return messages


def to_wire(message: Mapping[str, str]) -> bytes:
    return ("".join(f"{k}: {v}{EOL}" for k, v in message.items()) + EOL).encode()


@dataclass
class AmiObserver:
    bus: CommandBus
    queue_map: Mapping[str, str] = field(default_factory=dict)
    agent_map: Mapping[str, str] = field(default_factory=dict)
    clock: FixedClock | None = None  # replay: each event's Timestamp moves it
    actor: Actor = AMI_ACTOR
    ignored: list[str] = field(default_factory=list)
    handled: int = 0

    # ------------------------------------------------------------------ mapping
    def queue_of(self, event: Mapping[str, str]) -> str:
        name = event.get("queue", "")
        return self.queue_map.get(name, name)

    def agent_of(self, event: Mapping[str, str]) -> str:
        for key in ("membername", "interface", "destchannel"):
            value = event.get(key)
            if value and value in self.agent_map:
                return self.agent_map[value]
        interface = event.get("interface") or event.get("membername") or ""
        # PJSIP/op-anna, SIP/op-anna, Local/op-anna@agents/n → op-anna
        return interface.split("/", 1)[-1].split("@", 1)[0]

    @staticmethod
    def contact_of(event: Mapping[str, str]) -> str:
        return external_id(event.get("uniqueid", ""))

    # ------------------------------------------------------------------ events
    def handle(self, raw: Mapping[str, str]) -> dict[str, Any] | None:
        """Maps one AMI event to commands and runs them; returns the last result."""
        event = {k.lower(): v for k, v in raw.items()}
        kind = event.get("event", "")
        method = getattr(self, f"_on_{kind}", None)
        if method is None:
            return None
        if self.clock is not None and event.get("timestamp"):
            at = datetime.fromtimestamp(float(event["timestamp"]), UTC)
            if at > self.clock.current:
                self.clock.current = at
        try:
            result: dict[str, Any] | None = method(event)
            self.handled += 1
            return result
        except DomainError as exc:
            self.ignored.append(f"{kind} {event.get('uniqueid', '')}: {exc.message}")
            return None

    def _run(self, cmd: Command) -> dict[str, Any]:
        return self.bus.execute(cmd, self.actor).result

    def _on_QueueCallerJoin(self, e: dict[str, str]) -> dict[str, Any]:
        number = e.get("calleridnum") or ""
        phone = number if number and number.lower() not in ("<unknown>", "anonymous", "unknown") else None
        return self._run(
            cc.ContactArrives(
                channel="phone",
                queue_id=self.queue_of(e),
                phone=phone,
                external_id=self.contact_of(e),
            )
        )

    def _on_AgentCalled(self, e: dict[str, str]) -> dict[str, Any]:
        return self._run(cc.OfferContact(contact_id=self.contact_of(e), agent_id=self.agent_of(e)))

    def _on_AgentRingNoAnswer(self, e: dict[str, str]) -> dict[str, Any]:
        return self._run(cc.TimeOutOffer(contact_id=self.contact_of(e), agent_id=self.agent_of(e)))

    def _on_AgentConnect(self, e: dict[str, str]) -> dict[str, Any]:
        contact_id, agent_id = self.contact_of(e), self.agent_of(e)
        contact = self.bus.store.read_reference(contact_uuid_for(contact_id))
        if isinstance(contact, Contact) and contact.offered_to != agent_id:
            # The AgentCalled was missed (the observer started mid-call): offer, then answer.
            self._run(cc.OfferContact(contact_id=contact_id, agent_id=agent_id))
        return self._run(cc.Answer(contact_id=contact_id, agent_id=agent_id))

    def _on_AgentComplete(self, e: dict[str, str]) -> dict[str, Any]:
        ended_by = "citizen" if e.get("reason", "").lower() == "caller" else "agent"
        return self._run(cc.End.model_validate({"contact_id": self.contact_of(e), "ended_by": ended_by}))

    def _on_QueueCallerAbandon(self, e: dict[str, str]) -> dict[str, Any]:
        return self._run(cc.Abandon(contact_id=self.contact_of(e)))

    def _on_QueueMemberAdded(self, e: dict[str, str]) -> dict[str, Any]:
        agent_id, queue_id = self.agent_of(e), self.queue_of(e)
        agent = self._agent(agent_id)
        if agent is None or agent.state == "logged_out":
            paused = e.get("paused") == "1"
            return self._run(cc.LoginAgent(agent_id=agent_id, name=e.get("membername") or None, queues=[queue_id], ready=not paused))
        if queue_id in agent.queues:
            raise InvalidTransition(f"agent {agent_id} already serves {queue_id}")
        return self._run(cc.MoveAgent(agent_id=agent_id, queues=[*agent.queues, queue_id]))

    def _on_QueueMemberRemoved(self, e: dict[str, str]) -> dict[str, Any]:
        agent_id, queue_id = self.agent_of(e), self.queue_of(e)
        agent = self._agent(agent_id)
        if agent is None or queue_id not in agent.queues:
            raise InvalidTransition(f"agent {agent_id} does not serve {queue_id}")
        rest = [q for q in agent.queues if q != queue_id]
        if not rest:
            return self._run(cc.LogoutAgent(agent_id=agent_id))
        return self._run(cc.MoveAgent(agent_id=agent_id, queues=rest))

    def _on_QueueMemberPause(self, e: dict[str, str]) -> dict[str, Any]:
        paused = e.get("paused") == "1"
        reason = (e.get("pausedreason") or e.get("reason") or "paused") if paused else None
        return self._run(
            cc.SetPresence.model_validate(
                {"agent_id": self.agent_of(e), "presence": "not_ready" if paused else "available", "reason": reason}
            )
        )

    def _agent(self, agent_id: str) -> Agent | None:
        found = self.bus.store.read_reference(agent_uuid(agent_id))
        return found if isinstance(found, Agent) else None

    def replay(self, events: Iterable[Mapping[str, str]]) -> int:
        """Handles recorded events in order; returns how many changed something."""
        before = self.handled
        for event in events:
            self.handle(event)
        return self.handled - before


# ---------------------------------------------------------------------- the live process
EVENTS = (
    "QueueCallerJoin",
    "AgentCalled",
    "AgentRingNoAnswer",
    "AgentConnect",
    "AgentComplete",
    "QueueCallerAbandon",
    "QueueMemberAdded",
    "QueueMemberRemoved",
    "QueueMemberPause",
)


def _log_failure(future: Any) -> None:
    exc = future.exception()
    if exc is not None:  # not a refusal (those are noted as ignored): the store or the bus failed
        log.error("AMI event not handled", exc_info=exc)


class AmiConnection:
    """A panoramisk ``Manager`` feeding an :class:`AmiObserver`, in order.

    panoramisk reconnects by itself after a drop (``reconnect_timeout``) and logs in
    again. The bus blocks (group commit), so events are handed to one worker thread:
    one at a time, in the order AMI sent them, without stalling the socket."""

    def __init__(
        self, observer: AmiObserver, host: str, port: int, username: str, secret: str, *, reconnect_seconds: int = 2, ping_seconds: int = 10
    ) -> None:
        from panoramisk import Manager

        self.observer = observer
        self.worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="ami-observer")
        self.logged_in = threading.Event()
        self.manager = Manager(
            host=host,
            port=port,
            username=username,
            secret=secret,
            events="on",
            reconnect_timeout=reconnect_seconds,
            ping_delay=ping_seconds,
            ping_interval=ping_seconds,
            on_login=lambda _m: self.logged_in.set(),
            on_disconnect=lambda _m, _exc: self.logged_in.clear(),
        )
        self.pending: list[Any] = []
        for name in EVENTS:
            self.manager.register_event(name, self._received)

    def _received(self, _manager: Any, message: Any) -> None:
        event = {str(k): str(v) for k, v in message.items()}
        future = self.worker.submit(self.observer.handle, event)
        future.add_done_callback(_log_failure)
        if len(self.pending) >= 10_000:  # keep what is still running, not the whole day
            self.pending = [f for f in self.pending if not f.done()]
        self.pending.append(future)

    async def run(self, stop: asyncio.Event) -> None:
        self.manager.loop = asyncio.get_running_loop()
        self.manager.connect()
        try:
            await stop.wait()
        finally:
            self.manager.close()
            await asyncio.get_running_loop().run_in_executor(None, self.drain)

    def drain(self) -> None:
        """Waits for the events received so far to be handled."""
        for future in list(self.pending):
            future.result()
        self.pending.clear()

    def close(self) -> None:
        self.worker.shutdown(wait=True)
