"""The console's goals, on loopback with the demo data (issue 15):

* every page's first render < 1 s (the server's answer, and the browser's load in Chromium);
* an agent's action round trip p95 < 200 ms (a JSON command sent as the browser sends it:
  session cookie and CSRF token);
* commit → browser update p95 < 1 s with 200 open live connections (SSE), measured from
  the moment a command is sent until each connection has its event.

* the contact center's load: 1,000 live connections, 100 commands/s and 400 reads/s,
  p99 < 100 ms (``--load-only`` and the ``--load-*`` options measure it alone, or lighter).

    .venv/bin/python tests/bench/bench_console.py [--connections 200] [--commits 30] [--actions 200]
    .venv/bin/python tests/bench/bench_console.py --load-only --load-connections 0 --load-commands 20 --load-reads 80
    .venv/bin/python tests/bench/bench_console.py --load-only --load-commands 60 --load-reads 240 --against HOTLINE_QUICK_READS_INLINE=false

Before the load, the server's CPU per request of each kind the load sends is measured one
request at a time (``--cpu-requests``): what one process must spend for the load's mix.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp
import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from tests.console.conftest import CHROMIUM, CHROMIUM_ARGS, PASSWORD, Server, sign_in, start_server

# (user, page) pairs: each role's screens.
PAGES = [
    ("op-anna", "/console/desk"),
    ("sup-li", "/console/wallboard"),
    ("sup-li", "/console/agents"),
    ("sup-li", "/console/sla"),
    ("dept-transport", "/console/inbox"),
    ("ctrl-office", "/console/control"),
    ("sup-li", "/console/cases"),
    ("expert-marco", "/console/knowledge"),
    ("analyst-sara", "/console/reports"),
    ("auditor-omar", "/console/audit"),
    (None, "/portal"),
]


def pct(values: list[float], q: float) -> float:
    if not values:  # a kind the load did not send (its rate 0)
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def session(server: Server, user: str) -> httpx.Client:
    """A browser's session: the cookie the sign-in form sets, and its CSRF token."""
    client = httpx.Client(base_url=server.base, timeout=30)
    answer = client.post("/console/sign-in", data={"username": user, "password": PASSWORD})
    assert answer.status_code in (200, 303), answer.text
    client.headers["X-CSRF-Token"] = client.cookies.get("hotline_csrf") or ""
    return client


def page_times(server: Server, rounds: int) -> list[dict[str, Any]]:
    out = []
    for user, path in PAGES:
        client = session(server, user) if user else httpx.Client(base_url=server.base, timeout=30)
        times, status = [], 0
        for _ in range(rounds):
            started = time.perf_counter()
            answer = client.get(path)
            times.append((time.perf_counter() - started) * 1000)
            status = answer.status_code
        client.close()
        out.append({"page": path, "user": user or "anonymous", "status": status, "p50_ms": statistics.median(times), "max_ms": max(times)})
    return out


def browser_times(server: Server) -> dict[str, float]:
    """Each page's load in Chromium (navigation start → load event), first visit."""
    from playwright.sync_api import sync_playwright

    found: dict[str, float] = {}
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        for user, path in PAGES:
            context = chromium.new_context(base_url=server.base)
            page = context.new_page()
            if user:
                sign_in(page, user)
            page.goto(path)
            found[path] = float(
                page.evaluate("() => { const t = performance.getEntriesByType('navigation')[0]; return t.loadEventEnd - t.startTime; }")
            )
            context.close()
        chromium.close()
    return found


def action_round_trips(server: Server, n: int) -> list[float]:
    """An agent's action as the console sends it: a note on a case, n times."""
    with server.api("sup-li") as api:
        ref = api.get("/requests", params={"limit": 1}).json()["items"][0]["reference"]
    times = []
    client = session(server, "op-anna")
    for i in range(n):
        started = time.perf_counter()
        answer = client.post(f"/requests/{ref}/notes", json={"text": f"bench note {i}", "internal": True})
        times.append((time.perf_counter() - started) * 1000)
        assert answer.status_code < 300, answer.text
    client.close()
    return times


