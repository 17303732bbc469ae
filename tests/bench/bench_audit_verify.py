"""``hotline audit verify`` speed: events checked per second on a large store.

    python tests/bench/bench_audit_verify.py                      # SQLite and PostgreSQL, 1,000,000 events
    python tests/bench/bench_audit_verify.py --store postgres --events 200000

The store is filled with real events: a short workload (requests registered and noted
through the command bus) gives the templates, which are cloned under new aggregate ids and
written through the chained recorder itself (``insert_events`` in batches of 5,000, the
path every commit takes), so every event is chained exactly as in production. Then
``infra.audit_chain.verify`` walks it all: every stream link, every global link, the head,
in one process and then as by default (a large store's streams split over one worker
process per CPU). Goal: ≥ 100,000 events/s.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from eventsourcing.persistence import StoredEvent

from domain.base import Actor, SystemClock
from domain.requests import commands as c
from infra.audit_chain import verify
from infra.runtime import Hotline
from infra.settings import Settings
from tests.conftest import create_pg_database, drop_pg_database, load_catalogue

AGENT = Actor("bench", "agent")


def fill(hotline: Hotline, events: int, batch: int = 5000) -> dict[str, Any]:
    """About ``events`` chained events; returns how long writing them took."""
    refs = []
    for i in range(40):
        body = c.RegisterRequest(
            kind="action",
            subtype="complaint",
            channel="phone",
            description=f"Pothole number {i} in front of the school, deep enough to damage a wheel",
            contact=c.Contact(name=f"Citizen {i}", phone=f"+39 06 {10_000_000 + i}"),
            problem_code="pothole",
        )
        refs.append(hotline.bus.execute(body, AGENT).result["reference"])
    for n in range(4):
        for ref in refs:
            hotline.bus.execute(c.AddNote(ref=ref, text=f"called the citizen back, note {n}"), AGENT)
    by_stream: dict[Any, list[StoredEvent]] = {}
    for note in hotline.store.notifications(0, 100_000):
        by_stream.setdefault(note.originator_id, []).append(
            StoredEvent(note.originator_id, note.originator_version, note.topic, note.state)
        )
    templates = [evs for evs in by_stream.values() if evs[0].originator_version == 1]
    recorder: Any = hotline.store.recorder
    written = hotline.store.max_position()
    pending: list[StoredEvent] = []
    started = time.perf_counter()
    k = 0
    while written + len(pending) < events:
        stream = templates[k % len(templates)]
        k += 1
        new_id = uuid.uuid4()
        pending.extend(StoredEvent(new_id, e.originator_version, e.topic, e.state) for e in stream)
        if len(pending) >= batch:
            recorder.insert_events(pending)
            written += len(pending)
            pending = []
    if pending:
        recorder.insert_events(pending)
        written += len(pending)
    seconds = time.perf_counter() - started
    return {"events": written, "write_s": round(seconds, 1), "write_events_per_s": round((written - 0) / seconds)}


def run(store: str, events: int) -> dict[str, Any]:
    tmp = Path(tempfile.mkdtemp(prefix="hotline-bench-audit-"))
    url = create_pg_database("bench") if store == "postgres" else None
    try:
        settings = Settings(data_dir=tmp, database_url=url, pg_pool_size=4, inprocess_projections=False, audit_checkpoint_every=0)
        hotline = Hotline.start(settings, SystemClock())
        try:
            load_catalogue(hotline)
            filled = fill(hotline, events)
            out: dict[str, Any] = {"store": store, **filled}
            # One process, then the default (large stores: the stream chains split over
            # worker processes, one per CPU, the global chain in this one).
            for label, workers in (("1 process", 1), ("default", None)):
                runs = []
                for _ in range(2):  # the second from a warm cache
                    report = verify(hotline.store, workers=workers)
                    assert report.ok, report.as_dict()
                    runs.append(report)
                best = max(runs, key=lambda r: r.events_per_second)
                out[label] = {
                    "verified": best.events_checked,
                    "verify_s": round(best.seconds, 2),
                    "events_per_s": round(best.events_per_second),
                    "runs_events_per_s": [round(r.events_per_second) for r in runs],
                }
            return out
        finally:
            hotline.close()
    finally:
        if url:
            drop_pg_database(url)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--store", choices=["sqlite", "postgres", "all"], default="all")
    parser.add_argument("--events", type=int, default=1_000_000)
    args = parser.parse_args()
    stores = ["sqlite", "postgres"] if args.store == "all" else [args.store]
    results = []
    for store in stores:
        row = run(store, args.events)
        results.append(row)
        print(json.dumps(row), flush=True)
    print("\n| store | events | verify | seconds | events/s (goal ≥ 100,000) |")
    print("|---|---|---|---|---|")
    for r in results:
        for label in ("1 process", "default"):
            v = r[label]
            print(f"| {r['store']} | {v['verified']:,} | {label} | {v['verify_s']} | {v['events_per_s']:,} |")


if __name__ == "__main__":
    main()
