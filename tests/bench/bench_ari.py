"""ARI benchmark: event → command latency with 200 concurrent calls.

The real adapter process (``telephony_adapter/process.py``) connected over loopback to
the Asterisk stand-in, a real hotline store (SQLite by default, PostgreSQL with
``--store postgres``) and the real router. Calls arrive open loop at ``calls / hold``
per second for ``--seconds``, are offered to agents whose legs the adapter originates
and which answer at once, talk ``--hold`` seconds and hang up: ``--calls`` calls in
progress at once; the stand-in runs in a process of its own, as Asterisk would. For every
ARI event that issued a command (``StasisStart`` → ``contact_arrives``, the agent leg
up → ``answer_contact``, ``ChannelHangupRequest`` → ``end_contact``) it measures the
time from the event's arrival on the WebSocket to the command's commit. Goal: p99 < 20 ms.

Run:  python tests/bench/bench_ari.py [--calls 200] [--hold 10] [--seconds 30] [--store sqlite|postgres]
                                     [--projections on|off] [--standin apart|same]
  or: python -m pytest tests/bench/bench_ari.py -s   (smaller sizes)
"""

from __future__ import annotations

import argparse
import multiprocessing
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from consumers.router import Router, enable_aggregate_cache  # noqa: E402
from domain.base import Actor, SystemClock  # noqa: E402
from domain.contact_center import commands as cc  # noqa: E402
from infra.runtime import Hotline  # noqa: E402
from infra.settings import Settings  # noqa: E402
from telephony_adapter.ari_client import AriClient  # noqa: E402
from telephony_adapter.process import TelephonyProcess  # noqa: E402
from telephony_adapter.standin.model import AriModel  # noqa: E402
from telephony_adapter.standin.server import StandIn, serve_in_subprocess  # noqa: E402

MODEL = ROOT / "tests" / "telephony" / "ari_model"
SUP = Actor("sup1", "supervisor")


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def wait(predicate: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.01)
    raise SystemExit(f"timed out: {what}")


class Pbx:
    """The stand-in, driven in this process or, as Asterisk would be, in its own."""

    def __init__(self, apart: bool) -> None:
        self.apart = apart
        self.local: StandIn | None = None
        if apart:
            ctx = multiprocessing.get_context("spawn")
            ready = ctx.Queue()
            self.proc = ctx.Process(target=serve_in_subprocess, args=(str(MODEL), ready), daemon=True)
            self.proc.start()
            port = ready.get(timeout=60)
            self.url = f"http://127.0.0.1:{port}/ari"
            self.http = httpx.Client(base_url=f"http://127.0.0.1:{port}/standin", timeout=60)
            self.user, self.password = "hotline", "hotline-secret"
        else:
            self.local = StandIn(AriModel(MODEL), ring_seconds=0.0).start()
            self.url, self.user, self.password = self.local.url, self.local.user, self.local.password

    def call(self, number: str, channel_id: str) -> None:
        if self.local is not None:
            self.local.call(number, "general", channel_id=channel_id)
        else:
            self.http.post("/call", json={"number": number, "args": ["general"], "channel_id": channel_id}).raise_for_status()

    def hangup(self, channels: list[str]) -> None:
        if self.local is not None:
            for c in channels:
                self.local.hangup(c)
        elif channels:
            self.http.post("/hangup", json={"channels": channels}).raise_for_status()

    def state(self) -> dict[str, Any]:
        if self.local is not None:
            bridged = [c for b in self.local.bridges.values() for c in b["channels"]]
            s = self.local
            return {
                "channels": len(s.channels),
                "bridges": len(s.bridges),
                "bridged": bridged,
                "violations": s.violations,
                "requests": len(s.requests),
            }
        state: dict[str, Any] = self.http.get("/state").json()
        return state

    def stop(self) -> None:
        if self.local is not None:
            self.local.stop()
        else:
            self.proc.terminate()
            self.proc.join(10)