async def open_live(server: Server, cookie: str, topics: list[str]) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """One page's live connection, as plain HTTP/1.1 on a socket: a load generator that
    keeps a thousand of them must not spend its own CPU on a client library's pool."""
    url = httpx.URL(server.base)
    reader, writer = await asyncio.open_connection(url.host, url.port)
    query = "&".join(f"topic={t}" for t in topics)
    writer.write(
        f"GET /console/live?{query} HTTP/1.1\r\nHost: {url.host}\r\nCookie: {cookie}\r\nAccept: text/event-stream\r\n\r\n".encode()
    )
    await writer.drain()
    status = await reader.readline()
    assert b" 200 " in status, status
    return reader, writer  # the writer too: dropped, it would close the connection


def session_cookie(server: Server, user: str) -> str:
    client = session(server, user)
    cookie = "; ".join(f"{k}={v}" for k, v in client.cookies.items())
    client.close()
    return cookie


async def live_latency(server: Server, connections: int, commits: int) -> list[float]:
    """Opens ``connections`` SSE connections to the wallboard's topic, then sends
    ``commits`` contacts, one at a time; each connection's event for each commit is timed."""
    cookie = session_cookie(server, "sup-li")
    arrivals: list[list[float]] = [[] for _ in range(connections)]
    opened = [await open_live(server, cookie, ["wallboard"]) for _ in range(connections)]

    async def listen(i: int) -> None:
        while line := await opened[i][0].readline():
            if line.startswith(b"event: wallboard"):
                arrivals[i].append(time.perf_counter())

    tasks = [asyncio.create_task(listen(i)) for i in range(connections)]
    await asyncio.sleep(0.5)
    sent: list[float] = []
    with server.api("sup-li") as api:
        for k in range(commits):
            sent.append(time.perf_counter())
            answer = await asyncio.to_thread(
                api.post, "/contacts", json={"channel": "phone", "queue_id": "general", "subject": f"bench {k}", "language": "it"}
            )
            assert answer.status_code == 201, answer.text
            await asyncio.sleep(0.3)  # each commit's events arrive before the next is sent
    await asyncio.sleep(1.5)
    for task in tasks:
        task.cancel()
    for _, writer in opened:
        writer.close()
    latencies = []
    for got in arrivals:
        for at in sent:
            after = [a for a in got if a >= at]
            if after:
                latencies.append((min(after) - at) * 1000)
    missing = connections * commits - len(latencies)
    if missing:
        print(f"warning: {missing} of {connections * commits} updates never arrived")
    return latencies


# What the load reads (a case, the wallboard, a desk, the SLA list) and the note it writes.
LOAD_READS = ("/requests/{ref}", "/wallboard", "/agents/op-anna/desk", "/sla/breaches")


def note(k: int) -> dict[str, Any]:
    return {"text": f"load {k}", "internal": True}


def request_refs(server: Server) -> list[str]:
    """The demo's cases the load reads and writes notes on."""
    with server.api("sup-li") as api:
        return [r["reference"] for r in api.get("/requests", params={"limit": 200}).json()["items"]]


