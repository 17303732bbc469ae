"""Every standard report on the demo's five days equals the same figures computed here in
plain Python from the raw events of the event store (not from DuckDB, not with its SQL).

The demo goes through the real command path and router, so its data has what synthetic
traffic lacks: steps of one request at the same instant (a reply and its resolution),
contacts that overflow from one queue to another and are answered there, transfers,
callbacks, shifts that log in and out, timers that escalate late work.
"""

from __future__ import annotations

import itertools
import json
import math
from collections import Counter, defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from analytics.ingest import AnalyticsStore
from analytics.kpis import KpiParams
from analytics.reports import STANDARD, ReportResult, Reports
from api.demo import load_demo
from domain.envelope import Envelope
from infra.eventstore import EventStore
from infra.settings import Settings
from tests.analytics.test_kpis import LIFECYCLE_STEPS
from tests.analytics.test_kpis import by_aggregate as streams

P = KpiParams()


@dataclass
class Demo:
    events: list[Envelope]
    reports: Reports
    start: datetime
    end: datetime
    tz: ZoneInfo  # the hotline's: the reports' days are its local days

    def run(self, name: str, by: str | None = None, **kw: Any) -> list[dict[str, Any]]:
        result = self.reports.run(name, self.start, self.end, by, **kw)
        return result.records()


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Demo]:
    data = tmp_path_factory.mktemp("demo-reports")
    settings = Settings(data_dir=data)
    load_demo(settings, only_if_empty=True)
    store = EventStore(settings)
    events: list[Envelope] = []
    while batch := store.envelopes(events[-1].position if events else 0, 5000):
        events.extend(batch)
    store.close()
    analytics = AnalyticsStore(data / "analytics.duckdb")
    for i in range(0, len(events), 2000):
        analytics.ingest_envelopes(events[i : i + 2000])
    analytics.publish_snapshot(force=True)
    analytics.close()
    start = min(e.time for e in events).replace(minute=0, second=0, microsecond=0)
    end = max(e.time for e in events) + timedelta(minutes=1)
    yield Demo(events, Reports(data / "analytics.duckdb", time_zone=settings.time_zone), start, end, ZoneInfo(settings.time_zone))


# ---------------------------------------------------------------------------- contacts
def contacts(events: list[Envelope], start: datetime, end: datetime, tz: ZoneInfo) -> list[dict[str, Any]]:
    """One row per inbound contact that reached a queue, as a supervisor would count it
    (its day, weekday and hour the hotline's local ones)."""
    rows = []
    for evs in streams(events, "contact").values():
        arrived = next((e for e in evs if e.name == "arrived"), None)
        if arrived is None or arrived.data.get("direction") == "outbound" or not start <= arrived.time < end:
            continue
        names = [e.name for e in evs]
        if not {"queued", "answered", "abandoned"} & set(names):
            continue
        queue = next(e.data["queue_id"] for e in evs if e.name in ("arrived", "queued") and e.data.get("queue_id"))
        answer = next((e for e in evs if e.name in ("answered", "callback_connected")), None)
        abandon = next((e for e in evs if e.name == "abandoned"), None)
        ended = [e for e in evs if e.name == "ended"]
        handle = sum(e.data["talk_seconds"] + e.data["hold_seconds"] for e in ended)
        handle += sum(e.data["talk_seconds"] for e in evs if e.name == "transferred")
        handle += sum(e.data["wrap_seconds"] for e in evs if e.name == "wrapped_up")
        rows.append(
            {
                "queue": queue,
                "day": arrived.time.astimezone(tz).date(),
                "cell": (arrived.time.astimezone(tz).isoweekday(), arrived.time.astimezone(tz).hour),
                "answered": answer is not None,
                "abandoned": answer is None and abandon is not None,
                "wait": answer.data["wait_seconds"] if answer else (abandon.data["wait_seconds"] if abandon else None),
                "agent": answer.data["agent_id"] if answer else None,
                "handled": answer is not None and bool(ended),
                "handle": handle,
                "overflowed": "overflowed" in names,
            }
        )
    return rows


def contact_figures(rows: list[dict[str, Any]]) -> dict[str, Any]:
    answered = [r for r in rows if r["answered"]]
    abandoned = [r for r in rows if r["abandoned"]]
    short = sum(r["wait"] < P.short_abandon_seconds for r in abandoned)
    within = sum(r["wait"] <= P.sl_threshold_seconds for r in answered)
    handled = [r for r in rows if r["handled"]]
    ratio = lambda a, b: a / b if b else None  # noqa: E731
    return {
        "offered": len(rows),
        "answered": len(answered),
        "abandoned": len(abandoned),
        "short_abandoned": short,
        "answered_within_threshold": within,
        "service_level": ratio(within, len(answered)),
        "service_level_offered": ratio(within, len(answered) + len(abandoned) - short),
        "asa_seconds": ratio(sum(r["wait"] for r in answered), len(answered)),
        "abandonment_rate": ratio(len(abandoned) - short, len(rows) - short),
        "answer_rate": ratio(len(answered), len(rows)),
        "aht_seconds": ratio(sum(r["handle"] for r in handled), len(handled)),
    }


