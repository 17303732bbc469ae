"""The AMI observer: a recorded app_queue day replayed over TCP to the real panoramisk
client gives the same contact facts and KPIs as the equivalent ARI run.

* ``ami_sessions/app_queue_day.ami`` (see its README) is served by a loopback AMI server
  (banner, Login, Ping, then the recorded events) to :class:`AmiConnection`, which feeds
  :class:`AmiObserver` on one in-memory store.
* The same calls, as the ARI adapter sees them (StasisStart of the caller and of the
  agent's leg, ChannelStateChange Up, hang-ups), go through ``AriAdapter.handle`` on a
  second store; what app_queue decided there (ring a member, ring-no-answer) is what
  Hotline's router decides on an ARI site, issued as its commands.
* Both stores' contact events (names, times, waits, talk, who ended) and the analytics
  KPIs computed from them (answered, abandoned, ASA, service level, AHT) must be equal,
  and equal to what the call table below says (the independent oracle).
"""

from __future__ import annotations

import asyncio
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from analytics import kpis
from analytics.ingest import AnalyticsStore
from domain.contact_center import commands as cc
from telephony_adapter.ami import EVENTS, AmiConnection, AmiObserver, parse_session, to_wire
from telephony_adapter.ari import AriAdapter
from tests.contact_center.harness import START, SYSTEM, Center

SESSION = Path(__file__).parent / "ami_sessions" / "app_queue_day.ami"
QUEUE_MAP = {"hotline-general": "general"}
AGENT_MAP = {"Anna Rossi": "A1", "Bruno Verdi": "A2"}
USER, SECRET = "hotline", "s3cret-ami"

# The recorded day, call by call: (caller, joined at s, steps). Steps: ("called", t, agent),
# ("noanswer", t, agent), ("connect", t, agent), ("complete", t, agent, who hung up),
# ("abandon", t). Seconds after 09:00.
CALLS: list[tuple[str, int, list[tuple[Any, ...]]]] = [
    ("+390611111111", 0, [("called", 2, "A1"), ("connect", 6, "A1"), ("complete", 126, "A1", "caller")]),
    ("+390622222222", 10, [("called", 11, "A2"), ("connect", 20, "A2"), ("complete", 200, "A2", "agent")]),
    ("+390633333333", 30, [("abandon", 75)]),
    (
        "+390644444444",
        130,
        [("called", 131, "A1"), ("noanswer", 146, "A1"), ("called", 201, "A2"), ("connect", 205, "A2"), ("complete", 305, "A2", "caller")],
    ),
    ("", 400, [("called", 401, "A1"), ("connect", 403, "A1"), ("complete", 463, "A1", "agent")]),
    ("+390666666666", 500, [("abandon", 503)]),
    ("+390677777777", 600, [("called", 601, "A2"), ("connect", 640, "A2"), ("complete", 900, "A2", "caller")]),
    ("+390688888888", 610, [("called", 611, "A1"), ("connect", 613, "A1"), ("complete", 700, "A1", "caller")]),
]


def _setup(center: Center) -> None:
    center.queue("general", wrap_seconds=0)


# ---------------------------------------------------------------------- the AMI side
class LoopbackAmi:
    """A PBX's manager port as far as a client sees it: the banner, a Login answered
    (checking the secret), Pings answered, then the recorded events."""

    def __init__(self, events: list[dict[str, str]]) -> None:
        self.events = events
        self.logins: list[dict[str, str]] = []
        self.server: asyncio.AbstractServer | None = None

    async def start(self) -> int:
        self.server = await asyncio.start_server(self._client, "127.0.0.1", 0)
        return int(self.server.sockets[0].getsockname()[1])

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"Asterisk Call Manager/7.0.3\r\n")
        try:
            while True:
                raw = await reader.readuntil(b"\r\n\r\n")
                [action] = parse_session(raw.decode())
                name = action.get("Action", "").lower()
                if name == "login":
                    self.logins.append(action)
                    if action.get("Secret") != SECRET:
                        writer.write(to_wire({"Response": "Error", "ActionID": action["ActionID"], "Message": "Authentication failed"}))
                        continue
                    writer.write(to_wire({"Response": "Success", "ActionID": action["ActionID"], "Message": "Authentication accepted"}))
                    writer.write(to_wire({"Event": "FullyBooted", "Privilege": "system,all", "Status": "Fully Booted"}))
                    for event in self.events:
                        writer.write(to_wire(event))
                    await writer.drain()
                elif name == "ping":
                    writer.write(to_wire({"Response": "Success", "ActionID": action["ActionID"], "Ping": "Pong"}))
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    def close(self) -> None:
        if self.server is not None:
            self.server.close()


