"""The IVR engine: one caller's walk through a flow, as a pure state machine.

``IvrSession(flow, caller, dialled, now, ports)`` answers each input (``start``,
``on_digit``, ``on_timeout``, ``on_playback_finished``, ``on_recording_finished``,
``on_hangup``) with the :mod:`actions <telephony_adapter.ivr.actions>` the PBX should
take, in order: a ``Play`` ends before the action after it starts (the adapter waits for
its PlaybackFinished before recording, handing over or hanging up). No I/O here and no
clock: time comes with every input, and what the engine needs from the hotline (a
request's status, whether the hotline is staffed, registering a message) comes through
:class:`IvrPorts`, so tests and the CLI drive it without a phone, and the ARI adapter
with one.

Bounds: each node entered is a step; after the flow's ``limits.max_steps`` steps, or
``limits.max_seconds`` after the call started, the caller goes to the flow's
``on_limit`` node (a handover or a hangup; a hangup without one). A menu asks at most
``1 + retries`` times, then follows its ``on_fail``. So every sequence of inputs ends
in a terminal action (``HandOver``, ``OfferCallback`` or ``Hangup``) within the bounds,
and an input the engine does not expect (a digit while recording, anything after the
end) changes nothing. A port that fails is treated as the flow says
(``unavailable`` / ``failed``), never as a crash of the call.
"""

from __future__ import annotations

import logging
import math
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol

from domain.ivr.flow import check_flow, flow_hash, limits
from telephony_adapter.ivr.actions import Collect, HandOver, Hangup, IvrAction, OfferCallback, Play, Record

log = logging.getLogger("hotline.ivr")
DIGITS = frozenset("0123456789*#")
# Inputs allowed per step of the flow: the longest reference (32 digits) and a little more.
INPUTS_PER_STEP = 34
MEDIA_SCHEMES = ("sound:", "digits:", "number:", "characters:", "tone:", "recording:")


def callable_number(number: str) -> bool:
    """A number to call back: digits (at least three), with the usual + ( ) - and spaces."""
    return sum(ch.isdigit() for ch in number) >= 3 and all(ch.isdigit() or ch in "+()- " for ch in number)


@dataclass(frozen=True)
class StatusInfo:
    """What the IVR may read back about a request: never personal data."""

    reference: str
    status: str  # the request's status (registered, dispatched, in_progress, …, closed)
    due_at: datetime | None = None


class IvrPorts(Protocol):
    """What the engine asks of the hotline (``ports.py`` implements it over the real system)."""

    def status_of(self, reference: str) -> StatusInfo | None:
        """The request's status by its reference, or None when no request has it."""
        ...

    def is_open(self, now: datetime) -> bool:
        """Whether the hotline is staffed at ``now`` (its calendar's working hours)."""
        ...

    def leave_message(self, caller: str, language: str, recording_name: str, duration_s: float, now: datetime) -> str | None:
        """Registers the caller's recorded message as a request; its reference, or None."""
        ...


@dataclass(frozen=True)
class Flow:
    """A checked flow document and the version it was published as."""

    document: dict[str, Any]
    version: int | None = None
    sha256: str = ""

    @classmethod
    def of(cls, document: dict[str, Any], version: int | None = None) -> Flow:
        check_flow(document)  # InvalidCommand naming the problem
        return cls(document, version, flow_hash(document))

    @property
    def flow_id(self) -> str:
        return str(self.document["flow_id"])

    @property
    def nodes(self) -> dict[str, dict[str, Any]]:
        nodes: dict[str, dict[str, Any]] = self.document["nodes"]
        return nodes