def same(got: dict[str, Any], want: dict[str, Any], what: str) -> None:
    for key, value in want.items():
        if value is None or isinstance(value, int):
            assert got[key] == value, (what, key, got[key], value)
        else:
            assert got[key] == pytest.approx(value, rel=1e-9), (what, key)


def test_service_level_by_queue_and_by_day(demo: Demo) -> None:
    rows = contacts(demo.events, demo.start, demo.end, demo.tz)
    assert len(rows) > 300, "the demo has calls and chats every day"
    assert any(r["overflowed"] for r in rows), "some contacts overflow to another queue"
    by_queue: dict[str, list[dict[str, Any]]] = defaultdict(list)
    by_day: dict[date, list[dict[str, Any]]] = defaultdict(list)
    for r in rows:
        by_queue[r["queue"]].append(r)
        by_day[r["day"]].append(r)
    got = {r["bucket"]: r for r in demo.run("service_level", "queue")}
    assert set(got) == set(by_queue)
    for queue, q in by_queue.items():
        same(got[queue], contact_figures(q), queue)
    days = {r["bucket"]: r for r in demo.run("service_level", "day") if r["offered"]}
    assert set(days) == set(by_day) and len(days) >= 5
    for day, d in by_day.items():
        same(days[day], contact_figures(d), str(day))


def test_agents_and_heatmap(demo: Demo) -> None:
    rows = contacts(demo.events, demo.start, demo.end, demo.tz)
    answered = Counter(r["agent"] for r in rows if r["answered"])
    handled = Counter(r["agent"] for r in rows if r["handled"])
    got = {r["agent_id"]: r for r in demo.run("agents")}
    assert {a: g["answered"] for a, g in got.items()} == dict(answered)
    assert {a: g["handled"] for a, g in got.items() if g["handled"]} == dict(handled)
    assert len(got) >= 14, "every shift's agents took calls"
    # Time signed in and occupancy of each agent, from the agents' own events.
    staffed = staffed_by_agent(demo.events, demo.start, demo.end)
    assert len(staffed) >= 14 and all(seconds > 0 for seconds in staffed.values())
    assert {a: g["staffed_seconds"] for a, g in got.items() if g["staffed_seconds"]} == pytest.approx(staffed, rel=1e-9)
    for agent, g in got.items():
        handle = sum(r["handle"] for r in rows if r["handled"] and r["agent"] == agent)
        assert g["occupancy"] == pytest.approx(handle / staffed[agent], rel=1e-9), agent
    cells = Counter(r["cell"] for r in rows)
    heat = {(r["weekday"], r["hour"]): r["offered"] for r in demo.run("heatmap")}
    assert {k: v for k, v in heat.items() if v} == dict(cells)
    # Calls in every working hour of the weekdays shown (the hotline's local 08:00-20:00).
    assert len({hour for (_day, hour) in cells}) >= 12


STATE_STEPS = ("logged_in", "state_changed", "logged_out")


def staffed_by_agent(events: list[Envelope], start: datetime, end: datetime) -> dict[str, float]:
    """Seconds each agent (by their own id) was signed in and not in an aux state within
    [start, end); a state still open lasts until the latest event."""
    from analytics.schema import AUX_STATES

    last = max(e.time for e in events)
    out: dict[str, float] = defaultdict(float)
    for evs in streams(events, "agent").values():
        # The steps that change the state, as the ``agent_states`` view reads them.
        changes = [e for e in evs if e.name in STATE_STEPS or (e.name == "reserved" and e.data.get("state"))]
        for cur, nxt in zip(changes, [*changes[1:], None], strict=True):
            state = "logged_out" if cur.name == "logged_out" else cur.data.get("state") or "available"
            if state in AUX_STATES:
                continue
            begin, until = max(cur.time, start), min(nxt.time if nxt else last, end)
            if until > begin:
                out[cur.data["agent_id"]] += (until - begin).total_seconds()
    return dict(out)


# ---------------------------------------------------------------------------- requests
def department(evs: list[Envelope]) -> str | None:
    """The department a request is with now: the last dispatch's, else the classification's."""
    for name in ("dispatched", "classified"):
        found = [e.data["department_id"] for e in evs if e.name == name and e.data.get("department_id")]
        if found:
            return found[-1]
    return None


