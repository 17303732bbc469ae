"""IVR benchmark: simultaneous sessions in one process, digit-to-prompt latency.

1,000 phone lines (``--sessions``) take calls in the shipped flow (``infra/data/ivr/main.json``)
at once, each line an asyncio task of one event loop, their inputs interleaved: each line
starts within the first ``--ramp`` seconds and takes calls one after the other for
``--seconds``. A caller keys after the prompt played (2–6 s), the digits of a reference
0.2–0.6 s apart, and talks 15–45 s when leaving a message. The engine runs with the real
ports on an embedded store (a scratch data folder): status lookups read the
request-status read model (``--requests`` real requests), opening hours come from the
``hotline`` calendar, and the callers who find the hotline closed leave a message that
is registered as a request with its recording (those commands run in one worker thread,
as the ARI adapter runs I/O, and are timed apart).

Scripts, chosen per caller: status of a known request then wait for a person (35%),
status of an unknown reference then the fallback to a person (15%), a topic then a
callback (25%), wrong keys and silence until the menu gives up (10%), out of hours: a
message (15%).

Digit-to-prompt latency = from the moment an input is due (its scheduled time on the
loop's clock) to the moment the engine has answered it: the loop's own lag is included,
so 1,000 sessions sharing one thread are measured as a caller would hear them.

``--projections off`` is the distributed layout: the read models are applied by other
processes, not after each commit of this one (in the embedded default each message's two
commands also update every read model in this interpreter, which the loop then waits
for). ``--no-messages``: nobody leaves a message (no commands while the sessions run).
``--switch-interval`` (default 0.001 s, Python's own 0.005 s): how long the thread that
registers messages may keep the interpreter before the loop gets it back; at 5 ms a
digit that waits for a lookup's I/O waits whole intervals behind the read models' work.

Run:  python tests/bench/bench_ivr.py [--sessions 1000] [--seconds 30] [--projections on|off] [--no-messages] [--switch-interval 0.005]
  or: python -m pytest tests/bench/bench_ivr.py -s   (200 lines for 6 s, no messages)
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import statistics
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import yaml  # noqa: E402

from domain.base import SYSTEM, Actor  # noqa: E402
from domain.catalogue import commands as catc  # noqa: E402
from domain.requests import commands as rc  # noqa: E402
from infra.runtime import Hotline  # noqa: E402
from infra.scratch import mark  # noqa: E402
from infra.settings import Settings  # noqa: E402
from telephony_adapter.ivr.actions import Record  # noqa: E402
from telephony_adapter.ivr.demo import publish_demo_flows  # noqa: E402
from telephony_adapter.ivr.engine import Flow, IvrSession  # noqa: E402
from telephony_adapter.ivr.ports import HotlinePorts, current_flow, silence_wav  # noqa: E402

STAFFED = datetime(2026, 11, 30, 9, 0, tzinfo=UTC)  # Monday 10:00 in Rome
CLOSED = datetime(2026, 11, 29, 21, 30, tzinfo=UTC)  # Sunday 22:30 in Rome
AGENT = Actor("op-bench", "agent")
# Messages are registered by one worker thread, in arrival order: the commands (and, in
# the embedded default, the read models they update) share the interpreter with the loop.
MESSAGES = ThreadPoolExecutor(max_workers=1, thread_name_prefix="ivr-messages")


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def setup(data: Path, requests: int) -> tuple[Hotline, list[tuple[str, str]]]:
    mark(data, "bench_ivr")
    hotline = Hotline.start(Settings(data_dir=data, log_level="warning"))
    hotline.bus.execute(catc.ImportCatalogue(document=yaml.safe_load((ROOT / "infra/data/catalogue.yaml").read_text("utf-8"))), SYSTEM)
    publish_demo_flows(hotline)
    known = []
    for i in range(requests):
        phone = f"+39 347 {i // 10000:03d} {i % 10000:04d}"
        body = rc.RegisterRequest(
            kind="action", channel="phone", description=f"bench {i}", contact=rc.Contact(name=f"Caller {i}", phone=phone)
        )
        known.append((str(hotline.bus.execute(body, AGENT).result["reference"]), phone))
    return hotline, known


MIX = {"status": 35, "unknown": 15, "callback": 25, "lost": 10, "message": 15}


def script(rnd: random.Random, known: list[tuple[str, str]], mix: dict[str, int]) -> tuple[str, datetime, str, list[str]]:
    """(kind, the time the flow sees, caller, inputs): digits, "t" (silence) or "r" (a recording done)."""
    reference, phone = rnd.choice(known)
    kind = rnd.choices(list(mix), list(mix.values()))[0]
    if kind == "status":
        return kind, STAFFED, phone, ["2", "1", reference, "2", "1", "1"]
    if kind == "unknown":
        return kind, STAFFED, phone, ["1", "1", "000000000000", "t", "t"]
    if kind == "callback":
        return kind, STAFFED, phone, ["3", "2", "2", "2"]
    if kind == "lost":
        return kind, STAFFED, phone, ["1", "9", "t", "8"]
    return kind, CLOSED, phone, ["1", "2", "r"]


def pause(rnd: random.Random, item: str, within: bool) -> float:
    """Seconds before the caller's next input: a message takes its time to say, a digit of
    a reference follows the one before quickly, anything else comes after a prompt."""
    if item == "r":
        return rnd.uniform(15, 45)
    if within:
        return rnd.uniform(0.2, 0.6)
    return rnd.uniform(2.0, 6.0)


def keyed(inputs: list[str]) -> list[tuple[str, bool]]:
    """The inputs one by one; a reference ("261130000042") is its digits, each but the first
    keyed right after the one before."""
    return [(ch, n > 0) for item in inputs for n, ch in enumerate(item if item.isdigit() else [item])]


async def line(
    i: int,
    flow: Flow,
    ports: HotlinePorts,
    rnd: random.Random,
    known: list[tuple[str, str]],
    ramp: float,
    end: float,
    out: dict[str, list[Any]],
    mix: dict[str, int],
) -> None:
    """One phone line: a call, then the next caller on it, until ``end`` (the loop's clock)."""
    loop = asyncio.get_running_loop()
    due = loop.time() + rnd.uniform(0, ramp)
    calls = 0
    while due < end:
        kind, flow_time, phone, inputs = script(rnd, known, mix)
        await asyncio.sleep(max(0.0, due - loop.time()))
        session = IvrSession(flow, phone, "12345", flow_time, ports, session_id=f"b{i}-{calls}")
        actions = session.start(flow_time)
        now = flow_time
        for item, within in keyed(inputs):
            gap = pause(rnd, item, within)
            due += gap
            now += timedelta(seconds=gap)
            await asyncio.sleep(max(0.0, due - loop.time()))
            if item == "r":
                record = next(a for a in actions if isinstance(a, Record))
                started = time.perf_counter()
                actions = await loop.run_in_executor(MESSAGES, session.on_recording_finished, record.name, gap, now)
                out["message_ms"].append((time.perf_counter() - started) * 1000)
                continue
            began = time.perf_counter()
            actions = session.on_timeout(now) if item == "t" else session.on_digit(item, now)
            out["service_ms"].append((time.perf_counter() - began) * 1000)
            out["latency_ms"].append((loop.time() - due) * 1000)
        out["outcomes"].append((kind, session.record()["outcome"], session.message_reference))
        calls += 1
        due = max(due, loop.time()) + rnd.uniform(0.5, 3.0)  # the next caller on this line


async def run_sessions(
    hotline: Hotline, known: list[tuple[str, str]], sessions: int, ramp: float, seconds: float, seed: int, mix: dict[str, int]
) -> dict[str, list[Any]]:
    flow = current_flow(hotline, "main")
    audio = silence_wav(6.0)
    ports = HotlinePorts.for_flow(hotline, flow, lambda name: audio)
    rnd = random.Random(seed)
    out: dict[str, list[Any]] = {"latency_ms": [], "service_ms": [], "message_ms": [], "outcomes": []}
    end = asyncio.get_running_loop().time() + seconds
    await asyncio.gather(*(line(i, flow, ports, random.Random(rnd.random()), known, ramp, end, out, mix) for i in range(sessions)))
    return out


def bench(
    sessions: int = 1000,
    ramp: float = 5.0,
    seconds: float = 30.0,
    requests: int = 100,
    seed: int = 7,
    messages: bool = True,
    projections: bool = True,
) -> dict[str, Any]:
    mix = dict(MIX) if messages else {k: v for k, v in MIX.items() if k != "message"}
    with tempfile.TemporaryDirectory(prefix="hotline-bench-ivr-") as folder:
        hotline, known = setup(Path(folder), requests)
        if not projections:
            # The distributed layout: the read models are applied by other processes, not
            # after each commit of this one (the status lookups read what setup projected).
            hotline.bus.after_commit = None
        try:
            started, cpu, load = time.perf_counter(), time.process_time(), os.getloadavg()[0]
            out = asyncio.run(run_sessions(hotline, known, sessions, ramp, seconds, seed, mix))
            wall, cpu = time.perf_counter() - started, time.process_time() - cpu
        finally:
            hotline.close()
    lat = out["latency_ms"]
    outcomes = out["outcomes"]
    result = {
        "lines": sessions,
        "calls": len(outcomes),
        "inputs": len(lat),
        "wall_s": round(wall, 1),
        "inputs_per_s": round(len(lat) / wall, 1),
        "p50_ms": round(percentile(lat, 50), 2),
        "p95_ms": round(percentile(lat, 95), 2),
        "p99_ms": round(percentile(lat, 99), 2),
        "max_ms": round(max(lat), 2),
        "engine_p99_ms": round(percentile(out["service_ms"], 99), 2),  # the engine and its ports alone, no waiting
        "cpu_s": round(cpu, 1),  # this process, messages' commands included
        "load_average": f"{load:.1f} → {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores",
        "messages": sum(1 for _, _, ref in outcomes if ref),
        "message_p50_ms": round(statistics.median(out["message_ms"]), 1) if out["message_ms"] else None,
        "message_p99_ms": round(percentile(out["message_ms"], 99), 1) if out["message_ms"] else None,
        "ended": sum(1 for _, outcome, _ in outcomes if outcome),
    }
    return result


def test_bench_ivr_small() -> None:
    result = bench(sessions=200, ramp=2.0, seconds=6.0, requests=20, messages=False)
    print(result)
    assert result["ended"] == result["calls"] >= 200 and result["p99_ms"] < 50


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sessions", type=int, default=1000)
    parser.add_argument("--ramp", type=float, default=5.0, help="seconds over which the first callers arrive")
    parser.add_argument("--seconds", type=float, default=30.0, help="how long new calls start on each line")
    parser.add_argument("--requests", type=int, default=100, help="requests in the store to look up")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--no-messages", action="store_true", help="no caller leaves a message (no commands while the sessions run)")
    parser.add_argument("--projections", choices=["on", "off"], default="on", help="off: read models not applied in this process")
    parser.add_argument(
        "--switch-interval",
        type=float,
        default=0.001,
        help="sys.setswitchinterval: how long a busy thread keeps the GIL (Python's default 0.005)",
    )
    args = parser.parse_args()
    sys.setswitchinterval(args.switch_interval)
    result = bench(
        args.sessions,
        args.ramp,
        args.seconds,
        args.requests,
        args.seed,
        messages=not args.no_messages,
        projections=args.projections == "on",
    )
    for key, value in result.items():
        print(f"{key:>16}: {value}")
    print(f"goal p99 < 50 ms: {'met' if result['p99_ms'] < 50 else 'NOT met'}")


if __name__ == "__main__":
    main()