def run_ami(center: Center) -> AmiObserver:
    events = parse_session(SESSION.read_text("utf-8"))
    expected = sum(1 for e in events if e["Event"] in EVENTS)
    observer = AmiObserver(center.bus, queue_map=QUEUE_MAP, agent_map=AGENT_MAP, clock=center.clock)
    server = LoopbackAmi(events)

    async def main() -> None:
        port = await server.start()
        connection = AmiConnection(observer, "127.0.0.1", port, USER, SECRET)
        stop = asyncio.Event()
        task = asyncio.create_task(connection.run(stop))
        for _ in range(500):  # every recorded event received (then drained by run)
            if len(connection.pending) >= expected:
                break
            await asyncio.sleep(0.01)
        stop.set()
        await task
        connection.close()
        server.close()
        assert connection.logged_in.is_set()

    asyncio.run(main())
    assert [login["Username"] for login in server.logins] == [USER]
    return observer


# ---------------------------------------------------------------------- the ARI side
def _channel(channel_id: str, number: str, state: str = "Ring") -> dict[str, Any]:
    return {"id": channel_id, "name": f"PJSIP/trunk-{channel_id}", "state": state, "caller": {"name": "", "number": number}}


def run_ari(center: Center) -> AriAdapter:
    """The same calls as ARI events, in time order, with the router's decisions."""
    ari = AriAdapter(center.bus)
    at = START - timedelta(seconds=60)
    center.clock.current = at
    for agent in ("A1", "A2"):
        center.login(agent, ["general"])
    steps: list[tuple[int, int, str, tuple[Any, ...]]] = []
    for n, (caller, joined, script) in enumerate(CALLS):
        steps.append((joined, len(steps), f"c{n}", ("join", joined, caller)))
        steps += [(s[1], len(steps) + i + 1, f"c{n}", s) for i, s in enumerate(script)]
    contacts: dict[str, str] = {}
    for t, _, call, step in sorted(steps):
        center.clock.current = START + timedelta(seconds=t)
        kind = step[0]
        if kind == "join":
            contacts[call] = ari.handle({"type": "StasisStart", "args": ["general"], "channel": _channel(call, step[2])})["id"]  # type: ignore[index]
        elif kind == "called":  # the router's offer, then the adapter originates to the agent
            center.run(cc.OfferContact(contact_id=contacts[call], agent_id=step[2]), actor=SYSTEM)
        elif kind == "noanswer":
            center.run(cc.TimeOutOffer(contact_id=contacts[call], agent_id=step[2]), actor=SYSTEM)
        elif kind == "connect":
            leg = f"{call}-{step[2]}"
            ari.handle({"type": "StasisStart", "args": ["agent", contacts[call], step[2]], "channel": _channel(leg, step[2])})
            ari.handle({"type": "ChannelStateChange", "channel": _channel(leg, step[2], "Up")})
        elif kind == "complete":
            gone = call if step[3] == "caller" else f"{call}-{step[2]}"
            ari.handle({"type": "ChannelHangupRequest", "channel": _channel(gone, "")})
        elif kind == "abandon":
            ari.handle({"type": "StasisEnd", "channel": _channel(call, "")})
    return ari


# ---------------------------------------------------------------------- comparing
def contact_facts(center: Center) -> list[list[tuple[Any, ...]]]:
    """Each contact's events in order, without ids: (name, seconds after 09:00, facts)."""
    by_contact: dict[str, list[tuple[Any, ...]]] = {}
    for e in center.envelopes():
        if e.stream != "contact":
            continue
        data = {k: v for k, v in e.data.items() if k not in ("external_id", "subject", "since")}
        by_contact.setdefault(e.aggregate_id, []).append((e.name, (e.time - START).total_seconds(), sorted(data.items(), key=str)))
    return sorted(by_contact.values(), key=lambda events: events[0][1])


def kpi_rows(center: Center, tmp_path: Path, name: str) -> dict[str, Any]:
    analytics = AnalyticsStore(tmp_path / f"{name}.duckdb")
    try:
        analytics.ingest_envelopes(center.store.envelopes(0, 1_000_000))
        contacts = kpis.contact_kpis(analytics.conn, START - timedelta(hours=1), START + timedelta(days=1), "queue")
        staffed = kpis.staffed_time(analytics.conn, START - timedelta(hours=1), START + timedelta(hours=1), "total")
    finally:
        analytics.close()
    return {"contacts": contacts, "staffed": staffed}


@pytest.fixture
def centers() -> Any:
    made = [Center(), Center()]
    yield made
    for c in made:
        c.close()


def test_the_recorded_session_parses_as_amis_wire_format() -> None:
    raw = SESSION.read_bytes()
    assert b"\r\n\r\n" in raw and b"\n\n" not in raw.replace(b"\r\n", b"")
    events = parse_session(raw.decode())
    assert len(events) == 40
    kinds = {e["Event"] for e in events}
    assert {"QueueCallerJoin", "AgentCalled", "AgentConnect", "AgentComplete", "QueueCallerAbandon", "AgentRingNoAnswer"} <= kinds
    assert all(e["Timestamp"] and e["Privilege"] for e in events)


