"""Timer throughput: 1,000,000 open requests with deadlines in the durable timer table;
how fast does the timer process find the due ones and record their events?

    python tests/bench/bench_timers.py                      # 1,000,000 requests, 100,000 due
    python tests/bench/bench_timers.py --requests 100000 --due 20000
    python tests/bench/bench_timers.py --store postgres          # a fresh database on 127.0.0.1:55432, dropped after
    python tests/bench/bench_timers.py --database-url postgresql://postgres@127.0.0.1:55432/bench_timers_x
    python tests/bench/bench_timers.py --requests 100000 --due 20000 --profile   # yappi CPU profile, all threads
    python tests/bench/bench_timers.py --reuse /tmp/timers_1m      # generate once, copy for every later run
    python tests/bench/bench_timers.py --store postgres --reuse bench_timers_1m   # the same with a template database
    python tests/bench/bench_timers.py --inprocess-projections     # embedded mode: every read model after each page

Timer rows are generated straight into the timer table (no 1M commands). The requests
whose timers fall due also get their real events (Registered, TimersScheduled) in the
event store, so firing appends to real streams at the right versions. Reports events/s
of the firing (find + append through group commit + timer-table update) and the peak
RSS while firing (state not needed stays on disk: one page in memory), and the CPU time
the process used while firing (other work on a shared machine slows the wall clock).
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import threading
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

import sqlalchemy as sa  # noqa: E402

from consumers.timers import TimerProcess  # noqa: E402
from domain.base import SYSTEM, Context, FixedClock  # noqa: E402
from domain.requests.aggregate import ServiceRequest  # noqa: E402
from domain.requests.sla import MISSED, Timer, stamp  # noqa: E402
from infra.read_store import write_position  # noqa: E402
from infra.runtime import Hotline  # noqa: E402
from infra.settings import Settings  # noqa: E402
from projections import sla_timers  # noqa: E402

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def generate(h: Hotline, requests: int, due: int, chunk: int = 50_000) -> None:
    start = NOW - timedelta(days=2)
    t0 = time.perf_counter()
    # 1. real streams for the requests that fall due (Registered + TimersScheduled)
    ids = [uuid.uuid4() for _ in range(due)]
    for i in range(0, due, 2000):
        aggs = []
        for j, rid in enumerate(ids[i : i + 2000]):
            ctx = Context(SYSTEM, start)
            r = ServiceRequest._start(
                ServiceRequest.Registered,
                rid,
                ctx,
                reference=f"B{i + j:011d}",
                kind="action",
                subtype=None,
                channel="phone",
                description="bench",
                location=None,
                urgency="urgent",
                citizen_id=None,
                personal=None,
                contact_hidden=False,
                language="it",
                reply_channel=None,
                due_at=start + timedelta(hours=24),
                contact_id=None,
            )
            r.schedule_timers([Timer(f"missed:{stamp(r.due_at)}", MISSED, r.due_at, r.due_at, None, "transport")], ctx)
            aggs.append(r)
        h.store.save(*aggs)
    t1 = time.perf_counter()
    print(f"  {due:,} due requests' streams written in {t1 - t0:.1f}s")
    # 2. the timer table: every request's next timer; the first `due` are due by NOW
    eng = h.read_store.engine
    with eng.begin() as conn:
        for i in range(0, requests, chunk):
            trows, qrows = [], []
            for k in range(i, min(i + chunk, requests)):
                if k < due:
                    rid, at = str(ids[k]), start + timedelta(hours=24)
                else:
                    rid, at = str(uuid.UUID(int=k)), NOW + timedelta(minutes=1 + k % 100_000)
                key = f"missed:{stamp(at)}"
                trows.append(
                    {
                        "request_id": rid,
                        "key": key,
                        "kind": MISSED,
                        "due_at": at,
                        "deadline": at,
                        "detail": None,
                        "department_id": "transport",
                        "state": "pending",
                        "fired_at": None,
                        "event_position": None,
                    }
                )
                qrows.append({"request_id": rid, "reference": None, "version": 2, "last_event_at": start, "keys": [key]})
            conn.execute(sa.insert(sla_timers.TIMERS), trows)
            conn.execute(sa.insert(sla_timers.REQUESTS), qrows)
        # the table is now as the projection would have it at the store's head
        write_position(conn, sla_timers.projection.name, -1, h.store.max_position())
    print(f"  {requests:,} timer rows written in {time.perf_counter() - t1:.1f}s")


def cpu_seconds() -> float:
    t = os.times()
    return t.user + t.system


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--requests", type=int, default=1_000_000)
    ap.add_argument("--due", type=int, default=100_000)
    ap.add_argument("--batch", type=int, default=2000)
    ap.add_argument("--store", choices=("sqlite", "postgres"), default="sqlite")
    ap.add_argument("--database-url", default=None, help="an existing PostgreSQL database (implies --store postgres)")
    ap.add_argument("--slow-path", action="store_true", help="load every request (the command-bus path)")
    ap.add_argument("--inprocess-projections", action="store_true", help="apply every projection after each page (embedded mode)")
    ap.add_argument("--profile", action="store_true", help="yappi CPU profile of every thread while firing")
    ap.add_argument("--keep", action="store_true", help="keep the data folder / database")
    ap.add_argument(
        "--reuse",
        default=None,
        help="repeat runs skip generating: SQLite, a folder the generated stores are copied to / from; "
        "PostgreSQL, the name of a template database made from the generated one / copied from "
        "(one per --requests/--due: name it after them)",
    )
    args = ap.parse_args()
    data = Path(tempfile.mkdtemp(prefix="bench_timers_"))
    url, created, generated = args.database_url, False, False
    if url is None and args.store == "postgres":
        url, created = _pg_database(args.reuse), True
        generated = _has_tables(url)  # a copy of the template
    elif url is None and args.reuse and (Path(args.reuse) / "events.sqlite").exists():
        shutil.copytree(args.reuse, data, dirs_exist_ok=True)
        print(f"stores copied from {args.reuse}")
        generated = True
    settings = Settings(
        data_dir=data,
        database_url=url,
        inprocess_projections=args.inprocess_projections,
        group_commit_max_batch=10_000,
    )
    h = Hotline.start(settings, FixedClock(NOW))
    try:
        print(f"store: {url or data}")
        if not generated:
            generate(h, args.requests, args.due)
            if args.reuse:
                h.close()
                _save_for_reuse(args.reuse, data, url)
                h = Hotline.start(settings, FixedClock(NOW))
        run(h, args)
    finally:
        h.close()
        if not args.keep:
            shutil.rmtree(data, ignore_errors=True)
            if created and url:
                from tests.conftest import drop_pg_database

                drop_pg_database(url)


def _admin() -> Any:
    import psycopg

    from tests.conftest import PG_HOST, PG_PORT

    return psycopg.connect(f"postgresql://postgres@{PG_HOST}:{PG_PORT}/postgres", autocommit=True)


def _pg_database(template: str | None) -> str:
    """A fresh database: a copy of ``template`` when that exists, else empty."""
    from tests.conftest import PG_HOST, PG_PORT, create_pg_database

    if template:
        with _admin() as conn:
            if conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (template,)).fetchone():
                name = f"bench_timers_{uuid.uuid4().hex[:12]}"
                conn.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template}"')
                print(f"database copied from template {template}")
                return f"postgresql://postgres@{PG_HOST}:{PG_PORT}/{name}"
    return create_pg_database("bench_timers")


def _has_tables(url: str) -> bool:
    import psycopg

    with psycopg.connect(url) as conn:
        return conn.execute("SELECT to_regclass('rm_sla_timers') IS NOT NULL").fetchone()[0]  # type: ignore[index,no-any-return]


def _save_for_reuse(reuse: str, data: Path, url: str | None) -> None:
    if url is None:
        shutil.copytree(data, reuse, dirs_exist_ok=True)
        return
    with _admin() as conn:
        conn.execute(f'CREATE DATABASE "{reuse}" TEMPLATE "{url.rsplit("/", 1)[1]}"')
    print(f"template database {reuse} saved")


def run(h: Hotline, args: argparse.Namespace) -> None:
    process = TimerProcess(h, batch=args.batch, fast_path=not args.slow_path)
    if h.projector is not None:
        h.projector.catch_up()  # the generated events: not part of the firing
    base = rss_mb()
    peak = [base]
    done = threading.Event()

    def sample() -> None:
        while not done.is_set():
            peak[0] = max(peak[0], rss_mb())
            time.sleep(0.05)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    if args.profile:
        import yappi

        yappi.set_clock_type("cpu")
        yappi.start()
    cpu0, t0 = cpu_seconds(), time.perf_counter()
    fired = process.tick()
    seconds, cpu = time.perf_counter() - t0, cpu_seconds() - cpu0
    if args.profile:
        yappi.stop()
    done.set()
    sampler.join()
    with h.read_store.engine.connect() as conn:
        left = len(sla_timers.due_timers(conn, NOW, 10))
        pending = conn.execute(
            sa.select(sa.func.count()).select_from(sla_timers.TIMERS).where(sla_timers.TIMERS.c.state == "pending")
        ).scalar()
    print(
        f"fired {fired:,} timer events in {seconds:.2f}s = {fired / seconds:,.0f} events/s "
        f"({'slow' if args.slow_path else 'fast'} path, pages of {args.batch}); "
        f"due left: {left}; still pending (future): {pending:,}"
    )
    server = " (PostgreSQL's own CPU not included)" if h.store.is_postgres else ""
    print(f"CPU time of this process while firing: {cpu:.2f}s ({fired / cpu:,.0f} events per CPU-second){server}")
    print(
        f"RSS before firing {base:.0f} MB, peak while firing {peak[0]:.0f} MB (+{peak[0] - base:.0f} MB); "
        f"group commit: {h.committer.batches} transactions; {process.stats.as_dict()}"
    )
    if args.profile:
        stats = yappi.get_func_stats()
        stats.sort("tsub")
        stats.print_all(columns={0: ("name", 90), 1: ("ncall", 10), 2: ("tsub", 8), 3: ("ttot", 8)}, out=sys.stdout)
    assert left == 0
    if not args.slow_path:
        assert fired == args.due and pending == args.requests - args.due
    # The slow path lets each request replan after firing (its full policy plan: the
    # first reminder is due too), so it records more events and leaves more pending.


if __name__ == "__main__":
    main()
