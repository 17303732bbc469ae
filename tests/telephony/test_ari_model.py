"""The oracle itself: Asterisk's ARI model files (``ari_model/``, see its README) read as
checks, and the stand-in held to them (it implements only real operations, refuses what
Asterisk refuses, and reports what does not match)."""

from __future__ import annotations

import asyncio
import copy
import inspect
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

from telephony_adapter.standin.server import StandIn, ari_time
from tests.telephony.ari_harness import MODEL

CHANNEL: dict[str, Any] = {
    "id": "1700000000.1",
    "name": "PJSIP/trunk-00000001",
    "state": "Ring",
    "protocol_id": "abc@host",
    "caller": {"name": "", "number": "+390655501234"},
    "connected": {"name": "", "number": ""},
    "accountcode": "",
    "dialplan": {"context": "from-trunk", "exten": "12345", "priority": 2, "app_name": "Stasis", "app_data": "hotline,general"},
    "creationtime": "2026-11-30T16:00:00.000+0000",
    "language": "it",
}
START: dict[str, Any] = {
    "type": "StasisStart",
    "application": "hotline",
    "timestamp": "2026-11-30T16:00:00.123+0000",
    "args": ["general"],
    "channel": CHANNEL,
}


def test_the_model_files_are_asterisks() -> None:
    assert {"events.json", "channels.json", "bridges.json", "recordings.json", "playbacks.json"} <= set(MODEL.files)
    assert MODEL.parent["StasisStart"] == "Event" and MODEL.parent["Event"] == "Message"
    assert {"originate", "answer", "hangup", "snoopChannel", "startMoh"} <= {
        o.nickname for o in MODEL.operations if o.resource == "channels"
    }


def test_events_are_checked_against_their_model() -> None:
    assert MODEL.check_event(START) == []
    missing = copy.deepcopy(START)
    del missing["channel"]["caller"]
    assert MODEL.check_event(missing) == ["StasisStart.channel.caller: required"]
    bad_state = copy.deepcopy(START)
    bad_state["channel"]["state"] = "Answered"
    assert "is not one of" in MODEL.check_event(bad_state)[0]
    bad_args = {**START, "args": ["general", 3]}
    assert MODEL.check_event(bad_args) == ["StasisStart.args[1]: expected a string"]
    assert MODEL.check_event({**START, "colour": "red"}) == ["StasisStart.colour: not a property of StasisStart"]
    assert MODEL.check_event({**START, "timestamp": "yesterday"}) == ["StasisStart.timestamp: 'yesterday' is not an ARI date"]
    assert MODEL.check_event({**START, "type": "ChannelExploded"}) == ["message type 'ChannelExploded' is not an ARI model"]
    destroyed = {"type": "ChannelDestroyed", "application": "hotline", "timestamp": ari_time(), "channel": CHANNEL, "cause": "busy"}
    assert sorted(MODEL.check_event(destroyed)) == ["ChannelDestroyed.cause: expected an integer", "ChannelDestroyed.cause_txt: required"]


def test_requests_are_checked_against_the_operations() -> None:
    assert MODEL.check_request("POST", "/channels", {"endpoint": "PJSIP/A1", "app": "hotline", "timeout": "30"}) == []
    assert MODEL.check_request("POST", "/channels", {"app": "hotline"}) == ["originate: parameter endpoint is required"]
    assert MODEL.check_request("POST", "/channels", {"endpoint": "x", "timeout": "soon"}) == [
        "originate: parameter timeout: 'soon' is not an integer"
    ]
    assert MODEL.check_request("POST", "/channels/c1/snoop", {"app": "hotline", "spy": "all"})[0].startswith("snoopChannel: parameter spy")
    assert MODEL.check_request("POST", "/channels/c1/record", {"name": "r", "format": "wav", "maxDurationSeconds": "-1"}) == [
        "record: parameter maxDurationSeconds: -1 is outside [0, None]"
    ]
    assert MODEL.check_request("POST", "/channels/c1/bounce", {}) == ["POST /channels/c1/bounce: no such ARI operation"]
    assert MODEL.check_request("POST", "/bridges/b1/addChannel", {"channel": "a,b", "colour": "red"}) == [
        "addChannel: unknown parameter colour"
    ]
    # A literal segment wins over a template: /channels/create is not originateWithId.
    found = MODEL.operation("POST", "/channels/create")
    assert found is not None and found[0].nickname == "create"


def test_the_standin_implements_only_real_operations() -> None:
    names = {(o.resource, o.nickname) for o in MODEL.operations}
    implemented = [n for n, _ in inspect.getmembers(StandIn, inspect.iscoroutinefunction) if n.startswith("_op_")]
    assert implemented
    for method in implemented:
        resource, _, nickname = method[4:].partition("_")
        assert (resource, nickname) in names, method


@pytest.fixture
def standin() -> Iterator[StandIn]:
    s = StandIn(MODEL).start()
    yield s
    s.stop()


def test_the_standin_refuses_what_asterisk_refuses(standin: StandIn) -> None:
    auth = (standin.user, standin.password)
    with httpx.Client(base_url=standin.url) as client:
        assert client.get("/channels").status_code == 401
        assert client.get("/channels", params={"api_key": f"{standin.user}:{standin.password}"}).status_code == 200
        # Asterisk's own error codes: a channel that does not exist, a bridge that exists.
        assert client.post("/channels/nope/answer", auth=auth).status_code == 404
        assert client.post("/bridges", params={"bridgeId": "b1"}, auth=auth).status_code == 200
        assert client.post("/bridges", params={"bridgeId": "b1"}, auth=auth).status_code == 409
        assert standin.violations == []
        # A request Asterisk would reject is refused and reported.
        r = client.post("/channels", params={"app": "hotline"}, auth=auth)
        assert r.status_code == 400 and standin.violations == ["POST /channels: originate: parameter endpoint is required"]


def test_the_event_socket_wants_credentials(standin: StandIn) -> None:
    async def attempt(headers: dict[str, str]) -> None:
        async with connect(standin.url.replace("http", "ws") + "/events?app=hotline", additional_headers=headers, open_timeout=2):
            pass

    with pytest.raises(InvalidStatus):
        asyncio.run(attempt({}))
    import base64

    good = {"Authorization": "Basic " + base64.b64encode(f"{standin.user}:{standin.password}".encode()).decode()}
    asyncio.run(attempt(good))
    assert standin.connections == ["connected hotline"]
