"""Rules of the request lifecycle, through the service layer on both event stores."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pytest

from domain.base import Actor, ConcurrencyConflict, Forbidden, InvalidCommand, InvalidTransition, NotFound
from domain.handling import Command
from domain.requests import commands as c
from domain.requests.aggregate import request_id_for
from domain.requests.handlers import load_request
from domain.work_orders import commands as woc
from infra.runtime import Hotline

AGENT = Actor("op1", "agent")
SUP = Actor("sup1", "supervisor")
CTRL = Actor("ctrl", "control_office")
ROADS = Actor("roads", "department", departments=("transport", "environment"))  # acts for both
CONTACT = c.Contact(name="Mario Rossi", phone="06 1234 5678", email="mario@example.it")


def register(h: Hotline, **kw: object) -> dict:
    fields: dict = {"kind": "action", "subtype": "complaint", "channel": "phone", "description": "Pothole", "contact": CONTACT}
    fields.update(kw)
    return h.bus.execute(c.RegisterRequest(**fields), AGENT).result


def citizen_of(h: Hotline, ref: str) -> Actor:
    """The citizen whose request it is, signed in (a citizen acts only on their own cases)."""
    request = h.store.read_reference(request_id_for(ref))
    return Actor("cit", "citizen", citizen_id=str(request.citizen_id))


def run(h: Hotline, cmd: Command, actor: Actor) -> dict[str, Any]:
    return h.bus.execute(cmd, actor).result


def to_in_progress(h: Hotline, **kw: object) -> str:
    ref = register(h, problem_code="pothole", **kw)["reference"]
    run(h, c.Dispatch(ref=ref), AGENT)
    run(h, c.Accept(ref=ref, department_id="transport"), ROADS)
    return ref


def test_registration_deadlines_follow_urgency(hotline: Hotline, clock) -> None:  # type: ignore[no-untyped-def]
    urgent = register(hotline, urgency="urgent")
    control = register(hotline, urgency="control")
    normal = register(hotline, urgency="normal", problem_code="pothole")
    assert urgent["due_at"] == (clock.now() + timedelta(hours=24)).isoformat()
    assert control["due_at"] == (clock.now() + timedelta(hours=48)).isoformat()
    assert normal["due_at"] == (clock.now() + timedelta(hours=120)).isoformat()  # pothole's normal rule


def test_anonymous_request_is_refused_by_default(hotline: Hotline) -> None:
    with pytest.raises(InvalidCommand) as err:
        register(hotline, contact=None)
    assert err.value.code == "anonymous_refused"
    with pytest.raises(InvalidCommand) as err:
        register(hotline, contact=c.Contact(name="Mario"))
    assert err.value.code == "contact_required" and err.value.details["missing"] == ["phone"]


def test_anonymous_allowed_hides_contact(tmp_path, clock) -> None:  # type: ignore[no-untyped-def]
    from infra.settings import Settings
    from tests.conftest import load_catalogue

    h = Hotline.start(Settings(data_dir=tmp_path, allow_anonymous=True), clock)
    try:
        load_catalogue(h)
        bare = register(h, contact=None)
        assert bare["citizen_id"] is None
        hidden = register(h, anonymous=True)
        assert hidden["citizen_id"] is not None
        from projections import request_status

        with h.read_store.engine.connect() as conn:
            row = request_status.by_reference(conn, hidden["reference"])
        assert row is not None and row["contact_hidden"] is True
    finally:
        h.close()


def test_one_citizen_across_channels(hotline: Hotline) -> None:
    a = register(hotline, channel="phone", contact=c.Contact(name="Mario Rossi", phone="+39 06 1234 5678"))
    b = register(hotline, channel="email", contact=c.Contact(name="Mario Rossi", phone="0039061234 5678", email="m@example.it"))
    d = register(hotline, channel="web", contact=c.Contact(name="Mario", phone="+39 347 000 0000", email="m@EXAMPLE.it"))
    assert a["citizen_id"] == b["citizen_id"] == d["citizen_id"]
    from projections import citizen_history

    with hotline.read_store.engine.connect() as conn:
        citizen = citizen_history.get(conn, a["citizen_id"])
        assert citizen is not None
        assert citizen["requests"] == 3
        assert set(citizen["channels"]) == {"phone", "email", "web"}
        assert citizen["phone"] == "+390612345678"


def test_bad_phone_number_is_explained(hotline: Hotline) -> None:
    with pytest.raises(InvalidCommand) as err:
        register(hotline, contact=c.Contact(name="X", phone="not a number"))
    assert "phone" in err.value.message


def test_subtype_must_match_kind(hotline: Hotline) -> None:
    with pytest.raises(InvalidCommand):
        register(hotline, kind="feedback", subtype="complaint")


def test_dispatch_needs_problem_code_and_goes_to_its_department(hotline: Hotline) -> None:
    ref = register(hotline)["reference"]
    with pytest.raises(InvalidCommand):
        run(hotline, c.Dispatch(ref=ref), AGENT)
    run(hotline, c.Classify(ref=ref, problem_code="pothole"), AGENT)
    out = run(hotline, c.Dispatch(ref=ref), AGENT)
    assert out["status"] == "dispatched"
    with pytest.raises(InvalidTransition):
        run(hotline, c.Dispatch(ref=ref), AGENT)


def test_required_fields_of_problem_code(hotline: Hotline) -> None:
    ref = register(hotline)["reference"]
    with pytest.raises(InvalidCommand) as err:
        run(hotline, c.Classify(ref=ref, problem_code="bus-complaint"), AGENT)
    assert err.value.details["missing"] == ["line"]
    with pytest.raises(InvalidCommand):
        run(hotline, c.Classify(ref=ref, problem_code="bus-complaint", collected={"line": "64", "colour": "red"}), AGENT)
    with pytest.raises(NotFound):
        run(hotline, c.Classify(ref=ref, problem_code="no-such-code"), AGENT)


def test_only_the_owner_accepts_or_returns(hotline: Hotline) -> None:
    ref = register(hotline, problem_code="pothole")["reference"]
    run(hotline, c.Dispatch(ref=ref), AGENT)
    with pytest.raises(InvalidTransition) as err:
        run(hotline, c.Accept(ref=ref, department_id="environment"), ROADS)
    assert err.value.code == "not_owner"
    with pytest.raises(Forbidden) as refused:  # a role refusal is Forbidden (403), not a state conflict
        run(hotline, c.Accept(ref=ref, department_id="transport"), AGENT)
    assert refused.value.code == "forbidden"


def test_returned_twice_goes_to_control_office_whose_ruling_sticks(hotline: Hotline) -> None:
    ref = register(hotline, problem_code="pothole")["reference"]
    run(hotline, c.Dispatch(ref=ref), AGENT)
    with pytest.raises(InvalidCommand):
        run(hotline, c.ReturnToDispatcher(ref=ref, department_id="transport", reason=" "), ROADS)
    out = run(hotline, c.ReturnToDispatcher(ref=ref, department_id="transport", reason="private road"), ROADS)
    assert out["status"] == "returned"
    from projections import department_workload

    with hotline.read_store.engine.connect() as conn:  # the dispatcher holds it now, not transport
        assert "transport" not in department_workload.workloads(conn)
    run(hotline, c.Dispatch(ref=ref, department_id="environment"), AGENT)
    out = run(hotline, c.ReturnToDispatcher(ref=ref, department_id="environment", reason="not waste"), ROADS)
    assert out["status"] == "awaiting_ruling"
    with pytest.raises(InvalidTransition):
        run(hotline, c.Dispatch(ref=ref), AGENT)
    with pytest.raises(Forbidden):
        run(hotline, c.RuleOwnership(ref=ref, department_id="transport", reason="register"), AGENT)
    out = run(hotline, c.RuleOwnership(ref=ref, department_id="transport", reason="public road register"), CTRL)
    assert out["status"] == "dispatched"
    with hotline.read_store.engine.connect() as conn:  # the ruling gives it to transport
        loads = department_workload.workloads(conn)
    assert loads["transport"]["by_state"] == {"dispatched": 1} and "environment" not in loads, loads
    with pytest.raises(InvalidTransition):
        run(hotline, c.ReturnToDispatcher(ref=ref, department_id="transport", reason="again"), ROADS)


def test_close_needs_a_final_reply_and_rating_once(hotline: Hotline) -> None:
    ref = to_in_progress(hotline)
    with pytest.raises(InvalidTransition):
        run(hotline, c.Close(ref=ref), AGENT)
    with pytest.raises(InvalidTransition):
        run(hotline, c.Rate(ref=ref, score=5), citizen_of(hotline, ref))
    run(hotline, c.FinalReply(ref=ref, message="Fixed", channel="email"), AGENT)
    run(hotline, c.Resolve(ref=ref, resolution="Repaired"), AGENT)
    assert run(hotline, c.Close(ref=ref), AGENT)["status"] == "closed"
    run(hotline, c.Rate(ref=ref, score=4, comment="ok"), citizen_of(hotline, ref))
    with pytest.raises(InvalidTransition):
        run(hotline, c.Rate(ref=ref, score=5), citizen_of(hotline, ref))
    out = run(hotline, c.Reopen(ref=ref, reason="Pothole is back"), AGENT)
    assert out["status"] == "in_progress"
    with pytest.raises(InvalidTransition):
        run(hotline, c.Close(ref=ref), AGENT)


def test_information_request_answered_without_dispatch(hotline: Hotline) -> None:
    ref = register(hotline, kind="information", subtype="consultation", problem_code="pothole")["reference"]
    with pytest.raises(InvalidTransition):
        run(hotline, c.Dispatch(ref=ref), AGENT)
    run(hotline, c.FinalReply(ref=ref, message="Here is the answer"), AGENT)
    assert run(hotline, c.Close(ref=ref), AGENT)["status"] == "closed"


def test_information_becomes_action(hotline: Hotline) -> None:
    ref = register(hotline, kind="information", subtype="consultation", problem_code="pothole")["reference"]
    run(hotline, c.ChangeKind(ref=ref, kind="action", subtype="complaint", reason="citizen wants it fixed"), AGENT)
    assert run(hotline, c.Dispatch(ref=ref), AGENT)["status"] == "dispatched"


def test_reply_channel_needs_the_contact(hotline: Hotline) -> None:
    ref = to_in_progress(hotline, contact=c.Contact(name="A", phone="+39 06 1111 2222"))
    with pytest.raises(InvalidCommand):
        run(hotline, c.FinalReply(ref=ref, message="x", channel="email"), AGENT)


def test_interim_reply_sets_expected_date(hotline: Hotline, clock) -> None:  # type: ignore[no-untyped-def]
    ref = to_in_progress(hotline)
    with pytest.raises(InvalidCommand):
        run(hotline, c.InterimReply(ref=ref, message="m", delay_reason="r", expected_at=clock.now() - timedelta(hours=1)), AGENT)
    run(hotline, c.InterimReply(ref=ref, message="m", delay_reason="parts", expected_at=clock.now() + timedelta(days=3)), AGENT)
    from projections import request_status

    with hotline.read_store.engine.connect() as conn:
        row = request_status.by_reference(conn, ref)
    assert row is not None
    assert row["expected_at"] == clock.now() + timedelta(days=3)
    assert row["first_response_at"] == clock.now()


def test_extension_before_deadline_and_approval(hotline: Hotline, clock) -> None:  # type: ignore[no-untyped-def]
    ref = to_in_progress(hotline)
    due: datetime = hotline.store.repository.get(load_request(_Uow(hotline), ref).id).due_at
    with pytest.raises(InvalidCommand):
        run(hotline, c.RequestExtension(ref=ref, requested_due_at=due - timedelta(hours=1), reason="r"), ROADS)
    run(hotline, c.RequestExtension(ref=ref, requested_due_at=due + timedelta(days=2), reason="parts"), ROADS)
    with pytest.raises(InvalidTransition):
        run(hotline, c.RequestExtension(ref=ref, requested_due_at=due + timedelta(days=3), reason="again"), ROADS)
    with pytest.raises(Forbidden):
        run(hotline, c.DecideExtension(ref=ref, approve=True), AGENT)
    out = run(hotline, c.DecideExtension(ref=ref, approve=True, comment="ok"), SUP)
    assert out["due_at"] == (due + timedelta(days=2)).isoformat()
    clock.advance(days=30)
    with pytest.raises(InvalidTransition):
        run(hotline, c.RequestExtension(ref=ref, requested_due_at=due + timedelta(days=60), reason="late"), ROADS)


def test_supervision_and_notes(hotline: Hotline) -> None:
    ref = to_in_progress(hotline)
    with pytest.raises(Forbidden):
        run(hotline, c.Supervise(ref=ref, reason="x"), AGENT)
    run(hotline, c.Supervise(ref=ref, reason="repeat complaint"), SUP)
    with pytest.raises(InvalidTransition):
        run(hotline, c.Supervise(ref=ref, reason="again"), SUP)
    run(hotline, c.AddNote(ref=ref, text="called the citizen back"), AGENT)
    run(hotline, c.Supervise(ref=ref, supervised=False, reason="done"), SUP)


def test_work_order_and_duplicates_share_outcome(hotline: Hotline) -> None:
    first = to_in_progress(hotline)
    wo = run(hotline, woc.CreateWorkOrder(ref=first), AGENT)
    with pytest.raises(InvalidTransition):
        run(hotline, woc.CreateWorkOrder(ref=first), AGENT)
    second = register(hotline, problem_code="pothole", contact=c.Contact(name="Anna", phone="+39 347 111 2222"))["reference"]
    run(hotline, woc.LinkDuplicate(ref=second, work_order_id=wo["id"]), AGENT)
    other = register(hotline, problem_code="streetlight-out", contact=c.Contact(name="B", phone="+39 347 111 3333"))["reference"]
    with pytest.raises(InvalidCommand):
        run(hotline, woc.LinkDuplicate(ref=other, work_order_id=wo["id"]), AGENT)
    with pytest.raises(InvalidTransition):  # reclassifying a linked request would break the order's invariant
        run(hotline, c.Classify(ref=second, problem_code="streetlight-out"), AGENT)
    with pytest.raises(InvalidTransition):
        run(hotline, woc.CompleteWorkOrder(order_id=wo["id"], outcome="done"), ROADS)
    run(hotline, woc.StartWorkOrder(order_id=wo["id"]), ROADS)
    run(hotline, woc.CompleteWorkOrderTask(order_id=wo["id"], task_index=0), ROADS)
    with pytest.raises(InvalidCommand):
        run(hotline, woc.CompleteWorkOrderTask(order_id=wo["id"], task_index=9), ROADS)
    run(hotline, woc.CompleteWorkOrder(order_id=wo["id"], outcome="Filled with asphalt"), ROADS)
    third = register(hotline, problem_code="pothole", contact=c.Contact(name="C", phone="+39 347 111 4444"))["reference"]
    with pytest.raises(InvalidTransition):
        run(hotline, woc.LinkDuplicate(ref=third, work_order_id=wo["id"]), AGENT)
    from projections import department_workload, request_status

    with hotline.read_store.engine.connect() as conn:
        for ref in (first, second):
            row = request_status.by_reference(conn, ref)
            assert row is not None and row["work_order_outcome"] == "Filled with asphalt"
        order = department_workload.work_order(conn, wo["id"])
    assert order is not None
    assert order["status"] == "completed" and len(order["request_ids"]) == 2 and order["tasks_done"] == 1


def test_new_work_is_for_the_department_holding_the_case_and_a_reopened_case_may_get_more(hotline: Hotline) -> None:
    registered = register(hotline, problem_code="pothole")["reference"]
    with pytest.raises(InvalidTransition):  # not dispatched: no department holds it yet
        run(hotline, woc.CreateWorkOrder(ref=registered), AGENT)
    ref = to_in_progress(hotline)
    wo = run(hotline, woc.CreateWorkOrder(ref=ref), AGENT)
    run(hotline, woc.StartWorkOrder(order_id=wo["id"]), ROADS)
    run(hotline, woc.CompleteWorkOrderTask(order_id=wo["id"], task_index=0), ROADS)
    run(hotline, woc.CompleteWorkOrder(order_id=wo["id"], outcome="Filled with asphalt"), ROADS)
    run(hotline, c.FinalReply(ref=ref, message="Fixed", channel="email"), AGENT)
    run(hotline, c.Resolve(ref=ref, resolution="Repaired"), AGENT)
    run(hotline, c.Close(ref=ref), AGENT)
    run(hotline, c.Reopen(ref=ref, reason="The pothole is back"), AGENT)
    again = run(hotline, woc.CreateWorkOrder(ref=ref), AGENT)
    assert again["id"] != wo["id"]
    from projections import request_status

    with hotline.read_store.engine.connect() as conn:
        row = request_status.by_reference(conn, ref)
    assert row is not None and row["work_order_id"] == again["id"] and row["work_order_outcome"] is None


def test_expected_version_conflict_is_409(hotline: Hotline) -> None:
    out = register(hotline, problem_code="pothole")
    with pytest.raises(ConcurrencyConflict):
        run(hotline, c.AddNote(ref=out["reference"], text="x", expected_version=out["version"] - 1), AGENT)
    run(hotline, c.AddNote(ref=out["reference"], text="x", expected_version=out["version"]), AGENT)


def test_idempotency_key_has_no_second_effect(hotline: Hotline) -> None:
    cmd = c.RegisterRequest(kind="action", channel="web", description="Broken bench", contact=CONTACT)
    first = hotline.bus.execute(cmd, AGENT, idempotency_key="k-1", idempotency_scope="POST /requests")
    again = hotline.bus.execute(cmd, AGENT, idempotency_key="k-1", idempotency_scope="POST /requests")
    assert again.replayed and again.result["reference"] == first.result["reference"]
    other = c.RegisterRequest(kind="action", channel="web", description="Other", contact=CONTACT)
    with pytest.raises(InvalidCommand) as err:
        hotline.bus.execute(other, AGENT, idempotency_key="k-1", idempotency_scope="POST /requests")
    assert err.value.code == "idempotency_key_reused"
    from projections import request_status

    with hotline.read_store.engine.connect() as conn:
        assert len(request_status.search(conn)) == 1


def test_every_event_records_actor_and_correlation(hotline: Hotline) -> None:
    out = hotline.bus.execute(
        c.RegisterRequest(kind="action", channel="web", description="x", contact=CONTACT), AGENT, correlation_id="case-42"
    )
    envs = [e for e in hotline.store.envelopes(0, 1000) if e.position <= out.position and e.stream == "request"]
    assert envs and all(e.meta["actor_id"] == "op1" and e.meta["actor_role"] == "agent" for e in envs)
    assert all(e.meta["correlation_id"] == "case-42" and e.meta["causation_id"] for e in envs)


class _Uow:
    """A read-only unit of work for looking an aggregate up in a test."""

    def __init__(self, hotline: Hotline) -> None:
        from infra.unit_of_work import EventStoreUnitOfWork

        self.inner = EventStoreUnitOfWork(hotline.store)

    def __getattr__(self, name: str):  # type: ignore[no-untyped-def]
        return getattr(self.inner, name)
