"""Voice menus on ARI: drives the IVR engine's sessions (``telephony_adapter/ivr/``) for
calls that enter Stasis with a flow (dialplan ``Stasis(hotline,ivr,<flow_id>)``).

The engine is pure: it answers each input with actions; this driver turns ARI events
into its inputs and its actions into ARI requests, in the order given:

* ``Play`` → ``POST /channels/{id}/play`` (media URIs joined, our own playback id); the
  actions after it wait for its ``PlaybackFinished``. A key pressed during a prompt
  that moves the caller on stops it (``DELETE /playbacks/{id}``: barge-in).
* ``Collect`` → no request: a timer (from the end of the prompt, and again after each
  key) that reports ``on_timeout`` through the adapter's lane for the channel.
* ``Record`` → ``POST /channels/{id}/record`` (wav, ``#`` ends it); its
  ``RecordingFinished`` goes to the engine, whose port fetches the bytes from
  ``GET /recordings/stored/{name}/file`` to register the message.
* ``HandOver`` → the caller becomes a contact of the queue (``contact_arrives``, as a
  StasisStart with a queue would) with the language and skill chosen, and the session is
  recorded on it for the audit. A queue that does not exist (any more) falls back to the
  adapter's default queue (:func:`_queues_to_try`), else the call is hung up.
* ``OfferCallback`` → ``schedule_callback`` for the number (with the skill chosen; the
  same fallback), then the call is hung up.
* ``Hangup`` → ``DELETE /channels/{id}``.

Every call runs on one of the adapter's worker threads, one event at a time per channel
(the adapter's lanes), so a session is never touched by two threads at once.
"""

from __future__ import annotations

import itertools
import logging
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from domain.base import DomainError
from domain.contact_center import commands as cc
from telephony_adapter.ari import Leg
from telephony_adapter.ivr.actions import Collect, HandOver, Hangup, IvrAction, OfferCallback, Play, Record
from telephony_adapter.ivr.engine import Flow, IvrSession
from telephony_adapter.ivr.ports import IVR_ACTOR, HotlinePorts, current_flow, session_record_command

log = logging.getLogger("hotline.telephony.ivr")
HANGUPS = ("ChannelHangupRequest", "StasisEnd", "ChannelDestroyed")


@dataclass
class _Call:
    channel_id: str
    session: IvrSession
    pending: deque[IvrAction] = field(default_factory=deque)
    playing: str | None = None  # the playback the next actions wait for
    collect: Collect | None = None  # digits being gathered: the timer's length
    timer: int = 0  # the current timer's token (an older one firing is ignored)
    recording: str | None = None


