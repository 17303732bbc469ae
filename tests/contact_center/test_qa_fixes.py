"""QA's contact-center defects: supervision as oneself, overflow cycles, linking requests,
not-ready reasons across a call, callbacks' numbers and due times, 409 rather than 403 for
a contact that moved on, bodiless commands, the transferring agent's disposition, and the
wallboard counting contacts under their arrival queue."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from domain.base import Actor, Forbidden, InvalidCommand, InvalidTransition, NotFound
from domain.contact_center import commands as cc
from infra.read_store import ReadStore, make_engine
from infra.runtime import Hotline
from projections import wallboard
from tests.contact_center.harness import SUPERVISOR, Center

SUP_LI = Actor("sup-li", "supervisor")


# ------------------------------------------------------------------ 1. supervision
def test_a_supervisor_supervises_only_as_themselves(center: Center) -> None:
    center.queue("q")
    center.login("A", ["q"])
    cid = center.connected("A")
    for someone_else in ("00393331234567@trunk", "admin"):
        with pytest.raises(Forbidden):
            center.run(cc.Supervise(contact_id=cid, supervisor_id=someone_else, mode="monitor"), SUP_LI)
    assert center.run(cc.Supervise(contact_id=cid, mode="monitor"), SUP_LI)["supervisors"] == {"sup-li": "monitor"}
    # The documented field is still accepted when it names the actor.
    center.run(cc.Supervise(contact_id=cid, supervisor_id="sup-li", mode="whisper"), SUP_LI)
    center.run(cc.Supervise(contact_id=cid, mode="monitor"), SUPERVISOR)
    with pytest.raises(Forbidden):  # ending another supervisor's session
        center.run(cc.Supervise(contact_id=cid, supervisor_id="sup1", mode="stop"), SUP_LI)
    with pytest.raises(Forbidden):
        center.run(cc.Supervise(contact_id=cid, supervisor_id="sup1", mode="take_over"), SUP_LI)
    done = center.run(cc.Supervise(contact_id=cid, mode="stop"), SUP_LI)
    assert done["supervisors"] == {"sup1": "monitor"}
    joined = [e.data["supervisor_id"] for e in center.envelopes() if e.name == "supervisor_joined"]
    assert set(joined) == {"sup-li", "sup1"}


# ------------------------------------------------------------------ 2. overflow cycles
def test_queues_overflowing_to_each_other_overflow_a_contact_once(center: Center) -> None:
    # The cycle is formed in two steps: each definition alone is fine.
    center.queue("qa13", max_wait_seconds=3)
    center.queue("qa12", max_wait_seconds=3, overflow={"to": "queue", "queue_id": "qa13"})
    center.queue("qa13", overflow={"to": "queue", "queue_id": "qa12"})
    cid = center.arrive("qa12")
    for _ in range(20):
        center.tick(3)
    assert center.events_of(cid).count("overflowed") == 1
    assert center.router.view.contacts[cid].queue_id == "qa13"
    assert center.router.view.contacts[cid].status == "queued"  # it stays in the queue it reached
    with pytest.raises(InvalidTransition) as refused:  # a supervisor's overflow is refused too
        center.run(cc.OverflowContact(contact_id=cid, reason="supervisor"), SUPERVISOR)
    assert refused.value.code == "overflow_cycle"


# ------------------------------------------------------------------ 3. linking requests
def test_link_request_resolves_the_request_and_refuses_unhandled_contacts(center: Center) -> None:
    center.queue("q")
    center.login("A", ["q"])
    cid = center.connected("A")
    rid, ref = center.register_request("A")
    for unknown in ("261122004517", "not-a-real-request"):
        with pytest.raises(NotFound):
            center.as_agent("A", cc.LinkRequest(contact_id=cid, request_id=unknown))
    linked = center.as_agent("A", cc.LinkRequest(contact_id=cid, request_id=ref))
    assert linked["request_ids"] == [rid]  # the request's id, whatever it was named by
    assert [e.data["request_id"] for e in center.envelopes() if e.name == "request_linked"] == [rid]
    abandoned = center.arrive("q")
    center.run(cc.Abandon(contact_id=abandoned))
    with pytest.raises(InvalidTransition):
        center.run(cc.LinkRequest(contact_id=abandoned, request_id=ref), SUPERVISOR)


# ------------------------------------------------------------------ 4. not-ready reasons
def test_a_not_ready_reason_forced_during_a_call_outlasts_it(center: Center) -> None:
    center.queue("q", wrap_seconds=60)
    center.login("A", ["q"])
    cid = center.connected("A")
    center.run(cc.SetPresence.model_validate({"agent_id": "A", "presence": "not_ready", "reason": "break"}), SUP_LI)
    center.end(cid, "A")
    center.wrap(cid, "A")
    after = [e.data for e in center.envelopes() if e.name == "state_changed" and e.data["agent_id"] == "A"][-2:]
    assert [d["state"] for d in after] == ["wrap_up", "not_ready"]
    assert all(d["reason"] == "break" and d["forced_by"] == "sup-li" for d in after)
    center.route()
    assert center.router.view.agents["A"].reason == "break"


# ------------------------------------------------------------------ 5. callbacks
def test_a_staff_callback_needs_a_valid_number_and_a_due_time_not_past(center: Center) -> None:
    center.queue("out")
    now = center.clock.now()
    for phone, code in (("abc", "phone_unreadable"), ("+39061", "phone_invalid")):
        with pytest.raises(InvalidCommand) as bad:
            center.run(cc.ScheduleCallback(queue_id="out", phone=phone, due_at=now), SUPERVISOR)
        assert bad.value.code == code
    with pytest.raises(InvalidCommand) as past:
        center.run(cc.ScheduleCallback(queue_id="out", phone="+390612345678", due_at=datetime(2000, 1, 1, tzinfo=UTC)), SUPERVISOR)
    assert past.value.code == "due_in_past"
    # "Now" as a form chose it a little earlier is fine, and the number is stored normalised.
    ok = center.run(cc.ScheduleCallback(queue_id="out", phone="06 1234 5678", due_at=now - timedelta(minutes=4)), SUPERVISOR)
    arrived = next(e for e in center.envelopes() if e.aggregate_id == ok["id"] and e.name == "arrived")
    assert arrived.data["personal"] == {"phone": "+390612345678"}


# ------------------------------------------------------------------ 6. 409 for a contact that moved on
def test_the_agent_who_handled_a_contact_is_told_its_state(center: Center) -> None:
    center.queue("out", wrap_seconds=0)
    center.login("A", ["out"])
    center.login("B", ["out"], ready=False)
    cid = center.run(cc.ScheduleCallback(queue_id="out", phone="+390612345678", due_at=center.clock.now()), SUPERVISOR)["id"]
    center.route()
    center.answer(cid, "A")
    center.as_agent("A", cc.CallbackOutcome(contact_id=cid, outcome="busy"))
    with pytest.raises(InvalidTransition) as again:
        center.as_agent("A", cc.CallbackOutcome(contact_id=cid, outcome="busy"))
    assert "scheduled" in again.value.message
    with pytest.raises(Forbidden):  # never on it: told nothing
        center.as_agent("B", cc.CallbackOutcome(contact_id=cid, outcome="busy"))


def test_an_expert_wrapping_up_a_contact_taken_over_and_closed_gets_409(center: Center) -> None:
    center.queue("q", wrap_seconds=60)
    center.run(cc.LoginAgent(agent_id="marco", queues=["q"]), Actor("marco", "expert"))
    center.login("C", ["q"], ready=False)
    cid = center.connected("marco")
    center.run(cc.Supervise(contact_id=cid, mode="take_over"), SUP_LI)
    center.run(cc.End(contact_id=cid), SUP_LI)
    marco = Actor("marco", "expert")
    center.run(cc.WrapUp(contact_id=cid, disposition="escalated"), marco)  # his own part
    with pytest.raises(InvalidTransition) as again:
        center.run(cc.WrapUp(contact_id=cid), marco)
    assert "closed" in again.value.message
    with pytest.raises(Forbidden):
        center.as_agent("C", cc.WrapUp(contact_id=cid))


# ------------------------------------------------------------------ 8. the transferring agent's disposition
def test_the_transferring_agents_disposition_is_recorded(center: Center) -> None:
    center.queue("q", wrap_seconds=60)
    center.login("A", ["q"])
    center.login("B", ["q"], ready=False)
    cid = center.connected("A")
    center.presence("B", "available")
    center.as_agent("A", cc.Transfer(contact_id=cid, agent_id="A", to_agent_id="B"))
    center.answer(cid, "B")
    center.wrap(cid, "A", disposition="transferred")
    done = [e.data for e in center.envelopes() if e.name == "wrap_up_completed"]
    assert [(d["agent_id"], d["disposition"]) for d in done] == [("A", "transferred")]


# ------------------------------------------------------------------ 9. wallboard under the arrival queue
def test_the_wallboard_counts_a_contact_once_under_its_arrival_queue(center: Center, tmp_path: Path) -> None:
    center.queue("q1", wrap_seconds=0)
    center.queue("q2", wrap_seconds=0)
    center.login("A", ["q1"])
    center.login("B", ["q2"], ready=False)
    cid = center.connected("A", "q1")
    center.as_agent("A", cc.Transfer(contact_id=cid, agent_id="A", to_queue_id="q2"))
    center.tick(5)
    center.presence("B", "available")
    center.route()
    center.answer(cid, "B")
    center.end(cid, "B")
    # Answered in q1, transferred to q2, hung up waiting there: answered, not abandoned.
    center.presence("B", "not_ready", "break")
    other = center.connected("A", "q1")
    center.as_agent("A", cc.Transfer(contact_id=other, agent_id="A", to_queue_id="q2"))
    center.run(cc.Abandon(contact_id=other))
    rs = ReadStore(make_engine(f"sqlite:///{tmp_path / 'rm.sqlite'}"), [wallboard.projection])
    rs.create_tables()
    rs.apply(center.envelopes())
    with rs.engine.connect() as conn:
        board = {q["queue_id"]: q for q in wallboard.wallboard(conn, center.clock.now())["queues"]}
    q1, q2 = board["q1"], board["q2"]
    assert (q1["arrived_today"], q1["answered_today"], q1["abandoned_today"]) == (2, 2, 0)
    assert (q2["arrived_today"], q2["answered_today"], q2["abandoned_today"]) == (0, 0, 0)
    assert q1["service_level_today"] == 1.0 and q2["service_level_today"] is None
    assert wallboard.projection.version >= 2


# ------------------------------------------------------------------ 7. bodiless commands (HTTP)
SUP = {"X-Actor-Id": "sup-li", "X-Actor-Role": "supervisor"}
PBX = {"X-Actor-Id": "pbx", "X-Actor-Role": "system"}


def test_commands_whose_fields_are_all_optional_need_no_body(api: tuple[TestClient, Hotline]) -> None:
    client, _ = api
    assert client.post("/queues", json={"queue_id": "general", "wrap_seconds": 0}, headers=SUP).status_code == 200
    waiting = client.post("/contacts", json={"channel": "phone", "queue_id": "general"}, headers=PBX).json()["id"]
    r = client.post(f"/contacts/{waiting}/abandon", headers=PBX)
    assert r.status_code == 200 and r.json()["status"] == "abandoned", r.text
    r = client.post(f"/contacts/{waiting}/end", headers=SUP)
    assert r.status_code == 409, r.text  # the state, no longer "body: Field required"
    for path in ("wrap-up", "overflow"):
        assert client.post(f"/contacts/{waiting}/{path}", headers=SUP).status_code == 409
    r = client.post(f"/contacts/{waiting}/supervise", json={"supervisor_id": "admin", "mode": "monitor"}, headers=SUP)
    assert r.status_code == 403, r.text