def test_an_app_queue_day_over_ami_gives_the_facts_and_kpis_of_the_ari_run(centers: list[Center], tmp_path: Path) -> None:
    ami_center, ari_center = centers
    for center in centers:
        center.clock.current = START - timedelta(minutes=5)
        _setup(center)
    observer = run_ami(ami_center)
    assert observer.ignored == [], observer.ignored
    ari = run_ari(ari_center)
    assert ari.ignored == [], ari.ignored

    ami_facts, ari_facts = contact_facts(ami_center), contact_facts(ari_center)
    assert len(ami_facts) == len(CALLS)
    assert ami_facts == ari_facts

    # The call table, independently: who answered, the waits, the talk, who hung up.
    for (caller, joined, script), events in zip(CALLS, ami_facts, strict=True):
        names = [e[0] for e in events]
        facts = {name: dict(data) for name, _, data in events}
        assert facts["arrived"]["personal"] == ({"phone": caller} if caller else None)
        if script[-1][0] == "abandon":
            assert names == ["arrived", "queued", "abandoned"]
            assert facts["abandoned"]["wait_seconds"] == script[-1][1] - joined
            continue
        connect = next(s for s in script if s[0] == "connect")
        complete = script[-1]
        assert names[-3:] == ["answered", "ended", "wrapped_up"]
        assert facts["answered"]["agent_id"] == connect[2] and facts["answered"]["wait_seconds"] == connect[1] - joined
        assert facts["ended"]["talk_seconds"] == complete[1] - connect[1]
        assert facts["ended"]["ended_by"] == ("citizen" if complete[3] == "caller" else "agent")
        if any(s[0] == "noanswer" for s in script):
            assert "offer_timed_out" in names

    ami_kpis, ari_kpis = kpi_rows(ami_center, tmp_path, "ami"), kpi_rows(ari_center, tmp_path, "ari")
    assert ami_kpis == ari_kpis
    [general] = ami_kpis["contacts"]
    answered = [s for _, _, script in CALLS for s in script if s[0] == "connect"]
    waits = [c[1] - j for _, j, script in CALLS for c in script if c[0] == "connect"]
    assert general["bucket"] == "general"
    assert (general["answered"], general["abandoned"]) == (len(answered), 2)
    assert general["asa_seconds"] == pytest.approx(sum(waits) / len(waits), abs=0.01)


def test_a_wrong_secret_is_refused_and_nothing_is_observed(centers: list[Center]) -> None:
    center = centers[0]
    observer = AmiObserver(center.bus, queue_map=QUEUE_MAP, agent_map=AGENT_MAP)
    server = LoopbackAmi(parse_session(SESSION.read_text("utf-8")))

    async def main() -> None:
        port = await server.start()
        connection = AmiConnection(observer, "127.0.0.1", port, USER, "wrong")
        stop = asyncio.Event()
        task = asyncio.create_task(connection.run(stop))
        await asyncio.sleep(0.3)
        stop.set()
        await task
        connection.close()
        server.close()
        assert not connection.logged_in.is_set() and not connection.pending

    asyncio.run(main())
    assert observer.handled == 0


def test_events_without_a_call_are_ignored_not_raised(centers: list[Center]) -> None:
    center = centers[0]
    _setup(center)
    observer = AmiObserver(center.bus, queue_map=QUEUE_MAP, agent_map=AGENT_MAP)
    assert observer.handle({"Event": "AgentConnect", "Uniqueid": "nope.1", "Queue": "hotline-general", "MemberName": "Anna Rossi"}) is None
    assert observer.handle({"Event": "Newchannel", "Uniqueid": "x"}) is None
    assert len(observer.ignored) == 1 and "nope.1" in observer.ignored[0]


def test_queue_member_events_sign_agents_in_move_pause_and_out(centers: list[Center]) -> None:
    center = centers[0]
    _setup(center)
    center.queue("second", wrap_seconds=0)
    observer = AmiObserver(center.bus, queue_map={**QUEUE_MAP, "hotline-second": "second"}, agent_map=AGENT_MAP)
    member = {"MemberName": "Anna Rossi", "Interface": "PJSIP/A1"}

    def state() -> tuple[str, list[str]]:
        agent = observer._agent("A1")
        assert agent is not None
        return agent.state, sorted(agent.queues)

    observer.handle({"Event": "QueueMemberAdded", "Queue": "hotline-general", "Paused": "0", **member})
    assert state() == ("available", ["general"])
    observer.handle({"Event": "QueueMemberAdded", "Queue": "hotline-second", "Paused": "0", **member})
    assert state() == ("available", ["general", "second"])
    observer.handle({"Event": "QueueMemberPause", "Queue": "hotline-general", "Paused": "1", "PausedReason": "lunch", **member})
    assert state()[0] == "not_ready"
    observer.handle({"Event": "QueueMemberPause", "Queue": "hotline-general", "Paused": "0", **member})
    assert state()[0] == "available"
    observer.handle({"Event": "QueueMemberRemoved", "Queue": "hotline-general", **member})
    assert state() == ("available", ["second"])
    observer.handle({"Event": "QueueMemberRemoved", "Queue": "hotline-second", **member})
    assert state()[0] == "logged_out"
    assert observer.ignored == []
    # An unmapped member is known by its interface's last part.
    assert observer.agent_of({"interface": "PJSIP/op-anna"}) == "op-anna"
    assert observer.agent_of({"interface": "Local/op-marco@agents/n"}) == "op-marco"
