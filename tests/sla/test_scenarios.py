"""SLA scenarios with the injected clock: a week of deadlines in milliseconds."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from consumers.timers import TimerProcess
from domain.base import SYSTEM, FixedClock, InvalidTransition
from domain.calendars import commands as calc
from domain.catalogue import commands as catc
from domain.requests import commands as c
from domain.requests.aggregate import ServiceRequest, request_id_for
from domain.requests.sla import measures
from infra.runtime import Hotline
from projections import department_workload, sla_breaches, sla_timers
from tests.sla.conftest import AGENT, ENV, ROADS, SUP, register, request_events, run

SH = ZoneInfo("Asia/Shanghai")
TIMER_TYPES = {
    "deadline_approaching",
    "deadline_missed",
    "reminder_sent",
    "escalated",
    "interim_reply_due",
    "satisfaction_callback_due",
}


def kinds(h: Hotline, request_id: str) -> list[str]:
    return [e.name for e in request_events(h, request_id)]


def timer_events(h: Hotline, request_id: str) -> list[tuple[str, str]]:
    return [(e.name, e.data["timer_key"]) for e in request_events(h, request_id) if e.name in TIMER_TYPES]


def load(h: Hotline, ref: str) -> ServiceRequest:
    agg: ServiceRequest = h.store.repository.get(request_id_for(ref))
    return agg


def pending_keys(h: Hotline, request_id: str) -> set[str]:
    with h.read_store.engine.connect() as conn:
        return {r["key"] for r in sla_timers.request_timers(conn, request_id) if r["state"] == "pending"}


def test_urgent_request_friday_1755_before_a_holiday(shanghai: Hotline, clock: FixedClock) -> None:
    h = shanghai
    # The jurisdiction declares Monday a holiday (calendars change by command).
    run(h, calc.ChangeCalendar(jurisdiction="shanghai", declare_holidays=[date(2026, 11, 23)], reason="demo"), SUP)
    # "Within 1 working day the operator forms the request": a working-time rule.
    run(
        h,
        catc.AddProblemCode(
            code="form-request",
            category_id="road-surface",
            names=catc.Names(zh="形成工单", ar="تكوين الطلب", it="Formare la richiesta", en="Form the request"),
            work_order_template={"title": {"zh": "形成工单", "ar": "تكوين الطلب", "it": "Formare", "en": "Form"}, "tasks": []},
            deadlines={"urgent": {"hours": 24, "basis": "clock"}, "normal": {"hours": 8, "basis": "working"}},
        ),
        SYSTEM,
    )
    clock.current = datetime(2026, 11, 20, 17, 55, tzinfo=SH)  # a Friday, five minutes before closing
    urgent = register(h, urgency="urgent", problem_code="form-request")
    normal = register(h, urgency="normal", problem_code="form-request")
    # Urgent counts clock hours: holidays do not stop it.
    assert datetime.fromisoformat(urgent["due_at"]) == datetime(2026, 11, 21, 17, 55, tzinfo=SH)
    # Working time: 5 minutes on Friday, the weekend and the holiday skipped, 7 h 55 on Tuesday.
    assert datetime.fromisoformat(normal["due_at"]) == datetime(2026, 11, 24, 17, 55, tzinfo=SH)

    timers = TimerProcess(h, batch=50)
    clock.current = datetime(2026, 11, 21, 18, 0, tzinfo=SH)  # Saturday evening
    timers.tick()
    assert ("deadline_missed", "missed:20261121T095500Z") in timer_events(h, urgent["id"])
    assert not any(k == "deadline_missed" for k, _ in timer_events(h, normal["id"]))
    # Reminders to the department count working days: none on the weekend or the holiday.
    clock.current = datetime(2026, 11, 23, 23, 0, tzinfo=SH)
    timers.tick()
    assert not any(k == "reminder_sent" for k, _ in timer_events(h, urgent["id"]))
    clock.current = datetime(2026, 11, 25, 9, 0, tzinfo=SH)  # Wednesday opening
    timers.tick()
    urgent_events = timer_events(h, urgent["id"])
    assert ("reminder_sent", "reminder-1:20261121T095500Z") in urgent_events
    assert ("deadline_missed", "missed:20261124T095500Z") in timer_events(h, normal["id"])
    # Nothing fires twice, however often the process ticks.
    timers.tick()
    timers.tick()
    assert timer_events(h, urgent["id"]) == urgent_events


def test_returned_and_redispatched_request_gets_a_fresh_deadline(rome: Hotline, clock: FixedClock) -> None:
    h = rome
    req = register(h, urgency="normal", problem_code="pothole")  # 120 clock hours
    ref, rid = req["reference"], req["id"]
    run(h, c.Dispatch(ref=ref), AGENT)
    first_due = load(h, ref).due_at
    old_keys = pending_keys(h, rid)
    assert f"missed:{first_due.strftime('%Y%m%dT%H%M%SZ')}" in old_keys

    clock.advance(hours=48)
    run(h, c.ReturnToDispatcher(ref=ref, department_id="transport", reason="not a road: private yard"), ROADS)
    run(h, c.Dispatch(ref=ref, department_id="environment", provider_id="solid-waste"), AGENT)
    r = load(h, ref)
    assert r.department_id == "environment"
    assert r.due_at == clock.now() + timedelta(hours=120)  # the new department's full allowance
    assert r.window_start == clock.now()
    new_keys = pending_keys(h, rid)
    assert not (new_keys & old_keys), "timers of the old deadline must be gone"
    assert f"missed:{r.due_at.strftime('%Y%m%dT%H%M%SZ')}" in new_keys
    # Warnings count from the re-dispatch: 75 % of 120 h is 90 h after it.
    clock.advance(hours=89)
    TimerProcess(h).tick()
    assert not any(k == "deadline_approaching" for k, _ in timer_events(h, rid))
    clock.advance(hours=2)
    TimerProcess(h).tick()
    assert [k for k, _ in timer_events(h, rid)] == ["deadline_approaching"]
    # Re-dispatch to the same department does not move the deadline.
    run(h, c.ReturnToDispatcher(ref=ref, department_id="environment", reason="wrong again"), ENV)
    # two returns: the control office rules; a ruling to the same owner keeps the deadline
    run(h, c.RuleOwnership(ref=ref, department_id="environment", reason="it is waste"), SUP)
    assert load(h, ref).due_at == r.due_at
    # the workload moved with the request
    with h.read_store.engine.connect() as conn:
        loads = department_workload.workloads(conn)
    assert loads["environment"]["by_state"] == {"dispatched": 1}
    assert "transport" not in loads or loads["transport"]["open"] == 0


def test_extension_approved_after_the_warning_fired(rome: Hotline, clock: FixedClock) -> None:
    h = rome
    req = register(h, urgency="urgent", problem_code="pothole")  # 24 clock hours
    ref, rid = req["reference"], req["id"]
    registered = clock.now()
    run(h, c.Dispatch(ref=ref), AGENT)
    run(h, c.Accept(ref=ref, department_id="transport"), ROADS)
    timers = TimerProcess(h)
    clock.advance(hours=19)  # past 75 % (18 h)
    timers.tick()
    assert [k for k, _ in timer_events(h, rid)] == ["deadline_approaching"]
    run(h, c.RequestExtension(ref=ref, requested_due_at=registered + timedelta(hours=72), reason="asphalt plant closed"), ROADS)
    run(h, c.DecideExtension(ref=ref, approve=True, comment="ok"), SUP)
    assert load(h, ref).due_at == registered + timedelta(hours=72)
    # The old deadline passes: no miss, no 90 % warning for it.
    clock.advance(hours=10)  # 29 h after registration
    timers.tick()
    assert [k for k, _ in timer_events(h, rid)] == ["deadline_approaching"]
    with h.read_store.engine.connect() as conn:
        listed = sla_breaches.breaches(conn, clock.now(), due_within=timedelta(hours=4))
    assert not listed["overdue"] and not listed["due_soon"]
    # 75 % of the extended allowance (72 h) is 54 h after registration: a new warning.
    clock.current = registered + timedelta(hours=54, minutes=1)
    timers.tick()
    fired = timer_events(h, rid)
    assert [k for k, _ in fired] == ["deadline_approaching", "deadline_approaching"]
    assert fired[1][1].endswith(":" + (registered + timedelta(hours=72)).strftime("%Y%m%dT%H%M%SZ"))


def test_pause_stops_the_clock_and_moves_the_deadline(rome: Hotline, clock: FixedClock) -> None:
    h = rome
    req = register(h, urgency="urgent", problem_code="pothole")
    ref, rid = req["reference"], req["id"]
    due = load(h, ref).due_at
    run(h, c.Dispatch(ref=ref), AGENT)
    clock.advance(hours=2)
    run(h, c.Accept(ref=ref, department_id="transport"), ROADS)
    clock.advance(hours=1)
    run(h, c.WaitForCitizen(ref=ref, reason="need a photo of the pothole"), ROADS)
    assert load(h, ref).status == "waiting_citizen"
    assert pending_keys(h, rid) == set(), "a paused request has no running timers"
    with pytest.raises(InvalidTransition):
        run(h, c.FinalReply(ref=ref, message="done"), ROADS)
    clock.advance(hours=30)  # well past the original deadline, but the clock is stopped
    TimerProcess(h).tick()
    assert timer_events(h, rid) == []
    with h.read_store.engine.connect() as conn:
        assert sla_breaches.breaches(conn, clock.now())["overdue"] == []
        aged = sla_breaches.ageing(conn, clock.now())
        assert aged[0]["waiting_citizen"] == 1 and aged[0]["overdue"] == 0
        assert department_workload.workloads(conn)["transport"]["by_state"] == {"waiting_citizen": 1}
    run(h, c.CitizenResponded(ref=ref, note="photo sent"), AGENT)
    r = load(h, ref)
    assert r.status == "in_progress"
    assert r.due_at == due + timedelta(hours=30)
    m = measures(r, clock.now())
    assert m["paused_seconds"] == 30 * 3600
    assert m["time_to_acknowledge"] == 2 * 3600
    with h.read_store.engine.connect() as conn:
        assert department_workload.workloads(conn)["transport"]["by_state"] == {"in_progress": 1}
        row = next(iter(sla_breaches.breaches(conn, clock.now(), due_within=timedelta(hours=48))["due_soon"]))
        assert row["due_at"] == r.due_at
    # the 90 % warning is at 90 % of the running time: 21.6 h of clock time ran before
    # the pause plus after it; 3 h ran before, so 18.6 h after the resume.
    clock.advance(hours=18, minutes=30)
    TimerProcess(h).tick()
    assert [k for k, _ in timer_events(h, rid)] == ["deadline_approaching"]  # the 75 % one
    clock.advance(minutes=10)
    TimerProcess(h).tick()
    assert [k for k, _ in timer_events(h, rid)][:2] == ["deadline_approaching", "deadline_approaching"]


def test_overdue_request_escalated_reminded_then_closed_in_order(rome: Hotline, clock: FixedClock) -> None:
    h = rome
    req = register(h, urgency="urgent", problem_code="pothole")
    ref, rid = req["reference"], req["id"]
    run(h, c.Dispatch(ref=ref), AGENT)
    run(h, c.Accept(ref=ref, department_id="transport"), ROADS)
    timers = TimerProcess(h)
    for _ in range(7 * 24):  # a week, hour by hour
        clock.advance(hours=1)
        timers.tick()
    order = [k for k, _ in timer_events(h, rid)]
    assert order == [
        "deadline_approaching",  # 75 %
        "deadline_approaching",  # 90 %
        "interim_reply_due",
        "deadline_missed",
        "reminder_sent",  # 1 working day overdue
        "escalated",  # 2 working days overdue
        "reminder_sent",
        "reminder_sent",
    ]
    assert load(h, ref).supervised and load(h, ref).escalated
    with h.read_store.engine.connect() as conn:
        watch = sla_breaches.breaches(conn, clock.now())["overdue"]
        assert watch[0]["escalated"] and watch[0]["supervised"]
    run(h, c.FinalReply(ref=ref, message="Repaired"), ROADS)
    run(h, c.Close(ref=ref), AGENT)
    closed_at = clock.now()
    clock.advance(days=4)
    timers.tick()
    all_kinds = kinds(h, rid)
    tail = [k for k in all_kinds if k in TIMER_TYPES or k in ("final_replied", "closed")]
    assert tail[-3:] == ["final_replied", "closed", "satisfaction_callback_due"]
    # the events are in time order and every timer fired no earlier than planned
    events = request_events(h, rid)
    assert [e.time for e in events] == sorted(e.time for e in events)
    plan = {}
    for e in events:
        if e.type.endswith("timers_scheduled.v1"):
            plan.update({t["key"]: datetime.fromisoformat(t["at"]) for t in e.data["timers"]})
        if e.name in TIMER_TYPES:
            assert e.time >= plan[e.data["timer_key"]]
            assert e.meta["correlation_id"] == events[0].meta["correlation_id"], "the case's correlation"
            assert e.meta["causation_id"] == "timer:" + e.data["timer_key"]
    # reminders and escalation fall on Rome working days
    import yaml

    from domain.calendars.aggregate import load_calendars
    from tests.sla.conftest import CALENDARS

    cal = load_calendars(yaml.safe_load(CALENDARS.read_text("utf-8")))["rome"]
    for e in events:
        if e.name in ("reminder_sent", "escalated", "satisfaction_callback_due"):
            assert cal.is_working_time(plan[e.data["timer_key"]])
    callback = next(e for e in events if e.type.endswith("satisfaction_callback_due.v1"))
    assert plan[callback.data["timer_key"]] == cal.next_working_day_start(closed_at)


def test_refire_after_the_table_lags_changes_nothing(rome: Hotline, clock: FixedClock) -> None:
    """The timer table may lag the log: a fast-path refire conflicts, the slow path sees
    the key fired, and nothing is recorded twice."""
    h = rome
    req = register(h, urgency="urgent", problem_code="pothole")
    clock.advance(hours=25)
    process = TimerProcess(h)
    with h.read_store.engine.connect() as conn:
        stale = sla_timers.due_timers(conn, clock.now())  # read before firing
    assert process.tick() > 0
    before = timer_events(h, req["id"])
    assert process._fire(stale, clock.now()) == 0
    assert process.stats.conflicts >= 1
    assert timer_events(h, req["id"]) == before
    assert len({k for _, k in before}) == len(before)


def test_timer_command_refuses_early_firing(rome: Hotline, clock: FixedClock) -> None:
    h = rome
    req = register(h, urgency="urgent", problem_code="pothole")
    key = next(iter(load(h, req["reference"]).timers_scheduled))
    with pytest.raises(InvalidTransition):
        run(h, c.FireTimers(timers=[c.DueTimer(request_id=req["id"], key=key)]), SYSTEM)
    assert datetime.now(UTC).tzinfo is UTC


def test_warnings_of_a_working_time_deadline_fall_at_their_share_of_working_time(rome: Hotline, clock: FixedClock) -> None:
    """75 % of a 120-working-hour allowance fell at 22:22 on a Monday, 90 % on Christmas
    evening: the shares were taken of the clock time to the deadline."""
    import yaml

    from domain.calendars.aggregate import BusinessCalendar
    from tests.sla.conftest import CALENDARS

    calendar = BusinessCalendar.from_dict("rome", yaml.safe_load(CALENDARS.read_text("utf-8"))["calendars"]["rome"])
    rome_zone = ZoneInfo("Europe/Rome")
    clock.current = datetime(2026, 12, 2, 8, 29, tzinfo=rome_zone)  # a Wednesday, before opening
    out = register(rome, urgency="normal", problem_code="bus-complaint", collected={"line": "64"})
    r = load(rome, out["reference"])
    registered, due = r.registered_at, r.due_at
    allowed = calendar.working_time_between(registered, due)
    assert allowed == timedelta(hours=120)
    shares = {"approaching-75": 0.75, "approaching-90": 0.9, "interim-due": rome.bus.deps.sla.interim_reply_at}
    seen = set()
    for key, timer in r.timers_scheduled.items():
        name = key.split(":")[0]
        if name not in shares or shares[name] is None:
            continue
        seen.add(name)
        at = datetime.fromisoformat(timer["at"])
        assert calendar.is_working_time(at) or calendar.is_working_time(at - timedelta(seconds=1)), f"{name} at {at.astimezone(rome_zone)}"
        share = shares[name]
        assert share is not None
        assert abs(calendar.working_time_between(registered, at) - share * allowed) < timedelta(seconds=1), name
    assert {"approaching-75", "approaching-90"} <= seen