def run(
    calls: int = 200,
    hold: float = 10.0,
    seconds: float = 30.0,
    store: str = "sqlite",
    pg_url: str | None = None,
    projections: bool = True,
    apart: bool = True,
    workers: int = 32,
) -> dict[str, Any]:
    """``calls`` concurrent calls: arrivals at ``calls / hold`` per second for ``seconds``
    (open loop), each talking ``hold`` seconds once answered."""
    folder = Path(tempfile.mkdtemp(prefix="bench-ari-"))
    settings = Settings(data_dir=folder, database_url=pg_url if store == "postgres" else None, inprocess_projections=projections)
    hotline = Hotline.start(settings, SystemClock())
    enable_aggregate_cache(hotline.store)
    pbx = Pbx(apart)
    router = Router(hotline.store, hotline.bus, name="bench-router")
    bus = hotline.bus
    bus.execute(cc.DefineQueue(queue_id="general", wrap_seconds=0, offer_timeout_seconds=120), SUP)
    agents = calls + calls // 5  # a few more agents than calls: nobody waits long for one
    for i in range(agents):
        agent = f"B{i:04d}"
        bus.execute(cc.LoginAgent(agent_id=agent, queues=["general"]), Actor(agent, "agent"))
    router.start()
    client = AriClient(pbx.url, pbx.user, pbx.password, "hotline", timeout=30)
    process = TelephonyProcess(hotline.store, hotline.bus, client, workers=workers, poll=0.05).start()
    wait(process.connected.is_set, 10, "adapter connected")
    started = time.perf_counter()
    peak = 0
    state: dict[str, Any] = {}
    try:
        rate = calls / hold
        total = int(rate * seconds)
        talking: dict[str, float] = {}  # channel -> when it was bridged (-1: not yet)
        pending = [(i / rate, i) for i in range(total)]
        while pending or talking:
            now = time.perf_counter() - started
            while pending and pending[0][0] <= now:
                _, i = pending.pop(0)
                channel = f"bench.{i}"
                pbx.call(f"+3906{i:07d}", channel)
                talking[channel] = -1.0
            state = pbx.state()
            bridged = set(state["bridged"])
            done = []
            for channel, at in talking.items():
                if at < 0 and channel in bridged:
                    talking[channel] = now
                elif (at >= 0 and now - at >= hold) or (at < 0 and now - int(channel.split(".")[1]) / rate > 120):
                    done.append(channel)  # talked long enough (or never answered: given up)
            pbx.hangup(done)
            for channel in done:
                del talking[channel]
            peak = max(peak, state["bridges"])
            time.sleep(0.02)
        deadline = time.monotonic() + 60
        while (state["channels"] or state["bridges"]) and time.monotonic() < deadline:
            time.sleep(0.1)
            state = pbx.state()
        time.sleep(0.5)
    finally:
        elapsed = time.perf_counter() - started
        process.stop()
        router.stop()
        pbx.stop()
        hotline.close()
    assert state.get("violations") == [], state.get("violations")
    ms = [x * 1000 for x in process.stats.latencies]
    return {
        "store": store,
        "projections": "in-process" if projections else "off",
        "stand-in": "own process" if apart else "same process",
        "arrivals": f"open loop, {calls / hold:.0f} calls/s for {seconds:.0f} s, {hold:.0f} s talk",
        "concurrent calls (peak)": peak,
        "workers": workers,
        "commands": len(ms),
        "p50_ms": round(percentile(ms, 50), 2),
        "p95_ms": round(percentile(ms, 95), 2),
        "p99_ms": round(percentile(ms, 99), 2),
        "max_ms": round(max(ms), 2),
        "ari_requests": state.get("requests"),
        "wall_s": round(elapsed, 1),
        "left over": f"{state.get('channels')} channels, {state.get('bridges')} bridges",
        "adapter errors": process.stats.errors[:5] or "none",
    }


def test_ari_event_to_command_latency() -> None:
    result = run(calls=20, hold=2.0, seconds=4.0, apart=False)
    print(result)
    assert result["commands"] >= 3 * 30


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=200)
    parser.add_argument("--hold", type=float, default=10.0, help="seconds each call talks (arrivals: calls / hold per second)")
    parser.add_argument("--seconds", type=float, default=30.0, help="seconds of arrivals")
    parser.add_argument(
        "--projections",
        choices=("on", "off"),
        default="on",
        help="off: the read models are not updated in the process (the distributed layout)",
    )
    parser.add_argument(
        "--standin", choices=("apart", "same"), default="apart", help="the stand-in in its own process (as Asterisk) or in this one"
    )
    parser.add_argument("--store", choices=("sqlite", "postgres"), default="sqlite")
    parser.add_argument("--workers", type=int, default=32, help="the adapter's command threads")
    parser.add_argument(
        "--switch-interval",
        type=float,
        default=Settings().telephony_switch_interval,
        help="sys.setswitchinterval, as `hotline telephony` sets it (HOTLINE_TELEPHONY_SWITCH_INTERVAL; Python's default 0.005)",
    )
    parser.add_argument(
        "--pg-url", default=None, help="with --store postgres: a database to use (created by tests/conftest.py's helper if unset)"
    )
    args = parser.parse_args()
    sys.setswitchinterval(args.switch_interval)
    pg_url = args.pg_url
    if args.store == "postgres" and pg_url is None:
        from tests.conftest import create_pg_database

        pg_url = create_pg_database("bench_ari")
    result = run(args.calls, args.hold, args.seconds, args.store, pg_url, args.projections == "on", args.standin == "apart", args.workers)
    result["switch_interval"] = args.switch_interval
    for key, value in result.items():
        print(f"{key:>14}: {value}")
    print(f"goal p99 < 20 ms: {'met' if result['p99_ms'] < 20 else 'NOT met'}")


if __name__ == "__main__":
    main()
