"""Asterisk ARI events → contact-center commands, and routing decisions → PBX actions.

The PBX sends calls into the Stasis application ``hotline`` (dialplan:
``Stasis(hotline,<queue_id>[,<language>[,<priority>]])``). ARI delivers JSON events over
its WebSocket; this adapter maps each one, as a plain dict, to a command on the bus:

=====================================  ==========================================
ARI event                              command
=====================================  ==========================================
StasisStart (caller channel)           contact_arrives (external id = channel id)
StasisStart (agent leg, args agent,…)  remembers the agent's channel
ChannelStateChange Up (agent leg)      answer_contact
ChannelStateChange Up (callback leg)   callback_outcome answered
ChannelDestroyed (callback leg)        callback_outcome no_answer / busy / failed
ChannelHold / ChannelUnhold            hold_contact / resume_contact
ChannelHangupRequest / StasisEnd       abandon_contact (waiting) or end_contact (talking)
=====================================  ==========================================

The other direction, :func:`actions_for`, turns the contact events the router and the
agents produce into ARI requests: ring the agent (``POST /channels`` originate), bridge
the two legs, dial a callback, hang up. Re-delivered ARI events are harmless: the
arrival is keyed by the channel id, and a command that no longer applies is refused by
the aggregates and ignored here.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from domain.base import Actor, DomainError
from domain.contact_center import commands as cc
from domain.contact_center.contacts import Contact
from domain.contact_center.handlers import load_contact
from domain.events import EVENT_CLASSES
from domain.handling import Command
from infra.bus import CommandBus

ARI_ACTOR = Actor("asterisk-ari", "system", "Asterisk ARI adapter")
STASIS_APP = "hotline"
# Q.850 hangup causes a dialled callback can end with.
BUSY_CAUSES = {17}
NO_ANSWER_CAUSES = {18, 19, 21}


@dataclass
class Leg:
    contact_id: str
    agent_id: str | None = None
    kind: str = "caller"  # caller / agent / callback


@dataclass
class AriAdapter:
    bus: CommandBus
    default_queue: str = "general"
    legs: dict[str, Leg] = field(default_factory=dict)  # channel id -> what it carries
    ignored: list[str] = field(default_factory=list)  # events that changed nothing (for tests / logs)

    def handle(self, event: dict[str, Any]) -> dict[str, Any] | None:
        """Maps one ARI event to a command and runs it. Returns the command's result."""
        kind = event.get("type", "")
        method = getattr(self, f"_on_{kind}", None)
        if method is None:
            return None
        try:
            result: dict[str, Any] | None = method(event)
            return result
        except DomainError as exc:
            self.ignored.append(f"{kind}: {exc.message}")
            return None

    def _run(self, cmd: Command) -> dict[str, Any]:
        return self.bus.execute(cmd, ARI_ACTOR).result

    # ------------------------------------------------------------------ events
    def _on_StasisStart(self, event: dict[str, Any]) -> dict[str, Any] | None:
        channel = event["channel"]
        args = list(event.get("args") or [])
        if args and args[0] == "agent":  # our own originate to an agent: agent,<contact>,<agent>
            self.legs[channel["id"]] = Leg(contact_id=args[1], agent_id=args[2], kind="agent")
            return None
        if args and args[0] == "callback":  # our own dial-out to a citizen: callback,<contact>
            self.legs[channel["id"]] = Leg(contact_id=args[1], kind="callback")
            return None
        queue_id = args[0] if args else self.default_queue
        language = args[1] if len(args) > 1 and args[1] else None
        priority = int(args[2]) if len(args) > 2 and args[2] else 0
        caller = (channel.get("caller") or {}).get("number") or None
        result = self._run(
            cc.ContactArrives(
                channel="phone",
                queue_id=queue_id,
                language=language,
                priority=priority,
                phone=caller,
                external_id=f"ari:{channel['id']}",
            )
        )
        self.legs[channel["id"]] = Leg(contact_id=result["id"])
        return result

    def _on_ChannelStateChange(self, event: dict[str, Any]) -> dict[str, Any] | None:
        channel = event["channel"]
        leg = self.legs.get(channel["id"])
        if leg is None or channel.get("state") != "Up":
            return None
        if leg.kind == "agent" and leg.agent_id:
            return self._run(cc.Answer(contact_id=leg.contact_id, agent_id=leg.agent_id))
        if leg.kind == "callback":
            return self._run(cc.CallbackOutcome(contact_id=leg.contact_id, outcome="answered"))
        return None

    def _on_ChannelDestroyed(self, event: dict[str, Any]) -> dict[str, Any] | None:
        leg = self.legs.get(event["channel"]["id"])
        if leg is not None and leg.kind == "callback" and event["channel"].get("state") != "Up":
            cause = int(event.get("cause", 0))
            outcome = "busy" if cause in BUSY_CAUSES else "no_answer" if cause in NO_ANSWER_CAUSES else "failed"
            self.legs.pop(event["channel"]["id"], None)
            return self._run(cc.CallbackOutcome.model_validate({"contact_id": leg.contact_id, "outcome": outcome}))
        return self._hangup(event)

    def _on_ChannelHold(self, event: dict[str, Any]) -> dict[str, Any] | None:
        leg = self.legs.get(event["channel"]["id"])
        if leg is None or leg.agent_id is None:
            return None
        return self._run(cc.Hold(contact_id=leg.contact_id, agent_id=leg.agent_id))

    def _on_ChannelUnhold(self, event: dict[str, Any]) -> dict[str, Any] | None:
        leg = self.legs.get(event["channel"]["id"])
        if leg is None or leg.agent_id is None:
            return None
        return self._run(cc.Resume(contact_id=leg.contact_id, agent_id=leg.agent_id))

    def _on_ChannelHangupRequest(self, event: dict[str, Any]) -> dict[str, Any] | None:
        return self._hangup(event)

    def _on_StasisEnd(self, event: dict[str, Any]) -> dict[str, Any] | None:
        return self._hangup(event)

    def _hangup(self, event: dict[str, Any]) -> dict[str, Any] | None:
        leg = self.legs.pop(event["channel"]["id"], None)
        if leg is None:
            return None
        contact = self._status(leg.contact_id)
        if contact in ("queued", "offered") and leg.kind == "caller":
            return self._run(cc.Abandon(contact_id=leg.contact_id))
        if contact == "connected":
            ended_by = "citizen" if leg.kind in ("caller", "callback") else "agent"
            return self._run(cc.End.model_validate({"contact_id": leg.contact_id, "ended_by": ended_by}))
        return None

    def _status(self, contact_id: str) -> str | None:
        from infra.unit_of_work import EventStoreUnitOfWork

        uow = EventStoreUnitOfWork(self.bus.store)
        try:
            return load_contact(uow, contact_id).status
        except DomainError:
            return None


