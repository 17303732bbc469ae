"""The auditor's views (issue 13, item 1): an aggregate's history and its state as of a
version or a time, a case trace across aggregates, read models as of a time, who may
use them, and the record of every personal-data read.

The as-of oracle is independent of the code under test: the state each aggregate held in
memory right after each of its events, captured while random commands ran through the
bus (every event an aggregate triggers passes through ``trigger_event``).
"""

from __future__ import annotations

import contextlib
import copy
import json
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from api.app import create_app
from consumers.notifications import NotificationConsumer
from consumers.router import Router
from consumers.timers import TimerProcess
from domain.audit import AsOf, public_state, rebuild, version_at
from domain.base import Actor, DomainError, FixedClock, HotlineAggregate
from domain.contact_center import commands as cc
from domain.requests import commands as c
from domain.requests.aggregate import request_id_for
from domain.work_orders import commands as woc
from infra.runtime import Hotline
from tests.auth import bearer
from tests.read_log import ReadLog

AGENT = Actor("op-audit", "agent")
SUP = Actor("sup-audit", "supervisor")
ROADS = Actor("roads-audit", "department", departments=("transport",))
CONTACT = c.Contact(name="Mario Rossi", phone="+39 06 1234 5678", email="mario.rossi@example.it")


def register(h: Hotline, actor: Actor = AGENT, **kw: Any) -> dict[str, Any]:
    fields: dict[str, Any] = {
        "kind": "action",
        "subtype": "complaint",
        "channel": "phone",
        "description": "Deep pothole in front of number 12",
        "contact": CONTACT,
        "urgency": "urgent",
        "problem_code": "pothole",
    }
    fields.update(kw)
    return h.bus.execute(c.RegisterRequest(**fields), actor).result


@pytest.fixture
def client(hotline: Hotline) -> Iterator[TestClient]:
    with TestClient(create_app(hotline=hotline)) as client:
        yield client


def auditor(h: Hotline) -> dict[str, str]:
    return bearer(h.settings, "auditor-audit", "auditor")


