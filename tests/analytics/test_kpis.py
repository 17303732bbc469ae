"""KPIs from DuckDB equal the same KPIs computed here in plain Python from the raw events."""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, datetime, timedelta
from typing import Any

import duckdb
import pytest

from analytics import kpis
from analytics.kpis import KpiParams
from domain.envelope import Envelope
from tests.analytics.conftest import DAY

START, END = DAY, DAY + timedelta(days=1)
P = KpiParams(sl_threshold_seconds=20, short_abandon_seconds=5, fcr_days=7, repeat_days=30)
AUX = {"logged_out", "break"}

# The request events that move a case along its lifecycle (the status a backlog is counted by).
LIFECYCLE_STEPS = frozenset(
    {"registered", "dispatched", "accepted", "returned_to_dispatcher", "sent_for_ruling", "final_replied", "resolved", "closed", "reopened"}
)


def naive(t: datetime) -> datetime:
    return t.astimezone(UTC).replace(tzinfo=None)


def by_aggregate(events: list[Envelope], stream: str) -> dict[str, list[Envelope]]:
    out: dict[str, list[Envelope]] = defaultdict(list)
    for e in events:
        if e.stream == stream:
            out[e.aggregate_id].append(e)
    for v in out.values():
        v.sort(key=lambda e: e.version)
    return out


def expected_contacts(events: list[Envelope]) -> dict[str, Any]:
    offered = answered = abandoned = short = within = handled = 0
    waits: list[float] = []
    handle = 0.0
    for evs in by_aggregate(events, "contact").values():
        names = {e.name: e for e in evs}
        arrived = names.get("arrived")
        if arrived is None or not (START <= arrived.time < END) or arrived.data.get("direction") == "outbound":
            continue
        if not ({"queued", "answered", "abandoned"} & set(names)):
            continue
        offered += 1
        if "answered" in names:
            answered += 1
            w = names["answered"].data["wait_seconds"]
            waits.append(w)
            within += w <= P.sl_threshold_seconds
            if "ended" in names:
                handled += 1
                handle += sum(e.data["talk_seconds"] + e.data["hold_seconds"] for e in evs if e.type.endswith(".ended.v1"))
                handle += sum(e.data["talk_seconds"] for e in evs if e.type.endswith(".transferred.v1"))
                handle += sum(e.data["wrap_seconds"] for e in evs if e.type.endswith(".wrapped_up.v1"))
        elif "abandoned" in names:
            abandoned += 1
            short += names["abandoned"].data["wait_seconds"] < P.short_abandon_seconds
    staffed = 0.0
    for all_evs in by_aggregate(events, "agent").values():
        evs = [e for e in all_evs if e.name in ("logged_in", "state_changed", "logged_out")]
        for cur, nxt in zip(evs, [*evs[1:], None], strict=True):
            state = "logged_out" if cur.type.endswith("logged_out.v1") else cur.data.get("state") or "available"
            if state in AUX:
                continue
            s = max(cur.time, START)
            e = min(nxt.time if nxt else END, END)
            if e > s:
                staffed += (e - s).total_seconds()
    return {
        "offered": offered,
        "answered": answered,
        "abandoned": abandoned,
        "short_abandoned": short,
        "service_level": within / answered,
        "service_level_offered": within / (answered + abandoned - short),
        "asa_seconds": sum(waits) / len(waits),
        "aht_seconds": handle / handled,
        "abandonment_rate": (abandoned - short) / (offered - short),
        "answer_rate": answered / offered,
        "occupancy": handle / staffed,
    }


def test_contact_kpis_match_plain_python(reader: duckdb.DuckDBPyConnection, traffic: list[Envelope]) -> None:
    got = kpis.contact_kpis(reader, START, END, "total", P)[0]
    want = expected_contacts(traffic)
    assert want["offered"] > 300 and want["abandoned"] > 20  # the day has real traffic
    for k, v in want.items():
        assert got[k] == pytest.approx(v, rel=1e-9), k


