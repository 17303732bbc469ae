"""A loopback Asterisk stand-in: ARI's REST resources and its event WebSocket.

Asterisk is not installable here, so the adapter is tested against this: a Starlette app
served by uvicorn on 127.0.0.1 (an ephemeral port) that keeps channels, bridges, live and
stored recordings and playbacks the way Asterisk does, answers ``/ari/...`` requests with
Asterisk's status codes (the ``errorResponses`` of ``channels.json``, ``bridges.json`` …),
and sends events on ``/ari/events?app=...`` (basic auth or ``api_key=user:password``).

It is checked against Asterisk's own model at every step (:mod:`.model`): each event is
validated before it is sent and each request against the operation it names; anything
invalid is kept in :attr:`StandIn.violations`, which a test asserts empty.

A scenario is driven from the test's thread with the PBX-side happenings: a caller enters
Stasis (:meth:`StandIn.call`), presses digits, hangs up, presses hold on the phone; an
endpoint the adapter originates to answers, is busy or does not answer
(:meth:`StandIn.endpoint`); the WebSocket drops (:meth:`StandIn.drop_websocket`).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import io
import itertools
import json
import socket
import struct
import threading
import time
import wave
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect

from telephony_adapter.standin.model import AriModel, Operation

# Q.850 causes and the text Asterisk gives them (ast_cause2str).
CAUSES = {16: "Normal Clearing", 17: "User busy", 18: "No user responding", 19: "User alerting, no answer", 21: "Call Rejected"}
HANGUP_REASONS = {"normal": 16, "busy": 17, "no_answer": 19, "timeout": 19, "rejected": 21}
BEHAVIOURS = {"answer": None, "busy": 17, "no_answer": 19, "rejected": 21}


def ari_time(at: datetime | None = None) -> str:
    """ARI's date format: 2026-11-30T16:00:00.123+0000."""
    at = at or datetime.now(UTC)
    return at.strftime("%Y-%m-%dT%H:%M:%S.") + f"{at.microsecond // 1000:03d}" + at.strftime("%z")


@dataclass
class Recorded:
    """One request the adapter made, as the stand-in received it."""

    method: str
    path: str
    query: dict[str, str]
    body: Any
    status: int
    operation: str | None
    errors: list[str] = field(default_factory=list)


@dataclass
class _Chan:
    model: dict[str, Any]
    in_stasis: bool = False
    args: list[str] = field(default_factory=list)
    bridge: str | None = None
    moh: bool = False
    muted: set[str] = field(default_factory=set)  # directions muted: in / out
    endpoint: str | None = None


class AriError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