def assigned_department(evs: list[Envelope]) -> str | None:
    """The department a request is dispatched to now (the backlog's): the last dispatch's,
    unless it was returned to the dispatcher since; None while the hotline holds it."""
    moves = [e for e in evs if e.name in ("dispatched", "returned_to_dispatcher")]
    return moves[-1].data["department_id"] if moves and moves[-1].name == "dispatched" else None


def test_requests_by_department(demo: Demo) -> None:
    want: dict[Any, Counter[str]] = defaultdict(Counter)
    on_time: Counter[Any] = Counter()
    scores: dict[Any, list[int]] = defaultdict(list)
    for evs in streams(demo.events, "request").values():
        dep = department(evs)
        for e in evs:
            if demo.start <= e.time < demo.end:
                want[dep][e.name] += 1
                on_time[dep] += e.name == "closed" and bool(e.data.get("on_time"))
                if e.name == "rated":
                    scores[dep].append(e.data["score"])
    got = {r["bucket"]: r for r in demo.run("requests", "department")}
    assert set(got) == set(want)
    for dep, n in want.items():
        g = got[dep]
        assert (g["requests_registered"], g["dispatches"], g["returns"], g["closed"], g["reopened"], g["ratings"]) == (
            n["registered"],
            n["dispatched"],
            n["returned_to_dispatcher"],
            n["closed"],
            n["reopened"],
            n["rated"],
        ), dep
        assert g["closed_on_time"] == on_time[dep]
        if scores[dep]:
            assert g["satisfaction_avg"] == pytest.approx(sum(scores[dep]) / len(scores[dep]))
    closed = sum(n["closed"] for n in want.values())
    late = closed - sum(on_time.values())
    assert closed > 10 and late > 0, "some closures are late: on-time completion is not trivially 100 %"


def backlog_at(events: list[Envelope], as_of: datetime) -> tuple[Counter[Any], Counter[Any]]:
    """Open requests and those past due by department, as of ``as_of``: each request's
    last step by then, in the order the request took its steps (its versions); a request
    counts for the department it is dispatched to then, else for none (None)."""
    open_by: Counter[Any] = Counter()
    past_due: Counter[Any] = Counter()
    for evs in streams(events, "request").values():
        seen = [e for e in evs if e.time <= as_of]
        steps = [e for e in seen if e.name in LIFECYCLE_STEPS]
        if not steps or steps[-1].name in ("resolved", "closed"):
            continue
        dep = assigned_department(seen)
        open_by[dep] += 1
        due = [datetime.fromisoformat(e.data["due_at"]) for e in seen if e.data.get("due_at")]
        past_due[dep] += bool(due) and due[-1] < as_of
    return open_by, past_due


def test_backlog_counts_ties_by_their_order(demo: Demo) -> None:
    """A request replied to and resolved at the same instant is resolved, not open: the
    backlog as of every moment where a tie is the last step, and every six hours."""
    tied = []
    for evs in streams(demo.events, "request").values():
        steps = [e for e in evs if e.name in LIFECYCLE_STEPS]
        tied += [b.time for a, b in itertools.pairwise(steps) if a.time == b.time]
    assert tied, "the demo has steps at the same instant"
    moments = sorted(set(tied))[:10]
    at = demo.start + timedelta(hours=6)
    while at < demo.end:
        moments.append(at)
        at += timedelta(hours=6)
    moments.append(demo.end)
    overdue = 0
    at_hotline = 0
    for as_of in moments:
        open_by, past_due = backlog_at(demo.events, as_of)
        got = {r["department"]: r for r in demo.reports.run("backlog", demo.start, as_of + timedelta(microseconds=1)).records()}
        assert {d: r["open_requests"] for d, r in got.items()} == dict(open_by), as_of
        assert {d: r["past_due"] for d, r in got.items()} == {d: past_due[d] for d in open_by}, as_of
        overdue = sum(past_due.values())
        at_hotline += open_by[None]
    assert overdue > 0, "some work is overdue now"
    assert at_hotline > 0, "some open requests are not with a department (never dispatched or returned)"


def test_problems_fcr_and_repeats(demo: Demo) -> None:
    reqs = []
    for evs in streams(demo.events, "request").values():
        reg = next((e for e in evs if e.name == "registered"), None)
        codes = [e.data["problem_code"] for e in evs if e.name == "classified"]
        if reg is not None:
            reqs.append(
                {
                    "at": reg.time,
                    "citizen": reg.data.get("citizen_id"),
                    "code": codes[-1] if codes else None,
                    "subtype": reg.data["subtype"],
                }
            )
    in_window = [r for r in reqs if demo.start <= r["at"] < demo.end]
    counts = Counter(r["code"] for r in in_window if r["code"])
    top = demo.run("problems")
    assert [(r["problem_code"], r["requests"]) for r in top] == sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[: P.top]

    eligible = [r for r in in_window if r["citizen"] and r["code"]]
    first = sum(
        not any(
            o is not r
            and o["citizen"] == r["citizen"]
            and o["code"] == r["code"]
            and r["at"] < o["at"] <= r["at"] + timedelta(days=P.fcr_days)
            for o in reqs
        )
        for r in eligible
    )
    fcr = demo.run("fcr")[0]
    assert (fcr["eligible_requests"], fcr["resolved_first_contact"]) == (len(eligible), first)

    complaints = [r for r in reqs if r["subtype"] == "complaint"]
    repeats = sum(
        bool(r["citizen"] and r["code"])
        and any(
            o is not r
            and o["citizen"] == r["citizen"]
            and o["code"] == r["code"]
            and r["at"] - timedelta(days=P.repeat_days) <= o["at"] < r["at"]
            for o in complaints
        )
        for r in complaints
        if demo.start <= r["at"] < demo.end
    )
    rep = demo.run("repeat_complaints")[0]
    assert rep["repeat_complaints"] == repeats and repeats > 0