class IvrSession:
    """One call in one flow (see the module). Not thread-safe: one caller, one session."""

    def __init__(self, flow: Flow, caller: str, dialled: str, now: datetime, ports: IvrPorts, *, session_id: str | None = None) -> None:
        self.flow, self.caller, self.dialled, self.ports = flow, caller or "", dialled or "", ports
        self.session_id = session_id or uuid.uuid4().hex[:16]
        doc = flow.document
        self.sounds: str = doc.get("sounds", "hotline")
        self.language: str = (doc.get("dialled_languages") or {}).get(self.dialled, doc["default_language"])
        bounds = limits(doc)
        self.max_steps, self.deadline = bounds["max_steps"], now + timedelta(seconds=bounds["max_seconds"])
        # Every input counts: a caller keying forever at one node still reaches the end.
        self.max_inputs = bounds["max_steps"] * INPUTS_PER_STEP
        self.inputs = 0
        self.started_at = now
        self.node_id: str | None = None
        self.steps = 0
        self.attempts = 0  # failed tries at the current node
        self.buffer = ""  # digits keyed at the current node
        self.recording: str | None = None  # the recording the session waits for
        self.skill: str | None = None
        self.priority = 0
        self.ended = False  # a terminal action was given
        self.hung_up = False
        self.outcome: str | None = None  # handover / callback / hangup / caller_hung_up / limit
        self.visited: list[str] = []  # the path, for the audit record and the CLI
        self.message_reference: str | None = None
        self.looked_up: list[str] = []

    # ------------------------------------------------------------------ inputs
    def start(self, now: datetime) -> list[IvrAction]:
        if self.node_id is not None or self.ended:
            return []
        return self._enter(self.flow.document["start"], now)

    def on_digit(self, digit: str, now: datetime) -> list[IvrAction]:
        if not isinstance(digit, str) or len(digit) != 1 or digit not in DIGITS or self._idle():
            return []
        if self._past_deadline(now):
            return self._limit(now)
        node = self._node()
        kind = node["type"]
        if kind == "menu":
            option = node["options"].get(digit)
            if option is None:
                return self._failed(node, now, "invalid_prompt")
            if "language" in option:
                self.language = option["language"]
            if "skill" in option:
                self.skill = option["skill"]
            if "priority" in option:
                self.priority = option["priority"]
            return self._enter(option["next"], now)
        if kind == "lookup":
            terminator = node.get("terminator")
            if digit == terminator:
                return self._lookup(node, now)
            if digit in "*#":
                return self._failed(node, now, None)  # not a digit of a reference: ask again
            self.buffer += digit
            if len(self.buffer) >= node["max_digits"]:
                return self._lookup(node, now)
            return []
        return []  # say / record: keys are not input there

    def on_timeout(self, now: datetime) -> list[IvrAction]:
        if self._idle():
            return []
        if self._past_deadline(now):
            return self._limit(now)
        node = self._node()
        if node["type"] == "menu":
            return self._failed(node, now, "timeout_prompt")
        if node["type"] == "lookup":
            if self.buffer:
                return self._lookup(node, now)  # keyed some digits, then stopped: try what was keyed
            return self._failed(node, now, None)
        if node["type"] == "record" and self.recording is not None:
            # The adapter heard no RecordingFinished in time: the recording is lost, ask again.
            self.recording = None
            return self._failed(node, now, None)
        return []

    def on_playback_finished(self, now: datetime) -> list[IvrAction]:
        # Prompts and what follows them are given together; the adapter sequences them.
        if not self._idle() and self._past_deadline(now):
            return self._limit(now)
        return []

    def on_recording_finished(self, name: str, duration_s: float, now: datetime) -> list[IvrAction]:
        if self.ended or self.recording is None or name != self.recording or self.node_id is None:
            return []
        node = self._node()
        self.recording = None
        try:
            duration = float(duration_s)
        except (TypeError, ValueError):
            duration = 0.0
        if not math.isfinite(duration) or duration < node.get("min_seconds", 1):
            if self.hung_up:
                return self._finish("caller_hung_up")
            return self._failed(node, now, "too_short_prompt")
        try:
            reference = self.ports.leave_message(self.caller, self.language, name, duration, now)
        except Exception:  # the hotline could not take it: the caller hears so, the call goes on
            log.exception("ivr: leaving a message failed (session %s)", self.session_id)
            reference = None
        self.message_reference = reference
        if self.hung_up:
            return self._finish("caller_hung_up")
        if reference is None:
            return self._outcome(node["failed"], now)
        return self._outcome(node["saved"], now, values={"reference": reference})

    def on_hangup(self, now: datetime) -> list[IvrAction]:
        if self.ended:
            return []
        self.hung_up = True
        if self.recording is not None:
            return []  # the message is kept: wait for RecordingFinished
        return self._finish("caller_hung_up")

    # ------------------------------------------------------------------ state
    @property
    def done(self) -> bool:
        """No more input will change anything."""
        return self.ended or (self.hung_up and self.recording is None)

    def _idle(self) -> bool:
        return self.ended or self.hung_up or self.node_id is None

    def _node(self) -> dict[str, Any]:
        assert self.node_id is not None
        return self.flow.nodes[self.node_id]

    def _past_deadline(self, now: datetime) -> bool:
        """Called once per input: past the call's time, or its inputs, the call ends."""
        self.inputs += 1
        return now >= self.deadline or self.inputs > self.max_inputs

    def _finish(self, outcome: str) -> list[IvrAction]:
        self.ended, self.outcome, self.recording = True, outcome, None
        return []

    def _limit(self, now: datetime, lead: tuple[str, ...] = ()) -> list[IvrAction]:
        target = self.flow.document.get("on_limit")
        self.outcome = "limit"
        if target is None:
            return self._end([*self._play(lead), Hangup()], "limit")
        return self._run(target, now, lead, counted=False, outcome="limit")

    def _end(self, actions: list[IvrAction], outcome: str) -> list[IvrAction]:
        self.ended, self.outcome = True, outcome
        return actions

    # ------------------------------------------------------------------ moving
    def _enter(self, node_id: str, now: datetime, lead: tuple[str, ...] = ()) -> list[IvrAction]:
        if self.steps >= self.max_steps or now >= self.deadline:
            return self._limit(now, lead)
        self.steps += 1
        return self._run(node_id, now, lead, counted=True)

    def _run(self, node_id: str, now: datetime, lead: tuple[str, ...], *, counted: bool, outcome: str | None = None) -> list[IvrAction]:
        self.node_id, self.attempts, self.buffer = node_id, 0, ""
        self.visited.append(node_id)
        node = self.flow.nodes[node_id]
        kind = node["type"]
        if kind == "say":
            lead = (*lead, *self._media(node["prompt"]))
            if not counted:  # reached through the limit: do not wander on
                return self._end([*self._play(lead), Hangup()], outcome or "limit")
            return self._enter(node["next"], now, lead)
        if kind == "hours":
            try:
                open_now = bool(self.ports.is_open(now))
            except Exception as exc:  # no calendar answer: put the caller through to people
                log.warning("ivr: opening hours unknown, taken as open (session %s): %s", self.session_id, exc)
                open_now = True
            return self._enter(node["open"] if open_now else node["closed"], now, lead)
        if kind == "handover":
            lead = (*lead, *self._media(node.get("prompt", [])))
            skill = node.get("skill", self.skill)
            priority = node.get("priority", self.priority)
            return self._end([*self._play(lead), HandOver(node["queue"], skill, self.language, priority)], outcome or "handover")
        if kind == "callback":
            if not callable_number(self.caller):
                return self._outcome(node["no_number"], now, lead=lead)
            lead = (*lead, *self._media(node["prompt"]))
            return self._end([*self._play(lead), OfferCallback(node["queue"], self.caller), Hangup()], outcome or "callback")
        if kind == "hangup":
            lead = (*lead, *self._media(node.get("prompt", [])))
            return self._end([*self._play(lead), Hangup()], outcome or "hangup")
        return self._ask(node, lead)

    def _ask(self, node: dict[str, Any], lead: tuple[str, ...]) -> list[IvrAction]:
        """Prompt for input at the current node (menu, lookup, record)."""
        media = (*lead, *self._media(node["prompt"]))
        kind = node["type"]
        if kind == "menu":
            return [*self._play(media), Collect(1, float(node["timeout_s"]), None)]
        if kind == "lookup":
            return [*self._play(media), Collect(int(node["max_digits"]), float(node["timeout_s"]), node.get("terminator"))]
        # record
        self.recording = f"ivr-{self.session_id}-{self.steps}-{self.attempts}"
        return [*self._play(media), Record(self.recording, int(node["max_seconds"]), bool(node.get("beep", True)))]

    def _failed(self, node: dict[str, Any], now: datetime, prompt_key: str | None, extra: tuple[str, ...] = ()) -> list[IvrAction]:
        """A wrong key, silence, a reference nobody has, a message too short: ask again,
        or after the last retry follow ``on_fail``."""
        self.attempts += 1
        self.buffer = ""
        said = (*extra, *self._media(node.get(prompt_key, []) if prompt_key else []))
        if self.attempts > int(node.get("retries", 0)):
            return self._outcome(node["on_fail"], now, lead=said)
        return self._ask(node, said)

    def _outcome(
        self, outcome: dict[str, Any], now: datetime, *, lead: tuple[str, ...] = (), values: dict[str, str] | None = None
    ) -> list[IvrAction]:
        said = (*lead, *self._media(outcome.get("prompt", []), values))
        return self._enter(outcome["next"], now, said)

    def _lookup(self, node: dict[str, Any], now: datetime) -> list[IvrAction]:
        reference = self.buffer
        self.buffer = ""
        if len(reference) < node["min_digits"]:
            return self._failed(node, now, None, self._media(node["unknown"]))
        self.looked_up.append(reference)
        try:
            info = self.ports.status_of(reference)
        except Exception:
            log.exception("ivr: status lookup failed (session %s)", self.session_id)
            fallback = node.get("unavailable") or node["on_fail"]
            return self._outcome(fallback, now)
        if info is None:
            return self._failed(node, now, None, self._media(node["unknown"], {"reference": reference}))
        values = {"reference": info.reference, "status": info.status}
        if info.due_at is not None and info.due_at > now:
            values["due_days"] = str(max(1, math.ceil((info.due_at - now).total_seconds() / 86400)))
        return self._outcome(node["found"], now, values=values)

    # ------------------------------------------------------------------ prompts
    def _play(self, media: tuple[str, ...]) -> list[IvrAction]:
        return [Play(media)] if media else []

    def _media(self, prompt: Any, values: dict[str, str] | None = None) -> tuple[str, ...]:
        """A prompt's items as ARI media URIs in the caller's language."""
        items = prompt.get(self.language, []) if isinstance(prompt, dict) else prompt
        out: list[str] = []
        for item in items:
            if item.startswith("$"):
                value = (values or {}).get(item[1:])
                if value is None:
                    continue  # nothing to read back (no due date): the item is skipped
                if item == "$reference":
                    out.append(f"digits:{value}")
                elif item == "$status":
                    out.append(f"sound:{self.sounds}/{self.language}/status-{value}")
                else:
                    out.append(f"number:{value}")
            elif item.startswith(MEDIA_SCHEMES):
                out.append(item)
            else:
                out.append(f"sound:{self.sounds}/{self.language}/{item}")
        return tuple(out)

    # ------------------------------------------------------------------ the record
    def record(self) -> dict[str, Any]:
        """What the audit keeps of the session: which flow and version, where it went."""
        return {
            "flow_id": self.flow.flow_id,
            "flow_version": self.flow.version,
            "flow_sha256": self.flow.sha256,
            "language": self.language,
            "outcome": self.outcome,
            "steps": self.steps,
            "path": list(self.visited),
            "message_reference": self.message_reference,
        }
