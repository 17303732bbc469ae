"""Analytics benchmark: ingest rate and the standard KPI suite over a year of traffic.

    python tests/bench/bench_analytics.py                      # 10,000,000 contact events
    python tests/bench/bench_analytics.py --contact-events 1000000 --dir /tmp/bench

Generates a year of contact-center traffic (contacts with their queue, answer or
abandon, hold, end and wrap-up events; agents' logins, breaks and logouts; requests from
registration to rating) directly as envelopes — not through the event store — and
feeds them to ``AnalyticsStore.ingest_envelopes`` in batches, timing only the ingest
calls (which also keep the fact tables ``contact_facts`` / ``request_facts`` current).
Then it publishes a snapshot and times the whole KPI suite
(:func:`analytics.kpis.kpi_suite`) for one day and for the whole year on a read-only
connection, as analysts would run it. The machine is shared: the output carries the
load average and the ingest rate per CPU second of this process, which the load
barely moves, beside the wall-clock rate.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import statistics
import sys
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from analytics import kpis
from analytics.ingest import AnalyticsStore
from analytics.reports import connect_reader
from domain.envelope import Envelope

YEAR = datetime(2025, 1, 1, tzinfo=UTC)
QUEUES = [f"q-{i}" for i in range(6)]
AGENTS = [f"agent-{i:03d}" for i in range(60)]
CODES = [(f"PC-{i:03d}", f"cat-{i % 12}", f"dept-{i % 8}") for i in range(120)]
META = {"actor_id": "bench", "actor_role": "system", "correlation_id": None, "causation_id": None}
EVENTS_PER_CONTACT = 5.8  # measured average of the mix below


class Gen:
    def __init__(self, seed: int = 1) -> None:
        self.rng = np.random.default_rng(seed)
        self.position = 0
        self.contact_events = 0
        self.request_events = 0
        self.agent_versions: dict[str, int] = {}

    def env(self, stream: str, name: str, agg: str, version: int, at: datetime, data: dict[str, object]) -> Envelope:
        self.position += 1
        return Envelope(f"hotline.{stream}.{name}.v1", stream, agg, version, self.position, at, data, META)

    def day(self, day: datetime, contacts: int) -> list[Envelope]:
        rng = self.rng
        out: list[Envelope] = []
        for a in AGENTS[: 40 + day.toordinal() % 20]:
            v = self.agent_versions.get(a, 0)
            self.agent_versions[a] = v + 4
            login = day + timedelta(hours=7, minutes=int(rng.integers(0, 60)))
            out.append(self.env("agent", "logged_in", a, v + 1, login, {"state": "available"}))
            brk = day + timedelta(hours=12, minutes=int(rng.integers(0, 90)))
            out.append(self.env("agent", "state_changed", a, v + 2, brk, {"state": "break", "reason": "lunch"}))
            out.append(self.env("agent", "state_changed", a, v + 3, brk + timedelta(minutes=30), {"state": "available", "reason": None}))
            out.append(
                self.env("agent", "logged_out", a, v + 4, day + timedelta(hours=19, minutes=int(rng.integers(0, 60))), {"reason": None})
            )
        # Arrivals follow a two-peak day (10:00 and 15:00).
        secs = np.clip(
            np.where(rng.random(contacts) < 0.55, rng.normal(10.5, 1.5, contacts), rng.normal(15, 2, contacts)) * 3600,
            7 * 3600,
            20 * 3600 - 1,
        )
        secs.sort()
        waits = rng.exponential(25, contacts)
        talk = rng.gamma(4, 55, contacts)
        wrap = rng.gamma(2, 15, contacts)
        abandon = rng.random(contacts) < 0.12
        held = rng.random(contacts) < 0.2
        queue = rng.integers(0, len(QUEUES), contacts)
        agent = rng.integers(0, 40, contacts)
        phones = rng.integers(0, 400_000, contacts)
        for i in range(contacts):
            cid = f"c-{self.position:012d}"
            at = day + timedelta(seconds=float(secs[i]))
            q = QUEUES[queue[i]]
            w = float(waits[i])
            out.append(
                self.env(
                    "contact",
                    "arrived",
                    cid,
                    1,
                    at,
                    {
                        "channel": "phone",
                        "queue_id": q,
                        "language": "it",
                        "priority": 1,
                        "personal": {"phone": f"+3906{phones[i]:07d}"},
                        "direction": "inbound",
                    },
                )
            )
            q_at = at + timedelta(seconds=8)
            out.append(self.env("contact", "queued", cid, 2, q_at, {"queue_id": q, "priority": 1}))
            if abandon[i]:
                out.append(
                    self.env("contact", "abandoned", cid, 3, q_at + timedelta(seconds=w), {"queue_id": q, "wait_seconds": round(w, 2)})
                )
                self.contact_events += 3
                continue
            ag = AGENTS[agent[i]]
            ans = q_at + timedelta(seconds=w)
            out.append(self.env("contact", "offered", cid, 3, ans - timedelta(seconds=2), {"agent_id": ag, "queue_id": q}))
            out.append(self.env("contact", "answered", cid, 4, ans, {"agent_id": ag, "queue_id": q, "wait_seconds": round(w, 2)}))
            v, hold = 5, 0.0
            if held[i]:
                hold = 30.0
                out.append(self.env("contact", "held", cid, 5, ans + timedelta(seconds=20), {"agent_id": ag}))
                out.append(self.env("contact", "resumed", cid, 6, ans + timedelta(seconds=50), {"agent_id": ag}))
                v = 7
            end = ans + timedelta(seconds=float(talk[i]) + hold)
            out.append(
                self.env(
                    "contact",
                    "ended",
                    cid,
                    v,
                    end,
                    {"agent_id": ag, "talk_seconds": round(float(talk[i]), 2), "hold_seconds": hold},
                )
            )
            out.append(
                self.env(
                    "contact",
                    "wrapped_up",
                    cid,
                    v + 1,
                    end + timedelta(seconds=float(wrap[i])),
                    {"agent_id": ag, "wrap_seconds": round(float(wrap[i]), 2), "disposition": "answered"},
                )
            )
            self.contact_events += v + 1
        out += self.requests(day, contacts // 4)
        return out

    def requests(self, day: datetime, n: int) -> list[Envelope]:
        rng = self.rng
        out = []
        codes = rng.integers(0, len(CODES), n)
        secs = rng.integers(7 * 3600, 20 * 3600, n)
        hours = rng.gamma(2, 20, n)
        citizens = rng.integers(0, 200_000, n)
        for i in range(n):
            rid = str(uuid.UUID(int=int(rng.integers(0, 2**63)) << 64 | i))
            at = day + timedelta(seconds=int(secs[i]))
            code, cat, dept = CODES[codes[i]]
            due = at + timedelta(hours=48)
            out.append(
                self.env(
                    "request",
                    "registered",
                    rid,
                    1,
                    at,
                    {
                        "reference": rid[:12],
                        "kind": "action",
                        "subtype": "complaint" if i % 3 == 0 else "application",
                        "channel": "phone",
                        "urgency": "control",
                        "citizen_id": f"cit-{citizens[i]}",
                        "personal": {"name": "x"},
                        "language": "it",
                        "due_at": due.isoformat(),
                        "contact_id": None,
                    },
                )
            )
            t = at + timedelta(minutes=3)
            out.append(
                self.env(
                    "request",
                    "classified",
                    rid,
                    2,
                    t,
                    {
                        "problem_code": code,
                        "category_id": cat,
                        "provider_id": "p",
                        "department_id": dept,
                        "due_at": due.isoformat(),
                    },
                )
            )
            t += timedelta(minutes=20)
            out.append(
                self.env(
                    "request",
                    "dispatched",
                    rid,
                    3,
                    t,
                    {"department_id": dept, "provider_id": "p", "due_at": due.isoformat(), "ruled": False},
                )
            )
            t += timedelta(hours=2)
            out.append(self.env("request", "accepted", rid, 4, t, {"department_id": dept}))
            t += timedelta(hours=float(hours[i]))
            out.append(self.env("request", "final_replied", rid, 5, t, {"message": "ok", "channel": "phone"}))
            out.append(self.env("request", "closed", rid, 6, t + timedelta(minutes=5), {"on_time": t + timedelta(minutes=5) <= due}))
            out.append(self.env("request", "rated", rid, 7, t + timedelta(hours=3), {"score": int(rng.integers(1, 6)), "comment": None}))
            self.request_events += 7
        return out


def batches(gen: Gen, total_contact_events: int, days: int = 365, size: int = 50_000) -> Iterator[list[Envelope]]:
    per_day = int(total_contact_events / days / EVENTS_PER_CONTACT)
    chunk: list[Envelope] = []
    for d in range(days):
        remaining = total_contact_events - gen.contact_events
        if remaining <= 0:
            break
        n = per_day if d < days - 1 else max(1, int(remaining / EVENTS_PER_CONTACT))
        chunk += gen.day(YEAR + timedelta(days=d), n)
        while len(chunk) >= size:
            yield chunk[:size]
            chunk = chunk[size:]
    if chunk:
        yield chunk


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--contact-events", type=int, default=10_000_000)
    ap.add_argument("--dir", type=Path, default=Path("/tmp/hotline_bench_analytics"))
    ap.add_argument("--batch", type=int, default=50_000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--kpi-only", action="store_true", help="Reuse the database of a previous run: time the KPIs only")
    args = ap.parse_args()
    args.dir.mkdir(parents=True, exist_ok=True)
    path = args.dir / "bench.duckdb"
    result: dict[str, object] = {}
    if not args.kpi_only:
        for old in args.dir.glob("bench*"):
            old.unlink()
        result = ingest(path, args)
    kpi_timings(path, args, result)
    print(json.dumps(result, indent=2))


def ingest(path: Path, args: argparse.Namespace) -> dict[str, object]:

    gen = Gen()
    store = AnalyticsStore(path, snapshot_interval=1e9)
    ingest_seconds, cpu_seconds, events = 0.0, 0.0, 0
    load_before = os.getloadavg()
    t_all = time.perf_counter()
    last_report = t_all
    for chunk in batches(gen, args.contact_events, size=args.batch):
        t0, c0 = time.perf_counter(), time.process_time()
        store.ingest_envelopes(chunk)
        ingest_seconds += time.perf_counter() - t0
        cpu_seconds += time.process_time() - c0
        events += len(chunk)
        if time.perf_counter() - last_report > 15:
            last_report = time.perf_counter()
            print(f"  {events:,} events, ingest {events / ingest_seconds:,.0f}/s", file=sys.stderr, flush=True)
        del chunk
        gc.collect(0)
    wall = time.perf_counter() - t_all
    t0 = time.perf_counter()
    store.publish_snapshot(force=True)
    snapshot_s = time.perf_counter() - t0
    counts = store.counts()
    store.close()
    size_mb = path.stat().st_size / 1e6
    return {
        "contact_events": gen.contact_events,
        "all_events": events,
        "tables": counts,
        "ingest_events_per_s": round(events / ingest_seconds),
        "ingest_seconds": round(ingest_seconds, 1),
        # CPU seconds of this process in the ingest calls: what the rate would be with a
        # core to itself (the machine is shared: wall-clock rates follow the load).
        "ingest_events_per_cpu_s": round(events / cpu_seconds),
        "load_average_before_after": [round(load_before[0], 1), round(os.getloadavg()[0], 1)],
        "wall_seconds_incl_generation": round(wall, 1),
        "snapshot_publish_seconds": round(snapshot_s, 2),
        "duckdb_mb": round(size_mb),
    }


def kpi_timings(path: Path, args: argparse.Namespace, result: dict[str, object]) -> None:
    load_before = os.getloadavg()
    conn = connect_reader(path)
    counts = {t: conn.execute(f"SELECT count(*) FROM {t}").fetchall()[0][0] for t in ("events", "contact_events")}
    result.setdefault("tables", counts)
    day = (YEAR + timedelta(days=180)).replace(tzinfo=None)

    def suite(start: datetime, end: datetime) -> tuple[float, dict[str, float]]:
        runs = []
        last: dict[str, float] = {}
        for _ in range(args.repeat):
            t = time.perf_counter()
            out = kpis.kpi_suite(conn, start, end)
            runs.append(time.perf_counter() - t)
            last = out["timings"]
        return statistics.median(runs), last

    day_s, day_parts = suite(day, day + timedelta(days=1))
    year_s, year_parts = suite(YEAR.replace(tzinfo=None), (YEAR + timedelta(days=365)).replace(tzinfo=None))
    daily_report_s = 0.0
    from analytics.reports import Reports

    t = time.perf_counter()
    Reports(path).run("daily", day - timedelta(days=6), day + timedelta(days=1))
    daily_report_s = time.perf_counter() - t
    conn.close()
    result |= {
        "kpi_suite_day_seconds": round(day_s, 3),
        "kpi_suite_year_seconds": round(year_s, 3),
        "daily_report_7_days_seconds": round(daily_report_s, 3),
        "kpi_load_average_before_after": [round(load_before[0], 1), round(os.getloadavg()[0], 1)],
        "day_parts": {k: round(v, 3) for k, v in day_parts.items()},
        "year_parts": {k: round(v, 3) for k, v in year_parts.items()},
    }


if __name__ == "__main__":
    main()
