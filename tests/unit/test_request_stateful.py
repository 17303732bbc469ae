"""Random sequences of request commands keep the lifecycle's invariants.

The service-layer handlers run against an in-memory event log (the domain is pure, so no
database is needed for this): every aggregate a command touches is rebuilt from its
events before the next command, and after each command the state the handler left in
memory must equal the state rebuilt from the recorded events.
"""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

import yaml
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import Bundle, RuleBasedStateMachine, invariant, rule

from domain.base import SYSTEM, Actor, Context, DomainError, FixedClock, HotlineAggregate, aggregate_state
from domain.catalogue import commands as catc
from domain.config import Deps
from domain.handling import Command
from domain.requests import commands as c
from domain.requests.aggregate import STATES, ServiceRequest
from domain.work_orders import commands as woc
from domain.work_orders.aggregate import WorkOrder
from infra.wiring import HANDLERS
from tests.conftest import CATALOGUE, START

AGENT = Actor("op", "agent")
SUP = Actor("sup", "supervisor")
CTRL = Actor("ctrl", "control_office")
DEPARTMENTS = ["transport", "environment", "social"]
CODES = ["pothole", "streetlight-out", "illegal-dumping", "missed-collection"]
PHONES = [f"+39 06 1234 56{i:02d}" for i in range(6)]


def _state(agg: HotlineAggregate) -> dict[str, Any]:
    return aggregate_state(agg)


class MemoryLog:
    def __init__(self) -> None:
        self.events: dict[uuid.UUID, list[Any]] = {}

    def rebuild(self, id: uuid.UUID) -> HotlineAggregate | None:
        agg = None
        for event in self.events.get(id, []):
            agg = event.mutate(agg)
        return agg


class MemoryUnitOfWork:
    def __init__(self, log: MemoryLog) -> None:
        self.log = log
        self.seen: dict[uuid.UUID, HotlineAggregate] = {}

    def find(self, cls: type, id: uuid.UUID) -> Any:
        if id not in self.seen:
            agg = self.log.rebuild(id)
            if agg is None:
                return None
            self.seen[id] = agg
        agg = self.seen[id]
        return agg if isinstance(agg, cls) else None

    read = find

    def get(self, cls: type, id: uuid.UUID) -> Any:
        from domain.base import NotFound

        agg = self.find(cls, id)
        if agg is None:
            raise NotFound(f"no {id}")
        return agg

    def add(self, aggregate: HotlineAggregate) -> None:
        self.seen[aggregate.id] = aggregate

    def continue_case(self, aggregate: HotlineAggregate) -> None:
        pass  # correlation ids are not what this model checks

    def commit(self) -> None:
        for agg in self.seen.values():
            new = agg.collect_events()
            self.log.events.setdefault(agg.id, []).extend(new)
            # Rebuilding from the events gives exactly the state the command left.
            assert _state(self.log.rebuild(agg.id)) == _state(agg), f"rebuild differs for {type(agg).__name__}"  # type: ignore[arg-type]


