"""Asterisk ARI events → contact-center commands, and routing decisions → PBX actions.

The PBX sends calls into the Stasis application ``hotline`` (dialplan:
``Stasis(hotline,<queue_id>[,<language>[,<priority>[,<skill>]]])``, or
``Stasis(hotline,ivr,<flow>)`` for a voice menu first, whose hand-over brings the
language and skill the caller chose). ARI delivers JSON events over its WebSocket; this adapter maps
each one, as a plain dict, to a command on the bus:

=====================================  ==========================================
ARI event                              command
=====================================  ==========================================
StasisStart (caller channel)           contact_arrives (external id = channel id)
StasisStart (agent leg, args agent,…)  remembers the agent's channel; answer_contact
                                       when it is already Up (an originate answered)
ChannelStateChange Up (agent leg)      answer_contact
ChannelStateChange Up (callback leg)   callback_outcome answered
ChannelDestroyed (callback leg)        callback_outcome no_answer / busy / failed (Q.850)
ChannelDestroyed (agent leg ringing)   decline (the agent's phone was busy / unanswered)
ChannelHold / ChannelUnhold            hold_contact / resume_contact
ChannelHangupRequest / StasisEnd       abandon_contact (waiting) or end_contact (talking)
=====================================  ==========================================

The other direction, :func:`actions_for`, turns the contact events the router, the
agents and the supervisors produce into ARI requests: answer the caller and play music
while they wait, ring the agent (``POST /channels`` originate), put the caller on hold
(music and mute), take the agent's leg away on a transfer, dial a callback, snoop on
the agent's channel for a supervisor (monitor / whisper / barge), hang up. Re-delivered
ARI events are harmless: the arrival is keyed by the channel id, and a command that no
longer applies is refused by the aggregates and ignored here.

Channel and bridge ids the adapter creates say what they carry
(``hl-agent.<contact>.<agent>.<n>``, ``hl-callback.<contact>.<attempt>``,
``hl-contact.<contact>``), so an adapter that reconnects, or a new one, can tell its own
legs from the channel list alone (:func:`leg_of_channel_id`).

Only calls the PBX carries are acted on: a contact whose caller leg the adapter knows,
or a callback it dials itself. A chat, an email or a voice contact made through the API
has no channel here; the agent's desk answers and ends it, never the PBX. An agent's or
supervisor's id is put into a dial string only when it looks like a staff id
(:func:`dialable`): an id such as ``0039333…@trunk`` would otherwise dial out.
"""

from __future__ import annotations

import logging
import re
import threading
from dataclasses import dataclass, field
from typing import Any

from domain.base import Actor, DomainError
from domain.contact_center import commands as cc
from domain.contact_center.contacts import Contact
from domain.contact_center.handlers import load_contact
from domain.events import EVENT_CLASSES
from domain.handling import Command
from infra.bus import CommandBus

log = logging.getLogger("hotline.telephony")
ARI_ACTOR = Actor("asterisk-ari", "system", "Asterisk ARI adapter")
STASIS_APP = "hotline"
# Q.850 hangup causes a dialled callback can end with.
BUSY_CAUSES = {17}
NO_ANSWER_CAUSES = {18, 19, 21}
LEG_KINDS = ("caller", "agent", "callback", "snoop", "supervisor", "ivr")
# What a staff id may be when it goes into a dial string (``PJSIP/{agent_id}``), a channel
# id or an ARI path. Asterisk splits a dial string at '/' (technology / resource), PJSIP
# reads ``user@endpoint`` (so ``x@trunk`` dials out through the trunk), ',' separates
# application arguments (our appArgs) and '&' several dial targets; whitespace and control
# characters end or corrupt the request. Staff usernames (domain/identity/staff.py) are
# letters, digits, '.', '_', '-' and '@'; agent ids in the tests and the demo are like
# ``A1`` and ``op-anna``. So: ASCII letters, digits, '.', '_', '-', at most 64.
DIALABLE_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")


@dataclass
class Leg:
    contact_id: str
    agent_id: str | None = None
    kind: str = "caller"  # caller / agent / callback / snoop / supervisor / ivr
    up: bool = False
    number: str | None = None  # the caller's number (callers and IVR callers)
    args: tuple[str, ...] = ()


