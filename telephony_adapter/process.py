"""The ARI adapter process (``hotline telephony``): Asterisk's events in, the hotline's
decisions out.

One asyncio loop holds two conversations with Asterisk:

* **events → commands**: the WebSocket ``/ari/events?app=<app>``; each event is mapped
  by :class:`~telephony_adapter.ari.AriAdapter` to a command on the bus. Commands are
  synchronous (the bus commits through the group committer), so they run on a pool of
  worker threads, in order per channel (one *lane* per channel id) and concurrently
  across channels: concurrent calls' commands share group commits.
* **decisions → ARI**: the process follows the event log, as the router does (the
  store's notifications from a position, woken by the store's new-events signal), and
  turns each contact event (offered, answered, held, transferred, supervised, ended …)
  into ARI requests with :func:`~telephony_adapter.ari.actions_for` (a recording an agent
  demanded: the queue's announcement and ``POST /bridges/{id}/record``, once the call's
  bridge has its channels, ``_demanded``). It starts from the end of the log when it
  becomes the active adapter: what was decided before is reconciled from the PBX's state
  instead (below), never replayed.

After a drop the WebSocket is opened again with exponential backoff; then the adapter
**resynchronises**: it lists channels and bridges and reconciles them with the contacts
it knows (a caller gone during the drop hung up; a channel in Stasis it never heard of
arrived; its own legs are recognised by their ids; bridges of finished contacts are
destroyed). ``ApplicationReplaced`` (another client took the application's WebSocket)
stops this adapter cleanly. One adapter per application is active at a time: with
PostgreSQL it holds an advisory lock (the router's :class:`AdvisoryLockLeadership`, on
a key of its own per application); standbys wait for it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
import zlib
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from websockets.exceptions import ConnectionClosed

from consumers.fast_decode import decoder_for
from consumers.router import LOCK_KEY, AlwaysLeader, Leadership, leadership_for
from domain.contact_center.contacts import Contact
from domain.envelope import Envelope
from domain.events import EVENT_CLASSES
from infra.bus import CommandBus
from infra.eventstore import EventStore
from telephony_adapter.ari import AriAdapter, Dialplan, Leg, actions_for, bridge_id, bridge_requests, leg_of_channel_id
from telephony_adapter.ari_client import AriClient, AriHttpError, decode

log = logging.getLogger("hotline.telephony")
Request = dict[str, Any]


def lock_key(app: str) -> int:
    """The advisory lock of one Stasis application's adapter (not the router's)."""
    return LOCK_KEY ^ (zlib.crc32(f"ari:{app}".encode()) << 8)


def leadership_for_app(database_url: str | None, app: str) -> Leadership:
    leadership = leadership_for(database_url)
    if hasattr(leadership, "key"):
        leadership.key = lock_key(app)
    return leadership


@dataclass
class TelephonyStats:
    events: int = 0
    commands: int = 0
    requests: int = 0
    request_errors: int = 0
    connections: int = 0
    connect_failures: int = 0
    resyncs: int = 0
    reconciled: int = 0
    replaced: bool = False
    gone: int = 0  # requests on a channel that hung up meanwhile (404, 400 channel not found)
    demands: int = 0  # recordings demanded by agents (RecordingDemanded)
    demands_ignored: int = 0  # … on a call recorded already, or with no recorder installed
    # Seconds from an event's arrival on the WebSocket to its command's commit (events
    # that issued a command): the benchmark's figure.
    latencies: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


class TelephonyProcess:
    def __init__(
        self,
        store: EventStore,
        bus: CommandBus,
        client: AriClient,
        *,
        leadership: Leadership | None = None,
        plan: Dialplan | None = None,
        default_queue: str = "general",
        workers: int = 16,
        backoff_initial: float = 0.2,
        backoff_max: float = 30.0,
        poll: float = 0.2,
        standby_poll: float = 1.0,
        recorder: Any = None,
        ivr: Any = None,
        name: str = "telephony",
    ) -> None:
        self.store, self.bus, self.client = store, bus, client
        self.leadership = leadership or AlwaysLeader()
        self.plan = plan or Dialplan(app=client.app)
        self.adapter = AriAdapter(bus, default_queue)
        self.executor = ThreadPoolExecutor(workers, thread_name_prefix=f"{name}-cmd")
        self.backoff_initial, self.backoff_max = backoff_initial, backoff_max
        self.poll, self.standby_poll = poll, standby_poll
        self.recorder = recorder  # telephony_adapter.recorder.Recorder (recordings), optional
        self.ivr = ivr  # telephony_adapter.ivr_driver.IvrDriver-like (voice menus), optional
        self.name = name
        self.stats = TelephonyStats()
        self.position = 0
        self.is_leader = False
        self.connected = threading.Event()
        self.stopped_because: str | None = None
        self._decoder = decoder_for(store)
        self._lanes: dict[str, asyncio.Task[None]] = {}
        self._inflight: set[asyncio.Task[Any]] = set()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._thread: threading.Thread | None = None
        self._ws: Any = None
        self._recordings: dict[str, dict[str, Any]] = {}  # live recording name -> what it records
        self._joined: set[str] = set()  # legs already bridged (or hung up) on their first Up
        # Contacts whose bridge has its channels: a recording demanded before is started then.
        # Touched on the event loop only (_perform, _follow, resync): no lock.
        self._bridged: set[str] = set()

    # ------------------------------------------------------------------ running
    def start(self) -> TelephonyProcess:
        """Runs the adapter in a thread of its own (tests, ``hotline serve``)."""
        ready = threading.Event()

        def main() -> None:
            async def go() -> None:
                self._prepare()
                ready.set()
                await self.run()

            asyncio.run(go())

        self._thread = threading.Thread(target=main, name=self.name, daemon=True)
        self._thread.start()
        ready.wait(5)
        return self

    def stop(self, timeout: float = 10) -> None:
        if self._loop is not None and self._stop is not None:
            with contextlib.suppress(RuntimeError):
                self._loop.call_soon_threadsafe(self._stop.set)
        if self._thread is not None:
            self._thread.join(timeout)

    def _prepare(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()

    async def run(self) -> str:
        """Until stopped or replaced: lead (or stand by), connect, resync, follow."""
        if self._stop is None:
            self._prepare()
        assert self._stop is not None
        backoff = self.backoff_initial
        why = "stopped"
        try:
            while not self._stop.is_set():
                if not self.is_leader:
                    if await asyncio.to_thread(self.leadership.acquire):
                        self.is_leader = True
                        self.position = self.store.max_position()  # decisions from now on; the past is reconciled
                        log.info("%s: active adapter for application %s", self.name, self.client.app)
                    else:
                        await self._sleep(self.standby_poll)
                        continue
                try:
                    ws = await self.client.events()
                except Exception as exc:  # refused, unreachable, 401: try again later
                    self.stats.connect_failures += 1
                    log.warning("%s: cannot open the ARI WebSocket (%s); again in %.1f s", self.name, exc, backoff)
                    await self._sleep(backoff)
                    backoff = min(backoff * 2, self.backoff_max)
                    continue
                backoff = self.backoff_initial
                outcome = await self._session(ws)
                if outcome == "replaced":
                    why = "replaced"
                    log.warning("%s: application %s replaced by another client; stopping", self.name, self.client.app)
                    break
                if not await asyncio.to_thread(self.leadership.still_leader):
                    self.is_leader = False
                if not self._stop.is_set():
                    log.warning("%s: ARI WebSocket closed; reconnecting in %.1f s", self.name, backoff)
                    await self._sleep(backoff)
                    backoff = min(backoff * 2, self.backoff_max)
        finally:
            await self._drain()
            if self.is_leader:
                await asyncio.to_thread(self.leadership.release)
                self.is_leader = False
            await self.client.close()
            self.executor.shutdown(wait=False)
        self.stopped_because = why  # set last: the adapter is then fully stopped
        return why

    async def _sleep(self, seconds: float) -> None:
        assert self._stop is not None
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stop.wait(), seconds)

    async def _session(self, ws: Any) -> str:
        """One WebSocket connection: resync, then events until it closes."""
        assert self._stop is not None
        self._ws = ws
        self.stats.connections += 1
        stop_watch = asyncio.create_task(self._close_on_stop(ws))
        follower: asyncio.Task[None] | None = None
        try:
            await self.resync()
            self.connected.set()
            follower = asyncio.create_task(self._follow())
            async for message in ws:
                received = time.perf_counter()
                try:
                    event = decode(message)
                except ValueError:
                    continue
                self.stats.events += 1
                if event.get("type") == "ApplicationReplaced":
                    self.stats.replaced = True
                    await ws.close()
                    return "replaced"
                self._dispatch(event, received)
            return "closed"
        except ConnectionClosed:
            return "dropped"
        finally:
            self.connected.clear()
            self._ws = None
            stop_watch.cancel()
            if follower is not None:
                follower.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await follower
            await self._drain()

    async def _close_on_stop(self, ws: Any) -> None:
        assert self._stop is not None
        await self._stop.wait()
        await ws.close()

    async def _drain(self) -> None:
        if self._inflight:
            await asyncio.gather(*list(self._inflight), return_exceptions=True)

    # ------------------------------------------------------------------ events → commands
    def _dispatch(self, event: dict[str, Any], received: float) -> None:
        """Handles the event after the previous one of the same channel (a lane per channel)."""
        key = _lane_key(event)
        previous = self._lanes.get(key)
        task = asyncio.create_task(self._handle(event, received, previous))
        self._lanes[key] = task
        self._inflight.add(task)

        def done(t: asyncio.Task[None]) -> None:
            self._inflight.discard(t)
            if self._lanes.get(key) is t:
                self._lanes.pop(key, None)

        task.add_done_callback(done)

    async def _handle(self, event: dict[str, Any], received: float, previous: asyncio.Task[None] | None) -> None:
        if previous is not None:
            await asyncio.wait([previous])
        loop = asyncio.get_running_loop()
        try:
            result, follow_ups, committed = await loop.run_in_executor(self.executor, self._timed, event)
        except Exception as exc:
            log.exception("%s: %s failed", self.name, event.get("type"))
            self.stats.errors.append(f"{event.get('type')}: {exc}")
            return
        if result is not None:
            self.stats.commands += 1
            self.stats.latencies.append(committed - received)
        for step in follow_ups:
            await self._perform(step)

    def _timed(self, event: dict[str, Any]) -> tuple[dict[str, Any] | None, list[Request], float]:
        """On a worker thread: the event's command (timed when the bus returned: committed),
        then the ARI requests that follow from it at once (bridging a leg that answered, an
        IVR's next prompt, a finished recording)."""
        taken = self.ivr.on_event(self, event) if self.ivr is not None else None
        if taken is not None:
            return taken[0], taken[1], time.perf_counter()
        result = self.adapter.handle(event)
        committed = time.perf_counter()
        return result, self._follow_ups(event), committed

    def _follow_ups(self, event: dict[str, Any]) -> list[Request]:
        kind = event.get("type")
        follow_ups: list[Request] = []
        channel = event.get("channel") or {}
        leg = self.adapter.legs.get(channel.get("id", ""))
        up = kind in ("StasisStart", "ChannelStateChange") and channel.get("state") == "Up"
        if up and leg is not None and channel["id"] not in self._joined:
            self._joined.add(channel["id"])  # once per leg, whichever of its events says Up first
            if leg.kind == "agent":
                follow_ups = self._join_agent(channel["id"], leg)
            elif leg.kind == "supervisor":
                follow_ups = self._join_supervisor(channel["id"], leg)
            elif leg.kind == "callback":
                follow_ups = self._join_citizen(channel["id"], leg)
        if kind == "ChannelDestroyed":
            self._joined.discard(channel.get("id", ""))
        if kind == "RecordingFinished" and self.recorder is not None:
            self._recording_finished(event["recording"])
        return follow_ups

    def _join_agent(self, channel_id: str, leg: Leg) -> list[Request]:
        """An agent's leg is up: into the contact's bridge with the citizen, or hung up if the
        contact is no longer theirs (the offer timed out, the caller left)."""
        contact = self.adapter.contact(leg.contact_id)
        if contact is not None and contact.status == "dialing" and contact.agent_id == leg.agent_id:
            # A callback: the agent took it; music until the citizen answers.
            return [self._req("POST", f"/channels/{channel_id}/moh", mohClass=self.plan.moh_class)]
        if contact is None or contact.status != "connected" or leg.agent_id not in contact.participants:
            return [self._req("DELETE", f"/channels/{channel_id}")]
        citizen = self._citizen_channel(leg.contact_id)
        if citizen is None:
            return [self._req("DELETE", f"/channels/{channel_id}")]
        announce, record = self._by_policy(leg.contact_id, contact, leg.agent_id, citizen)
        return [*announce, *bridge_requests(leg.contact_id, [citizen, channel_id]), *record]

    def _by_policy(self, contact_id: str, contact: Any, agent_id: str | None, citizen: str) -> tuple[list[Request], list[Request]]:
        """The queue's recording policy, applied when the citizen and the first agent are
        bridged (an answered call, or a callback the citizen picked up): the announcement to
        the citizen before the bridge, the bridge's recording after it."""
        first = contact.participants.get(agent_id or "") == "primary" and not self._recording_of(contact_id)
        if self.recorder is None or not first:
            return [], []
        reason = self.recorder.decide(contact.queue_id, contact_id)
        if reason is None:
            return [], []
        announcement = self.recorder.announcement(contact.queue_id)
        announce = [self._req("POST", f"/channels/{citizen}/play", media=announcement)] if announcement else []
        name = f"hl-rec.{contact_id}.{contact.version}"
        self._recordings[name] = {"contact_id": contact_id, "agent_id": agent_id, "queue_id": contact.queue_id, "reason": reason}
        record = self._req("POST", f"/bridges/{bridge_id(contact_id)}/record", name=name, format="wav", ifExists="overwrite")
        return announce, [record | {"then": "recording_started", "name": name}]

    def _join_citizen(self, channel_id: str, leg: Leg) -> list[Request]:
        """A called-back citizen answered: bridged with the agent waiting on the line (if the
        agent's leg is not there, the follower rings the agent on ``callback_connected``)."""
        contact = self.adapter.contact(leg.contact_id)
        if contact is None or contact.status != "connected":
            return [self._req("DELETE", f"/channels/{channel_id}")]
        agent = next(
            (ch for ch, other in self.adapter.legs_of(leg.contact_id, "agent").items() if other.agent_id == contact.agent_id), None
        )
        if agent is None:
            return []
        announce, record = self._by_policy(leg.contact_id, contact, contact.agent_id, channel_id)
        return [*announce, self._req("DELETE", f"/channels/{agent}/moh"), *bridge_requests(leg.contact_id, [channel_id, agent]), *record]

    def _recording_of(self, contact_id: str) -> bool:
        return any(r["contact_id"] == contact_id for r in self._recordings.values())

    def _join_supervisor(self, channel_id: str, leg: Leg) -> list[Request]:
        snoop = next((ch for ch, other in self.adapter.legs_of(leg.contact_id, "snoop").items() if other.agent_id == leg.agent_id), None)
        if snoop is None:
            return [self._req("DELETE", f"/channels/{channel_id}")]
        bid = f"hl-sup.{leg.contact_id}.{leg.agent_id}"
        return [
            self._req("POST", "/bridges", type="mixing", bridgeId=bid, name=f"supervision {leg.contact_id}"),
            self._req("POST", f"/bridges/{bid}/addChannel", channel=f"{snoop},{channel_id}"),
        ]

    def _citizen_channel(self, contact_id: str, contact: Contact | None = None) -> str | None:
        found = self.adapter.legs_of(contact_id, "caller", "callback")
        if found:
            return next(iter(found))
        contact = contact or self.adapter.contact(contact_id)
        external = (contact.external_id or "") if contact is not None else ""
        if external.startswith("ari:"):
            channel_id = external[4:]
            with self.adapter.lock:
                self.adapter.legs.setdefault(channel_id, Leg(contact_id=contact_id))
            return channel_id
        return None

    def _recording_finished(self, recording: dict[str, Any]) -> None:
        name = recording["name"]
        known = self._recordings.pop(name, None)
        if known is None or not known.get("started"):
            return
        audio = self._fetch(f"/recordings/stored/{name}/file")
        if isinstance(audio, bytes):
            self.recorder.finished(name, audio, float(recording.get("duration") or 0))

    def _fetch(self, path: str) -> Any:
        """An ARI GET from a worker thread (the loop does the I/O)."""
        assert self._loop is not None
        future = asyncio.run_coroutine_threadsafe(self.client.request("GET", path), self._loop)
        return future.result(30)

    def ari(self, method: str, path: str, **params: Any) -> Any:
        """Any ARI request from a worker thread (the IVR driver's prompts and recordings)."""
        assert self._loop is not None
        future = asyncio.run_coroutine_threadsafe(self._perform(self._req(method, path, **params)), self._loop)
        return future.result(30)

    # ------------------------------------------------------------------ decisions → ARI
    async def _follow(self) -> None:
        """The contact events written since this adapter became active, as ARI requests."""
        loop = asyncio.get_running_loop()
        while True:
            page = await loop.run_in_executor(None, self.store.notifications, self.position, 500)
            if not page:
                await loop.run_in_executor(None, self.store.wait_for_events, self.poll)
                continue
            for n in page:
                known = self._decoder.type_of(n.topic)
                if known is not None and known[1] == "contact":
                    envelope = self._decoder.envelope(n)
                    if EVENT_CLASSES.get(envelope.type) is Contact.RecordingDemanded:
                        requests = self._demanded(envelope)  # on the loop, beside the bridge state _perform keeps
                    else:
                        requests = await loop.run_in_executor(self.executor, self._plan, envelope)
                    for request in requests:
                        await self._perform(request)
                self.position = n.id

    def _demanded(self, envelope: Envelope) -> list[Request]:
        """An agent asked to record the call (``RecordCall``): the queue's announcement to the
        call's bridge, then the bridge recorded, reason ``agent_demand`` (``StartRecording``
        once the PBX records). A call recorded already (its policy's recording, an earlier
        demand) is left as it is; a call not bridged yet is recorded once it is."""
        contact_id, data = envelope.aggregate_id, envelope.data
        self.stats.demands += 1
        if self.recorder is None or self._recording_of(contact_id):
            self.stats.demands_ignored += 1
            log.info("%s: recording demanded by %s on contact %s: recorded already or no recorder", self.name, data["agent_id"], contact_id)
            return []
        name = f"hl-rec.{contact_id}.d{envelope.version}"
        self._recordings[name] = {
            "contact_id": contact_id,
            "agent_id": data["agent_id"],
            "queue_id": data["queue_id"],
            "reason": "agent_demand",
            "announcement": data.get("announcement"),
            "pending": True,
        }
        return self._record_demanded(name) if contact_id in self._bridged else []

    def _record_demanded(self, name: str) -> list[Request]:
        known = self._recordings[name]
        known["pending"] = False
        bid = bridge_id(known["contact_id"])
        steps = [self._req("POST", f"/bridges/{bid}/play", media=known["announcement"])] if known["announcement"] else []
        record = self._req("POST", f"/bridges/{bid}/record", name=name, format="wav", ifExists="overwrite")
        return [*steps, record | {"then": "recording_started", "name": name}]

    def _before(self, request: Request) -> None:
        """A contact's bridge going (the call ended, a cold transfer): a demand not started
        yet goes with it (the next leg is a new bridge, and a new demand)."""
        contact_id = _contact_of_bridge(request["path"])
        if request["method"] == "DELETE" and contact_id is not None and request["path"] == f"/bridges/{bridge_id(contact_id)}":
            self._bridged.discard(contact_id)
            for name, known in list(self._recordings.items()):
                if known["contact_id"] == contact_id and known.get("pending"):
                    self._recordings.pop(name, None)

    def _after(self, request: Request) -> list[Request]:
        """A request the PBX carried out: the channels added to a contact's bridge start the
        recordings demanded before it existed."""
        contact_id = _contact_of_bridge(request["path"])
        if request["method"] != "POST" or contact_id is None or not request["path"].endswith("/addChannel"):
            return []
        self._bridged.add(contact_id)
        pending = [n for n, known in self._recordings.items() if known["contact_id"] == contact_id and known.get("pending")]
        return [step for name in pending for step in self._record_demanded(name)]

    def _not_started(self, request: Request) -> None:
        """A recording request the PBX refused: forgotten, so that the call can be recorded later."""
        if request.get("then") == "recording_started":
            self._recordings.pop(request["name"], None)

    def _plan(self, envelope: Envelope) -> list[Request]:
        contact_id = envelope.aggregate_id
        legs = self.adapter.legs_of(contact_id)
        contact: Contact | None = None
        if not any(leg.kind in ("caller", "callback") for leg in legs.values()):
            contact = self.adapter.contact(contact_id)
            citizen = self._citizen_channel(contact_id, contact)
            if citizen is not None:
                legs[citizen] = Leg(contact_id=contact_id)
        data = dict(envelope.data)
        number = None
        if envelope.name in ("callback_attempted", "supervisor_joined"):
            contact = contact or self.adapter.contact(contact_id)
            if contact is not None:
                number = (contact.personal or {}).get("phone")
                data.setdefault("agent_id", contact.agent_id)
        # With no citizen leg, only a voice callback is the PBX's (the adapter dials it): a
        # chat or a voice contact made through the API is left to the agent's desk.
        callback = contact is not None and contact.is_callback and contact.media == "voice"
        requests = actions_for(
            envelope.type, contact_id, data, legs, plan=self.plan, number=number, version=envelope.version, callback=callback
        )
        for request in requests:
            self._expect_leg(request)
        return requests

    def _expect_leg(self, request: Request) -> None:
        """Our own originates and snoops: known before their first event arrives."""
        params = request.get("params") or {}
        channel_id = params.get("channelId") or params.get("snoopId")
        if request["method"] == "POST" and channel_id:
            leg = leg_of_channel_id(channel_id)
            if leg is not None:
                with self.adapter.lock:
                    self.adapter.legs.setdefault(channel_id, leg)

    def _req(self, method: str, path: str, **params: Any) -> Request:
        return {"method": method, "path": path, "params": params} if params else {"method": method, "path": path}

    async def _perform(self, request: Request) -> Any:
        self.stats.requests += 1
        self._before(request)
        params = request.get("params")
        try:
            result = await self.client.request(request["method"], request["path"], params, request.get("body"))
        except AriHttpError as exc:
            if (exc.status == 404 and request["method"] == "DELETE") or (exc.status == 409 and _names_its_own_id(request)):
                # Gone already / exists already: what we wanted. A bridge or leg is created
                # with an id of ours, so doing it again (after a reconnect, the requests of
                # a contact event not yet known to be done are performed again) is harmless.
                return None
            if exc.status == 404 or (exc.status == 400 and "not found" in exc.message.lower()):
                # The channel hung up between the decision and the request: its own events
                # (or the next resync) tell the hotline.
                self.stats.gone += 1
                self._not_started(request)
                return None
            self.stats.request_errors += 1
            self.stats.errors.append(str(exc))
            log.warning("%s: %s", self.name, exc)
            self._not_started(request)
            return None
        except Exception as exc:  # the connection broke: resync will reconcile
            self.stats.request_errors += 1
            self.stats.errors.append(f"{request['method']} {request['path']}: {exc}")
            self._not_started(request)
            return None
        if request.get("then") == "recording_started":
            await self._recording_started(request["name"])
        for step in self._after(request):
            await self._perform(step)
        return result

    async def _recording_started(self, name: str) -> None:
        known = self._recordings.get(name)
        if known is None or self.recorder is None:
            return
        known["started"] = True
        now = self.bus.clock.now()
        call: Callable[[], Any] = lambda: self.recorder.started(  # noqa: E731
            name, known["contact_id"], known["agent_id"], known["queue_id"], known["reason"], now
        )
        try:
            await asyncio.get_running_loop().run_in_executor(self.executor, call)
        except Exception as exc:
            self.stats.errors.append(f"StartRecording {name}: {exc}")

    # ------------------------------------------------------------------ resync
    async def resync(self) -> None:
        """After (re)connecting: what the PBX has now, reconciled with what we know."""
        try:
            channels = await self.client.request("GET", "/channels") or []
            bridges = await self.client.request("GET", "/bridges") or []
        except Exception as exc:
            self.stats.errors.append(f"resync: {exc}")
            return
        # What is bridged now (a demand waits for its call's bridge; see _after).
        self._bridged = {cid for b in bridges if b.get("channels") and (cid := _contact_of_bridge(f"/bridges/{b.get('id', '')}"))}
        loop = asyncio.get_running_loop()
        requests = await loop.run_in_executor(self.executor, self._reconcile, channels, bridges)
        for request in requests:
            await self._perform(request)
        self.stats.resyncs += 1

    def _reconcile(self, channels: list[dict[str, Any]], bridges: list[dict[str, Any]]) -> list[Request]:
        present = {ch["id"]: ch for ch in channels}
        requests: list[Request] = []
        # Channels we knew that are gone: their hangup happened while we were away.
        for channel_id, leg in list(self.adapter.legs.items()):
            if channel_id not in present:
                self.stats.reconciled += 1
                self.adapter.handle(
                    {"type": "ChannelDestroyed", "cause": 16, "channel": {"id": channel_id, "state": "Up" if leg.up else "Down"}}
                )
        # Channels in our application we do not know: arrived (or answered) while we were away.
        for channel_id, ch in present.items():
            if channel_id in self.adapter.legs:
                continue
            args = _stasis_args(ch, self.plan.app)
            own = leg_of_channel_id(channel_id)
            if own is not None:
                with self.adapter.lock:
                    self.adapter.legs[channel_id] = own
                own.up = ch.get("state") == "Up"
                self.stats.reconciled += 1
                if own.kind == "agent" and own.up:
                    self.adapter.handle({"type": "StasisStart", "args": ["agent", own.contact_id, own.agent_id], "channel": ch})
                    requests += self._join_agent(channel_id, own)
                elif own.kind == "callback" and own.up:
                    self.adapter.handle({"type": "ChannelStateChange", "channel": ch})
                continue
            if args is None:
                continue  # not in our application
            self.stats.reconciled += 1
            event = {"type": "StasisStart", "args": args, "channel": ch}
            # A caller in a voice menu (a replaced adapter held the session): the menu starts
            # again from its greeting, rather than leaving the caller in silence.
            taken = self.ivr.on_event(self, event) if self.ivr is not None else None
            if taken is None:
                self.adapter.handle(event)
            else:
                requests += taken[1]
        # Bridges of contacts that are over.
        for bridge in bridges:
            bid = str(bridge.get("id", ""))
            if not bid.startswith("hl-contact."):
                continue
            contact = self.adapter.contact(bid.split(".", 1)[1])
            if contact is None or contact.status not in ("connected",):
                requests.append(self._req("DELETE", f"/bridges/{bid}"))
        return requests


def _names_its_own_id(request: Request) -> bool:
    """A bridge, or one of our legs, created with the id we chose (``bridgeId``, ``channelId``)."""
    params = request.get("params") or {}
    if request["method"] != "POST":
        return False
    if request["path"] == "/bridges":
        return True
    return request["path"] == "/channels" and leg_of_channel_id(str(params.get("channelId") or "")) is not None


def _contact_of_bridge(path: str) -> str | None:
    """The contact whose bridge an ARI path names (``/bridges/hl-contact.<id>…``), if any."""
    prefix = f"/bridges/{bridge_id('')}"
    if not path.startswith(prefix):
        return None
    return path[len(prefix) :].split("/", 1)[0] or None


def _lane_key(event: dict[str, Any]) -> str:
    for key in ("channel", "peer"):
        value = event.get(key)
        if isinstance(value, dict) and "id" in value:
            return f"channel:{value['id']}"
    for key in ("playback", "recording"):
        value = event.get(key)
        if isinstance(value, dict) and "target_uri" in value:
            return str(value["target_uri"])
    if isinstance(event.get("bridge"), dict):
        return f"bridge:{event['bridge'].get('id')}"
    return "application"


def _stasis_args(channel: dict[str, Any], app: str) -> list[str] | None:
    """A listed channel's Stasis arguments, when it is in our application (ARI lists a
    channel's dialplan location: ``Stasis`` with ``app,arg1,arg2``)."""
    dialplan = channel.get("dialplan") or {}
    if dialplan.get("app_name") != "Stasis":
        return None
    parts = str(dialplan.get("app_data", "")).split(",")
    if not parts or parts[0] != app:
        return None
    return parts[1:]


def from_hotline(hotline: Any, *, name: str = "telephony") -> TelephonyProcess:
    """The adapter of a started hotline, configured by its settings (``ari_*``)."""
    s = hotline.settings
    if not s.ari_password:
        raise ValueError("HOTLINE_ARI_PASSWORD is not set: the ARI user's password (ari.conf)")
    client = AriClient(s.ari_url, s.ari_user, s.ari_password, s.ari_app)
    plan = Dialplan(app=s.ari_app, agent_endpoint=s.ari_agent_endpoint, trunk_endpoint=s.ari_trunk_endpoint)
    recorder = _recorder(hotline)
    from telephony_adapter.ari_ivr import IvrDriver

    return TelephonyProcess(
        hotline.store,
        hotline.bus,
        client,
        leadership=leadership_for_app(s.database_url, s.ari_app),
        plan=plan,
        default_queue=s.ari_default_queue,
        backoff_max=s.ari_reconnect_max_seconds,
        recorder=recorder,
        ivr=IvrDriver(hotline),
        name=name,
    )


def _recorder(hotline: Any) -> Any:
    """The recordings part's recorder, when it is installed (``telephony_adapter/recorder.py``)."""
    try:
        from telephony_adapter.recorder import Recorder
    except ImportError:
        return None
    return Recorder(hotline.bus, hotline.attachments)
