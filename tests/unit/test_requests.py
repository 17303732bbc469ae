"""Rules of the request lifecycle, through the service layer on both event stores."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from domain import commands as c
from domain import services as s
from domain.base import Actor, ConcurrencyConflict, InvalidCommand, InvalidTransition, NotFound
from infra.runtime import Hotline

AGENT = Actor("op1", "agent")
SUP = Actor("sup1", "supervisor")
CTRL = Actor("ctrl", "control_office")
CITIZEN = Actor("cit", "citizen")
ROADS = Actor("roads", "department")
CONTACT = c.Contact(name="Mario Rossi", phone="06 1234 5678", email="mario@example.it")


def register(h: Hotline, **kw: object) -> dict:
    fields: dict = {"kind": "action", "subtype": "complaint", "channel": "phone", "description": "Pothole", "contact": CONTACT}
    fields.update(kw)
    return h.bus.execute(s.register_request, AGENT, c.RegisterRequest(**fields)).result


def run(h: Hotline, handler, actor: Actor, *args):  # type: ignore[no-untyped-def]
    return h.bus.execute(handler, actor, *args).result


def to_in_progress(h: Hotline, **kw: object) -> str:
    ref = register(h, problem_code="pothole", **kw)["reference"]
    run(h, s.dispatch, AGENT, ref, c.Dispatch())
    run(h, s.accept, ROADS, ref, c.Accept(department_id="transport"))
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
        run(hotline, s.dispatch, AGENT, ref, c.Dispatch())
    run(hotline, s.classify, AGENT, ref, c.Classify(problem_code="pothole"))
    out = run(hotline, s.dispatch, AGENT, ref, c.Dispatch())
    assert out["status"] == "dispatched"
    with pytest.raises(InvalidTransition):
        run(hotline, s.dispatch, AGENT, ref, c.Dispatch())


def test_required_fields_of_problem_code(hotline: Hotline) -> None:
    ref = register(hotline)["reference"]
    with pytest.raises(InvalidCommand) as err:
        run(hotline, s.classify, AGENT, ref, c.Classify(problem_code="bus-complaint"))
    assert err.value.details["missing"] == ["line"]
    with pytest.raises(InvalidCommand):
        run(hotline, s.classify, AGENT, ref, c.Classify(problem_code="bus-complaint", collected={"line": "64", "colour": "red"}))
    with pytest.raises(NotFound):
        run(hotline, s.classify, AGENT, ref, c.Classify(problem_code="no-such-code"))


def test_only_the_owner_accepts_or_returns(hotline: Hotline) -> None:
    ref = register(hotline, problem_code="pothole")["reference"]
    run(hotline, s.dispatch, AGENT, ref, c.Dispatch())
    with pytest.raises(InvalidTransition) as err:
        run(hotline, s.accept, ROADS, ref, c.Accept(department_id="environment"))
    assert err.value.code == "not_owner"
    with pytest.raises(InvalidTransition) as err:
        run(hotline, s.accept, AGENT, ref, c.Accept(department_id="transport"))
    assert err.value.code == "forbidden"


def test_returned_twice_goes_to_control_office_whose_ruling_sticks(hotline: Hotline) -> None:
    ref = register(hotline, problem_code="pothole")["reference"]
    run(hotline, s.dispatch, AGENT, ref, c.Dispatch())
    with pytest.raises(InvalidCommand):
        run(hotline, s.return_to_dispatcher, ROADS, ref, c.ReturnToDispatcher(department_id="transport", reason=" "))
    out = run(hotline, s.return_to_dispatcher, ROADS, ref, c.ReturnToDispatcher(department_id="transport", reason="private road"))
    assert out["status"] == "returned"
    run(hotline, s.dispatch, AGENT, ref, c.Dispatch(department_id="environment"))
    out = run(hotline, s.return_to_dispatcher, ROADS, ref, c.ReturnToDispatcher(department_id="environment", reason="not waste"))
    assert out["status"] == "awaiting_ruling"
    with pytest.raises(InvalidTransition):
        run(hotline, s.dispatch, AGENT, ref, c.Dispatch())
    with pytest.raises(InvalidTransition):
        run(hotline, s.rule_ownership, AGENT, ref, c.RuleOwnership(department_id="transport", reason="register"))
    out = run(hotline, s.rule_ownership, CTRL, ref, c.RuleOwnership(department_id="transport", reason="public road register"))
    assert out["status"] == "dispatched"
    with pytest.raises(InvalidTransition):
        run(hotline, s.return_to_dispatcher, ROADS, ref, c.ReturnToDispatcher(department_id="transport", reason="again"))


def test_close_needs_a_final_reply_and_rating_once(hotline: Hotline) -> None:
    ref = to_in_progress(hotline)
    with pytest.raises(InvalidTransition):
        run(hotline, s.close, AGENT, ref, c.Close())
    with pytest.raises(InvalidTransition):
        run(hotline, s.rate, CITIZEN, ref, c.Rate(score=5))
    run(hotline, s.final_reply, AGENT, ref, c.FinalReply(message="Fixed", channel="email"))
    run(hotline, s.resolve, AGENT, ref, c.Resolve(resolution="Repaired"))
    assert run(hotline, s.close, AGENT, ref, c.Close())["status"] == "closed"
    run(hotline, s.rate, CITIZEN, ref, c.Rate(score=4, comment="ok"))
    with pytest.raises(InvalidTransition):
        run(hotline, s.rate, CITIZEN, ref, c.Rate(score=5))
    out = run(hotline, s.reopen, AGENT, ref, c.Reopen(reason="Pothole is back"))
    assert out["status"] == "in_progress"
    with pytest.raises(InvalidTransition):
        run(hotline, s.close, AGENT, ref, c.Close())


def test_information_request_answered_without_dispatch(hotline: Hotline) -> None:
    ref = register(hotline, kind="information", subtype="consultation", problem_code="pothole")["reference"]
    with pytest.raises(InvalidTransition):
        run(hotline, s.dispatch, AGENT, ref, c.Dispatch())
    run(hotline, s.final_reply, AGENT, ref, c.FinalReply(message="Here is the answer"))
    assert run(hotline, s.close, AGENT, ref, c.Close())["status"] == "closed"


def test_information_becomes_action(hotline: Hotline) -> None:
    ref = register(hotline, kind="information", subtype="consultation", problem_code="pothole")["reference"]
    run(hotline, s.change_kind, AGENT, ref, c.ChangeKind(kind="action", subtype="complaint", reason="citizen wants it fixed"))
    assert run(hotline, s.dispatch, AGENT, ref, c.Dispatch())["status"] == "dispatched"


def test_reply_channel_needs_the_contact(hotline: Hotline) -> None:
    ref = to_in_progress(hotline, contact=c.Contact(name="A", phone="+39 06 1111 2222"))
    with pytest.raises(InvalidCommand):
        run(hotline, s.final_reply, AGENT, ref, c.FinalReply(message="x", channel="email"))


def test_interim_reply_sets_expected_date(hotline: Hotline, clock) -> None:  # type: ignore[no-untyped-def]
    ref = to_in_progress(hotline)
    with pytest.raises(InvalidCommand):
        run(
            hotline,
            s.interim_reply,
            AGENT,
            ref,
            c.InterimReply(message="m", delay_reason="r", expected_at=clock.now() - timedelta(hours=1)),
        )
    run(
        hotline, s.interim_reply, AGENT, ref, c.InterimReply(message="m", delay_reason="parts", expected_at=clock.now() + timedelta(days=3))
    )
    from projections import request_status

    with hotline.read_store.engine.connect() as conn:
        row = request_status.by_reference(conn, ref)
    assert row is not None
    assert row["expected_at"] == clock.now() + timedelta(days=3)
    assert row["first_response_at"] == clock.now()


def test_extension_before_deadline_and_approval(hotline: Hotline, clock) -> None:  # type: ignore[no-untyped-def]
    ref = to_in_progress(hotline)
    due: datetime = hotline.store.repository.get(s.load_request(_Uow(hotline), ref).id).due_at
    with pytest.raises(InvalidCommand):
        run(hotline, s.request_extension, ROADS, ref, c.RequestExtension(requested_due_at=due - timedelta(hours=1), reason="r"))
    run(hotline, s.request_extension, ROADS, ref, c.RequestExtension(requested_due_at=due + timedelta(days=2), reason="parts"))
    with pytest.raises(InvalidTransition):
        run(hotline, s.request_extension, ROADS, ref, c.RequestExtension(requested_due_at=due + timedelta(days=3), reason="again"))
    with pytest.raises(InvalidTransition):
        run(hotline, s.decide_extension, AGENT, ref, c.DecideExtension(approve=True))
    out = run(hotline, s.decide_extension, SUP, ref, c.DecideExtension(approve=True, comment="ok"))
    assert out["due_at"] == (due + timedelta(days=2)).isoformat()
    clock.advance(days=30)
    with pytest.raises(InvalidTransition):
        run(hotline, s.request_extension, ROADS, ref, c.RequestExtension(requested_due_at=due + timedelta(days=60), reason="late"))


def test_supervision_and_notes(hotline: Hotline) -> None:
    ref = to_in_progress(hotline)
    with pytest.raises(InvalidTransition):
        run(hotline, s.supervise, AGENT, ref, c.Supervise(reason="x"))
    run(hotline, s.supervise, SUP, ref, c.Supervise(reason="repeat complaint"))
    with pytest.raises(InvalidTransition):
        run(hotline, s.supervise, SUP, ref, c.Supervise(reason="again"))
    run(hotline, s.add_note, AGENT, ref, c.AddNote(text="called the citizen back"))
    run(hotline, s.supervise, SUP, ref, c.Supervise(supervised=False, reason="done"))


def test_work_order_and_duplicates_share_outcome(hotline: Hotline) -> None:
    first = to_in_progress(hotline)
    wo = run(hotline, s.create_work_order, AGENT, first, c.CreateWorkOrder())
    with pytest.raises(InvalidTransition):
        run(hotline, s.create_work_order, AGENT, first, c.CreateWorkOrder())
    second = register(hotline, problem_code="pothole", contact=c.Contact(name="Anna", phone="+39 347 111 2222"))["reference"]
    run(hotline, s.link_duplicate, AGENT, second, c.LinkDuplicate(work_order_id=wo["id"]))
    other = register(hotline, problem_code="streetlight-out", contact=c.Contact(name="B", phone="+39 347 111 3333"))["reference"]
    with pytest.raises(InvalidCommand):
        run(hotline, s.link_duplicate, AGENT, other, c.LinkDuplicate(work_order_id=wo["id"]))
    with pytest.raises(InvalidTransition):  # reclassifying a linked request would break the order's invariant
        run(hotline, s.classify, AGENT, second, c.Classify(problem_code="streetlight-out"))
    with pytest.raises(InvalidTransition):
        run(hotline, s.complete_work_order, ROADS, wo["id"], c.CompleteWorkOrder(outcome="done"))
    run(hotline, s.start_work_order, ROADS, wo["id"], c.StartWorkOrder())
    run(hotline, s.complete_work_order_task, ROADS, wo["id"], c.CompleteWorkOrderTask(task_index=0))
    with pytest.raises(InvalidCommand):
        run(hotline, s.complete_work_order_task, ROADS, wo["id"], c.CompleteWorkOrderTask(task_index=9))
    run(hotline, s.complete_work_order, ROADS, wo["id"], c.CompleteWorkOrder(outcome="Filled with asphalt"))
    third = register(hotline, problem_code="pothole", contact=c.Contact(name="C", phone="+39 347 111 4444"))["reference"]
    with pytest.raises(InvalidTransition):
        run(hotline, s.link_duplicate, AGENT, third, c.LinkDuplicate(work_order_id=wo["id"]))
    from projections import department_workload, request_status

    with hotline.read_store.engine.connect() as conn:
        for ref in (first, second):
            row = request_status.by_reference(conn, ref)
            assert row is not None and row["work_order_outcome"] == "Filled with asphalt"
        order = department_workload.work_order(conn, wo["id"])
    assert order is not None
    assert order["status"] == "completed" and len(order["request_ids"]) == 2 and order["tasks_done"] == 1


def test_expected_version_conflict_is_409(hotline: Hotline) -> None:
    out = register(hotline, problem_code="pothole")
    with pytest.raises(ConcurrencyConflict):
        run(hotline, s.add_note, AGENT, out["reference"], c.AddNote(text="x", expected_version=out["version"] - 1))
    run(hotline, s.add_note, AGENT, out["reference"], c.AddNote(text="x", expected_version=out["version"]))


def test_idempotency_key_has_no_second_effect(hotline: Hotline) -> None:
    cmd = c.RegisterRequest(kind="action", channel="web", description="Broken bench", contact=CONTACT)
    first = hotline.bus.execute(s.register_request, AGENT, cmd, idempotency_key="k-1", idempotency_scope="POST /requests")
    again = hotline.bus.execute(s.register_request, AGENT, cmd, idempotency_key="k-1", idempotency_scope="POST /requests")
    assert again.replayed and again.result["reference"] == first.result["reference"]
    other = c.RegisterRequest(kind="action", channel="web", description="Other", contact=CONTACT)
    with pytest.raises(InvalidCommand) as err:
        hotline.bus.execute(s.register_request, AGENT, other, idempotency_key="k-1", idempotency_scope="POST /requests")
    assert err.value.code == "idempotency_key_reused"
    from projections import request_status

    with hotline.read_store.engine.connect() as conn:
        assert len(request_status.search(conn)) == 1


def test_every_event_records_actor_and_correlation(hotline: Hotline) -> None:
    out = hotline.bus.execute(
        s.register_request,
        AGENT,
        c.RegisterRequest(kind="action", channel="web", description="x", contact=CONTACT),
        correlation_id="case-42",
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
