"""Demo data: the catalogue and five days of a hotline's requests, in every state.

Everything goes through the real command path (the bus and the domain rules) with an
injected clock that walks from five days ago to now, so deadlines, overdue work and the
timelines look like those of a real service.
"""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from typing import Any

import yaml

from domain.base import SYSTEM, Actor, FixedClock
from domain.calendars import commands as calc
from domain.catalogue import commands as catc
from domain.requests import commands as c
from domain.requests.aggregate import request_id_for
from domain.work_orders import commands as woc
from infra.knowledge_data import KNOWLEDGE_FILE, load_articles, read_articles
from infra.runtime import Hotline
from infra.settings import Settings

CITIZENS = [
    {"name": "Mario Rossi", "phone": "+39 06 1234 5678", "email": "mario.rossi@example.it", "language": "it"},
    {"name": "Giulia Bianchi", "phone": "+39 347 555 0101", "language": "it"},
    {"name": "王芳", "phone": "+86 138 0013 8000", "language": "zh"},
    {"name": "李伟", "phone": "+86 139 1234 5678", "email": "liwei@example.cn", "language": "zh"},
    {"name": "فاطمة الزهراء", "phone": "+971 50 123 4567", "language": "ar"},
    {"name": "أحمد المنصوري", "phone": "+971 55 765 4321", "email": "ahmed@example.ae", "language": "ar"},
    {"name": "John Smith", "phone": "+1 202 555 0143", "email": "john.smith@example.com", "language": "en"},
    {"name": "Aisha Khan", "phone": "+44 20 7946 0958", "language": "en"},
]
CASES: list[tuple[str, str, str, str, dict[str, Any]]] = [
    ("pothole", "action", "complaint", "Deep pothole in front of number 12, cars swerve into the bike lane", {"size": "large"}),
    ("streetlight-out", "action", "complaint", "路灯已经三天不亮了，晚上很危险", {"pole_number": "A-117"}),
    (
        "appliance-removal",
        "action",
        "application",
        "Ritiro di un frigorifero vecchio",
        {"appliance_type": "fridge", "pickup_address": "Via Roma 10"},
    ),
    ("missed-collection", "action", "complaint", "لم يتم جمع النفايات منذ أسبوع", {"bin_type": "general"}),
    ("illegal-dumping", "action", "complaint", "Mattresses dumped behind the school", {}),
    ("bus-complaint", "action", "complaint", "Bus 64 skipped the stop twice this morning", {"line": "64"}),
    ("benefit-application", "action", "application", "申请低保，家里四口人", {"household_size": 4}),
]
QUESTIONS = [
    "What are the opening hours of the registry office?",
    "Quali documenti servono per la carta d'identità?",
    "垃圾分类的规定是什么？",
    "ما هي مواعيد جمع النفايات في حيّنا؟",
]
AGENT = Actor("op-anna", "agent", "Anna (operator)")
SUPERVISOR = Actor("sup-li", "supervisor", "Li (supervisor)")
CONTROL = Actor("ctrl-office", "control_office", "Control office")


def _department(dep: str) -> Actor:
    return Actor(f"dept-{dep}", "department", dep, departments=(dep,))


# One sign-in per staff role (README: "Demo users"); all with the password DEMO_PASSWORD.
DEMO_PASSWORD = "hotline-demo"
DEMO_STAFF: tuple[tuple[str, str, list[str], list[str]], ...] = (
    ("op-anna", "Anna (operator)", ["agent"], []),
    ("expert-marco", "Marco (expert seat)", ["expert"], []),
    ("sup-li", "Li (supervisor)", ["supervisor"], []),
    ("dept-transport", "Transport department", ["department"], ["transport"]),
    ("dept-environment", "Environment department", ["department"], ["environment"]),
    ("ctrl-office", "Control office", ["control_office"], []),
    ("analyst-sara", "Sara (analyst)", ["analyst"], []),
    ("auditor-omar", "Omar (auditor)", ["auditor"], []),
    ("admin", "Administrator", ["administrator"], []),
)


def enrol_demo_staff(hotline: Hotline) -> int:
    from pydantic import SecretStr

    from domain.identity.commands import EnrollStaff

    for username, name, roles, departments in DEMO_STAFF:
        cmd = EnrollStaff(username=username, name=name, roles=roles, departments=departments, password=SecretStr(DEMO_PASSWORD))
        hotline.bus.execute(cmd, SYSTEM)
    return len(DEMO_STAFF)