class StandIn:
    def __init__(
        self,
        model: AriModel,
        *,
        user: str = "hotline",
        password: str = "hotline-secret",
        asterisk_id: str = "00:16:3e:00:00:01",
        ring_seconds: float = 0.02,
        playback_seconds: float = 0.01,
    ) -> None:
        self.model = model
        self.user, self.password = user, password
        self.asterisk_id = asterisk_id
        self.ring_seconds = ring_seconds
        self.playback_seconds = playback_seconds
        self.channels: dict[str, _Chan] = {}
        self.bridges: dict[str, dict[str, Any]] = {}
        self.live: dict[str, dict[str, Any]] = {}  # live recordings by name
        self.stored: dict[str, bytes] = {}  # stored recordings (WAV bytes) by name
        self.playbacks: dict[str, dict[str, Any]] = {}
        self.endpoints: dict[str, str] = {}  # endpoint (or its number) -> answer / busy / no_answer / rejected
        self.requests: list[Recorded] = []
        self.sent: list[dict[str, Any]] = []  # every event sent, in order
        self.violations: list[str] = []
        self.connections: list[str] = []  # one line per WebSocket accepted / replaced / dropped
        self._sockets: dict[str, WebSocket] = {}  # app -> its current WebSocket
        self.accepting = True  # False: the event WebSocket is refused (Asterisk restarting)
        self._seq = itertools.count(1)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self.port = 0
        self.app = Starlette(
            routes=[
                WebSocketRoute("/ari/events", self._events),
                Route("/standin/{what}", self._control, methods=["GET", "POST"]),
                Route("/ari/{path:path}", self._rest, methods=["GET", "POST", "PUT", "DELETE"]),
            ]
        )

    # ------------------------------------------------------------------ lifecycle
    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/ari"

    def start(self) -> StandIn:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", 0))
        self.port = sock.getsockname()[1]
        config = uvicorn.Config(self.app, log_level="warning", lifespan="off", ws="websockets-sansio")
        self._server = uvicorn.Server(config)
        started = threading.Event()

        def run() -> None:
            loop = asyncio.new_event_loop()
            self._loop = loop
            asyncio.set_event_loop(loop)
            loop.call_soon(started.set)
            loop.run_until_complete(self._server.serve(sockets=[sock]))  # type: ignore[union-attr]

        self._thread = threading.Thread(target=run, name="ari-standin", daemon=True)
        self._thread.start()
        started.wait(5)
        deadline = time.monotonic() + 5
        while not self._server.started and time.monotonic() < deadline:
            time.sleep(0.005)
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(5)

    def _call(self, fn: Callable[[], Coroutine[Any, Any, Any]], timeout: float = 5) -> Any:
        """Runs a coroutine on the server's loop from the test's thread."""
        assert self._loop is not None, "start() the stand-in first"
        return asyncio.run_coroutine_threadsafe(fn(), self._loop).result(timeout)

    def _later(self, delay: float, fn: Callable[[], Awaitable[Any]]) -> None:
        async def run() -> None:
            await asyncio.sleep(delay)
            await fn()

        task = asyncio.get_running_loop().create_task(run())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # ------------------------------------------------------------------ scenario (PBX side)
    def call(self, number: str, *args: str, channel_id: str | None = None, name: str = "", language: str = "en") -> str:
        """A caller's channel enters Stasis (dialplan ``Stasis(hotline,args…)``)."""
        return str(self._call(lambda: self.call_async(number, list(args), channel_id, name, language)))

    async def call_async(self, number: str, args: list[str], channel_id: str | None = None, name: str = "", language: str = "en") -> str:
        chan = self._new_channel("PJSIP/trunk", channel_id, number=number, name=name, state="Ring", language=language)
        chan.model["dialplan"] = {"context": "from-trunk", "exten": "12345", "priority": 2, "app_name": "Stasis", "app_data": ""}
        await self._enter_stasis(chan, args)
        return str(chan.model["id"])

    def dtmf(self, channel_id: str, digits: str) -> None:
        async def run() -> None:
            chan = self.channels[channel_id]
            for digit in digits:
                await self.emit("ChannelDtmfReceived", digit=digit, duration_ms=120, channel=chan.model)
                await self._dtmf_ends_recordings(channel_id, digit)

        self._call(run)

    def hangup(self, channel_id: str, cause: int = 16) -> None:
        """The far end hangs up."""
        self._call(lambda: self.hangup_async(channel_id, cause))

    async def hangup_async(self, channel_id: str, cause: int = 16) -> None:
        chan = self.channels.get(channel_id)
        if chan is None:
            return
        await self.emit("ChannelHangupRequest", cause=cause, channel=chan.model)
        await self._destroy(channel_id, cause)

    def press_hold(self, channel_id: str, held: bool = True) -> None:
        """The phone's own hold button (re-INVITE): ChannelHold / ChannelUnhold."""

        async def run() -> None:
            chan = self.channels[channel_id]
            if held:
                await self.emit("ChannelHold", channel=chan.model, musicclass="default")
            else:
                await self.emit("ChannelUnhold", channel=chan.model)

        self._call(run)

    def endpoint(self, endpoint_or_number: str, behaviour: str) -> None:
        """How a dialled endpoint reacts: answer, busy, no_answer, rejected."""
        assert behaviour in BEHAVIOURS, behaviour
        self.endpoints[endpoint_or_number] = behaviour

    def drop_websocket(self, app: str = "hotline") -> None:
        """The connection breaks (Asterisk restarts its HTTP server, a network blip)."""

        async def run() -> None:
            ws = self._sockets.pop(app, None)
            if ws is not None:
                self.connections.append(f"dropped {app}")
                with contextlib.suppress(Exception):
                    await ws.close(code=1011)

        self._call(run)

    def channel_ids(self) -> list[str]:
        return list(self.channels)

    def ops(self, *nicknames: str) -> list[Recorded]:
        """The requests made, optionally only those of the given operations (``resource.nickname``)."""
        return [r for r in self.requests if not nicknames or r.operation in nicknames]

    def answered(self, *nicknames: str) -> list[Recorded]:
        """The requests the stand-in has answered: a request is recorded when it arrives,
        and its status (0 until then) is set once its handler has run."""
        return [r for r in self.ops(*nicknames) if r.status]

    def wait_for(self, predicate: Callable[[], bool], timeout: float = 5.0, what: str = "condition") -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if predicate():
                return
            time.sleep(0.005)
        raise AssertionError(f"timed out waiting for {what}; requests: {[(r.method, r.path) for r in self.requests]}")

    async def _control(self, request: Request) -> Response:
        """Scenario steps from another process (the benchmark runs the stand-in apart, as
        Asterisk is): not ARI, so not checked against the model."""
        what = request.path_params["what"]
        body = await request.json() if request.method == "POST" else {}
        if what == "call":
            cid = await self.call_async(body["number"], body.get("args", []), body.get("channel_id"))
            return JSONResponse({"channel_id": cid})
        if what == "hangup":
            for cid in body["channels"]:
                await self.hangup_async(cid)
            return JSONResponse({})
        if what == "state":
            bridged = [cid for c in self.bridges.values() for cid in c["channels"]]
            state = {"channels": len(self.channels), "bridges": len(self.bridges), "bridged": bridged}
            return JSONResponse({**state, "violations": self.violations[:5], "requests": len(self.requests)})
        return JSONResponse({"message": "unknown step"}, 404)

    # ------------------------------------------------------------------ events
    async def emit(self, kind: str, app: str = "hotline", **body: Any) -> dict[str, Any]:
        event = {"type": kind, "application": app, "timestamp": ari_time(), "asterisk_id": self.asterisk_id, **body}
        event = json.loads(json.dumps(event))  # a snapshot, as on the wire
        errors = self.model.check_event(event)
        if errors:
            self.violations += [f"event {kind}: {e}" for e in errors]
        self.sent.append(event)
        ws = self._sockets.get(app)
        if ws is not None:
            try:
                await ws.send_text(json.dumps(event))
            except Exception:  # the connection went away: Asterisk drops the event too
                self._sockets.pop(app, None)
        return event

    async def _events(self, ws: WebSocket) -> None:
        query = dict(ws.query_params)
        if not self.accepting:
            self.connections.append("refused")
            await ws.close(code=1013)
            return
        if not self._authorised(ws.headers.get("authorization"), query.get("api_key")):
            await ws.close(code=1008)
            return
        errors = self.model.check_request("GET", "/events", {k: v for k, v in query.items() if k != "api_key"})
        if errors:
            self.violations += errors
            await ws.close(code=1008)
            return
        await ws.accept()
        apps = query["app"].split(",")
        for app in apps:
            old = self._sockets.get(app)
            if old is not None:
                # Asterisk tells the old connection it lost the application, then keeps it
                # open without events for it (the client decides what to do).
                self.connections.append(f"replaced {app}")
                with contextlib.suppress(Exception):
                    event = {"type": "ApplicationReplaced", "application": app, "timestamp": ari_time(), "asterisk_id": self.asterisk_id}
                    errors = self.model.check_event(event)
                    self.violations += errors
                    self.sent.append(event)
                    await old.send_text(json.dumps(event))
            self._sockets[app] = ws
            self.connections.append(f"connected {app}")
        try:
            while True:
                await ws.receive_text()
        except (WebSocketDisconnect, RuntimeError):
            pass
        finally:
            for app in apps:
                if self._sockets.get(app) is ws:
                    self._sockets.pop(app, None)

    # ------------------------------------------------------------------ REST
    def _authorised(self, header: str | None, api_key: str | None) -> bool:
        expected = f"{self.user}:{self.password}"
        if api_key is not None:
            return api_key == expected
        if header and header.lower().startswith("basic "):
            with contextlib.suppress(Exception):
                return base64.b64decode(header[6:]).decode() == expected
        return False

    async def _rest(self, request: Request) -> Response:
        path = "/" + request.path_params["path"]
        query = dict(parse_qsl(request.url.query, keep_blank_values=True))
        raw = await request.body()
        body: Any = None
        if raw:
            try:
                body = json.loads(raw)
            except ValueError:
                body = None
        if not self._authorised(request.headers.get("authorization"), query.get("api_key")):
            return JSONResponse({"message": "Authentication required"}, 401)
        found = self.model.operation(request.method, path)
        errors = self.model.check_request(request.method, path, query, body)
        record = Recorded(request.method, path, query, body, 0, f"{found[0].resource}.{found[0].nickname}" if found else None, errors)
        self.requests.append(record)
        if errors or found is None:
            self.violations += [f"{request.method} {path}: {e}" for e in errors]
            record.status = 400
            return JSONResponse({"message": "; ".join(errors)}, 400)
        op, path_params = found
        params = {**query, **path_params}
        if isinstance(body, dict):
            params = {**{k: v for k, v in body.items() if k != "variables"}, **params}
        handler = getattr(self, f"_op_{op.resource}_{op.nickname}", None)
        if handler is None:
            self.violations.append(f"the stand-in does not implement {op.resource}.{op.nickname}")
            record.status = 501
            return JSONResponse({"message": "not implemented by the stand-in"}, 501)
        try:
            status, result = await handler(params)
        except AriError as exc:
            if exc.status not in op.error_codes:
                self.violations.append(f"{op.nickname} answered {exc.status}, not among its errorResponses {op.error_codes}")
            record.status = exc.status
            return JSONResponse({"message": exc.message}, exc.status)
        record.status = status
        if isinstance(result, bytes):
            return Response(result, status, media_type="audio/wav")
        if result is None:
            return Response(status_code=204)
        self._check_response(op, result)
        return JSONResponse(result, status)

    def _check_response(self, op: Operation, result: Any) -> None:
        """The answer is checked too: ``responseClass`` names its model."""
        cls = op.response_class
        if cls.startswith("List[") and isinstance(result, list):
            for item in result:
                self.violations += self.model.check(cls[5:-1], item)
        elif cls in self.model.models:
            self.violations += self.model.check(cls, result)

    # ------------------------------------------------------------------ channel state
    def _new_channel(
        self, endpoint: str, channel_id: str | None, *, number: str = "", name: str = "", state: str = "Down", language: str = "en"
    ) -> _Chan:
        seq = next(self._seq)
        cid = channel_id or f"{int(time.time())}.{seq}"
        now = ari_time()
        model = {
            "id": cid,
            "name": f"{endpoint.split('@')[0]}-{seq:08x}",
            "state": state,
            "protocol_id": f"call-{seq}@standin",
            "caller": {"name": name, "number": number},
            "connected": {"name": "", "number": ""},
            "accountcode": "",
            "dialplan": {"context": "default", "exten": "s", "priority": 1, "app_name": "", "app_data": ""},
            "creationtime": now,
            "language": language,
        }
        chan = _Chan(model, endpoint=endpoint)
        self.channels[cid] = chan
        return chan

    async def _enter_stasis(self, chan: _Chan, args: list[str]) -> None:
        chan.in_stasis, chan.args = True, args
        chan.model["dialplan"]["app_name"] = "Stasis"
        chan.model["dialplan"]["app_data"] = ",".join(["hotline", *args])
        await self.emit("StasisStart", args=args, channel=chan.model)

    async def _state(self, chan: _Chan, state: str) -> None:
        if chan.model["state"] != state:
            chan.model["state"] = state
            await self.emit("ChannelStateChange", channel=chan.model)

    async def _destroy(self, channel_id: str, cause: int) -> None:
        chan = self.channels.get(channel_id)
        if chan is None:
            return
        if chan.bridge:
            await self._leave_bridge(chan, chan.bridge)
        for name, rec in list(self.live.items()):
            if rec["target_uri"] == f"channel:{channel_id}":
                await self._finish_recording(name)
        if chan.in_stasis:
            chan.in_stasis = False
            await self.emit("StasisEnd", channel=chan.model)
        self.channels.pop(channel_id, None)
        await self.emit("ChannelDestroyed", cause=cause, cause_txt=CAUSES.get(cause, "Unknown"), channel=chan.model)

    def _chan(self, params: dict[str, Any], *, stasis: bool = True) -> _Chan:
        chan = self.channels.get(params["channelId"])
        if chan is None:
            raise AriError(404, "Channel not found")
        if stasis and not chan.in_stasis:
            raise AriError(409, "Channel not in a Stasis application")
        return chan

    def _behaviour(self, endpoint: str) -> str:
        number = endpoint.split("/", 1)[-1].split("@")[0]
        return self.endpoints.get(endpoint) or self.endpoints.get(number) or "answer"

    # ------------------------------------------------------------------ channels
    async def _op_channels_list(self, params: dict[str, Any]) -> tuple[int, Any]:
        return 200, [c.model for c in self.channels.values()]

    async def _op_channels_get(self, params: dict[str, Any]) -> tuple[int, Any]:
        return 200, self._chan(params, stasis=False).model

    async def _op_channels_originate(self, params: dict[str, Any]) -> tuple[int, Any]:
        if params.get("app") and (params.get("extension") or params.get("context")):
            raise AriError(400, "app and extension/context are mutually exclusive")
        if not params.get("app") and not params.get("extension"):
            raise AriError(400, "Application or extension must be specified")
        cid = params.get("channelId")
        if cid and cid in self.channels:
            raise AriError(409, "Channel with given unique ID already exists.")
        endpoint = params["endpoint"]
        caller_id = params.get("callerId", "")
        chan = self._new_channel(endpoint, cid, number=caller_id)
        args = params.get("appArgs", "")
        behaviour = self._behaviour(endpoint)

        async def ring() -> None:
            await self._state(chan, "Ringing")
            cause = BEHAVIOURS[behaviour]
            if chan.model["id"] not in self.channels:
                return
            if cause is None:
                await self._state(chan, "Up")
                await self._enter_stasis(chan, args.split(",") if args else [])
            else:
                await self._destroy(chan.model["id"], cause)

        self._later(self.ring_seconds, ring)
        return 200, chan.model

    async def _op_channels_originateWithId(self, params: dict[str, Any]) -> tuple[int, Any]:
        return await self._op_channels_originate(params)

    async def _op_channels_hangup(self, params: dict[str, Any]) -> tuple[int, Any]:
        chan = self._chan(params, stasis=False)
        reason = params.get("reason")
        cause = int(params["reason_code"]) if params.get("reason_code") else HANGUP_REASONS.get(reason or "normal", 16)
        await self._destroy(chan.model["id"], cause)
        return 204, None

    async def _op_channels_answer(self, params: dict[str, Any]) -> tuple[int, Any]:
        chan = self._chan(params)
        await self._state(chan, "Up")
        return 204, None

    async def _op_channels_continueInDialplan(self, params: dict[str, Any]) -> tuple[int, Any]:
        chan = self._chan(params)
        if chan.bridge:
            await self._leave_bridge(chan, chan.bridge)
        chan.in_stasis = False
        await self.emit("StasisEnd", channel=chan.model)
        if params.get("context"):
            chan.model["dialplan"].update({"context": params["context"], "exten": params.get("extension", "s"), "priority": 1})
        return 204, None

    async def _op_channels_startMoh(self, params: dict[str, Any]) -> tuple[int, Any]:
        self._chan(params).moh = True
        return 204, None

    async def _op_channels_stopMoh(self, params: dict[str, Any]) -> tuple[int, Any]:
        self._chan(params).moh = False
        return 204, None

    async def _op_channels_mute(self, params: dict[str, Any]) -> tuple[int, Any]:
        direction = params.get("direction", "both")
        self._chan(params).muted |= {"in", "out"} if direction == "both" else {direction}
        return 204, None

    async def _op_channels_unmute(self, params: dict[str, Any]) -> tuple[int, Any]:
        direction = params.get("direction", "both")
        self._chan(params).muted -= {"in", "out"} if direction == "both" else {direction}
        return 204, None

    async def _op_channels_hold(self, params: dict[str, Any]) -> tuple[int, Any]:
        chan = self._chan(params)
        await self.emit("ChannelHold", channel=chan.model)
        return 204, None

    async def _op_channels_unhold(self, params: dict[str, Any]) -> tuple[int, Any]:
        chan = self._chan(params)
        await self.emit("ChannelUnhold", channel=chan.model)
        return 204, None

    async def _op_channels_ring(self, params: dict[str, Any]) -> tuple[int, Any]:
        self._chan(params)
        return 204, None

    async def _op_channels_play(self, params: dict[str, Any]) -> tuple[int, Any]:
        chan = self._chan(params)
        return 201, await self._play(params, f"channel:{chan.model['id']}", chan.model["language"])

    async def _op_channels_playWithId(self, params: dict[str, Any]) -> tuple[int, Any]:
        return await self._op_channels_play(params)

    async def _op_channels_record(self, params: dict[str, Any]) -> tuple[int, Any]:
        chan = self._chan(params)
        if chan.bridge:
            raise AriError(409, "the channel is currently bridged with other channels")
        return 201, await self._record(params, f"channel:{chan.model['id']}")

    async def _op_channels_snoopChannel(self, params: dict[str, Any]) -> tuple[int, Any]:
        target = self._chan(params, stasis=False)
        snoop_id = params.get("snoopId")
        if snoop_id and snoop_id in self.channels:
            raise AriError(400, "Invalid parameters")
        snoop = self._new_channel(f"Snoop/{target.model['id']}", snoop_id, state="Up")
        snoop.model["name"] = f"Snoop/{target.model['id']}-{next(self._seq):08x}"
        args = params.get("appArgs", "")

        async def enter() -> None:
            await self._enter_stasis(snoop, args.split(",") if args else [])

        self._later(0, enter)
        return 200, snoop.model

    async def _op_channels_snoopChannelWithId(self, params: dict[str, Any]) -> tuple[int, Any]:
        return await self._op_channels_snoopChannel(params)

    # ------------------------------------------------------------------ bridges
    async def _op_bridges_list(self, params: dict[str, Any]) -> tuple[int, Any]:
        return 200, list(self.bridges.values())

    async def _op_bridges_create(self, params: dict[str, Any]) -> tuple[int, Any]:
        bid = params.get("bridgeId") or f"bridge-{next(self._seq)}"
        if bid in self.bridges:
            raise AriError(409, "Bridge with the same bridgeId already exists")
        types = (params.get("type") or "mixing").split(",")
        bridge = {
            "id": bid,
            "technology": "simple_bridge",
            "bridge_type": "holding" if "holding" in types else "mixing",
            "bridge_class": "stasis",
            "creator": "Stasis",
            "name": params.get("name", ""),
            "channels": [],
            "video_mode": "talker",
            "creationtime": ari_time(),
        }
        self.bridges[bid] = bridge
        await self.emit("BridgeCreated", bridge=bridge)
        return 200, bridge

    async def _op_bridges_createWithId(self, params: dict[str, Any]) -> tuple[int, Any]:
        return await self._op_bridges_create(params)

    async def _op_bridges_get(self, params: dict[str, Any]) -> tuple[int, Any]:
        return 200, self._bridge(params)

    def _bridge(self, params: dict[str, Any]) -> dict[str, Any]:
        bridge = self.bridges.get(params["bridgeId"])
        if bridge is None:
            raise AriError(404, "Bridge not found")
        return bridge

    async def _op_bridges_destroy(self, params: dict[str, Any]) -> tuple[int, Any]:
        bridge = self._bridge(params)
        for cid in list(bridge["channels"]):
            chan = self.channels.get(cid)
            if chan is not None:
                await self._leave_bridge(chan, bridge["id"])
        for name, rec in list(self.live.items()):
            if rec["target_uri"] == f"bridge:{bridge['id']}":
                await self._finish_recording(name)
        self.bridges.pop(bridge["id"], None)
        await self.emit("BridgeDestroyed", bridge=bridge)
        return 204, None

    async def _op_bridges_addChannel(self, params: dict[str, Any]) -> tuple[int, Any]:
        bridge = self._bridge(params)
        ids = params["channel"].split(",")
        chans = [self.channels.get(cid) for cid in ids]
        if any(c is None for c in chans):
            raise AriError(400, "Channel not found")
        if any(not c.in_stasis for c in chans if c is not None):
            raise AriError(422, "Channel not in Stasis application")
        for chan in chans:
            assert chan is not None
            if chan.bridge == bridge["id"]:
                continue
            if chan.bridge:
                await self._leave_bridge(chan, chan.bridge)
            chan.bridge = bridge["id"]
            chan.moh = False
            bridge["channels"].append(chan.model["id"])
            await self.emit("ChannelEnteredBridge", bridge=bridge, channel=chan.model)
        return 204, None

    async def _op_bridges_removeChannel(self, params: dict[str, Any]) -> tuple[int, Any]:
        bridge = self._bridge(params)
        for cid in params["channel"].split(","):
            chan = self.channels.get(cid)
            if chan is None:
                raise AriError(400, "Channel not found")
            if chan.bridge != bridge["id"]:
                raise AriError(422, "Channel not in this bridge")
            await self._leave_bridge(chan, bridge["id"])
        return 204, None

    async def _leave_bridge(self, chan: _Chan, bridge_id: str) -> None:
        bridge = self.bridges.get(bridge_id)
        chan.bridge = None
        if bridge is None:
            return
        if chan.model["id"] in bridge["channels"]:
            bridge["channels"].remove(chan.model["id"])
        await self.emit("ChannelLeftBridge", bridge=bridge, channel=chan.model)

    async def _op_bridges_record(self, params: dict[str, Any]) -> tuple[int, Any]:
        bridge = self._bridge(params)
        return 201, await self._record(params, f"bridge:{bridge['id']}")

    async def _op_bridges_play(self, params: dict[str, Any]) -> tuple[int, Any]:
        bridge = self._bridge(params)
        return 201, await self._play(params, f"bridge:{bridge['id']}", params.get("lang", "en"))

    async def _op_bridges_startMoh(self, params: dict[str, Any]) -> tuple[int, Any]:
        self._bridge(params)
        return 204, None

    async def _op_bridges_stopMoh(self, params: dict[str, Any]) -> tuple[int, Any]:
        self._bridge(params)
        return 204, None

    # ------------------------------------------------------------------ playbacks
    async def _play(self, params: dict[str, Any], target: str, language: str) -> dict[str, Any]:
        media = params["media"].split(",")
        pid = params.get("playbackId") or f"playback-{next(self._seq)}"
        playback = {"id": pid, "media_uri": media[0], "target_uri": target, "language": params.get("lang", language), "state": "playing"}
        if len(media) > 1:
            playback["next_media_uri"] = media[1]
        self.playbacks[pid] = playback
        await self.emit("PlaybackStarted", playback=dict(playback))

        async def finish() -> None:
            if pid in self.playbacks:
                done = {**self.playbacks.pop(pid), "state": "done"}
                done.pop("next_media_uri", None)
                done["media_uri"] = media[-1]
                await self.emit("PlaybackFinished", playback=done)

        self._later(self.playback_seconds * len(media), finish)
        return playback

    async def _op_playbacks_get(self, params: dict[str, Any]) -> tuple[int, Any]:
        playback = self.playbacks.get(params["playbackId"])
        if playback is None:
            raise AriError(404, "The playback cannot be found")
        return 200, playback

    async def _op_playbacks_stop(self, params: dict[str, Any]) -> tuple[int, Any]:
        playback = self.playbacks.pop(params["playbackId"], None)
        if playback is None:
            raise AriError(404, "The playback cannot be found")
        await self.emit("PlaybackFinished", playback={**playback, "state": "done"})
        return 204, None

    # ------------------------------------------------------------------ recordings
    async def _record(self, params: dict[str, Any], target: str) -> dict[str, Any]:
        name = params["name"]
        if params["format"] not in ("wav", "gsm", "ulaw", "alaw", "sln"):
            raise AriError(422, "The format specified is unknown on this system")
        exists = params.get("ifExists", "fail")
        if name in self.live or (name in self.stored and exists == "fail"):
            raise AriError(409, "A recording with the same name already exists")
        rec = {
            "name": name,
            "format": params["format"],
            "target_uri": target,
            "state": "recording",
            "_started": time.monotonic(),
            "_max": int(params.get("maxDurationSeconds", 0) or 0),
            "_terminate": params.get("terminateOn", "none"),
        }
        self.live[name] = rec
        await self.emit("RecordingStarted", recording=_public(rec))
        return _public(rec)

    async def _dtmf_ends_recordings(self, channel_id: str, digit: str) -> None:
        for name, rec in list(self.live.items()):
            if rec["target_uri"] == f"channel:{channel_id}" and rec["_terminate"] in ("any", digit):
                await self._finish_recording(name)

    async def _finish_recording(self, name: str) -> None:
        rec = self.live.pop(name, None)
        if rec is None:
            return
        seconds = max(1, round(time.monotonic() - rec["_started"]))
        if rec["_max"]:
            seconds = min(seconds, rec["_max"])
        self.stored[name] = _silence_wav(seconds)
        done = {**_public(rec), "state": "done", "duration": seconds, "talking_duration": seconds, "silence_duration": 0}
        await self.emit("RecordingFinished", recording=done)

    async def _op_recordings_stop(self, params: dict[str, Any]) -> tuple[int, Any]:
        if params["recordingName"] not in self.live:
            raise AriError(404, "Recording not found")
        await self._finish_recording(params["recordingName"])
        return 204, None

    async def _op_recordings_getLive(self, params: dict[str, Any]) -> tuple[int, Any]:
        rec = self.live.get(params["recordingName"])
        if rec is None:
            raise AriError(404, "Recording not found")
        return 200, _public(rec)

    async def _op_recordings_listStored(self, params: dict[str, Any]) -> tuple[int, Any]:
        return 200, [{"name": n, "format": "wav"} for n in self.stored]

    async def _op_recordings_getStored(self, params: dict[str, Any]) -> tuple[int, Any]:
        if params["recordingName"] not in self.stored:
            raise AriError(404, "Recording not found")
        return 200, {"name": params["recordingName"], "format": "wav"}

    async def _op_recordings_getStoredFile(self, params: dict[str, Any]) -> tuple[int, Any]:
        data = self.stored.get(params["recordingName"])
        if data is None:
            raise AriError(404, "Recording not found")
        return 200, data

    async def _op_recordings_deleteStored(self, params: dict[str, Any]) -> tuple[int, Any]:
        if self.stored.pop(params["recordingName"], None) is None:
            raise AriError(404, "Recording not found")
        return 204, None


def _public(rec: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in rec.items() if not k.startswith("_")}


def _silence_wav(seconds: int, rate: int = 8000) -> bytes:
    """What Asterisk stores for a recording: a WAV (8 kHz, 16-bit mono); silence here."""
    out = io.BytesIO()
    with wave.open(out, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(struct.pack("<h", 0) * rate * seconds)
    return out.getvalue()


def serve_in_subprocess(model_dir: str, ready: Any, ring_seconds: float = 0.0) -> None:
    """``multiprocessing`` target: a stand-in in a process of its own; puts its port on
    ``ready`` and serves until the process is terminated."""
    from pathlib import Path

    standin = StandIn(AriModel(Path(model_dir)), ring_seconds=ring_seconds).start()
    ready.put(standin.port)
    threading.Event().wait()
