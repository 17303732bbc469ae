"""As-of rebuild of one request with 50 events: goal < 20 ms (issue 13).

    python tests/bench/bench_audit_as_of.py                      # SQLite, 500 rounds
    python tests/bench/bench_audit_as_of.py --store postgres     # a fresh database on 127.0.0.1:55432, dropped after
    python tests/bench/bench_audit_as_of.py --events 200 --rounds 1000

One request is registered and given notes, replies and a dispatch through the command
bus until its stream holds ``--events`` events, beside ``--noise`` other requests (so
the store is not one stream). Each round picks a random moment within the request's
life and measures, from the store (no aggregate cache on this path):

* ``rebuild``: read the stream's events, find the version at that moment, fold the
  events up to it and take the public state (``domain/audit.py``): the as-of rebuild;
* ``view``: what ``GET /audit/request/{ref}?as_of=T`` computes (the rebuild, plus every
  step with its global position from the trace index and personal data), without HTTP.
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from api.routers.audit import history, rebuild_as_of
from domain.audit import AsOf, public_state
from domain.base import Actor, FixedClock
from domain.requests import commands as c
from domain.requests.aggregate import request_id_for
from infra.runtime import Hotline
from infra.settings import Settings
from tests.conftest import create_pg_database, drop_pg_database, load_catalogue

AGENT = Actor("bench-agent", "agent")
AUDITOR = Actor("bench-auditor", "auditor")
START = datetime(2026, 11, 16, 9, 0, tzinfo=UTC)


def build(h: Hotline, events: int, noise: int) -> str:
    clock = h.clock
    assert isinstance(clock, FixedClock)

    def register(i: int) -> str:
        body = c.RegisterRequest(
            kind="action",
            subtype="complaint",
            channel="phone",
            description=f"Pothole number {i}",
            contact=c.Contact(name=f"Citizen {i}", phone=f"+39 06 {10_000_000 + i}"),
            problem_code="pothole",
        )
        return str(h.bus.execute(body, AGENT).result["reference"])

    for i in range(noise // 2):
        register(i)
    ref = register(999_999)
    h.bus.execute(c.Dispatch(ref=ref), AGENT)
    rid = request_id_for(ref)
    n = 0
    while h.store.repository.get(rid).version < events:
        clock.advance(minutes=7)
        h.bus.execute(c.AddNote(ref=ref, text=f"Note {n}: called the crew again"), AGENT)
        n += 1
        if n % 10 == 0:
            register(1_000_000 + n)  # other streams in between
    for i in range(noise // 2, noise):
        register(i)
    return ref


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--store", choices=["sqlite", "postgres"], default="sqlite")
    ap.add_argument("--events", type=int, default=50)
    ap.add_argument("--noise", type=int, default=200, help="other requests in the store")
    ap.add_argument("--rounds", type=int, default=500)
    args = ap.parse_args()

    url = create_pg_database("bench_audit") if args.store == "postgres" else None
    folder = tempfile.mkdtemp(prefix="bench-audit-")
    h = Hotline.start(Settings(data_dir=Path(folder), database_url=url), FixedClock(START))
    try:
        load_catalogue(h)
        ref = build(h, args.events, args.noise)
        rid = request_id_for(ref)
        stored: list[Any] = list(h.store.events.get(rid))
        first, last = stored[0].timestamp, stored[-1].timestamp
        span = (last - first).total_seconds()
        rng = random.Random(13)
        moments = [first + timedelta(seconds=rng.uniform(0, span)) for _ in range(args.rounds)]

        def upto(moment: datetime) -> None:
            version, aggregate = rebuild_as_of(h, "request", ref, AsOf(moment=moment))
            assert public_state(aggregate)["version"] == version == max(e.originator_version for e in stored if e.timestamp <= moment)

        def view(moment: datetime) -> None:
            shown = history(h, AUDITOR, "request", ref, moment.isoformat())
            assert shown["state"] is not None and len(shown["history"]) == len(stored)

        print(f"store {args.store}; request {ref} with {len(stored)} events; {h.store.max_position()} events in the store")
        print(f"{args.rounds} rounds at random moments of the request's life; wall clock (CPU time of this process)")
        results = {}
        for name, work in (
            ("rebuild (read the stream + version at T + fold + state)", upto),
            ("view: GET /audit/request/{ref}?as_of=T without HTTP (all 50 steps too)", view),
        ):
            wall: list[float] = []
            cpu: list[float] = []
            for moment in moments:
                t0, c0 = time.perf_counter(), time.process_time()
                work(moment)
                wall.append((time.perf_counter() - t0) * 1000)
                cpu.append((time.process_time() - c0) * 1000)
            results[name] = wall
            print(
                f"  {name}: p50 {statistics.median(wall):.2f} ms, p95 {pct(wall, 95):.2f} ms, p99 {pct(wall, 99):.2f} ms "
                f"(CPU p50 {statistics.median(cpu):.2f}, p95 {pct(cpu, 95):.2f} ms)"
            )
        p95 = pct(results["rebuild (read the stream + version at T + fold + state)"], 95)
        print(f"goal: as-of rebuild, one request of {len(stored)} events, p95 < 20 ms: {'met' if p95 < 20 else 'NOT met'} ({p95:.2f} ms)")
    finally:
        h.close()
        if url:
            drop_pg_database(url)


if __name__ == "__main__":
    main()
