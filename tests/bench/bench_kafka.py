"""Benchmarks of the distributed mode (real PostgreSQL and Kafka from infra/*.sh).

    python tests/bench/bench_kafka.py replay --events 1000000   # replay speed
    python tests/bench/bench_kafka.py relay --events 200000     # relay throughput
    python tests/bench/bench_kafka.py lag --rate 500 --seconds 30
    python tests/bench/bench_kafka.py lag --rate 0 --seconds 30  # 0: as fast as the writers go
    python tests/bench/bench_kafka.py catchup --steps 8000      # one consumer's CPU per event

Events for ``replay``/``relay`` are generated directly into the event store: a real
workload's stored events are cloned (new aggregate ids, new reference numbers) and
COPYed in big batches; nothing goes through HTTP.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import threading
import time
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
METRICS_PORT = 9560  # the relay's /metrics; the consumers' on the ports after it
sys.path.insert(0, str(ROOT))

from domain.base import SystemClock  # noqa: E402
from infra.runtime import Hotline  # noqa: E402
from infra.settings import Settings  # noqa: E402
from tests.conftest import create_pg_database, drop_pg_database, load_catalogue  # noqa: E402
from tests.kafka.harness import HOTLINE, KAFKA, Proc, Workload, delete_topics, distributed_settings, wait_until  # noqa: E402


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
        if n.topic.startswith("domain.requests.aggregate:") or n.topic.startswith("domain.citizens.aggregate:Citizen."):
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
            copy_sql = "COPY hotline_events (originator_id, originator_version, topic, state) FROM STDIN"
            with conn.cursor() as cur, cur.copy(copy_sql) as cp:
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
    from infra.wiring import projection_named as by_name

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
        result = {
            "events": total,
            "published": relay.published,
            "seconds": round(seconds, 2),
            "events_per_second": round(total / seconds),
        }
        print(result)
        return result
    finally:
        drop_pg_database(url)


def _writer_process(
    settings_json: str,
    seed: int,
    threads: int,
    rate: float,
    seconds: float,
    out: Any,
    start_at: float,
    metrics_on: bool = True,
    switch_file: str = "",
) -> None:
    """A load generator in its own process (its own GIL): ``threads`` writers share one
    hotline, so their commits are group-committed; sends ``(position, commit time)``.
    ``switch_file``: metrics on or off as that file says, live (``--metrics switchback``)."""
    import gc

    from tests.bench.without_metrics import follow, switch_off

    if switch_file:
        follow(Path(switch_file))
    elif not metrics_on:
        switch_off()

    gc.freeze()
    settings = Settings.model_validate_json(settings_json)
    h = Hotline.start(settings, SystemClock())
    done = threading.Event()
    sent: list[tuple[int, float]] = []
    lock = threading.Lock()

    def writer(i: int) -> None:
        work = Workload(h, seed=seed * 100 + i)
        interval = threads / rate if rate > 0 else 0.0
        # Spread the writers' ticks over one interval so that commands arrive evenly.
        next_at = start_at + (interval * i / threads)
        while time.time() < next_at:
            time.sleep(0.001)
        while not done.is_set():
            position = work.step()
            if position:
                with lock:
                    sent.append((position, time.time()))  # after the commit returned
            if interval:
                next_at += interval
                delay = next_at - time.time()
                if delay > 0:
                    time.sleep(delay)

    def sender() -> None:
        while not done.is_set() or sent:
            time.sleep(0.002)
            with lock:
                batch = sent[:]
                sent.clear()
            if batch:
                out.send(batch)

    pool = [threading.Thread(target=writer, args=(i,)) for i in range(threads)]
    ship = threading.Thread(target=sender)
    cpu_before = _own_cpu()
    ship.start()
    for t in pool:
        t.start()
    time.sleep(max(0.0, start_at + seconds - time.time()))
    done.set()
    for t in pool:
        t.join()
    ship.join()
    out.send({"cpu_s": _own_cpu() - cpu_before})
    out.send(None)
    out.close()
    h.close()


def _own_cpu() -> float:
    t = os.times()
    return t.user + t.system


def _cpu_by_process() -> dict[int, tuple[str, float]]:
    """Every process's command name and CPU seconds so far (user + system), from /proc."""
    tick = os.sysconf("SC_CLK_TCK")
    found: dict[int, tuple[str, float]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        comm, rest = stat.split(" (", 1)[1].rsplit(")", 1)
        fields = rest.split()
        found[int(entry.name)] = (comm + " " + cmdline, (int(fields[11]) + int(fields[12])) / tick)
    return found


def _cpu_spent(
    before: dict[int, tuple[str, float]], after: dict[int, tuple[str, float]], kinds: dict[str, str], own: set[int] | None = None
) -> dict[str, float]:
    """CPU seconds between two snapshots per kind of process (the first of ``kinds``' name
    fragments found in its command line); processes that ended between them are not counted.
    With ``own``, a Hotline process (relay, consumer) counts only if it is one of those."""
    spent: dict[str, float] = {}
    for pid, (cmd, cpu) in after.items():
        kind = next((k for fragment, k in kinds.items() if fragment in cmd), None)
        if own is not None and kind in ("relay", "consumers") and pid not in own:
            continue
        if kind is not None:
            spent[kind] = round(spent.get(kind, 0.0) + cpu - before.get(pid, (cmd, 0.0))[1], 1)
    return spent


def bench_lag(args: argparse.Namespace) -> list[dict[str, Any]]:
    """``--metrics on`` (as deployed) or ``off`` (every recording a no-op in the writers, the
    relay and the consumers), or ``both``: ``--rounds`` pairs alternated off, on, on, off …
    so that the machine's drift weighs on both sides, with the medians compared.
    ``scrape``: the same, both sides recording, only the "on" side scraped (what the
    scrape costs apart from recording)."""
    import statistics

    if args.metrics in ("side-by-side", "twins"):
        return _side_by_side(args)
    if args.metrics == "switchback":
        return [_switchback(args)]
    modes = {"on": [True], "off": [False], "both": [False, True], "scrape": [False, True]}[args.metrics]
    runs: list[dict[str, Any]] = []
    for round_ in range(args.rounds):
        for on in modes if round_ % 2 == 0 else modes[::-1]:
            # "side": which half of the comparison a run is (recording, or being scraped).
            run = _lag_run(args, True, scraped=on) if args.metrics == "scrape" else _lag_run(args, on)
            runs.append(run | {"side": "on" if on else "off"})
    if args.metrics in ("both", "scrape"):
        if args.metrics == "scrape":
            print("alternated runs, metrics recorded on both sides, /metrics scraped (on) against not scraped (off):")
        else:
            print("alternated runs, metrics recorded (and /metrics scraped) against replaced by no-ops (not scraped):")
        medians: dict[bool, dict[str, float]] = {}
        for on in (False, True):
            mine = [r for r in runs if r["side"] == ("on" if on else "off")]
            medians[on] = {k: statistics.median(r[k] for r in mine) for k in ("lag_ms_p50", "lag_ms_p99")}
            figures = "; ".join(f"{k} {[r[k] for r in mine]} (median {medians[on][k]})" for k in medians[on])
            print(f"  metrics {'on ' if on else 'off'}: {figures}")
        # CPU is the steadier figure: what recording costs the processes that record (the
        # lag moves with the whole machine's load, by a third between runs of one mode).
        for on in (False, True):
            mine = [r for r in runs if r["side"] == ("on" if on else "off")]
            medians[on]["cpu_s"] = statistics.median(_recording_cpu(r) for r in mine)
        print(f"  CPU s of the writers, relay and consumers, median: off {medians[False]['cpu_s']:.1f}, on {medians[True]['cpu_s']:.1f}")
        for k in ("lag_ms_p50", "lag_ms_p99", "cpu_s"):
            print(f"  {k}: on against off {100 * (medians[True][k] / medians[False][k] - 1):+.1f} % on the medians")
        _paired(runs)
        _pooled(runs)
    return runs


def _side_by_side(args: argparse.Namespace) -> list[dict[str, Any]]:
    """Both sides at once: two pipelines (database, topics, relay, consumer, writers), one
    recording metrics and scraped, one with every recording a no-op, their loads started
    together, ``--rate`` each. Run one after the other, two runs of one mode differed by a
    third and more with the shared machine's speed; side by side, each moment's speed
    weighs on both. ``twins``: both sides without metrics, what the comparison's own noise
    is (its interval should hold 0)."""
    import multiprocessing as mp

    ctx = mp.get_context("spawn")
    runs: list[dict[str, Any]] = []
    metrics_on = {"off": False, "on": args.metrics == "side-by-side"}
    for round_ in range(args.rounds):
        start = ctx.Barrier(2)
        results = ctx.Queue()
        # Which side's processes start first alternates with the rounds.
        order = ["off", "on"] if round_ % 2 == 0 else ["on", "off"]
        sides = [
            ctx.Process(target=_one_side, args=(args, side, metrics_on[side], METRICS_PORT + 10 * k, start, results))
            for k, side in enumerate(order)
        ]
        for proc in sides:
            proc.start()
        got = {}
        for _ in sides:
            side, run = results.get(timeout=900)
            got[side] = run
        for proc in sides:
            proc.join(60)
        runs += [got["off"] | {"side": "off"}, got["on"] | {"side": "on"}]
        print(f"round {round_ + 1}: p99 off {got['off']['lag_ms_p99']} ms, on {got['on']['lag_ms_p99']} ms", flush=True)
    what = "metrics on (recorded and scraped) against off" if args.metrics == "side-by-side" else "twins: both sides without metrics"
    print(f"side by side, {args.rate:g} commands/s each, {what}:")
    _paired(runs)
    _pooled(runs)
    return runs


def _switchback(args: argparse.Namespace) -> dict[str, Any]:
    """One long run whose processes (writers, relay, consumers) switch recording on and off
    together every ``--block-seconds``, each pair of blocks in a random order, /metrics
    scraped in the "on" blocks. Run one after the other, two runs of one mode differed by
    a third at p99 (``twins``); here both modes share every minute of the machine, the way
    a switchback experiment shares its hours. Each command counts for the block its commit
    fell in, past ``--washout-seconds`` (the backlog the previous block left); the
    interval comes from resampling whole pairs of blocks."""
    import numpy as np

    switch = Path(f"/tmp/hotline-bench-switch-{uuid.uuid4().hex[:6]}")
    switch.write_text("on")
    try:
        run = _lag_run(args, True, switchback=switch)
    finally:
        switch.unlink(missing_ok=True)
    blocks: list[dict[str, Any]] = run.pop("_blocks")
    series = np.array(run.pop("_series"))  # (commit time, lag ms)
    run.pop("_lags_ms")
    starts = np.array([b["start"] for b in blocks])
    which = np.searchsorted(starts, series[:, 0], side="right") - 1
    inside = (which >= 0) & (series[:, 0] < np.array([b["end"] for b in blocks])[np.clip(which, 0, None)])
    settled = inside & (series[:, 0] >= starts[np.clip(which, 0, None)] + args.washout_seconds)
    pairs = len(blocks) // 2
    by_pair: list[dict[str, np.ndarray]] = [{} for _ in range(pairs)]
    commands: list[dict[str, int]] = [{} for _ in range(pairs)]
    cpu: list[dict[str, float]] = [{} for _ in range(pairs)]
    for k, block in enumerate(blocks[: 2 * pairs]):
        pair, state = k // 2, block["state"]
        by_pair[pair][state] = series[settled & (which == k), 1]
        commands[pair][state] = int(np.count_nonzero(inside & (which == k)))
        cpu[pair][state] = block["cpu_s"]
    print(
        f"switchback: {pairs} pairs of {args.block_seconds:g} s blocks, {args.rate:g} commands/s, "
        f"the first {args.washout_seconds:g} s of each block left out; metrics on (recorded, scraped every "
        f"{args.scrape_seconds:g} s) against off, in the same processes:"
    )
    rng = np.random.default_rng(11)
    chosen = [rng.integers(0, pairs, pairs) for _ in range(2000)]

    def compare(name: str, figure: Any) -> dict[str, float]:
        on, off = figure(range(pairs), "on"), figure(range(pairs), "off")
        ratios = [figure(c, "on") / figure(c, "off") for c in chosen]
        low, high = np.percentile(ratios, [2.5, 97.5])
        change = 100 * (on / off - 1)
        print(f"  {name}: off {off:.2f}, on {on:.2f}: {change:+.1f} % (95 %: {100 * (low - 1):+.1f} to {100 * (high - 1):+.1f} %)")
        return {
            "off": float(off),
            "on": float(on),
            "change_pct": round(change, 1),
            "low_pct": round(100 * (low - 1), 1),
            "high_pct": round(100 * (high - 1), 1),
        }

    def lag(q: float) -> Any:
        return lambda picked, state: float(np.percentile(np.concatenate([by_pair[i][state] for i in picked]), q))

    def cpu_per_command(picked: Any, state: str) -> float:
        return 1000 * sum(cpu[i][state] for i in picked) / max(1, sum(commands[i][state] for i in picked))

    run["switchback"] = {
        "pairs": pairs,
        "commands_counted": {s: int(sum(len(p[s]) for p in by_pair)) for s in ("on", "off")},
        "lag_ms_p50": compare("lag p50 (ms)", lag(50)),
        "lag_ms_p90": compare("lag p90 (ms)", lag(90)),
        "lag_ms_p99": compare("lag p99 (ms)", lag(99)),
        "cpu_ms_per_command": compare("CPU of writers, relay and consumers per command (ms)", cpu_per_command),
    }
    print(json.dumps(run["switchback"]))
    return run


def _switch_blocks(
    switch: Path, start_at: float, seconds: float, block: float, pids: list[int], stop: threading.Event
) -> list[dict[str, Any]]:
    """Writes "on" or "off" to ``switch`` every ``block`` seconds from ``start_at`` for
    ``seconds``, each pair of blocks in a random order; returns the blocks with the CPU
    seconds ``pids`` spent in each."""
    import random

    def cpu() -> float:
        spent = _cpu_by_process()
        return sum(spent[p][1] for p in pids if p in spent)

    order = random.Random(5)
    blocks: list[dict[str, Any]] = []
    at = start_at
    while at + 2 * block <= start_at + seconds and not stop.is_set():
        for state in order.sample(["on", "off"], 2):
            while time.time() < at and not stop.is_set():
                time.sleep(min(0.005, max(0.0, at - time.time())))
            switch.write_text(state)
            blocks.append({"state": state, "start": time.time(), "end": at + block, "cpu_before": cpu()})
            if blocks[1:]:
                blocks[-2]["cpu_s"] = blocks[-1]["cpu_before"] - blocks[-2]["cpu_before"]
            at += block
    while time.time() < at and not stop.is_set():
        time.sleep(0.005)
    if blocks:
        blocks[-1]["cpu_s"] = cpu() - blocks[-1]["cpu_before"]
    switch.write_text("on")
    return blocks


def _one_side(args: argparse.Namespace, side: str, metrics_on: bool, port: int, start: Any, results: Any) -> None:
    run = _lag_run(args, metrics_on, metrics_port=port, start=start)
    results.put((side, run))


def _pooled(runs: list[dict[str, Any]]) -> None:
    """Every command's lag of all rounds of a side together, and the on/off ratio of their
    percentiles with a 95 % interval from resampling whole rounds (each round's two runs
    kept together, so the machine's drift stays paired). Steadier than a ratio per round:
    one run's p99 is its slowest 150 commands, which a single stall of the machine makes."""
    import numpy as np

    pairs = [runs[i : i + 2] for i in range(0, len(runs) - 1, 2)]
    by_side = [{r["side"]: r["_lags_ms"] for r in pair} for pair in pairs]
    rng = np.random.default_rng(7)
    for q in (50, 99):
        whole = {side: float(np.percentile(np.concatenate([p[side] for p in by_side]), q)) for side in ("off", "on")}
        ratios = []
        for _ in range(1000):
            chosen = rng.integers(0, len(by_side), len(by_side))
            on = np.percentile(np.concatenate([by_side[i]["on"] for i in chosen]), q)
            off = np.percentile(np.concatenate([by_side[i]["off"] for i in chosen]), q)
            ratios.append(on / off)
        low, high = np.percentile(ratios, [2.5, 97.5])
        print(
            f"  lag p{q}, every command of every round: off {whole['off']:.1f} ms, on {whole['on']:.1f} ms: "
            f"{100 * (whole['on'] / whole['off'] - 1):+.1f} % (95 %: {100 * (low - 1):+.1f} to {100 * (high - 1):+.1f} %)"
        )


def _paired(runs: list[dict[str, Any]], keys: tuple[str, ...] = ("lag_ms_p50", "lag_ms_p99", "cpu_s")) -> None:
    """Each round's on/off ratio of each of ``keys`` (its two runs adjacent, their order
    alternating, so a steady drift of the machine cancels out over the rounds), their mean
    and a 95 % interval: how finely this run can tell the two modes apart at all."""

    def value(run: dict[str, Any], k: str) -> float:
        return _recording_cpu(run) if k == "cpu_s" else float(run[k])

    pairs = [runs[i : i + 2] for i in range(0, len(runs) - 1, 2)]
    for k in keys:
        ratios = [value(on, k) / value(off, k) for a, b in pairs for off, on in [(a, b) if a["side"] == "off" else (b, a)]]
        print(f"  {k}: on/off by round [{', '.join(f'{r:.3f}' for r in ratios)}]: {_interval(ratios)}")


def _interval(ratios: list[float]) -> str:
    """The ratios' mean as a change, with a 95 % interval (Student's t)."""
    import statistics

    mean = statistics.mean(ratios)
    if len(ratios) < 2:
        return f"{100 * (mean - 1):+.1f} %"
    # Student's t for n - 1 degrees of freedom (n rounds, up to 10), 97.5 %.
    t = {1: 12.71, 2: 4.30, 3: 3.18, 4: 2.78, 5: 2.57, 6: 2.45, 7: 2.36, 8: 2.31, 9: 2.26}.get(len(ratios) - 1, 2.0)
    half = t * statistics.stdev(ratios) / len(ratios) ** 0.5
    return f"{100 * (mean - 1):+.1f} % (95 % interval {100 * (mean - half - 1):+.1f} to {100 * (mean + half - 1):+.1f} %)"


def _recording_cpu(run: dict[str, Any]) -> float:
    """CPU seconds of the processes that record metrics (writers, relay, consumers)."""
    return float(sum(run["cpu_s"].get(p, 0.0) for p in ("writers", "relay", "consumers")))


def _scrape_every(ports: list[int], seconds: float, stop: threading.Event, switch: Path | None = None) -> None:
    """What Prometheus does to the processes (every 15 s by default; here more often);
    with ``switch``, only while it says "on"."""
    import urllib.request

    while not stop.wait(seconds):
        if switch is not None and switch.read_text().strip() != "on":
            continue
        for port in ports:
            with contextlib.suppress(OSError):
                urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2).read()


