"""Benchmarks of the distributed mode (real PostgreSQL and Kafka from infra/*.sh).

    python tests/bench/bench_kafka.py replay --events 1000000   # replay speed
    python tests/bench/bench_kafka.py relay --events 200000     # relay throughput
    python tests/bench/bench_kafka.py lag --rate 500 --seconds 30
    python tests/bench/bench_kafka.py lag --rate 0 --seconds 30  # 0: as fast as the writers go

Events for ``replay``/``relay`` are generated directly into the event store: a real
workload's stored events are cloned (new aggregate ids, new reference numbers) and
COPYed in big batches; nothing goes through HTTP.
"""

from __future__ import annotations

import argparse
import json
import queue
import sys
import threading
import time
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from domain.base import SystemClock  # noqa: E402
from infra.runtime import Hotline  # noqa: E402
from infra.settings import Settings  # noqa: E402
from tests.conftest import create_pg_database, drop_pg_database, load_catalogue  # noqa: E402
from tests.kafka.harness import KAFKA, Proc, Workload, distributed_settings, wait_until  # noqa: E402


def generate(url: str, events: int, data_dir: Path) -> int:
    """Fills the store at ``url`` with about ``events`` events; returns the count."""
    import psycopg

    settings = Settings(data_dir=data_dir, database_url=url)
    h = Hotline.start(settings, SystemClock())
    load_catalogue(h)
    work = Workload(h, seed=1)
    for _ in range(400):
        work.step()
    base = h.store.max_position()
    notifications = h.store.notifications(0, 1_000_000)
    h.close()
    by_aggregate: dict[Any, list[Any]] = {}
    for n in notifications:
        if n.topic.startswith("domain.requests:") or n.topic.startswith("domain.citizens:Citizen."):
            by_aggregate.setdefault(n.originator_id, []).append(n)
    templates = [evs for evs in by_aggregate.values() if evs[0].originator_version == 1]
    references = {}
    for evs in templates:
        state = json.loads(evs[0].state)
        references[evs[0].originator_id] = state.get("reference")
    written = base
    serial = 0
    with psycopg.connect(url) as conn:
        while written < events:
            with conn.cursor() as cur, cur.copy("COPY hotline_events (originator_id, originator_version, topic, state) FROM STDIN") as cp:
                batch = 0
                while batch < 50_000 and written < events:
                    for evs in templates:
                        serial += 1
                        new_id = uuid.uuid4()
                        old_ref = references.get(evs[0].originator_id)
                        new_ref = f"{serial:012d}"
                        for n in evs:
                            state = n.state
                            if old_ref:
                                state = state.replace(old_ref.encode(), new_ref.encode())
                            cp.write_row((new_id, n.originator_version, n.topic, state))
                            batch += 1
                            written += 1
            conn.commit()
            print(f"  generated {written:,} events", flush=True)
    return written


def bench_replay(args: argparse.Namespace) -> dict[str, Any]:
    from consumers.replay import replay_projection
    from projections import by_name

    url = create_pg_database("b_replay")
    try:
        data = Path(f"/tmp/hotline-bench-{uuid.uuid4().hex[:6]}")
        t = time.perf_counter()
        total = generate(url, args.events, data)
        print(f"generated {total:,} events in {time.perf_counter() - t:.1f}s")
        settings = Settings(data_dir=data, database_url=url)
        out = {}
        for name in args.projections.split(","):
            stats = replay_projection(settings, by_name(name))
            out[name] = {k: round(v, 2) if isinstance(v, float) else v for k, v in stats.items()}
            print(name, out[name], flush=True)
        return {"events": total, "replay": out}
    finally:
        if not args.keep:
            drop_pg_database(url)


def bench_relay(args: argparse.Namespace) -> dict[str, Any]:
    from consumers.relay import Relay

    url = create_pg_database("b_relay")
    try:
        data = Path(f"/tmp/hotline-bench-{uuid.uuid4().hex[:6]}")
        total = generate(url, args.events, data)
        settings = distributed_settings(url, data, kafka_topic_partitions=6)
        relay = Relay(settings, batch=5000)
        relay.prepare()
        t = time.perf_counter()
        relay.run(until=lambda r: r.position >= total)
        seconds = time.perf_counter() - t
        relay.close()
        result = {"events": total, "published": relay.published, "seconds": round(seconds, 2), "events_per_second": round(total / seconds)}
        print(result)
        return result
    finally:
        drop_pg_database(url)