CONTACT_CENTER_HOURS = 2.0  # the last hours of the demo: simulated calls and chats
# The simulation goes on past its hours until its last contact has ended: it starts this
# much earlier, so that all of it lies in the past. (An agent whose last event were still
# to come would refuse every real command until then: "command time is earlier than the
# aggregate's last event".)
CONTACT_CENTER_DRAIN = timedelta(hours=1)


def load_demo(settings: Settings, *, only_if_empty: bool, console: Any = None, days: int = 5, seed: int = 12345) -> dict[str, int]:
    now = datetime.now(UTC).replace(microsecond=0)
    clock = FixedClock(now - timedelta(days=days))
    hotline = Hotline.start(settings, clock)
    try:
        if only_if_empty and hotline.store.max_position() > 0:
            if console:
                console.print("demo: the store already holds events; nothing loaded")
            return {"events": 0}
        # Requests over the days before; the contact center's traffic in the last hours.
        sim_start = now - timedelta(hours=CONTACT_CENTER_HOURS) - CONTACT_CENTER_DRAIN
        counts = _generate(hotline, clock, sim_start, random.Random(seed), console)
        counts["staff"] = enrol_demo_staff(hotline)
        counts["articles"] = len(load_articles(hotline, read_articles(KNOWLEDGE_FILE), SUPERVISOR))
        counts.update(_simulate_contact_center(hotline, clock, sim_start, console, seed))
        for hook in DEMO_HOOKS:
            hook(hotline, clock, now, console)
        if hotline.projector:
            hotline.projector.catch_up()
        counts["events"] = hotline.store.max_position()
        if console:
            console.print(f"demo: {counts}")
        return counts
    finally:
        hotline.close()


# Later capabilities (contact-center traffic, analytics …) add demo data here:
# each hook is called with (hotline, clock, now, console) after the requests are loaded.
DEMO_HOOKS: list[Any] = []