def _lag_run(
    args: argparse.Namespace,
    metrics_on: bool,
    scraped: bool | None = None,
    *,
    metrics_port: int = METRICS_PORT,
    start: Any = None,
    switchback: Path | None = None,
) -> dict[str, Any]:
    """Commit -> read-model visibility (read-your-writes check) under a steady command rate.

    The writers run in separate processes (``--procs``, each with ``--writers`` threads and
    group commit) so that generating the load competes as little as possible with the
    measurement; each command's lag runs from the moment its commit returned (wall clock,
    sent to this process) to the moment ``position_visible`` first reports it applied.

    ``start``: a barrier the run waits at before its load begins (``--metrics side-by-side``:
    two runs load the machine at the same moments). ``switchback``: the file every process
    follows for recording on or off, switched in blocks while the load runs (:func:`_switchback`)."""
    import multiprocessing as mp

    import numpy as np

    from consumers.kafka_contract import applied_frontier, relay_position
    from consumers.kafka_projections import position_visible

    url = create_pg_database("b_lag")
    data = Path(f"/tmp/hotline-bench-{uuid.uuid4().hex[:6]}")
    settings = distributed_settings(url, data, kafka_topic_partitions=6, pg_pool_size=12)
    h = Hotline.start(settings, SystemClock())
    load_catalogue(h)
    logs = data / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    program: tuple[str, ...] = (HOTLINE,) if metrics_on else (sys.executable, "-m", "tests.bench.without_metrics")
    if switchback is not None:
        program = (sys.executable, "-m", "tests.bench.without_metrics", "--switch", str(switchback))
    relay = Proc("relay", settings, logs, program=program, HOTLINE_METRICS_PORT=str(metrics_port))
    consumers = [
        Proc(
            "consume projections",
            settings,
            logs,
            *args.consumer_args.split(),
            program=program,
            HOTLINE_METRICS_PORT=str(metrics_port + 1 + i),
        )
        for i in range(args.consumers)
    ]
    scraping = threading.Event()
    if metrics_on if scraped is None else scraped:
        ports = [metrics_port + i for i in range(args.consumers + 1)]
        threading.Thread(target=_scrape_every, args=(ports, args.scrape_seconds, scraping, switchback), daemon=True).start()
    lags: list[float] = []
    series: list[tuple[float, int, float]] = []  # (commit time, position, lag) for --series
    procs: list[Any] = []
    try:
        # Warm up: topics exist, the consumers own their partitions.
        w0 = Workload(h, seed=99)
        pos = w0.step()
        wait_until(lambda: position_visible(h.read_store, pos), 60, "warm-up")
        for _ in range(20):
            pos = w0.step()
        wait_until(lambda: position_visible(h.read_store, pos), 60, "warm-up")

        ctx = mp.get_context("spawn")
        pipes = []
        if start is not None:
            start.wait(600)
        start_at = time.time() + 3.0  # every writer process is up and connected by then
        per_proc = args.rate / args.procs if args.rate else 0.0
        for i in range(args.procs):
            recv, send = ctx.Pipe(duplex=False)
            proc = ctx.Process(
                target=_writer_process,
                args=(
                    settings.model_dump_json(),
                    i + 1,
                    args.writers,
                    per_proc,
                    args.seconds,
                    send,
                    start_at,
                    metrics_on,
                    str(switchback or ""),
                ),
            )
            proc.start()
            send.close()
            procs.append(proc)
            pipes.append(recv)
        blocks: list[dict[str, Any]] = []
        if switchback is not None:
            recording = [relay.proc.pid, *(c.proc.pid for c in consumers), *(p.pid for p in procs)]
            switching = threading.Thread(
                target=lambda: blocks.extend(_switch_blocks(switchback, start_at, args.seconds, args.block_seconds, recording, scraping)),
                daemon=True,
            )
            switching.start()
        import heapq
        from multiprocessing.connection import wait as wait_pipes

        pending: list[tuple[int, float]] = []  # a heap: the lowest position first
        relay_pending: list[tuple[int, float]] = []  # the same, until the relay has published it
        relay_lags: list[float] = []
        writer_cpu = 0.0
        while time.time() < start_at:
            time.sleep(0.01)
        cpu_before = _cpu_by_process()
        measuring_before = _own_cpu()
        commands = 0
        open_pipes = list(pipes)
        next_check = 0.0
        checks = 0
        visibility = h.read_store.engine.connect()  # one connection for every check
        while open_pipes or pending:
            # Sleep until a pipe has news or the next check is due (no busy loop: the
            # measuring process must not take CPU from what it measures).
            ready = wait_pipes(open_pipes, timeout=max(0.0, next_check - time.time())) if open_pipes else []
            for r in [p for p in open_pipes if p in ready]:
                while r.poll():
                    item: list[tuple[int, float]] | dict[str, float] | None = r.recv()
                    if item is None:
                        open_pipes.remove(r)
                        break
                    if isinstance(item, dict):
                        writer_cpu += item["cpu_s"]
                        continue
                    for entry in item:
                        heapq.heappush(pending, entry)
                        heapq.heappush(relay_pending, entry)
                    commands += len(item)
            if not open_pipes and time.time() < next_check:
                time.sleep(next_check - time.time())
            if time.time() < next_check or not pending:
                continue
            # Each check is three read-store queries, every --check-ms: a lag is measured at
            # most one interval late (over-, never under-stated).
            next_check = time.time() + args.check_ms / 1000
            visibility.rollback()  # a fresh snapshot
            frontier = applied_frontier(visibility, [p.name for p in h.read_store.projections])
            relayed = relay_position(visibility)
            seen = time.time()
            while relay_pending and relay_pending[0][0] <= relayed:
                _, committed = heapq.heappop(relay_pending)
                relay_lags.append(seen - committed)
            while pending and pending[0][0] <= frontier:
                position, committed = heapq.heappop(pending)
                lags.append(seen - committed)
                series.append((committed, position, seen - committed))
            checks += 1
            if checks % 200 == 0:  # the frontier agrees with the per-position check
                assert position_visible(h.read_store, frontier)
            if time.time() > start_at + args.seconds + 120:
                if switchback is None:
                    raise RuntimeError("the read models did not catch up within 120 s")
                # A long switchback run keeps what it measured: the blocks before the
                # first command never seen (_switchback leaves the rest out).
                print(f"warning: {len(pending)} commands not visible 120 s after the load; blocks from the first left out")
                break
        unseen_from = min((committed for _, committed in pending), default=None)
        visibility.close()
        if switchback is not None:
            switching.join(60)
        cpu_after = _cpu_by_process()
        for proc in procs:
            proc.join(30)
        elapsed = args.seconds
        arr = np.array(lags) * 1000
        result = {
            "metrics": "on" if metrics_on else "off",
            "target_rate": args.rate or "max",
            "achieved_commands_per_second": round(commands / elapsed, 1),
            "commands": commands,
            "writer_processes": args.procs,
            "writers_per_process": args.writers,
            "consumers": args.consumers,
            "lag_ms_p50": round(float(np.percentile(arr, 50)), 1),
            "lag_ms_p90": round(float(np.percentile(arr, 90)), 1),
            "lag_ms_p99": round(float(np.percentile(arr, 99)), 1),
            "lag_ms_max": round(float(arr.max()), 1),
            # The part of it until the relay had published and recorded the event.
            "relay_lag_ms_p50": round(float(np.percentile(np.array(relay_lags) * 1000, 50)), 1),
            "relay_lag_ms_p99": round(float(np.percentile(np.array(relay_lags) * 1000, 99)), 1),
            # Where the two cores went while the load ran (and the consumers caught up).
            "cpu_s": {
                "writers": round(writer_cpu, 1),
                **_cpu_spent(
                    cpu_before,
                    cpu_after,
                    {"kafka.Kafka": "kafka", " relay": "relay", " consume projections": "consumers", "postgres": "postgres"},
                    # This run's relay and consumers only (another run may be beside it).
                    own={relay.proc.pid, *(c.proc.pid for c in consumers)},
                ),
                "measuring": round(_own_cpu() - measuring_before, 1),
            },
        }
        print(result)
        result["_lags_ms"] = arr  # every command's lag, for the pooled comparison (_pooled)
        if switchback is not None:
            result["_blocks"] = [b for b in blocks if unseen_from is None or b["end"] <= unseen_from]
            result["_series"] = [(t, lag * 1000) for t, _, lag in series]
            saved = Path(f"/tmp/hotline-switchback-{int(time.time())}.json")
            saved.write_text(json.dumps({"blocks": blocks, "series": result["_series"], "unseen_from": unseen_from}))
            print(f"blocks and every command's lag saved to {saved}")
        if args.series:
            with open(args.series, "w") as f:
                f.writelines(f"{t:.4f} {p} {lag * 1000:.1f}\n" for t, p, lag in sorted(series))
        return result
    finally:
        scraping.set()
        for proc in procs:
            if proc.is_alive():
                proc.terminate()
        relay.stop()
        for c in consumers:
            c.stop()
        h.close()
        delete_topics(settings)
        drop_pg_database(url)