def actions_for(event_type: str, contact_id: str, data: dict[str, Any], legs: dict[str, Leg] | None = None) -> list[dict[str, Any]]:
    """ARI requests that carry out a contact event on the PBX (a domain decision → PBX)."""
    kind = EVENT_CLASSES.get(event_type)
    caller = next((ch for ch, leg in (legs or {}).items() if leg.contact_id == contact_id and leg.kind == "caller"), None)
    if kind is Contact.Offered:
        return [
            {
                "method": "POST",
                "path": "/channels",
                "params": {
                    "endpoint": f"PJSIP/{data['agent_id']}",
                    "app": STASIS_APP,
                    "appArgs": f"agent,{contact_id},{data['agent_id']}",
                    "timeout": 30,
                },
            }
        ]
    if kind is Contact.Answered and caller:
        return [
            {"method": "POST", "path": "/bridges", "params": {"type": "mixing", "bridgeId": f"contact-{contact_id}"}},
            {"method": "POST", "path": f"/bridges/contact-{contact_id}/addChannel", "params": {"channel": caller}},
        ]
    if kind is Contact.CallbackAttempted:
        return [
            {
                "method": "POST",
                "path": "/channels",
                "params": {"endpoint": "PJSIP/trunk", "app": STASIS_APP, "appArgs": f"callback,{contact_id}", "timeout": 40},
            }
        ]
    if (kind is Contact.Abandoned or kind is Contact.Ended) and caller:
        return [{"method": "DELETE", "path": f"/channels/{caller}"}]
    if kind is Contact.Overflowed and data.get("to") == "voicemail" and caller:
        return [{"method": "POST", "path": f"/channels/{caller}/continue", "params": {"context": "voicemail", "extension": "s"}}]
    return []