def _generate(hotline: Hotline, clock: FixedClock, now: datetime, rnd: random.Random, console: Any) -> dict[str, int]:
    from pathlib import Path

    catalogue = yaml.safe_load((Path(__file__).resolve().parent.parent / "infra" / "data" / "catalogue.yaml").read_text("utf-8"))
    run = hotline.bus.execute
    run(catc.ImportCatalogue(document=catalogue), SYSTEM)
    calendars = yaml.safe_load((Path(__file__).resolve().parent.parent / "infra" / "data" / "calendars.yaml").read_text("utf-8"))
    run(calc.ImportCalendars(document=calendars), SYSTEM)
    counts = {"requests": 0, "closed": 0, "work_orders": 0, "duplicates": 0, "awaiting_ruling": 0}
    open_orders: dict[str, str] = {}
    total_minutes = int((now - clock.now()).total_seconds() // 60)
    steps = 70
    for i in range(steps):
        clock.current = clock.now() + timedelta(minutes=total_minutes // (steps + 10))
        who = rnd.choice(CITIZENS)
        contact = c.Contact(name=who["name"], phone=who["phone"], email=who.get("email"))
        if i % 6 == 0:
            r = run(
                c.RegisterRequest.model_validate(
                    {
                        "kind": "information",
                        "subtype": "consultation",
                        "channel": rnd.choice(["phone", "web", "chat"]),
                        "description": rnd.choice(QUESTIONS),
                        "contact": contact,
                        "language": who["language"],
                    }
                ),
                AGENT,
            ).result
            counts["requests"] += 1
            run(c.FinalReply(ref=r["reference"], message="Answered from the knowledge base", channel="phone"), AGENT)
            run(c.Close(ref=r["reference"]), AGENT)
            counts["closed"] += 1
            continue
        code, kind, subtype, text, collected = rnd.choice(CASES)
        urgency = rnd.choices(["normal", "urgent", "control"], [6, 2, 2])[0]
        r = run(
            c.RegisterRequest.model_validate(
                {
                    "kind": kind,
                    "subtype": subtype,
                    "channel": rnd.choice(["phone", "web", "email", "sms", "chat"]),
                    "description": text,
                    "contact": contact,
                    "language": who["language"],
                    "urgency": urgency,
                    "problem_code": code,
                    "collected": collected,
                    "location": {"address": "Via Nazionale 1", "district": "Centro"},
                }
            ),
            AGENT,
        ).result
        counts["requests"] += 1
        ref = r["reference"]
        if code in open_orders and rnd.random() < 0.6:
            run(woc.LinkDuplicate(ref=ref, work_order_id=open_orders[code]), AGENT)
            counts["duplicates"] += 1
            continue
        fate = rnd.random()
        if fate < 0.1:
            continue  # still waiting for dispatch
        d = run(c.Dispatch(ref=ref), AGENT).result
        dep = _department_of(hotline, ref)
        if fate < 0.2:
            continue  # dispatched, not yet accepted: some of these go overdue
        if fate < 0.27:
            run(c.ReturnToDispatcher(ref=ref, department_id=dep, reason="Not our competence: private road"), _department(dep))
            run(c.Dispatch(ref=ref), AGENT)
            run(c.ReturnToDispatcher(ref=ref, department_id=dep, reason="Still not ours"), _department(dep))
            counts["awaiting_ruling"] += 1
            if fate < 0.24:
                run(c.RuleOwnership(ref=ref, department_id=dep, reason="Municipal road register lists it as public"), CONTROL)
            continue
        run(c.Accept(ref=ref, department_id=dep), _department(dep))
        wo = run(woc.CreateWorkOrder(ref=ref), AGENT).result
        counts["work_orders"] += 1
        open_orders[code] = wo["id"]
        if fate < 0.4:
            if rnd.random() < 0.5:
                run(c.Supervise(ref=ref, reason="Repeated complaints from the same street"), SUPERVISOR)
            if rnd.random() < 0.4 and clock.now() < datetime.fromisoformat(d["due_at"]):
                due = datetime.fromisoformat(d["due_at"])
                run(
                    c.RequestExtension(ref=ref, requested_due_at=due + timedelta(days=2), reason="Spare parts on order", department_id=dep),
                    _department(dep),
                )
                run(c.DecideExtension(ref=ref, approve=True, comment="Granted once"), SUPERVISOR)
            continue
        run(woc.StartWorkOrder(order_id=wo["id"], crew="Crew 3"), _department(dep))
        if fate < 0.55:
            run(
                c.InterimReply(
                    ref=ref, message="Work has started", delay_reason="Waiting for the crew", expected_at=clock.now() + timedelta(days=2)
                ),
                AGENT,
            )
            continue
        run(woc.CompleteWorkOrder(order_id=wo["id"], outcome="Fixed on site"), _department(dep))
        open_orders.pop(code, None)
        run(c.FinalReply(ref=ref, message="The problem has been fixed. Thank you for reporting it."), AGENT)
        run(c.Resolve(ref=ref, resolution="Fixed by the crew"), AGENT)
        run(c.Close(ref=ref), AGENT)
        counts["closed"] += 1
        if rnd.random() < 0.7:
            owner = hotline.store.read_reference(request_id_for(ref)).citizen_id  # a citizen rates their own case
            citizen = Actor(f"citizen:{owner}", "citizen", citizen_id=str(owner))
            run(c.Rate(ref=ref, score=rnd.choice([3, 4, 5, 5, 2]), comment="Quick service"), citizen)
    clock.current = now
    return counts


def _simulate_contact_center(hotline: Hotline, clock: FixedClock, start: datetime, console: Any, seed: int) -> dict[str, int]:
    """A few hours of calls and chats through the real router (``hotline simulate``)."""
    from consumers.router import Router
    from telephony_adapter.simulator import SimConfig, Simulator

    clock.current = start
    config = SimConfig.default_day(hours=CONTACT_CENTER_HOURS, agents=14, seed=seed)
    config.start = start
    if console:
        console.print(f"demo: simulating {CONTACT_CENTER_HOURS:g} hours of contact-center traffic …")
    report = Simulator(hotline.store, hotline.bus, clock, config, router=Router(hotline.store, hotline.bus)).run()
    if clock.current > start + timedelta(hours=CONTACT_CENTER_HOURS) + CONTACT_CENTER_DRAIN:
        raise RuntimeError(f"the simulated contact center ran until {clock.current}, into the time the demo is used in")
    return {"contact_center_events": report.events}


def _department_of(hotline: Hotline, ref: str) -> str:
    from domain.requests.aggregate import ServiceRequest, request_id_for

    req: ServiceRequest = hotline.store.repository.get(request_id_for(ref))
    assert req.department_id is not None
    return req.department_id