@dataclass(frozen=True)
class Dialplan:
    """How the PBX is asked to reach people (settings ``ari_*``)."""

    app: str = STASIS_APP
    agent_endpoint: str = "PJSIP/{agent_id}"
    trunk_endpoint: str = "PJSIP/{number}@trunk"
    ring_seconds: int = 30
    callback_ring_seconds: int = 40
    moh_class: str = "default"


def dialable(staff_id: object) -> bool:
    """An agent's or supervisor's id that is safe in a dial string (see ``DIALABLE_ID``)."""
    return isinstance(staff_id, str) and DIALABLE_ID.fullmatch(staff_id) is not None


def bridge_id(contact_id: str) -> str:
    return f"hl-contact.{contact_id}"


def agent_channel_id(contact_id: str, agent_id: str, n: int) -> str:
    return f"hl-agent.{contact_id}.{agent_id}.{n}"


def leg_of_channel_id(channel_id: str) -> Leg | None:
    """The leg one of the adapter's own channel ids names (None: not one of ours)."""
    if not channel_id.startswith("hl-"):
        return None
    kind, _, rest = channel_id[3:].partition(".")
    parts = rest.split(".")
    if kind == "agent" and len(parts) >= 3:
        return Leg(contact_id=parts[0], agent_id=".".join(parts[1:-1]), kind="agent")
    if kind == "callback" and len(parts) >= 2:
        return Leg(contact_id=parts[0], kind="callback")
    if kind in ("snoop", "sup") and len(parts) >= 3:
        return Leg(contact_id=parts[0], agent_id=".".join(parts[1:-1]), kind="snoop" if kind == "snoop" else "supervisor")
    return None