def server_cpu(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def own_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def cpu_per_request(server: Server, pid: int, n: int) -> dict[str, float]:
    """The server's CPU (ms) per request of each kind the load sends, one client, one at a
    time: what one process must spend for the load's mix, apart from any queueing."""
    spent: dict[str, float] = {}
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:  # the demo's start-up work (analytics ingest …) done first
        before = server_cpu(pid)
        time.sleep(1)
        if server_cpu(pid) - before < 0.05:
            break
    refs = request_refs(server)
    with server.api("sup-li") as api:
        kinds: dict[str, Any] = {path: (lambda k, path=path: api.get(path.format(ref=refs[k % len(refs)]))) for path in LOAD_READS}
        kinds["POST /requests/{ref}/notes"] = lambda k: api.post(f"/requests/{refs[k % len(refs)]}/notes", json=note(k))
        for kind, send in kinds.items():
            send(0)
            before = server_cpu(pid)
            for k in range(n):
                answer = send(k)
                assert answer.status_code < 400, answer.text
            time.sleep(1.5)  # the analytics ingest's round for these commits (1 s gather) counts too
            spent[kind] = (server_cpu(pid) - before) / n * 1000
    return spent


async def contact_center_load(
    server: Server, pid: int, seconds: float, commands_per_s: float, reads_per_s: float, connections: int
) -> dict[str, Any]:
    """The equivalent of 1,000 signed-in agents: ``connections`` live connections open,
    and an open-loop schedule of commands and reads (each timed from when it was due, so
    a slow server cannot hide its queue by slowing the generator down)."""
    cookie = session_cookie(server, "sup-li")
    refs = request_refs(server)
    token = server.token("sup-li")
    took: dict[str, list[float]] = {"command": [], "read": []}
    failed = 0
    # Every agent's page watches the wallboard and its own desk.
    opened = [await open_live(server, cookie, ["wallboard", f"agent_desk:agent-{i}"]) for i in range(connections)]

    async def drain(reader: asyncio.StreamReader) -> None:
        while await reader.readline():
            pass

    watchers = [asyncio.create_task(drain(reader)) for reader, _ in opened]
    # aiohttp, not httpx: the generator must not be what limits the load. httpx's async
    # client cost 4 ms of CPU a request here (aiohttp 0.25 ms), so at 500 requests/s this
    # process saturated its core and its own queue was measured as the server's latency.
    connector = aiohttp.TCPConnector(limit=64)
    async with aiohttp.ClientSession(base_url=server.base, headers={"Authorization": f"Bearer {token}"}, connector=connector) as client:
        # At most 64 requests in flight, the rest queued here in due order.
        in_flight = asyncio.Semaphore(64)

        async def one(kind: str, due: float, k: int) -> None:
            nonlocal failed
            await asyncio.sleep(max(0.0, due - time.perf_counter()))
            ref = refs[k % len(refs)]
            async with in_flight:
                try:
                    if kind == "command":
                        answer = client.post(f"/requests/{ref}/notes", json=note(k))
                    else:
                        answer = client.get(LOAD_READS[k % len(LOAD_READS)].format(ref=ref))
                    async with answer as response:
                        await response.read()
                        ok = response.status < 400
                except aiohttp.ClientError:
                    ok = False  # the connection dropped: a failure, timed like the rest
            took[kind].append((time.perf_counter() - due) * 1000)
            failed += not ok

        start = time.perf_counter() + 0.5
        # Where the machine's cores go during the load: the server's and this generator's share.
        cpu_before = (server_cpu(pid), own_cpu())
        jobs = [one("command", start + i / commands_per_s, i) for i in range(int(seconds * commands_per_s))]
        jobs += [one("read", start + i / reads_per_s, i) for i in range(int(seconds * reads_per_s))]
        await asyncio.gather(*jobs)
        elapsed = time.perf_counter() - start
        cores = {"server": (server_cpu(pid) - cpu_before[0]) / elapsed, "generator": (own_cpu() - cpu_before[1]) / elapsed}
    for task in watchers:
        task.cancel()
    for _, writer in opened:
        writer.close()
    done = len(took["command"]) + len(took["read"])
    summary: dict[str, Any] = {kind: {"n": len(v), "p50": pct(v, 0.5), "p99": pct(v, 0.99)} for kind, v in took.items()}
    return summary | {"failed": failed, "served_per_s": done / elapsed, "connections": len(opened), "cores": cores}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--connections", type=int, default=200)
    parser.add_argument("--commits", type=int, default=30)
    parser.add_argument("--actions", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--load-seconds", type=float, default=20, help="the 1,000-agent load (0: skip)")
    parser.add_argument("--load-connections", type=int, default=1000)
    parser.add_argument("--load-commands", type=float, default=100, help="per second")
    parser.add_argument("--load-reads", type=float, default=400, help="per second")
    parser.add_argument("--load-only", action="store_true", help="skip the pages, actions and live-update measures")
    parser.add_argument("--cpu-requests", type=int, default=300, help="requests of each kind timed for server CPU (0: skip)")
    parser.add_argument(
        "--against", action="append", default=[], metavar="NAME=VALUE", help="compare with a server started with this setting too"
    )
    parser.add_argument("--against-tree", default="", metavar="DIR", help="compare with a server running another checkout's code")
    parser.add_argument("--rounds-against", type=int, default=2, help="load runs of each server, alternated")
    args = parser.parse_args()
    if args.against or args.against_tree:
        compare(args)
        return
    process, server = start_server(Path(tempfile.mkdtemp(prefix="hotline-bench-console-")))
    pages: list[dict[str, Any]] = []
    loads: dict[str, float] = {}
    actions: list[float] = []
    live: list[float] = []
    cpu: dict[str, float] = {}
    try:
        if args.cpu_requests:
            cpu = cpu_per_request(server, process.pid, args.cpu_requests)
        if not args.load_only:
            pages = page_times(server, args.rounds)
            loads = browser_times(server)
            actions = action_round_trips(server, args.actions)
            live = asyncio.run(live_latency(server, args.connections, args.commits))
        load = (
            asyncio.run(
                contact_center_load(server, process.pid, args.load_seconds, args.load_commands, args.load_reads, args.load_connections)
            )
            if args.load_seconds
            else None
        )
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
    if not args.load_only:
        print("\n| page | as | status | server p50 | server max | browser load |")
        print("|---|---|---|---|---|---|")
        for p in pages:
            load_ms = loads.get(p["page"], 0)
            print(f"| {p['page']} | {p['user']} | {p['status']} | {p['p50_ms']:.0f} ms | {p['max_ms']:.0f} ms | {load_ms:.0f} ms |")
        p50, p95 = pct(actions, 0.5), pct(actions, 0.95)
        print(f"\naction round trip (note on a case, cookie + CSRF), {len(actions)}: p50 {p50:.1f} ms, p95 {p95:.1f} ms")
        print(
            f"commit → SSE event, {args.connections} connections × {args.commits} commits ({len(live)} updates): "
            f"p50 {pct(live, 0.5):.0f} ms, p95 {pct(live, 0.95):.0f} ms, max {max(live):.0f} ms"
        )
    for kind, ms in cpu.items():
        print(f"server CPU per request, {kind}: {ms:.2f} ms ({args.cpu_requests}, one client)")
    if load:
        c, r = load["command"], load["read"]
        print(
            f"{load['connections']} live connections, {args.load_commands:.0f} commands/s + {args.load_reads:.0f} reads/s "
            f"due for {args.load_seconds:.0f} s "
            f"(served {load['served_per_s']:.0f} requests/s): commands p50 {c['p50']:.0f} ms p99 {c['p99']:.0f} ms; "
            f"reads p50 {r['p50']:.0f} ms p99 {r['p99']:.0f} ms; {load['failed']} failed"
        )
        print(
            f"cores busy during the load: the server {load['cores']['server']:.2f}, this load generator "
            f"{load['cores']['generator']:.2f}, of the machine's {os.cpu_count()}"
        )


def compare(args: argparse.Namespace) -> None:
    """The load (and the CPU per request) on two servers, each on a demo of its own: this
    code as configured, and one with ``--against`` settings or ``--against-tree``'s code
    (its directory first on PYTHONPATH). Run in alternation, A B B A …, each server taking
    the same loads in the same order (every load adds notes to the cases the next reads)."""
    other: dict[str, str] = dict(a.split("=", 1) for a in args.against)
    if args.against_tree:
        other["PYTHONPATH"] = str(Path(args.against_tree).resolve())
    sides = {"this": {}, "against": other}
    started = {name: start_server(Path(tempfile.mkdtemp(prefix=f"hotline-bench-console-{name}-")), **env) for name, env in sides.items()}
    try:
        for name, (process, server) in started.items():
            if args.cpu_requests:
                for kind, ms in cpu_per_request(server, process.pid, args.cpu_requests).items():
                    print(f"{name}: server CPU per request, {kind}: {ms:.2f} ms")
        for round_ in range(args.rounds_against):
            for name in list(started) if round_ % 2 == 0 else list(started)[::-1]:
                process, server = started[name]
                load = asyncio.run(
                    contact_center_load(server, process.pid, args.load_seconds, args.load_commands, args.load_reads, args.load_connections)
                )
                c, r = load["command"], load["read"]
                print(
                    f"{name}: served {load['served_per_s']:.0f} requests/s, commands p50 {c['p50']:.0f} ms p99 {c['p99']:.0f} ms, "
                    f"reads p50 {r['p50']:.0f} ms p99 {r['p99']:.0f} ms, {load['failed']} failed, "
                    f"server {load['cores']['server']:.2f} cores",
                    flush=True,
                )
    finally:
        for process, _ in started.values():
            process.terminate()
            process.wait(timeout=30)
    print(f"this: as configured; against: {other}")


if __name__ == "__main__":
    main()