def bench_catchup(args: argparse.Namespace) -> list[dict[str, Any]]:
    """One consumer's CPU per event, catching up on a log written and relayed first: the
    cost that decides the lag, measured apart from the writers and the broker (``lag`` on
    two cores mostly measures their saturation, where a small cost moves the lag a lot).

    ``--metrics both --rounds N``: the same log relayed and caught up N times each with
    metrics on (as deployed, the relay's and the consumer's ``/metrics`` scraped every
    ``--scrape-seconds``) and off (every recording a no-op), alternated; each run on a copy
    of the log's database (PostgreSQL's ``CREATE DATABASE … TEMPLATE``) and topics of its own."""
    import psycopg

    from tests.conftest import PG_HOST, PG_PORT

    template = create_pg_database("b_catchup")
    data = Path(f"/tmp/hotline-bench-{uuid.uuid4().hex[:6]}")
    h = Hotline.start(distributed_settings(template, data, kafka_topic_partitions=6, pg_pool_size=12), SystemClock())
    try:
        load_catalogue(h)
        work = Workload(h, seed=7)
        for _ in range(args.steps):
            work.step()
        end = h.store.max_position()
    finally:
        h.close()  # a template database must have no connections
    admin = f"postgresql://postgres@{PG_HOST}:{PG_PORT}/postgres"
    runs: list[dict[str, Any]] = []
    modes = {"on": [True], "off": [False], "both": [False, True]}[args.metrics]
    try:
        for round_ in range(args.rounds):
            for on in modes if round_ % 2 == 0 else modes[::-1]:
                copy = f"b_catchup_run_{uuid.uuid4().hex[:10]}"
                with psycopg.connect(admin, autocommit=True) as conn:
                    conn.execute(f'CREATE DATABASE "{copy}" TEMPLATE "{template.rsplit("/", 1)[1]}"')
                url = f"postgresql://postgres@{PG_HOST}:{PG_PORT}/{copy}"
                try:
                    run = _catch_up_once(args, url, data / copy, end, on, len(runs))
                finally:
                    drop_pg_database(url)
                runs.append(run | {"side": "on" if on else "off"})
                print(runs[-1], flush=True)
        if args.metrics == "both":
            _paired(runs, ("consumer_cpu_us_per_event", "relay_cpu_us_per_event", "seconds"))
        return runs
    finally:
        drop_pg_database(template)