def test_daily_report_adds_calls_and_requests_up(demo: Demo) -> None:
    rows = contacts(demo.events, demo.start, demo.end, demo.tz)
    offered = Counter(r["day"] for r in rows)
    registered = Counter(e.time.astimezone(demo.tz).date() for e in demo.events if e.stream == "request" and e.name == "registered")
    got = {r["bucket"]: r for r in demo.run("daily")}
    assert {d: r["offered"] for d, r in got.items() if r["offered"]} == dict(offered)
    assert {d: r["requests_registered"] for d, r in got.items() if r["requests_registered"]} == dict(registered)
    result = demo.reports.run("daily", demo.start, demo.end)
    assert result.chart is not None and {"offered", "requests_registered"} <= set(result.chart.y)


def _strict_json(text: str) -> Any:
    def refuse(constant: str) -> Any:
        raise ValueError(f"not JSON: {constant}")

    return json.loads(text, parse_constant=refuse)


@pytest.mark.parametrize("name", sorted(STANDARD))
def test_every_standard_report_is_valid_json(demo: Demo, name: str) -> None:
    result: ReportResult = demo.reports.run(name, demo.start, demo.end)
    body = _strict_json(result.to_json())
    assert body["rows"], name  # every report has something to show on the demo
    for row in result.rows:
        for value in row:
            assert not (isinstance(value, float) and not math.isfinite(value)), (name, row)


def test_the_demo_ends_with_one_shift_on_duty(demo: Demo) -> None:
    agents = streams(demo.events, "agent")
    state = {evs[0].data["agent_id"]: [e.data["state"] for e in evs if e.name == "state_changed"][-1] for evs in agents.values()}
    on = sorted(aid for aid, last in state.items() if last != "logged_out")
    shifts = {aid.rsplit("-", 1)[0] for aid in on}
    assert on and len(shifts) == 1, on
    assert max(e.time for e in demo.events) <= datetime.now(UTC), "nothing in the future"


def test_occupancy_today_counts_staffed_time_only_until_the_latest_event(demo: Demo) -> None:
    """An agent still signed in is staffed up to what the data knows, not to midnight."""
    from analytics.kpis import staffed_time
    from analytics.reports import connect_reader
    from analytics.schema import AUX_STATES

    last = max(e.time for e in demo.events)
    midnight = last.replace(hour=0, minute=0, second=0, microsecond=0)
    day_end = midnight + timedelta(days=1)
    want = 0.0
    for evs in streams(demo.events, "agent").values():
        changes = [e for e in evs if e.name in ("logged_in", "state_changed", "logged_out")]
        for cur, nxt in zip(changes, [*changes[1:], None], strict=True):
            state = "logged_out" if cur.name == "logged_out" else cur.data.get("state") or "available"
            if state in AUX_STATES:
                continue
            begin, end = max(cur.time, midnight), min(nxt.time if nxt else last, day_end)
            want += max(0.0, (end - begin).total_seconds())
    conn = connect_reader(demo.reports.duckdb_path)
    try:
        got = staffed_time(conn, midnight, day_end, "total")[0]["staffed_seconds"]
    finally:
        conn.close()
    assert want > 0 and got == pytest.approx(want, rel=1e-9)


def test_knowledge_report(demo: Demo) -> None:
    """Searches at the desk and on the portal, the articles used to answer, the deflections."""
    searches: dict[str, set[str]] = defaultdict(set)
    for e in demo.events:
        if e.stream == "knowledgesearch" or e.name in ("search_performed", "used_to_answer", "deflected"):
            searches[e.aggregate_id].add(e.name)
    performed = [names for names in searches.values() if "search_performed" in names]
    got = demo.run("knowledge")[0]
    assert got["searches"] == len(performed) > 20
    assert got["used_to_answer"] == sum("used_to_answer" in n for n in performed) > 0
    assert got["deflected"] == sum("deflected" in n for n in performed) > 0