def bench_lag(args: argparse.Namespace) -> dict[str, Any]:
    """Commit -> read-model visibility (read-your-writes check) under a steady command rate."""
    import numpy as np

    from consumers.kafka_projections import position_visible

    url = create_pg_database("b_lag")
    data = Path(f"/tmp/hotline-bench-{uuid.uuid4().hex[:6]}")
    settings = distributed_settings(url, data, kafka_topic_partitions=6, pg_pool_size=12)
    h = Hotline.start(settings, SystemClock())
    load_catalogue(h)
    logs = data / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    relay = Proc("consumers.relay", settings, logs)
    consumers = [Proc("consumers.kafka_projections", settings, logs) for _ in range(args.consumers)]
    committed: queue.Queue[tuple[int, float]] = queue.Queue()
    lags: list[float] = []
    stop = threading.Event()
    count = [0]
    lock = threading.Lock()
    try:
        # Warm up: topics exist, the consumers own their partitions.
        w0 = Workload(h, seed=99)
        pos = w0.step()
        wait_until(lambda: position_visible(h.read_store, pos), 60, "warm-up")

        def writer(seed: int, rate: float) -> None:
            work = Workload(h, seed=seed)
            interval = 1.0 / rate if rate > 0 else 0.0
            next_at = time.monotonic()
            while not stop.is_set():
                position = work.step()
                if position:
                    committed.put((position, time.monotonic()))
                    with lock:
                        count[0] += 1
                if interval:
                    next_at += interval
                    delay = next_at - time.monotonic()
                    if delay > 0:
                        time.sleep(delay)

        def watcher() -> None:
            pending: list[tuple[int, float]] = []
            while not stop.is_set() or pending or not committed.empty():
                while True:
                    try:
                        pending.append(committed.get_nowait())
                    except queue.Empty:
                        break
                if not pending:
                    time.sleep(0.002)
                    continue
                highest = max(p for p, _ in pending)
                if position_visible(h.read_store, highest):
                    seen = time.monotonic()
                    lags.extend(seen - t for _, t in pending)
                    pending = []
                else:
                    # The oldest may already be visible: check it alone, so that a steady
                    # stream does not make every command wait for the newest.
                    oldest = min(pending)
                    if position_visible(h.read_store, oldest[0]):
                        seen = time.monotonic()
                        done = [p for p in pending if p[0] <= oldest[0]]
                        lags.extend(seen - t for _, t in done)
                        pending = [p for p in pending if p[0] > oldest[0]]
                    time.sleep(0.003)

        threads = [threading.Thread(target=writer, args=(i, args.rate / args.writers if args.rate else 0)) for i in range(args.writers)]
        watch = threading.Thread(target=watcher)
        watch.start()
        t0 = time.monotonic()
        for t in threads:
            t.start()
        time.sleep(args.seconds)
        stop.set()
        for t in threads:
            t.join()
        elapsed = time.monotonic() - t0
        watch.join(120)
        arr = np.array(lags) * 1000
        result = {
            "target_rate": args.rate or "max",
            "achieved_commands_per_second": round(count[0] / elapsed, 1),
            "commands": count[0],
            "consumers": args.consumers,
            "lag_ms_p50": round(float(np.percentile(arr, 50)), 1),
            "lag_ms_p99": round(float(np.percentile(arr, 99)), 1),
            "lag_ms_max": round(float(arr.max()), 1),
        }
        print(result)
        return result
    finally:
        stop.set()
        relay.stop()
        for c in consumers:
            c.stop()
        h.close()
        drop_pg_database(url)


def main() -> None:
    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers(dest="what", required=True)
    r = sub.add_parser("replay")
    r.add_argument("--events", type=int, default=1_000_000)
    r.add_argument("--projections", default="request_status,sla_breaches")
    r.add_argument("--keep", action="store_true")
    rl = sub.add_parser("relay")
    rl.add_argument("--events", type=int, default=200_000)
    lg = sub.add_parser("lag")
    lg.add_argument("--rate", type=float, default=500)
    lg.add_argument("--seconds", type=float, default=30)
    lg.add_argument("--writers", type=int, default=4)
    lg.add_argument("--consumers", type=int, default=1)
    args = parser.parse_args()
    print(f"Kafka {KAFKA}")
    fn = {"replay": bench_replay, "relay": bench_relay, "lag": bench_lag}[args.what]
    fn(args)


if __name__ == "__main__":
    main()