@dataclass
class AriAdapter:
    bus: CommandBus
    default_queue: str = "general"
    legs: dict[str, Leg] = field(default_factory=dict)  # channel id -> what it carries
    ignored: list[str] = field(default_factory=list)  # events that changed nothing (for tests / logs)
    lock: threading.Lock = field(default_factory=threading.Lock)  # legs are shared by the adapter's workers

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

    def legs_of(self, contact_id: str, *kinds: str) -> dict[str, Leg]:
        with self.lock:
            return {ch: leg for ch, leg in self.legs.items() if leg.contact_id == contact_id and (not kinds or leg.kind in kinds)}

    def contact(self, contact_id: str) -> Contact | None:
        from infra.unit_of_work import EventStoreUnitOfWork

        uow = EventStoreUnitOfWork(self.bus.store)
        try:
            return load_contact(uow, contact_id)
        except DomainError:
            return None

    # ------------------------------------------------------------------ events
    def _on_StasisStart(self, event: dict[str, Any]) -> dict[str, Any] | None:
        channel = event["channel"]
        args = list(event.get("args") or [])
        up = channel.get("state") == "Up"
        if args and args[0] == "agent":  # our own originate to an agent: agent,<contact>,<agent>
            leg = self.legs.setdefault(channel["id"], Leg(contact_id=args[1], agent_id=args[2], kind="agent"))
            leg.up = leg.up or up
            if up:
                return self._run(cc.Answer(contact_id=args[1], agent_id=args[2]))
            return None
        if args and args[0] == "callback":  # our own dial-out to a citizen: callback,<contact>
            self.legs.setdefault(channel["id"], Leg(contact_id=args[1], kind="callback"))
            return None
        if args and args[0] in ("snoop", "supervisor"):  # snoop,<contact>,<supervisor>
            kind = "snoop" if args[0] == "snoop" else "supervisor"
            self.legs.setdefault(channel["id"], Leg(contact_id=args[1], agent_id=args[2], kind=kind, up=up))
            return None
        caller = (channel.get("caller") or {}).get("number") or None
        if args and args[0] == "ivr":  # a voice menu first: the contact arrives on hand-over
            self.legs[channel["id"]] = Leg(contact_id="", kind="ivr", number=caller, args=tuple(args[1:]))
            return None
        queue_id = args[0] if args else self.default_queue
        language = args[1] if len(args) > 1 and args[1] else None
        priority = int(args[2]) if len(args) > 2 and args[2] else 0
        skill = args[3] if len(args) > 3 and args[3] else None
        return self.arrive(channel["id"], queue_id, language, priority, caller, skill)

    def arrive(
        self, channel_id: str, queue_id: str, language: str | None, priority: int, caller: str | None, skill: str | None = None
    ) -> dict[str, Any]:
        """The caller on ``channel_id`` joins ``queue_id`` (after StasisStart or an IVR
        hand-over, which adds the skill the caller chose in the menu)."""
        result = self._run(
            cc.ContactArrives(
                channel="phone",
                queue_id=queue_id,
                language=language,
                priority=priority,
                phone=caller,
                external_id=f"ari:{channel_id}",
                skill=skill,
            )
        )
        self.legs[channel_id] = Leg(contact_id=result["id"], number=caller)
        return result

    def _on_ChannelStateChange(self, event: dict[str, Any]) -> dict[str, Any] | None:
        channel = event["channel"]
        leg = self.legs.get(channel["id"])
        if leg is None or channel.get("state") != "Up":
            return None
        leg.up = True
        if leg.kind == "agent" and leg.agent_id:
            return self._run(cc.Answer(contact_id=leg.contact_id, agent_id=leg.agent_id))
        if leg.kind == "callback":
            return self._run(cc.CallbackOutcome(contact_id=leg.contact_id, outcome="answered"))
        return None

    def _on_ChannelDestroyed(self, event: dict[str, Any]) -> dict[str, Any] | None:
        channel = event["channel"]
        leg = self.legs.get(channel["id"])
        answered = channel.get("state") == "Up" or (leg is not None and leg.up)
        if leg is not None and leg.kind == "callback" and not answered:
            cause = int(event.get("cause", 0))
            outcome = "busy" if cause in BUSY_CAUSES else "no_answer" if cause in NO_ANSWER_CAUSES else "failed"
            self.legs.pop(channel["id"], None)
            return self._run(cc.CallbackOutcome.model_validate({"contact_id": leg.contact_id, "outcome": outcome}))
        if leg is not None and leg.kind == "agent" and not answered and leg.agent_id:
            self.legs.pop(channel["id"], None)
            contact = self.contact(leg.contact_id)
            if contact is not None and contact.offered_to == leg.agent_id:
                return self._run(cc.Decline(contact_id=leg.contact_id, agent_id=leg.agent_id))
            return None
        return self._hangup(event)

    def _on_ChannelHold(self, event: dict[str, Any]) -> dict[str, Any] | None:
        leg = self.legs.get(event["channel"]["id"])
        if leg is None or leg.agent_id is None or leg.kind != "agent":
            return None
        return self._run(cc.Hold(contact_id=leg.contact_id, agent_id=leg.agent_id))

    def _on_ChannelUnhold(self, event: dict[str, Any]) -> dict[str, Any] | None:
        leg = self.legs.get(event["channel"]["id"])
        if leg is None or leg.agent_id is None or leg.kind != "agent":
            return None
        return self._run(cc.Resume(contact_id=leg.contact_id, agent_id=leg.agent_id))

    def _on_ChannelHangupRequest(self, event: dict[str, Any]) -> dict[str, Any] | None:
        return self._hangup(event)

    def _on_StasisEnd(self, event: dict[str, Any]) -> dict[str, Any] | None:
        return self._hangup(event)

    def _hangup(self, event: dict[str, Any]) -> dict[str, Any] | None:
        with self.lock:
            leg = self.legs.pop(event["channel"]["id"], None)
        if leg is None or leg.kind in ("snoop", "supervisor", "ivr"):
            return None
        contact = self.contact(leg.contact_id)
        status = contact.status if contact is not None else None
        if status in ("queued", "offered") and leg.kind == "caller":
            return self._run(cc.Abandon(contact_id=leg.contact_id))
        if status != "connected" or contact is None:
            return None
        if leg.kind == "agent":
            if leg.agent_id != contact.agent_id:
                if leg.agent_id in contact.participants:  # a consulted / conferenced agent hung up
                    return self._run(cc.Leave(contact_id=leg.contact_id, agent_id=leg.agent_id or ""))
                return None  # an old leg (transferred away, taken over)
            return self._run(cc.End.model_validate({"contact_id": leg.contact_id, "ended_by": "agent"}))
        return self._run(cc.End.model_validate({"contact_id": leg.contact_id, "ended_by": "citizen"}))

    def _status(self, contact_id: str) -> str | None:
        contact = self.contact(contact_id)
        return contact.status if contact is not None else None