def _catch_up_once(args: argparse.Namespace, url: str, data: Path, end: int, metrics_on: bool, n: int) -> dict[str, Any]:
    import sqlalchemy as sa

    from consumers.kafka_contract import relay_position
    from consumers.kafka_projections import position_visible

    settings = distributed_settings(url, data, kafka_topic_partitions=6, pg_pool_size=12)
    h = Hotline.start(settings, SystemClock())
    logs = data / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    program = (HOTLINE,) if metrics_on else (sys.executable, "-m", "tests.bench.without_metrics")
    relay = Proc("relay", settings, logs, program=program, HOTLINE_METRICS_PORT=str(METRICS_PORT))

    def relayed() -> int:
        with h.read_store.engine.connect() as conn:
            try:
                return relay_position(conn)
            except sa.exc.ProgrammingError:  # the relay has not created its tables yet
                return 0

    # The whole log published first: the consumer's catch-up then runs at its own pace.
    wait_until(lambda: relayed() >= end, 300, "relay")
    consumer = Proc("consume projections", settings, logs, program=program, HOTLINE_METRICS_PORT=str(METRICS_PORT + 1))
    spy = None
    scraping = threading.Event()

    def cpu(proc: Proc) -> float:
        fields = Path(f"/proc/{proc.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    try:
        if metrics_on:
            threading.Thread(
                target=_scrape_every, args=([METRICS_PORT, METRICS_PORT + 1], args.scrape_seconds, scraping), daemon=True
            ).start()
        if args.py_spy:  # where the consumer's time goes: a flame graph of the catch-up
            import subprocess

            spy_cmd = [str(ROOT / ".venv/bin/py-spy"), "record", "-p", str(consumer.proc.pid), "-o", f"{args.py_spy}.{n}"]
            spy = subprocess.Popen([*spy_cmd, "-r", "200", "--format", "raw", "--nonblocking"])
        # From the consumer's first applied batch on: the start-up (about 2 s of imports)
        # is the same with metrics or without, and would only dilute the difference.
        wait_until(lambda: max(h.read_store.positions().values(), default=0) > 0, 120, "start", every=0.02)
        first, cpu_first, started = max(h.read_store.positions().values(), default=0), cpu(consumer), time.perf_counter()
        wait_until(lambda: position_visible(h.read_store, end), 900, "catch-up")
        seconds = time.perf_counter() - started
        spent = cpu(consumer) - cpu_first
        return {
            "metrics": "on" if metrics_on else "off",
            "events": end,
            "seconds": round(seconds, 2),
            "consumer_cpu_s": round(spent, 2),
            # The events applied after the first batch (their positions: the log has no gaps).
            "consumer_cpu_us_per_event": round(spent / max(1, end - first) * 1e6),
            # The relay's whole run, start-up included.
            "relay_cpu_us_per_event": round(cpu(relay) / end * 1e6),
        }
    finally:
        scraping.set()
        if spy is not None:
            spy.send_signal(2)  # SIGINT: py-spy writes its file and exits
            spy.wait(30)
        consumer.stop()
        relay.stop()
        h.close()
        delete_topics(settings)


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
    lg.add_argument("--writers", type=int, default=4, help="writer threads per writer process")
    lg.add_argument("--procs", type=int, default=1, help="writer processes")
    lg.add_argument("--consumers", type=int, default=1)
    lg.add_argument("--check-ms", type=float, default=10.0, help="how often the measuring process evaluates visibility")
    lg.add_argument("--series", default="", help="write 'commit-time position lag-ms' per command to this file")
    lg.add_argument("--consumer-args", default="", help="extra arguments of `hotline consume projections`")
    lg.add_argument(
        "--metrics",
        choices=("on", "off", "both", "scrape", "side-by-side", "twins", "switchback"),
        default="on",
        help="both: recorded or not, alternated; scrape: scraped or not; side-by-side: on and off at once; twins: off and off at once; "
        "switchback: one run, recording switched on and off in blocks",
    )
    lg.add_argument("--block-seconds", type=float, default=5.0, help="switchback: how long each block of one mode lasts")
    lg.add_argument("--washout-seconds", type=float, default=1.0, help="switchback: the start of each block left out")
    lg.add_argument("--rounds", type=int, default=1, help="runs of each --metrics mode")
    lg.add_argument("--scrape-seconds", type=float, default=5.0, help="how often /metrics is scraped with metrics on")
    cu = sub.add_parser("catchup")
    cu.add_argument("--steps", type=int, default=8000, help="workload steps written first (about two events each)")
    cu.add_argument("--py-spy", default="", help="record the consumer with py-spy into FILE.<run> (raw folded stacks)")
    cu.add_argument("--metrics", choices=("on", "off", "both"), default="on", help="both: on and off alternated")
    cu.add_argument("--rounds", type=int, default=1, help="catch-ups of each --metrics mode")
    cu.add_argument("--scrape-seconds", type=float, default=5.0, help="how often /metrics is scraped with metrics on")
    args = parser.parse_args()
    print(f"Kafka {KAFKA}")
    fn = {"replay": bench_replay, "relay": bench_relay, "lag": bench_lag, "catchup": bench_catchup}[args.what]
    fn(args)


if __name__ == "__main__":
    main()