class RequestLifecycle(RuleBasedStateMachine):
    requests = Bundle("requests")
    orders = Bundle("orders")

    def __init__(self) -> None:
        self.citizens: dict[str, Actor] = {}
        super().__init__()
        self.log = MemoryLog()
        self.clock = FixedClock(START)
        self.deps = Deps(new_reference=self._reference)
        self.counter = 0
        self.refused = 0
        self.run(catc.ImportCatalogue(document=yaml.safe_load(CATALOGUE.read_text("utf-8"))), SYSTEM)

    def _reference(self, now: Any) -> str:
        self.counter += 1
        return f"{self.counter:08d}"

    def run(self, cmd: Command, actor: Actor) -> dict[str, Any] | None:
        uow = MemoryUnitOfWork(self.log)
        ctx = Context(actor, self.clock.now(), deps=self.deps)
        try:
            result = HANDLERS.for_command(cmd)(uow, ctx, cmd)
        except DomainError:
            self.refused += 1  # refused commands write nothing: the unit of work is dropped
            return None
        uow.commit()
        return result

    def request(self, ref: str) -> ServiceRequest:
        from domain.requests.aggregate import request_id_for

        agg = self.log.rebuild(request_id_for(ref))
        assert isinstance(agg, ServiceRequest)
        return agg

    # ------------------------------------------------------------------ rules
    @rule(
        target=requests,
        kind=st.sampled_from(["information", "action", "feedback"]),
        urgency=st.sampled_from(["urgent", "control", "normal"]),
        code=st.none() | st.sampled_from(CODES),
        phone=st.sampled_from(PHONES),
    )
    def register(self, kind: c.Kind, urgency: c.Urgency, code: str | None, phone: str) -> str:
        out = self.run(
            c.RegisterRequest(
                kind=kind, channel="phone", description="d", urgency=urgency, problem_code=code, contact=c.Contact(name="N", phone=phone)
            ),
            AGENT,
        )
        assert out is not None, "a complete registration is never refused"
        self.citizens[str(out["reference"])] = Actor("cit", "citizen", citizen_id=str(out["citizen_id"]))
        return str(out["reference"])

    @rule(ref=requests, code=st.sampled_from(CODES))
    def classify(self, ref: str, code: str) -> None:
        self.run(c.Classify(ref=ref, problem_code=code), AGENT)

    @rule(ref=requests, dep=st.none() | st.sampled_from(DEPARTMENTS))
    def dispatch(self, ref: str, dep: str | None) -> None:
        self.run(c.Dispatch(ref=ref, department_id=dep), AGENT)

    @rule(ref=requests, dep=st.sampled_from(DEPARTMENTS))
    def accept(self, ref: str, dep: str) -> None:
        self.run(c.Accept(ref=ref, department_id=dep), Actor(dep, "department", departments=(dep,)))

    @rule(ref=requests, dep=st.sampled_from(DEPARTMENTS))
    def return_it(self, ref: str, dep: str) -> None:
        self.run(c.ReturnToDispatcher(ref=ref, department_id=dep, reason="not ours"), Actor(dep, "department", departments=(dep,)))

    @rule(ref=requests, dep=st.sampled_from(DEPARTMENTS))
    def rule_ownership(self, ref: str, dep: str) -> None:
        self.run(c.RuleOwnership(ref=ref, department_id=dep, reason="ruling"), CTRL)

    @rule(ref=requests, days=st.integers(1, 10))
    def interim(self, ref: str, days: int) -> None:
        self.run(c.InterimReply(ref=ref, message="m", delay_reason="r", expected_at=self.clock.now() + timedelta(days=days)), AGENT)

    @rule(ref=requests)
    def reply(self, ref: str) -> None:
        self.run(c.FinalReply(ref=ref, message="answer"), AGENT)

    @rule(ref=requests)
    def resolve(self, ref: str) -> None:
        self.run(c.Resolve(ref=ref, resolution="done"), AGENT)

    @rule(ref=requests)
    def close(self, ref: str) -> None:
        self.run(c.Close(ref=ref), AGENT)

    @rule(ref=requests)
    def reopen(self, ref: str) -> None:
        self.run(c.Reopen(ref=ref, reason="again"), AGENT)

    @rule(ref=requests, score=st.integers(1, 5))
    def rate(self, ref: str, score: int) -> None:
        self.run(c.Rate(ref=ref, score=score), self.citizens[ref])  # a citizen rates their own case

    @rule(ref=requests, hours=st.integers(-50, 200))
    def extension(self, ref: str, hours: int) -> None:
        req = self.request(ref)
        self.run(c.RequestExtension(ref=ref, requested_due_at=req.due_at + timedelta(hours=hours), reason="r"), AGENT)

    @rule(ref=requests, approve=st.booleans())
    def decide(self, ref: str, approve: bool) -> None:
        self.run(c.DecideExtension(ref=ref, approve=approve, comment="c"), SUP)

    @rule(ref=requests, on=st.booleans())
    def supervise(self, ref: str, on: bool) -> None:
        self.run(c.Supervise(ref=ref, supervised=on, reason="r"), SUP)

    @rule(target=orders, ref=requests)
    def create_order(self, ref: str) -> str:
        out = self.run(woc.CreateWorkOrder(ref=ref), AGENT)
        return str(out["id"]) if out else str(uuid.uuid4())  # an unknown id: later commands are refused

    @rule(ref=requests, order=orders)
    def link(self, ref: str, order: str) -> None:
        self.run(woc.LinkDuplicate(ref=ref, work_order_id=order), AGENT)

    @rule(order=orders, action=st.sampled_from(["start", "complete", "cancel"]))
    def work(self, order: str, action: str) -> None:
        cmd = {
            "start": woc.StartWorkOrder(order_id=order),
            "complete": woc.CompleteWorkOrder(order_id=order, outcome="fixed"),
            "cancel": woc.CancelWorkOrder(order_id=order, reason="no longer needed"),
        }[action]
        self.run(cmd, Actor("d", "department", departments=("control", "environment", "transport", "social")))

    @rule(hours=st.integers(0, 72))
    def time_passes(self, hours: int) -> None:
        self.clock.advance(hours=hours)

    # ------------------------------------------------------------------ invariants
    @invariant()
    def lifecycle_invariants(self) -> None:
        for id in self.log.events:
            agg = self.log.rebuild(id)
            if isinstance(agg, ServiceRequest):
                assert agg.status in STATES
                assert agg.due_at >= agg.registered_at, "a deadline before registration"
                if agg.status == "closed":
                    assert agg.final_answer, "a closed request without a reply"
                if agg.status in ("dispatched", "in_progress"):
                    assert agg.department_id is not None and agg.problem_code is not None
                if agg.rated:
                    assert agg.status == "closed"
            elif isinstance(agg, WorkOrder):
                for rid in agg.request_ids:
                    req = self.log.rebuild(uuid.UUID(rid))
                    assert isinstance(req, ServiceRequest)
                    assert req.problem_code == agg.problem_code, "a linked request with another problem code"
                    assert req.work_order_id == str(agg.id)


TestRequestLifecycle = RequestLifecycle.TestCase
TestRequestLifecycle.settings = settings(max_examples=150, stateful_step_count=50, deadline=None)