def _req(method: str, path: str, **params: Any) -> dict[str, Any]:
    request: dict[str, Any] = {"method": method, "path": path}
    if params:
        request["params"] = params
    return request


def actions_for(
    event_type: str,
    contact_id: str,
    data: dict[str, Any],
    legs: dict[str, Leg] | None = None,
    *,
    plan: Dialplan | None = None,
    number: str | None = None,
    version: int = 0,
    callback: bool = False,
) -> list[dict[str, Any]]:
    """ARI requests that carry out a contact event on the PBX (a domain decision → PBX).

    ``legs`` are the channels the adapter knows, ``number`` the citizen's number (for a
    callback), ``version`` the event's version (makes the new channel ids unique),
    ``callback`` whether the contact is a voice callback the adapter dials (it has no
    citizen leg until the citizen answers, yet the agent's phone must ring first).

    A contact with no leg the adapter knows that is not such a callback (a chat, an email,
    a voice contact created through the API) is not the PBX's: nothing is done."""
    plan = plan or Dialplan()
    kind = EVENT_CLASSES.get(event_type)
    mine = {ch: leg for ch, leg in (legs or {}).items() if leg.contact_id == contact_id}
    caller = next((ch for ch, leg in mine.items() if leg.kind in ("caller", "callback")), None)
    # A callback's own events say it is one (the adapter dials it) whatever the caller says.
    callback = callback or kind in (Contact.CallbackAttempted, Contact.CallbackConnected, Contact.CallbackUnanswered)
    if caller is None and not callback and not mine:
        return []

    def agent_leg(agent_id: str | None) -> str | None:
        return next((ch for ch, leg in mine.items() if leg.kind == "agent" and leg.agent_id == agent_id), None)

    def originate_agent(agent_id: str) -> list[dict[str, Any]]:
        if not dialable(agent_id):
            log.warning("ari: contact %s: agent id %r is not a dialable staff id; not dialled", contact_id, agent_id)
            return []
        return [
            _req(
                "POST",
                "/channels",
                endpoint=plan.agent_endpoint.format(agent_id=agent_id),
                app=plan.app,
                appArgs=f"agent,{contact_id},{agent_id}",
                channelId=agent_channel_id(contact_id, agent_id, version),
                timeout=plan.ring_seconds,
            )
        ]

    if kind is Contact.Queued and caller:
        answer = [_req("POST", f"/channels/{caller}/answer")] if data.get("reason") == "arrival" else []
        return [*answer, _req("POST", f"/channels/{caller}/moh", mohClass=plan.moh_class)]
    if kind is Contact.Offered and (caller or callback):
        return originate_agent(data["agent_id"])
    if kind is Contact.Answered and caller:
        return [_req("DELETE", f"/channels/{caller}/moh")]
    if kind is Contact.Held and caller:
        return [_req("POST", f"/channels/{caller}/moh", mohClass=plan.moh_class), _req("POST", f"/channels/{caller}/mute", direction="in")]
    if kind is Contact.Resumed and caller:
        return [_req("DELETE", f"/channels/{caller}/mute", direction="in"), _req("DELETE", f"/channels/{caller}/moh")]
    if kind is Contact.Transferred and data.get("mode") == "cold":
        out = [_req("DELETE", f"/bridges/{bridge_id(contact_id)}")]
        if (leg := agent_leg(data["from_agent_id"])) is not None:
            out.append(_req("DELETE", f"/channels/{leg}"))
        if caller:
            out.append(_req("POST", f"/channels/{caller}/moh", mohClass=plan.moh_class))
        return out
    if kind is Contact.ParticipantLeft and (leg := agent_leg(data["agent_id"])) is not None:
        return [_req("DELETE", f"/channels/{leg}")]
    if kind is Contact.TakenOver and (leg := agent_leg(data.get("from_agent_id"))) is not None:
        return [_req("DELETE", f"/channels/{leg}")]
    if (kind is Contact.OfferTimedOut or kind is Contact.OfferDeclined) and (leg := agent_leg(data["agent_id"])) is not None:
        return [_req("DELETE", f"/channels/{leg}", reason="no_answer")]
    if kind is Contact.CallbackAttempted:
        return [
            _req(
                "POST",
                "/channels",
                endpoint=plan.trunk_endpoint.format(number=number or ""),
                app=plan.app,
                appArgs=f"callback,{contact_id}",
                channelId=f"hl-callback.{contact_id}.{data.get('attempt', 1)}",
                timeout=plan.callback_ring_seconds,
            )
        ]
    if kind is Contact.CallbackConnected and agent_leg(data["agent_id"]) is None:
        return originate_agent(data["agent_id"])
    if kind is Contact.CallbackUnanswered and (leg := agent_leg(data["agent_id"])) is not None:
        return [_req("DELETE", f"/channels/{leg}")]
    if kind is Contact.SupervisorJoined:
        target = agent_leg(data.get("agent_id")) or next((ch for ch, leg in mine.items() if leg.kind == "agent"), None)
        if target is None:
            return []
        sup = data["supervisor_id"]
        if not dialable(sup):  # it goes into the dial string, the snoop's appArgs and ids
            log.warning("ari: contact %s: supervisor id %r is not a dialable staff id; not dialled", contact_id, sup)
            return []
        spy, whisper = {"monitor": ("both", "none"), "whisper": ("both", "out"), "barge": ("both", "both")}[data["mode"]]
        out = [_req("DELETE", f"/channels/{ch}") for ch, leg in mine.items() if leg.kind in ("snoop", "supervisor") and leg.agent_id == sup]
        return [
            *out,
            _req(
                "POST",
                f"/channels/{target}/snoop",
                spy=spy,
                whisper=whisper,
                app=plan.app,
                appArgs=f"snoop,{contact_id},{sup}",
                snoopId=f"hl-snoop.{contact_id}.{sup}.{version}",
            ),
            _req(
                "POST",
                "/channels",
                endpoint=plan.agent_endpoint.format(agent_id=sup),
                app=plan.app,
                appArgs=f"supervisor,{contact_id},{sup}",
                channelId=f"hl-sup.{contact_id}.{sup}.{version}",
                timeout=plan.ring_seconds,
            ),
        ]
    if kind is Contact.SupervisorLeft:
        sup = data["supervisor_id"]
        gone = [
            _req("DELETE", f"/channels/{ch}") for ch, leg in mine.items() if leg.kind in ("snoop", "supervisor") and leg.agent_id == sup
        ]
        # The bridge's id holds the supervisor's id: only a dialable one was ever bridged (and
        # only such an id is safe in the request's path).
        return [*gone, _req("DELETE", f"/bridges/hl-sup.{contact_id}.{sup}")] if dialable(sup) else gone
    if kind is Contact.Abandoned:
        out = [_req("DELETE", f"/channels/{caller}")] if caller else []
        if (leg := agent_leg(data.get("offered_to"))) is not None:
            out.append(_req("DELETE", f"/channels/{leg}"))
        return out
    if kind is Contact.Ended:
        out = [_req("DELETE", f"/channels/{caller}")] if caller else []
        out += [_req("DELETE", f"/channels/{ch}") for ch, leg in mine.items() if leg.kind in ("agent", "snoop", "supervisor")]
        return [*out, _req("DELETE", f"/bridges/{bridge_id(contact_id)}")]
    if kind is Contact.Overflowed and data.get("to") == "voicemail" and caller:
        return [_req("POST", f"/channels/{caller}/continue", context="voicemail", extension="s")]
    if kind is Contact.Overflowed and data.get("to") == "callback" and caller:
        return [_req("DELETE", f"/channels/{caller}")]  # the place is kept: we call back
    return []


def bridge_requests(contact_id: str, channels: list[str]) -> list[dict[str, Any]]:
    """The contact's bridge (created once; a 409 means it exists) with these channels in it."""
    return [
        _req("POST", "/bridges", type="mixing", bridgeId=bridge_id(contact_id), name=f"contact {contact_id}"),
        _req("POST", f"/bridges/{bridge_id(contact_id)}/addChannel", channel=",".join(channels)),
    ]