# ---------------------------------------------------------------------- the as-of property
class Snapshots:
    """The public state of every aggregate right after each event it triggered, in memory."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.states: dict[tuple[uuid.UUID, int], dict[str, Any]] = {}
        original = HotlineAggregate.trigger_event
        snapshots = self

        def trigger_event(agg: Any, *args: Any, **kw: Any) -> None:
            original(agg, *args, **kw)
            snapshots.take(agg)

        monkeypatch.setattr(HotlineAggregate, "trigger_event", trigger_event)
        original_create = HotlineAggregate._create.__func__  # type: ignore[attr-defined]

        def _create(cls: Any, *args: Any, **kw: Any) -> Any:
            agg = original_create(cls, *args, **kw)
            snapshots.take(agg)
            return agg

        monkeypatch.setattr(HotlineAggregate, "_create", classmethod(_create))

    def take(self, agg: Any) -> None:
        # A refused command's copy is dropped and its versions written again by the rerun:
        # the last snapshot of a version is the one that was committed.
        self.states[(agg.id, agg.version)] = copy.deepcopy(public_state(agg))


STEPS: tuple[str, ...] = ("note", "classify", "dispatch", "accept", "return", "interim", "final")
STEPS += ("resolve", "close", "reopen", "wait", "responded", "extend", "supervise")
COMMANDS = st.sampled_from(STEPS)


def _command(name: str, ref: str, now: datetime) -> tuple[Any, Actor]:
    match name:
        case "note":
            return c.AddNote(ref=ref, text="checked"), AGENT
        case "classify":
            return c.Classify(ref=ref, problem_code="streetlight-out"), AGENT
        case "dispatch":
            return c.Dispatch(ref=ref), AGENT
        case "accept":
            return c.Accept(ref=ref), ROADS
        case "return":
            return c.ReturnToDispatcher(ref=ref, reason="not ours"), ROADS
        case "interim":
            return c.InterimReply(ref=ref, message="on it", delay_reason="parts", expected_at=now + timedelta(days=3)), ROADS
        case "final":
            return c.FinalReply(ref=ref, message="fixed"), ROADS
        case "resolve":
            return c.Resolve(ref=ref, resolution="fixed"), AGENT
        case "close":
            return c.Close(ref=ref), AGENT
        case "reopen":
            return c.Reopen(ref=ref, reason="still broken"), AGENT
        case "wait":
            return c.WaitForCitizen(ref=ref, reason="a photo"), AGENT
        case "responded":
            return c.CitizenResponded(ref=ref), AGENT
        case "extend":
            return c.RequestExtension(ref=ref, requested_due_at=now + timedelta(days=10), reason="parts"), ROADS
        case _:
            return c.Supervise(ref=ref, reason="complaint"), SUP


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(
    steps=st.lists(st.tuples(COMMANDS, st.integers(min_value=0, max_value=600)), min_size=5, max_size=30),
)
def test_state_as_of_every_version_is_the_state_the_aggregate_had_in_memory(
    hotline: Hotline, client: TestClient, monkeypatch: pytest.MonkeyPatch, steps: list[tuple[str, int]]
) -> None:
    with monkeypatch.context() as patch:
        snapshots = Snapshots(patch)
        ref = register(hotline)["reference"]
        for name, minutes in steps:
            assert isinstance(hotline.clock, FixedClock)
            hotline.clock.advance(minutes=minutes)
            cmd, actor = _command(name, ref, hotline.clock.now())
            with contextlib.suppress(DomainError):  # refused in this state: many random steps are
                hotline.bus.execute(cmd, actor)
    rid = request_id_for(ref)
    events: list[Any] = list(hotline.store.events.get(rid))
    assert len(events) >= 3
    headers = auditor(hotline)
    for event in events:
        v = event.originator_version
        in_memory = snapshots.states[(rid, v)]
        # The pure fold, the library's own reconstruction, and the HTTP view agree with memory.
        assert public_state(rebuild(events, v)) == in_memory
        assert public_state(hotline.store.repository.get(rid, version=v)) == in_memory
        answer = client.get(f"/audit/request/{ref}", params={"as_of": str(v)}, headers=headers).json()
        assert answer["as_of"]["version"] == v
        assert answer["state"] == json.loads(json.dumps(in_memory))
    # As of a time: the last version stamped at or before it (steps may share a time).
    for event in events:
        at = event.timestamp
        expected = max(e.originator_version for e in events if e.timestamp <= at)
        answer = client.get(f"/audit/request/{ref}", params={"as_of": at.isoformat()}, headers=headers).json()
        assert answer["as_of"]["version"] == expected
        assert answer["state"] == json.loads(json.dumps(snapshots.states[(rid, expected)]))
    before = events[0].timestamp - timedelta(seconds=1)
    answer = client.get(f"/audit/request/{ref}", params={"as_of": before.isoformat()}, headers=headers).json()
    assert answer["state"] is None and answer["as_of"]["version"] is None


def test_version_at_and_as_of_parsing() -> None:
    class E:
        def __init__(self, v: int, t: datetime) -> None:
            self.originator_version, self.timestamp = v, t

    t0 = datetime(2026, 11, 16, 9, tzinfo=UTC)
    events = [E(1, t0), E(2, t0), E(3, t0 + timedelta(hours=1))]
    assert version_at(events, t0 - timedelta(seconds=1)) is None
    assert version_at(events, t0) == 2
    assert version_at(events, t0 + timedelta(minutes=59)) == 2
    assert version_at(events, t0 + timedelta(days=1)) == 3
    assert AsOf.parse("12") == AsOf(version=12)
    assert AsOf.parse("2026-11-20T09:00:00+01:00") == AsOf(moment=datetime(2026, 11, 20, 8, tzinfo=UTC))
    assert AsOf.parse(None) is None
    for bad in ("0", "yesterday", "2026-11-20T09:00:00"):
        with pytest.raises(DomainError):
            AsOf.parse(bad)


# ---------------------------------------------------------------------- history
def test_history_has_actor_role_time_correlation_and_causation_on_every_step(hotline: Hotline, client: TestClient) -> None:
    agent = bearer(hotline.settings, "op-anna", "agent")
    body = {
        "kind": "action",
        "subtype": "complaint",
        "channel": "phone",
        "description": "Streetlight out",
        "urgency": "urgent",
        "problem_code": "streetlight-out",
        "contact": {"name": "Mario Rossi", "phone": "+39 06 1234 5678"},
    }
    reg = client.post("/requests", json=body, headers={**agent, "X-Correlation-Id": "call-4711"})
    assert reg.status_code == 201, reg.text
    ref = reg.json()["reference"]
    assert isinstance(hotline.clock, FixedClock)
    hotline.clock.advance(minutes=3)
    assert client.post(f"/requests/{ref}/dispatch", json={}, headers={**agent, "X-Correlation-Id": "dispatch-1"}).status_code == 200
    answer = client.get(f"/audit/request/{ref}", headers=auditor(hotline))
    assert answer.status_code == 200, answer.text
    shown = answer.json()
    stored: list[Any] = list(hotline.store.events.get(request_id_for(ref)))
    assert [s["version"] for s in shown["history"]] == [e.originator_version for e in stored]
    assert shown["versions"] == len(stored) and shown["aggregate"] == "ServiceRequest"
    for s, e in zip(shown["history"], stored, strict=True):
        assert s["actor_id"] == "op-anna" and s["actor_role"] == "agent"
        assert s["correlation_id"] == e.meta["correlation_id"] and s["causation_id"] == e.meta["causation_id"]
        assert datetime.fromisoformat(s["at"]) == e.timestamp
        assert s["position"] is not None
    positions = [s["position"] for s in shown["history"]]
    assert positions == sorted(positions)
    assert {s["correlation_id"] for s in shown["history"]} == {"call-4711", "dispatch-1"}
    assert shown["history"][0]["data"]["personal"]["name"] == "Mario Rossi"  # auditors read personal data (and it is logged)
    assert shown["state"]["status"] == "dispatched" and shown["state"]["reference"] == ref
    # The same aggregate by id, the citizen's stream, and what is refused.
    h = auditor(hotline)
    rid = str(request_id_for(ref))
    assert client.get(f"/audit/request/{rid}", headers=h).json()["versions"] == len(stored)
    citizen_id = shown["state"]["citizen_id"]
    citizen = client.get(f"/audit/citizen/{citizen_id}", headers=h).json()
    assert citizen["history"][0]["type"] == "hotline.citizen.registered.v1"
    assert client.get(f"/audit/workorder/{rid}", headers=h).status_code == 404  # not a work order's id
    assert client.get(f"/audit/nothing/{rid}", headers=h).status_code == 404
    assert client.get(f"/audit/request/{ref}", params={"as_of": str(len(stored) + 1)}, headers=h).status_code == 422
    assert client.get(f"/audit/request/{ref}", params={"as_of": "monday"}, headers=h).status_code == 422


def test_only_auditors_use_the_audit_views(hotline: Hotline, client: TestClient) -> None:
    ref = register(hotline)["reference"]
    paths = [f"/audit/request/{ref}", f"/audit/trace/{ref}", "/audit/read-models/sla-breaches?as_of=2026-11-16T10:00:00%2B00:00"]
    for path in paths:
        assert client.get(path, headers=auditor(hotline)).status_code == 200, path
        assert client.get(path).status_code == 401
        for role in ("agent", "supervisor", "analyst", "administrator", "control_office", "citizen"):
            assert client.get(path, headers=bearer(hotline.settings, f"x-{role}", role)).status_code == 403, (path, role)
        dept = bearer(hotline.settings, "roads", "department", departments=["transport"])
        assert client.get(path, headers=dept).status_code == 403


# ---------------------------------------------------------------------- case trace
def test_a_case_trace_follows_the_call_the_request_its_work_order_and_notifications(hotline: Hotline, client: TestClient) -> None:
    h = hotline
    assert isinstance(h.clock, FixedClock)
    router = Router(h.store, h.bus)
    h.bus.execute(cc.DefineQueue(queue_id="general", names={"en": "General"}), SUP)
    h.bus.execute(cc.LoginAgent(agent_id="op-anna", queues=["general"]), Actor("op-anna", "agent"))
    arrives = cc.ContactArrives(channel="phone", queue_id="general", phone="+390612345678")
    contact_id = str(h.bus.execute(arrives, Actor("pbx", "system")).result["id"])
    router.run_until_idle()
    anna = Actor("op-anna", "agent")
    h.bus.execute(cc.Answer(contact_id=contact_id, agent_id="op-anna"), anna)
    h.clock.advance(minutes=2)
    call = "call-" + contact_id[:8]
    ref = h.bus.execute(
        c.RegisterRequest(
            kind="action",
            subtype="complaint",
            channel="phone",
            description="Pothole",
            contact=CONTACT,
            problem_code="pothole",
            contact_id=contact_id,
        ),
        anna,
        correlation_id=call,
    ).result["reference"]
    rid = str(request_id_for(ref))
    h.bus.execute(cc.LinkRequest(contact_id=contact_id, request_id=rid), anna, correlation_id=call)
    h.bus.execute(c.Dispatch(ref=ref), anna)
    h.clock.advance(minutes=30)
    h.bus.execute(c.Accept(ref=ref), ROADS)
    order_id = h.bus.execute(woc.CreateWorkOrder(ref=ref), anna).result["id"]
    h.bus.execute(woc.StartWorkOrder(order_id=order_id, crew="crew 3"), ROADS)
    h.clock.advance(hours=2)
    h.bus.execute(c.FinalReply(ref=ref, message="Filled"), ROADS)
    notifier = NotificationConsumer.from_settings(h)
    assert notifier.follow() >= 1  # the citizen is told
    # Unrelated traffic in between, which the trace must leave out.
    register(h, contact=c.Contact(name="Someone Else", phone="+39 06 9999 0000"))

    answer = client.get(f"/audit/trace/{ref}", headers=auditor(h))
    assert answer.status_code == 200, answer.text
    shown = answer.json()
    assert shown["mode"] == "case" and shown["request_id"] == rid
    streams = {s["stream"] for s in shown["events"]}
    assert {"contact", "request", "workorder", "notification"} <= streams
    positions = [s["position"] for s in shown["events"]]
    assert positions == sorted(positions) and len(set(positions)) == len(positions)
    names = [(s["stream"], s["name"]) for s in shown["events"]]
    assert names.index(("contact", "arrived")) < names.index(("request", "registered")) < names.index(("workorder", "created"))
    assert names.index(("workorder", "created")) < names.index(("notification", "queued"))
    assert ("workorder", "started") in names and ("contact", "request_linked") in names
    ids = {s["id"] for s in shown["events"]}
    assert {contact_id, rid, order_id} <= ids
    others = {str(e.originator_id) for e in h.store.events.get(request_id_for(ref))}
    assert all(s["stream"] != "request" or s["id"] in others for s in shown["events"]), "another case leaked in"
    # Oracle: every stored event of the request, contact and work order is in the trace.
    for aggregate in (rid, contact_id, order_id):
        stored = [(str(e.originator_id), e.originator_version) for e in h.store.events.get(uuid.UUID(aggregate))]
        assert set(stored) <= {(s["id"], s["version"]) for s in shown["events"]}
    # By the correlation id alone: only what shares it, the registration and the link.
    by_call = client.get(f"/audit/trace/{call}", headers=auditor(h)).json()
    assert by_call["mode"] == "correlation"
    assert {s["correlation_id"] for s in by_call["events"]} == {call}
    assert ("request", "registered") in [(s["stream"], s["name"]) for s in by_call["events"]]
    assert ("contact", "request_linked") in [(s["stream"], s["name"]) for s in by_call["events"]]
    assert client.get("/audit/trace/no-such-thing", headers=auditor(h)).status_code == 404
    # Any aggregate by its natural key: the agent's own stream (signed in, offered, answered).
    agent = client.get("/audit/agent/op-anna", headers=auditor(h)).json()
    assert agent["aggregate"] == "Agent" and agent["history"][0]["actor_id"] == "op-anna"
    queue = client.get("/audit/queue/general", params={"as_of": "1"}, headers=auditor(h)).json()
    assert queue["as_of"]["version"] == 1 and queue["state"]["version"] == 1
    # The hotline's own bookkeeping (credentials, sign-in codes) is not audited here.
    assert client.get("/audit/staff_credential/op-anna", headers=auditor(h)).status_code == 404


def test_one_correlation_id_traces_the_whole_case_from_the_call(hotline: Hotline, client: TestClient) -> None:
    """Without correlation ids given by callers, what acts on a case continues its
    correlation: the call's id is carried by the agent answering it, the request registered
    during it, the request's later steps by anyone, its work order and the citizen's message."""
    h = hotline
    assert isinstance(h.clock, FixedClock)
    router = Router(h.store, h.bus)
    h.bus.execute(cc.DefineQueue(queue_id="general", names={"en": "General"}), SUP)
    anna = Actor("op-anna", "agent")
    h.bus.execute(cc.LoginAgent(agent_id="op-anna", queues=["general"]), anna)
    arrives = cc.ContactArrives(channel="phone", queue_id="general", phone="+390612345678")
    contact_id = str(h.bus.execute(arrives, Actor("pbx", "system")).result["id"])
    first: Any = next(iter(h.store.events.get(uuid.UUID(contact_id))))
    call = first.meta["correlation_id"]
    router.run_until_idle()
    h.bus.execute(cc.Answer(contact_id=contact_id, agent_id="op-anna"), anna)
    register_cmd = c.RegisterRequest(
        kind="action",
        subtype="complaint",
        channel="phone",
        description="Pothole",
        contact=CONTACT,
        problem_code="pothole",
        contact_id=contact_id,
    )
    ref = h.bus.execute(register_cmd, anna).result["reference"]
    rid = str(request_id_for(ref))
    h.bus.execute(c.Dispatch(ref=ref), anna)
    h.clock.advance(minutes=30)
    h.bus.execute(c.Accept(ref=ref), ROADS)
    order_id = h.bus.execute(woc.CreateWorkOrder(ref=ref), anna).result["id"]
    h.bus.execute(woc.StartWorkOrder(order_id=order_id, crew="crew 3"), ROADS)
    h.clock.advance(hours=2)
    h.bus.execute(c.FinalReply(ref=ref, message="Filled"), ROADS)
    notifier = NotificationConsumer.from_settings(h)
    assert notifier.follow() >= 1
    other = register(h, contact=c.Contact(name="Someone Else", phone="+39 06 9999 0000"))  # another case

    shown = client.get(f"/audit/trace/{call}", headers=auditor(h)).json()
    assert shown["mode"] == "correlation" and {s["correlation_id"] for s in shown["events"]} == {call}
    names = [(s["stream"], s["name"]) for s in shown["events"]]
    for step in [
        ("contact", "arrived"),
        ("agent", "reserved"),
        ("contact", "answered"),
        ("agent", "contact_started"),
        ("request", "registered"),
        ("request", "dispatched"),
        ("request", "accepted"),
        ("workorder", "created"),
        ("workorder", "started"),
        ("notification", "queued"),
    ]:
        assert step in names, step
    # Oracle: every stored event of the request and its work order carries the call's id.
    for aggregate in (rid, order_id):
        stored: list[Any] = list(h.store.events.get(uuid.UUID(aggregate)))
        assert {e.meta["correlation_id"] for e in stored} == {call}, aggregate
    assert other["id"] not in {s["id"] for s in shown["events"]}
    # A caller's own correlation id still wins (an integrator tracing its own calls).
    h.bus.execute(c.AddNote(ref=ref, text="called back", internal=True), anna, correlation_id="crm-42")
    assert [s["name"] for s in client.get("/audit/trace/crm-42", headers=auditor(h)).json()["events"]] == ["note_added"]


# ---------------------------------------------------------------------- read models as of T
def dispatched_case(h: Hotline, client: TestClient) -> tuple[str, datetime]:
    """A request dispatched to transport: its reference and deadline."""
    ref = register(h)["reference"]
    h.bus.execute(c.Dispatch(ref=ref), AGENT)
    due = datetime.fromisoformat(client.get(f"/requests/{ref}", headers=bearer(h.settings, "sup", "supervisor")).json()["due_at"])
    return ref, due


def test_was_the_request_on_the_overdue_list_then(hotline: Hotline, client: TestClient) -> None:
    h = hotline
    assert isinstance(h.clock, FixedClock)
    ref, due = dispatched_case(h, client)
    # Time passes past the deadline; the timers fire (escalation, reminders) as they would.
    h.clock.current = due + timedelta(hours=5)
    TimerProcess(h).tick()
    h.bus.execute(c.Accept(ref=ref), ROADS)
    h.clock.advance(hours=1)
    h.bus.execute(c.FinalReply(ref=ref, message="done"), ROADS)
    h.bus.execute(c.Resolve(ref=ref, resolution="done"), AGENT)
    # Now it is off the list; the live list says so too.
    live = client.get("/sla/breaches", headers=bearer(h.settings, "sup", "supervisor")).json()
    assert ref not in {r["reference"] for r in live["overdue"]}
    h_ = auditor(h)
    before = client.get(
        "/audit/read-models/sla-breaches", params={"as_of": (due - timedelta(hours=1)).isoformat(), "reference": ref}, headers=h_
    ).json()
    assert before["reference"]["listed"] == "due_soon" and before["reference"]["overdue"] is False
    after = client.get(
        "/audit/read-models/sla-breaches", params={"as_of": (due + timedelta(hours=2)).isoformat(), "reference": ref}, headers=h_
    ).json()
    assert after["reference"]["overdue"] is True and after["reference"]["row"]["overdue_hours"] == 2.0
    assert after["position"] >= before["position"]
    late = client.get(
        "/audit/read-models/sla-breaches", params={"as_of": (due + timedelta(hours=7)).isoformat(), "reference": ref}, headers=h_
    ).json()
    assert late["reference"]["listed"] is None  # resolved by then
    loads = client.get("/audit/read-models/department-workloads", params={"as_of": (due + timedelta(hours=2)).isoformat()}, headers=h_)
    assert loads.status_code == 200, loads.text
    transport = next(d for d in loads.json()["departments"] if d["department_id"] == "transport")
    assert transport["by_state"] == {"dispatched": 1} and transport["overdue"]["overdue"] == 1
    loads_late = client.get("/audit/read-models/department-workloads", params={"as_of": (due + timedelta(hours=7)).isoformat()}, headers=h_)
    assert all(d["department_id"] != "transport" or d["open"] == 0 for d in loads_late.json()["departments"])
    assert client.get("/audit/read-models/nothing", params={"as_of": due.isoformat()}, headers=h_).status_code == 404
    assert client.get("/audit/read-models/sla-breaches", params={"as_of": "42"}, headers=h_).status_code == 422


def test_a_read_model_as_of_now_is_what_its_endpoint_shows_now(hotline: Hotline, client: TestClient) -> None:
    """The replay's "due soon" was 4 hours for both lists; the workloads endpoint's is 24."""
    h = hotline
    assert isinstance(h.clock, FixedClock)
    _, due = dispatched_case(h, client)
    h.clock.current = due - timedelta(hours=12)  # due soon for the workloads (24 h), not for the breaches list (4 h)
    sup = bearer(h.settings, "sup", "supervisor")
    for name, live_path in (("department-workloads", "/departments/workloads"), ("sla-breaches", "/sla/breaches")):
        live = client.get(live_path, headers=sup).json()
        replayed = client.get(f"/audit/read-models/{name}", params={"as_of": h.clock.now().isoformat()}, headers=auditor(h)).json()
        if name == "department-workloads":
            assert replayed["departments"] == live and any(d["due_soon"] for d in live), (replayed, live)
        else:
            assert replayed["due_soon"] == live["due_soon"] == [], (replayed, live)


# ---------------------------------------------------------------------- personal-data reads
def test_a_read_of_personal_data_by_an_agent_is_logged_with_who_what_and_why(
    hotline: Hotline, client: TestClient, caplog: pytest.LogCaptureFixture
) -> None:
    log = ReadLog(caplog, hotline.settings)
    reg = register(hotline)
    ref, citizen_id = reg["reference"], reg["citizen_id"]
    assert log.new_lines() == []  # registering reads nothing back
    anna = bearer(hotline.settings, "op-anna", "agent")
    assert client.get(f"/citizens/{citizen_id}", headers={**anna, "X-Purpose": "caller asked for their history"}).status_code == 200
    assert client.get(f"/requests/{ref}", headers=anna).status_code == 200
    lines = log.new_lines()
    assert len(lines) == 2, lines
    citizen_read, request_read = lines
    assert citizen_read["event"] == "personal data read" and citizen_read["logger"] == "hotline.audit.personal_data"
    assert citizen_read["actor_id"] == "op-anna" and citizen_read["actor_role"] == "agent"
    assert citizen_read["what"] == "citizen" and citizen_read["subject"] == citizen_id and citizen_read["citizen_ids"] == [citizen_id]
    assert citizen_read["purpose"] == "caller asked for their history" and citizen_read["purpose_given"] is True
    assert citizen_read["endpoint"] == "GET /citizens/{citizen_id}"
    assert request_read["what"] == "request" and request_read["subject"] == ref and request_read["purpose_given"] is False
    assert request_read["purpose"] == "case handling"
    assert "Mario" not in json.dumps(lines)  # the record names the citizen by id only
    # A search by a caller's name, with the purpose as a query parameter.
    assert client.get("/requests", params={"q": "Rossi", "purpose": "caller on the line"}, headers=anna).status_code == 200
    (search,) = log.new_lines()
    assert search["what"] == "request search" and search["purpose"] == "caller on the line" and search["citizen_ids"] == [citizen_id]
    # An auditor's history is recorded too; reads that show no personal data are not.
    assert client.get(f"/audit/request/{ref}", headers={**auditor(hotline), "X-Purpose": "complaint 7"}).status_code == 200
    assert [(d["actor_role"], d["purpose"]) for d in log.new_lines()] == [("auditor", "complaint 7")]
    assert client.get("/sla/breaches", headers=bearer(hotline.settings, "sup", "supervisor")).status_code == 200
    assert client.get("/requests", params={"status": "registered"}, headers=anna).status_code == 200
    assert log.new_lines() == []


# ---------------------------------------------------------------------- the console page
def test_the_console_shows_a_case_as_of_a_version_and_its_trace(hotline: Hotline, client: TestClient) -> None:
    from tests.auth import token_for

    ref = register(hotline)["reference"]
    assert isinstance(hotline.clock, FixedClock)
    hotline.clock.advance(minutes=10)
    hotline.bus.execute(c.Dispatch(ref=ref), AGENT)
    client.cookies.set("hotline_session", token_for(hotline.settings, "auditor-omar", "auditor"))
    page = client.get(f"/console/audit/{ref}", params={"as_of": "1"})
    assert page.status_code == 200, page.text
    assert 'data-status="registered" data-version="1"' in page.text and 'id="trace-link"' in page.text
    page = client.get(f"/console/audit/{ref}", params={"as_of": "99"})
    assert page.status_code == 422
    trace = client.get(f"/console/audit/trace/{ref}")
    assert trace.status_code == 200, trace.text
    stored = list(hotline.store.events.get(request_id_for(ref)))
    assert trace.text.count('data-stream="request"') == len(stored)
    assert client.get("/console/audit", params={"trace": ref}, follow_redirects=False).headers["location"] == f"/console/audit/trace/{ref}"
    # The event log is the auditor's, as GET /audit/request/{ref} is: a supervisor reads the
    # case's timeline on its case page.
    client.cookies.set("hotline_session", token_for(hotline.settings, "sup-li", "supervisor"))
    assert client.get(f"/console/audit/{ref}").status_code == 403
    assert client.get(f"/console/audit/trace/{ref}").status_code == 403