def test_daily_buckets_add_up(reader: duckdb.DuckDBPyConnection) -> None:
    days = kpis.contact_kpis(reader, START, END + timedelta(days=1), "day", P)
    assert [d["bucket"] for d in days] == [START.date(), END.date()]  # (UTC: the default zone)
    assert days[0]["offered"] == kpis.contact_kpis(reader, START, END, "total", P)[0]["offered"]
    hours = kpis.contact_kpis(reader, START, END, "hour", P)
    assert sum(h["offered"] for h in hours) == days[0]["offered"]
    occ_hours = sum(h["staffed_seconds"] or 0 for h in hours)
    assert occ_hours == pytest.approx(days[0]["staffed_seconds"])


def _request_state(events: list[Envelope]) -> dict[str, dict[str, Any]]:
    out = {}
    for rid, evs in by_aggregate(events, "request").items():
        r: dict[str, Any] = {"events": evs}
        for e in evs:
            n = e.name
            if n == "registered":
                r.update(registered_at=e.time, citizen=e.data["citizen_id"], subtype=e.data["subtype"])
            if n == "classified":
                r.update(code=e.data["problem_code"], department=e.data["department_id"])
        out[rid] = r
    return out


def test_request_kpis_match_plain_python(reader: duckdb.DuckDBPyConnection, traffic: list[Envelope]) -> None:
    window = [e for e in traffic if e.stream == "request" and START <= e.time < END]
    closes = [e for e in window if e.type.endswith(".closed.v1")]
    ratings = [e.data["score"] for e in window if e.type.endswith(".rated.v1")]
    got = kpis.request_kpis(reader, START, END, "total", P)[0]
    assert got["requests_registered"] == sum(e.type.endswith(".registered.v1") for e in window)
    assert got["closed"] == len(closes) and got["closed"] > 5
    assert got["on_time_rate"] == pytest.approx(sum(e.data["on_time"] for e in closes) / len(closes))
    assert got["satisfaction_avg"] == pytest.approx(sum(ratings) / len(ratings))
    assert got["satisfaction_rate"] == pytest.approx(sum(s >= 4 for s in ratings) / len(ratings))


def test_fcr_and_repeat_complaints_match_plain_python(reader: duckdb.DuckDBPyConnection, traffic: list[Envelope]) -> None:
    reqs = [r for r in _request_state(traffic).values() if "registered_at" in r]
    days = timedelta(days=P.fcr_days)
    eligible = [r for r in reqs if START <= r["registered_at"] < END and r["citizen"] and r.get("code")]
    first = 0
    for r in eligible:
        later = [
            o for o in reqs
            if o is not r and o["citizen"] == r["citizen"] and o.get("code") == r["code"]
            and r["registered_at"] < o["registered_at"] <= r["registered_at"] + days
        ]  # fmt: skip
        first += not later
    got = kpis.fcr(reader, START, END, "total", P)[0]
    assert got["eligible_requests"] == len(eligible)
    assert got["resolved_first_contact"] == first and 0 < first < len(eligible)

    complaints = [r for r in reqs if r["subtype"] == "complaint"]
    in_window = [r for r in complaints if START <= r["registered_at"] < END]
    repeats = 0
    for r in in_window:
        repeats += bool(r["citizen"] and r.get("code")) and any(
            o is not r and o["citizen"] == r["citizen"] and o.get("code") == r["code"]
            and r["registered_at"] - timedelta(days=P.repeat_days) <= o["registered_at"] < r["registered_at"]
            for o in complaints
        )  # fmt: skip
    got2 = kpis.repeat_complaints(reader, START, END, "total", P)[0]
    assert (got2["complaints"], got2["repeat_complaints"]) == (len(in_window), repeats)
    assert repeats > 0


