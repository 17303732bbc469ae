"""The timer process's fast path records its own events in the timer table in bulk
(``sla_timers.mark_fired``) instead of reading them back through the projection: the
table must come out exactly as the projection would build it from the log, and the
fast path must never append a timer event the request would have refused."""

from __future__ import annotations

from typing import Any

import pytest
import sqlalchemy as sa

from consumers.timers import TimerProcess
from domain.base import FixedClock
from domain.requests import commands as c
from infra.runtime import Hotline
from projections import sla_timers
from projections.base import MemoryRows
from tests.sla.conftest import AGENT, ROADS, register, request_events, run

TIMER_TYPES = ("deadline_approaching", "deadline_missed", "reminder_sent", "escalated", "interim_reply_due")


def _table(h: Hotline, table: sa.Table) -> dict[tuple[Any, ...], dict[str, Any]]:
    with h.read_store.engine.connect() as conn:
        rows = [dict(r) for r in conn.execute(sa.select(table)).mappings()]
    return {tuple(r[c.name] for c in table.primary_key.columns): r for r in rows}


def _rebuilt(h: Hotline, table: sa.Table) -> dict[tuple[Any, ...], dict[str, Any]]:
    mem = MemoryRows(sla_timers.projection)
    mem.apply_all(h.store.iter_envelopes())
    return {tuple(r[c.name] for c in table.primary_key.columns): r for r in mem.rows(table.name)}


def _timer_keys(h: Hotline, request_id: str) -> list[str]:
    return [e.data["timer_key"] for e in request_events(h, request_id) if e.name in TIMER_TYPES]


def test_bulk_recorded_table_equals_the_projection_rebuilt_from_the_log(
    rome: Hotline, clock: FixedClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    h = rome
    ids = [register(h, urgency="urgent", problem_code="pothole")["id"] for _ in range(6)]
    clock.advance(days=7)  # every timer of the plan is due: several per request, pages split them
    bulk: list[int] = []
    mark = sla_timers.mark_fired

    def counted(conn: Any, fired: list[tuple[str, str, int, int]], at: Any) -> None:
        bulk.append(len(fired))
        mark(conn, fired, at)

    monkeypatch.setattr(sla_timers, "mark_fired", counted)
    process = TimerProcess(h, batch=7)
    assert process.tick() == 6 * 8
    assert sum(bulk) == 6 * 8, "every page went through the bulk path"
    assert process.stats.slow == 0 and process.stats.conflicts == 0
    for table in (sla_timers.TIMERS, sla_timers.REQUESTS):
        assert _table(h, table) == _rebuilt(h, table), table.name
    with h.read_store.engine.connect() as conn:
        assert sla_timers.due_timers(conn, clock.now()) == []
        assert sla_timers.timer_status(conn, clock.now())["fired"] == 6 * 8
    for rid in ids:
        keys = _timer_keys(h, rid)
        assert len(keys) == len(set(keys)) == 8


def test_bulk_record_refuses_a_gap_in_positions(rome: Hotline, clock: FixedClock) -> None:
    """Events of others between the table's position and the page's: the table must
    read the log instead (the caller catches up)."""
    h = rome
    rid = register(h, urgency="urgent", problem_code="pothole")["id"]
    process = TimerProcess(h)
    process.catch_up()
    before = _table(h, sla_timers.TIMERS)
    position = h.read_store.position(sla_timers.projection.name)
    key = next(iter(before))[1]
    assert not process._mark_fired([(rid, key, 99, position + 2)], clock.now())
    assert _table(h, sla_timers.TIMERS) == before
    assert h.read_store.position(sla_timers.projection.name) == position


def test_conflicting_page_never_appends_a_timer_the_request_no_longer_has(rome: Hotline, clock: FixedClock) -> None:
    """The page was read, then one request moved to another department (a new
    deadline: its old timers are obsolete). Its appends conflict; its later events must
    not be committed apart from the earlier ones (they would not conflict), and the slow
    path lets the request refuse them all. The other request's timers fire."""
    h = rome
    a = register(h, urgency="urgent", problem_code="pothole")
    b = register(h, urgency="urgent", problem_code="pothole")
    run(h, c.Dispatch(ref=a["reference"]), AGENT)
    clock.advance(days=7)
    process = TimerProcess(h)
    process.catch_up()
    with h.read_store.engine.connect() as conn:
        stale = sla_timers.due_timers(conn, clock.now())
    a_keys = {r["key"] for r in stale if r["request_id"] == a["id"]}
    assert len(a_keys) == 8 and len(stale) == 16
    run(h, c.ReturnToDispatcher(ref=a["reference"], department_id="transport", reason="not ours"), ROADS)
    run(h, c.Dispatch(ref=a["reference"], department_id="environment", provider_id="solid-waste"), AGENT)
    assert process._fire(stale, clock.now()) == 8  # b's
    assert process.stats.conflicts >= 1
    assert not set(_timer_keys(h, a["id"])) & a_keys, "an obsolete timer was appended"
    assert len(_timer_keys(h, b["id"])) == 8
    assert process.stats.skipped == 8
    for table in (sla_timers.TIMERS, sla_timers.REQUESTS):
        assert _table(h, table) == _rebuilt(h, table), table.name


def test_one_timer_per_page_fires_each_request_in_plan_order(rome: Hotline, clock: FixedClock) -> None:
    """Pages of one: every page appends after the previous page was recorded in bulk."""
    h = rome
    ids = [register(h, urgency="urgent", problem_code="pothole")["id"] for _ in range(3)]
    clock.advance(days=7)
    assert TimerProcess(h, batch=1).tick() == 3 * 8
    for rid in ids:
        events = request_events(h, rid)
        plan: dict[str, str] = {}
        for e in events:
            if e.type.endswith("timers_scheduled.v1"):
                plan.update({t["key"]: t["at"] for t in e.data["timers"]})
        fired = [e for e in events if e.name in TIMER_TYPES]
        assert [e.version for e in fired] == list(range(fired[0].version, fired[0].version + 8))
        assert [plan[e.data["timer_key"]] for e in fired] == sorted(plan[e.data["timer_key"]] for e in fired)
    for table in (sla_timers.TIMERS, sla_timers.REQUESTS):
        assert _table(h, table) == _rebuilt(h, table), table.name