class IvrDriver:
    def __init__(self, hotline: Any, *, flows: Callable[[str], Flow] | None = None, time_scale: float = 1.0) -> None:
        self.hotline = hotline
        self.flows = flows or (lambda flow_id: current_flow(hotline, flow_id))
        self.time_scale = time_scale  # tests shrink the engine's timeouts
        self.calls: dict[str, _Call] = {}
        self.finished: list[dict[str, Any]] = []  # records of ended sessions (tests, logs)
        self._ids = itertools.count(1)
        self._lock = threading.Lock()

    # ------------------------------------------------------------------ events
    def on_event(self, process: Any, event: dict[str, Any]) -> tuple[dict[str, Any] | None, list[dict[str, Any]]] | None:
        """The event if it belongs to a voice menu (None: not ours, the adapter maps it)."""
        kind = event.get("type")
        if kind == "StasisStart" and (event.get("args") or [None])[0] == "ivr":
            self._start(process, event)
            return None, []
        channel_id = _channel_of(event)
        call = self.calls.get(channel_id or "")
        if call is None:
            return None
        now = process.bus.clock.now()
        session = call.session
        if kind == "ChannelDtmfReceived":
            call.timer += 1
            actions = session.on_digit(event["digit"], now)
            if actions:
                if call.playing is not None:
                    process.ari("DELETE", f"/playbacks/{call.playing}")
                    call.playing = None
                call.pending.clear()
                call.collect = None
                call.pending.extend(actions)
            elif call.collect is not None and not session.done:
                self._arm(process, call)  # the inter-digit time starts again
        elif kind == "IvrTimeout":
            if event.get("token") != call.timer or call.playing is not None:
                return None, []
            call.collect = None
            call.pending.extend(session.on_timeout(now))
        elif kind == "PlaybackFinished":
            if event["playback"]["id"] != call.playing:
                return None, []
            call.playing = None
            call.pending.extend(session.on_playback_finished(now))
        elif kind == "RecordingFinished":
            recording = event["recording"]
            if recording["name"] != call.recording:
                return None, []
            call.recording = None
            duration = float(recording.get("duration") or 0)
            call.pending.extend(session.on_recording_finished(recording["name"], duration, now))
        elif kind in HANGUPS:
            session.on_hangup(now)
            call.pending.clear()
        else:
            return None, []
        self._pump(process, call)
        if session.done and (kind in HANGUPS or not (call.pending or call.playing or call.recording)):
            self._end(process, call)  # after its last prompt and hang-up went out
        return None, []

    def _start(self, process: Any, event: dict[str, Any]) -> None:
        channel = event["channel"]
        args = list(event.get("args") or [])
        flow_id = args[1] if len(args) > 1 else "main"
        caller = (channel.get("caller") or {}).get("number") or ""
        dialled = (channel.get("dialplan") or {}).get("exten") or ""
        with process.adapter.lock:
            process.adapter.legs[channel["id"]] = Leg(contact_id="", kind="ivr", number=caller, args=tuple(args[1:]))
        if channel["id"] in self.calls:
            return  # re-delivered (a resync after a drop): the session goes on
        try:
            flow = self.flows(flow_id)
        except LookupError:
            log.warning("ivr: no flow %s for channel %s: hanging up", flow_id, channel["id"])
            process.ari("DELETE", f"/channels/{channel['id']}")
            return
        ports = HotlinePorts.for_flow(self.hotline, flow, lambda name: process._fetch(f"/recordings/stored/{name}/file"))
        now = process.bus.clock.now()
        session = IvrSession(flow, caller, dialled, now, ports, session_id=channel["id"])
        call = self.calls[channel["id"]] = _Call(channel["id"], session)
        if channel.get("state") != "Up":
            process.ari("POST", f"/channels/{channel['id']}/answer")
        call.pending.extend(session.start(now))
        self._pump(process, call)

    # ------------------------------------------------------------------ actions
    def _pump(self, process: Any, call: _Call) -> None:
        """Carries out the pending actions until one has to wait (a prompt, a recording)."""
        ch = call.channel_id
        while call.pending and call.playing is None and call.recording is None:
            action = call.pending.popleft()
            if isinstance(action, Play):
                pid = f"hl-ivr.{ch}.{next(self._ids)}"
                call.playing = pid
                if (
                    process.ari("POST", f"/channels/{ch}/play", media=",".join(action.media), lang=call.session.language, playbackId=pid)
                    is None
                ):
                    call.playing = None  # the channel is gone: nothing to wait for
            elif isinstance(action, Collect):
                call.collect = action
            elif isinstance(action, Record):
                call.recording = action.name
                if (
                    process.ari(
                        "POST",
                        f"/channels/{ch}/record",
                        name=action.name,
                        format="wav",
                        maxDurationSeconds=action.max_seconds,
                        beep=action.beep,
                        ifExists="overwrite",
                        terminateOn="#",
                    )
                    is None
                ):
                    call.recording = None
            elif isinstance(action, HandOver):
                self._hand_over(process, call, action)
            elif isinstance(action, OfferCallback):
                self._callback(process, call, action)
            elif isinstance(action, Hangup):
                process.ari("DELETE", f"/channels/{ch}")
        if call.collect is not None and call.playing is None and not call.pending and not call.session.done:
            self._arm(process, call)

    def _arm(self, process: Any, call: _Call) -> None:
        assert call.collect is not None
        call.timer += 1
        token, delay = call.timer, call.collect.timeout_s * self.time_scale
        event = {"type": "IvrTimeout", "channel": {"id": call.channel_id}, "token": token}
        loop = process._loop

        def fire() -> None:
            loop.call_later(delay, process._dispatch, event, 0.0)

        loop.call_soon_threadsafe(fire)

    def _hand_over(self, process: Any, call: _Call, action: HandOver) -> None:
        number = call.session.caller or None

        def arrive(queue_id: str) -> dict[str, Any]:
            # In the fallback queue any agent will do (as for an overflow): the skill is dropped.
            skill = action.skill if queue_id == action.queue_id else None
            return process.adapter.arrive(call.channel_id, queue_id, action.language, action.priority, number, skill)  # type: ignore[no-any-return]

        if not self._in_first_queue(process, call, action.queue_id, "hand-over", arrive):
            process.ari("DELETE", f"/channels/{call.channel_id}")

    def _callback(self, process: Any, call: _Call, action: OfferCallback) -> None:
        now = process.bus.clock.now()

        def schedule(queue_id: str) -> dict[str, Any]:
            callback = cc.ScheduleCallback(
                queue_id=queue_id,
                phone=action.number,
                due_at=now,
                reason="virtual_hold",
                language=call.session.language,
                # The topic chosen in the menu: the callback goes to an agent who has it (in
                # the fallback queue any agent will do).
                skill=call.session.skill if queue_id == action.queue_id else None,
                external_id=f"ivr-callback:{call.channel_id}",
            )
            return process.bus.execute(callback, IVR_ACTOR).result  # type: ignore[no-any-return]

        self._in_first_queue(process, call, action.queue_id, "callback", schedule)
        process.ari("DELETE", f"/channels/{call.channel_id}")  # called back later, or not at all

    def _in_first_queue(self, process: Any, call: _Call, wanted: str, what: str, attempt: Callable[[str], dict[str, Any]]) -> bool:
        """``attempt`` in the queue the flow names, else in the default one when the named
        queue is gone (any other refusal ends it); records the session on the contact made.
        Returns whether a queue took it."""
        for queue_id in _queues_to_try(process, wanted):
            try:
                result = attempt(queue_id)
            except DomainError as exc:
                log.warning("ivr: %s of %s in %s refused: %s", what, call.channel_id, queue_id, exc.message)
                if exc.code == "queue_not_found":
                    continue
                return False
            if queue_id != wanted:
                log.warning("ivr: %s of %s in the default queue %s instead of %s", what, call.channel_id, queue_id, wanted)
            self._record(process, result["id"], call)
            return True
        return False

    def _record(self, process: Any, contact_id: str, call: _Call) -> None:
        """The session, on the contact it became: the flow and version the caller met."""
        try:
            process.bus.execute(session_record_command(contact_id, call.session), IVR_ACTOR)
        except DomainError as exc:
            log.warning("ivr: session of %s not recorded: %s", call.channel_id, exc.message)

    def _end(self, process: Any, call: _Call) -> None:
        self.finished.append(call.session.record())
        self.calls.pop(call.channel_id, None)
        with process.adapter.lock:
            leg = process.adapter.legs.get(call.channel_id)
            if leg is not None and leg.kind == "ivr":
                process.adapter.legs.pop(call.channel_id, None)


def _queues_to_try(process: Any, queue_id: str) -> list[str]:
    """The flow's queue, then the adapter's default queue (``HOTLINE_ARI_DEFAULT_QUEUE``,
    where a call without a queue goes): publishing refuses a flow naming a queue that does
    not exist, but a flow published before that check, or a store whose queues changed,
    may still name one. A caller the menu promised a person (or a callback) then waits in
    the default queue rather than being hung up; with no default queue either, hung up."""
    default = getattr(process.adapter, "default_queue", None)
    return [queue_id] if not default or default == queue_id else [queue_id, default]


def _channel_of(event: dict[str, Any]) -> str | None:
    channel = event.get("channel")
    if isinstance(channel, dict) and "id" in channel:
        return str(channel["id"])
    for key in ("playback", "recording"):
        value = event.get(key)
        if isinstance(value, dict) and str(value.get("target_uri", "")).startswith("channel:"):
            return str(value["target_uri"])[8:]
    return None
