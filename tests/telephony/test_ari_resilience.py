"""The adapter's connection to Asterisk: the WebSocket dropped mid-call (reconnected with
backoff, then resynchronised from ARI's channel and bridge lists), and a second adapter
that takes the application over (``ApplicationReplaced``)."""

from __future__ import annotations

import asyncio

import pytest

from consumers.router import LOCK_KEY
from telephony_adapter.ari_client import AriClient
from telephony_adapter.process import TelephonyProcess, leadership_for_app, lock_key
from tests.telephony.ari_harness import Pbx, login, pbx, wait

__all__ = ["pbx"]


def _answered_call(pbx: Pbx) -> tuple[TelephonyProcess, str, str, str]:
    """Agent A1 answers a call to the general queue: the adapter, the caller's channel, the
    contact and the agent's leg."""
    login(pbx, "A1", ["general"])
    adapter = pbx.adapter()
    caller = pbx.standin.call("+390655501234", "general")
    contact = pbx.contact_of(caller)
    pbx.wait_status(contact, "connected")
    return adapter, caller, contact, pbx.agent_leg(contact, "A1")


def test_the_websocket_dropped_mid_call_and_resumed(pbx: Pbx) -> None:
    adapter, caller, first, agent = _answered_call(pbx)
    wait(lambda: pbx.standin.channels[caller].bridge is not None, what="bridged")

    # Asterisk's HTTP server goes away for a while; meanwhile the caller hangs up and a
    # new call enters the application: nobody hears those events.
    pbx.standin.accepting = False
    pbx.standin.drop_websocket()
    wait(lambda: not adapter.connected.is_set(), what="adapter noticed the drop")
    pbx.standin.hangup(caller)
    second_caller = pbx.standin.call("+390655509999", "general", "en")
    second = pbx.contact_of(second_caller)
    wait(lambda: pbx.standin.connections.count("refused") >= 2, what="reconnection attempts refused")
    assert pbx.status(first) == "connected" and pbx.status(second) is None  # the hotline knows nothing yet
    pbx.standin.accepting = True

    # Reconnected: the resync finds the first caller gone and the second one waiting.
    wait(lambda: adapter.stats.resyncs == 2, what="resync after reconnecting")
    pbx.wait_status(first, "closed")
    assert pbx.event(first, "ended")["ended_by"] == "citizen"
    wait(lambda: agent not in pbx.standin.channels, what="the first call's agent leg hung up")
    # The second call is a contact now, and with the agent free again it is answered.
    pbx.wait_status(second, "connected")
    assert pbx.event(second, "arrived")["language"] == "en"
    wait(lambda: second_caller in pbx.standin.bridges.get(f"hl-contact.{second}", {}).get("channels", []), what="second call bridged")
    assert adapter.stats.connections == 2 and adapter.stats.connect_failures >= 2
    ops = pbx.ops()
    assert ops.count("channels.list") == 2 and ops.count("bridges.list") == 2
    pbx.quiet()
    pbx.assert_valid()


def test_a_second_adapter_replaces_the_first(pbx: Pbx) -> None:
    login(pbx, "A1", ["general"])
    first = pbx.adapter("first")
    caller = pbx.standin.call("+390655501234", "general")
    cid = pbx.contact_of(caller)
    pbx.wait_status(cid, "connected")
    agent = pbx.agent_leg(cid, "A1")
    wait(lambda: pbx.standin.bridges.get(f"hl-contact.{cid}", {}).get("channels") == [caller, agent], what="bridged")

    second = pbx.adapter("second")
    wait(lambda: first.stopped_because == "replaced", what="the first adapter stopped")
    assert first.stats.replaced and not first.is_leader
    assert pbx.standin.connections == ["connected hotline", "replaced hotline", "connected hotline"]
    requests_by_first = first.stats.requests
    # The second adapter learnt the call from ARI's lists and carries it to the end.
    wait(lambda: second.stats.resyncs == 1 and second.stats.reconciled == 2, what="second adapter resynced")
    pbx.standin.hangup(caller)
    pbx.wait_status(cid, "closed")
    wait(lambda: agent not in pbx.standin.channels and not pbx.standin.bridges, what="agent leg and bridge gone")
    assert first.stats.requests == requests_by_first
    assert pbx.events_of(cid) == ["arrived", "queued", "offered", "answered", "ended", "wrapped_up"]  # nothing twice
    pbx.quiet()
    pbx.assert_valid()


@pytest.mark.postgres
def test_one_active_adapter_per_application(pbx: Pbx, pg_url: str) -> None:
    """With PostgreSQL the adapters contend for an advisory lock of their own (not the
    router's): the standby never opens the WebSocket while the leader lives, and takes
    over within a second of the leader's end."""
    login(pbx, "A1", ["general"])
    leader = pbx.adapter("leader", leadership=leadership_for_app(pg_url, "hotline"), standby_poll=0.1)
    standby_client = AriClient(pbx.standin.url, pbx.standin.user, pbx.standin.password, "hotline")
    standby = TelephonyProcess(
        pbx.hotline.store,
        pbx.hotline.bus,
        standby_client,
        leadership=leadership_for_app(pg_url, "hotline"),
        standby_poll=0.1,
        poll=0.05,
        name="standby",
    ).start()
    pbx.adapters.append(standby)
    assert leader.is_leader
    caller = pbx.standin.call("+390655501234", "general")
    cid = pbx.contact_of(caller)
    pbx.wait_status(cid, "connected")
    pbx.quiet(0.5)
    assert not standby.is_leader and pbx.standin.connections == ["connected hotline"]
    # The router's lock is another one: a router could lead beside the adapter.
    assert lock_key("hotline") != LOCK_KEY
    leader.stop()
    wait(lambda: standby.connected.is_set(), timeout=5, what="the standby took over")
    assert standby.is_leader and pbx.standin.connections == ["connected hotline", "connected hotline"]
    # It carries the call on: the caller hangs up and the call ends.
    pbx.standin.hangup(caller)
    pbx.wait_status(cid, "closed")
    pbx.quiet()
    pbx.assert_valid()


def test_a_leg_originated_again_after_a_reconnect_is_not_an_error(pbx: Pbx) -> None:
    """After a reconnect the adapter performs again the requests of a contact event it did
    not see done (at least once). Its legs carry ids it chose, so the PBX's 409 "exists
    already" for one of them means the leg is there: what was wanted, not a failure."""
    adapter, _, _, agent = _answered_call(pbx)
    again = next(r for r in pbx.standin.requests if r.method == "POST" and r.path == "/channels" and r.query.get("channelId") == agent)
    request = {"method": "POST", "path": "/channels", "params": dict(again.query)}
    assert adapter._loop is not None
    asyncio.run_coroutine_threadsafe(adapter._perform(request), adapter._loop).result(5)  # type: ignore[arg-type]
    assert [r.status for r in pbx.standin.requests if r.path == "/channels" and r.query.get("channelId") == agent] == [200, 409]
    assert adapter.stats.request_errors == 0, adapter.stats.errors
    pbx.quiet()
    pbx.assert_valid()