def test_backlog_and_top_problems_match_plain_python(reader: duckdb.DuckDBPyConnection, traffic: list[Envelope]) -> None:
    as_of = END
    open_by_dept: dict[Any, int] = defaultdict(int)
    past_due: dict[Any, int] = defaultdict(int)
    for evs in by_aggregate(traffic, "request").values():
        seen = [e for e in evs if e.time <= as_of]
        if not seen:
            continue
        last = [e.name for e in seen if e.name in LIFECYCLE_STEPS][-1]
        if last in ("resolved", "closed"):
            continue
        # The department holding it: the last dispatch's, unless it was returned since
        # (then, and before any dispatch, it is with the hotline: no department).
        moves = [e for e in seen if e.name in ("dispatched", "returned_to_dispatcher")]
        dept = moves[-1].data["department_id"] if moves and moves[-1].name == "dispatched" else None
        due = [datetime.fromisoformat(e.data["due_at"]) for e in seen if e.data.get("due_at")][-1]
        open_by_dept[dept] += 1
        past_due[dept] += due < as_of
    got = {r["department"]: r for r in kpis.backlog(reader, as_of, "department")}
    assert {k: v["open_requests"] for k, v in got.items()} == dict(open_by_dept)
    assert {k: v["past_due"] for k, v in got.items()} == {k: past_due[k] for k in open_by_dept}

    counts: dict[str, int] = defaultdict(int)
    for r in _request_state(traffic).values():
        if "registered_at" in r and START <= r["registered_at"] < END and r.get("code"):
            counts[r["code"]] += 1
    top = kpis.top_problems(reader, START, END, P)
    assert [(r["problem_code"], r["requests"]) for r in top] == sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[: P.top]


def test_heatmap_and_knowledge_match_plain_python(reader: duckdb.DuckDBPyConnection, traffic: list[Envelope]) -> None:
    cells: dict[tuple[int, int], int] = defaultdict(int)
    for evs in by_aggregate(traffic, "contact").values():
        a = evs[0]
        names = {e.name for e in evs}
        if START <= a.time < END + timedelta(days=1) and a.data["direction"] == "inbound" and names & {"queued", "answered", "abandoned"}:
            cells[(a.time.isoweekday(), a.time.hour)] += 1
    got = {(r["weekday"], r["hour"]): r["offered"] for r in kpis.heatmap(reader, START, END + timedelta(days=1), P)}
    assert got == dict(cells)

    searches = [e for e in traffic if e.type == "hotline.knowledge.search_performed.v1" and START <= e.time < END]
    k = kpis.knowledge(reader, START, END)[0]
    assert k["searches"] == len(searches)
    # (the answer rate reads the outcomes, not "answered": see test_knowledge_kpis.py)
    assert k["with_results"] == sum(e.data["answered"] for e in searches)


def test_personal_data_never_reaches_duckdb(reader: duckdb.DuckDBPyConnection) -> None:
    n = reader.execute("SELECT count(*) FROM events WHERE data LIKE '%personal%' OR data LIKE '%+3906%'").fetchone()
    assert n == (0,)
    keys = reader.execute("SELECT count(DISTINCT citizen_key) FROM contact_events WHERE name = 'arrived'").fetchone()
    assert keys is not None and 1 < keys[0] <= 60  # pseudonymous caller keys, one per phone number


def test_kpi_suite_equals_the_single_kpis(reader: duckdb.DuckDBPyConnection) -> None:
    suite = kpis.kpi_suite(reader, START, END, P)
    assert suite["contacts"] == kpis.contact_kpis(reader, START, END, "total", P)
    assert suite["heatmap"] == kpis.heatmap(reader, START, END, P)
    assert suite["fcr"] == kpis.fcr(reader, START, END, "total", P)
    assert suite["backlog"] == kpis.backlog(reader, END, "department")
    assert set(suite["timings"]) >= {"contacts", "requests", "heatmap", "knowledge"}
