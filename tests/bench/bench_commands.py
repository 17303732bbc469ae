"""Commands per second through the domain layer and through HTTP, 1 and 32 clients,
on SQLite and PostgreSQL.

    python tests/bench/bench_commands.py                 # everything, ~3 minutes
    python tests/bench/bench_commands.py --store postgres --layer domain --seconds 10

The domain-layer figure runs the command bus in-process (service layer, aggregates,
group commit, in-process projections). The HTTP figure runs ``hotline serve`` (uvicorn,
one process) and drives it with httpx clients on threads. The command mix is what an
operator does most: register a request (3 events for a new citizen: citizen, identity
claim, request, plus classification) and add a note or reply to an existing one.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from domain.base import Actor
from domain.requests import commands as c
from infra.runtime import Hotline
from infra.settings import Settings
from tests.conftest import create_pg_database, drop_pg_database, load_catalogue

AGENT = Actor("bench", "agent")


def _register_body(i: int) -> dict[str, Any]:
    return {
        "kind": "action",
        "subtype": "complaint",
        "channel": "phone",
        "description": f"Pothole number {i}",
        "contact": {"name": f"Citizen {i}", "phone": f"+39 06 {10_000_000 + i}"},
        "problem_code": "pothole",
    }


def run_clients(clients: int, seconds: float, work: Any) -> dict[str, Any]:
    """Each client thread calls work(client_no, i) until time is up; returns counts and latencies."""
    stop = time.perf_counter() + seconds
    latencies: list[list[float]] = [[] for _ in range(clients)]
    events = [0] * clients
    errors = [0] * clients

    def client(n: int) -> None:
        i = 0
        while time.perf_counter() < stop:
            t0 = time.perf_counter()
            try:
                events[n] += work(n, i)
            except Exception:
                errors[n] += 1
            latencies[n].append(time.perf_counter() - t0)
            i += 1

    started = time.perf_counter()
    threads = [threading.Thread(target=client, args=(n,)) for n in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - started
    return summarise([x for lat in latencies for x in lat], sum(errors), sum(events), elapsed) | {"clients": clients}


def summarise(latencies: list[float], errors: int, events: int, elapsed: float) -> dict[str, Any]:
    flat = sorted(latencies)
    return {
        "commands": len(flat),
        "errors": errors,
        "commands_per_s": round(len(flat) / elapsed, 1),
        "events_per_s": round(events / elapsed, 1),
        "elapsed_s": elapsed,
        "latencies": flat,
        "p50_ms": round(flat[len(flat) // 2] * 1000, 2) if flat else None,
        "p99_ms": round(flat[int(len(flat) * 0.99)] * 1000, 2) if flat else None,
    }


def domain_clients(settings: Settings, clients: int, seconds: float, first: int = 0) -> dict[str, Any]:
    """``clients`` threads on one command bus (one process, one group committer)."""
    hotline = Hotline.start(settings)
    refs: list[str] = []
    lock = threading.Lock()
    offset = random.randrange(10**6)

    def work(n: int, i: int) -> int:
        if i % 2 == 0 or not refs:
            body = _register_body(offset + (first + n) * 100_000 + i)
            out = hotline.bus.execute(c.RegisterRequest(**body), AGENT)
            with lock:
                refs.append(out.result["reference"])
            return 4  # citizen, identity claim, request registered, classified
        ref = refs[random.randrange(len(refs))]
        hotline.bus.execute(c.AddNote(ref=ref, text=f"note {i}"), AGENT)
        return 1

    try:
        batches0, cmds0, seconds0 = hotline.committer.batches, hotline.committer.commands, hotline.committer.seconds
        cpu0 = time.process_time()
        result = run_clients(clients, seconds, work)
        result["cpu_s"] = time.process_time() - cpu0  # all threads of this process
        result["batches"] = hotline.committer.batches - batches0
        result["batched_commands"] = hotline.committer.commands - cmds0
        result["commit_s"] = hotline.committer.seconds - seconds0
        result["pg_cpu_s"] = _pg_backends_cpu(settings)
        return result
    finally:
        hotline.close()


def _pg_backends_cpu(settings: Settings) -> float | None:
    """CPU seconds used so far by the PostgreSQL backends of the bench's database (a fresh
    one per run, so: by this run): with the process's own CPU, the cost per event that load
    from other work on the machine moves far less than events/s. Local server only (/proc)."""
    if not settings.database_url:
        return None
    import psycopg

    try:
        with psycopg.connect(settings.database_url) as conn:
            sql = "SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()"
            pids = [r[0] for r in conn.execute(sql)]
        ticks = os.sysconf("SC_CLK_TCK")
        total = 0
        for pid in pids:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])  # utime, stime
        return total / ticks
    except (OSError, psycopg.Error):
        return None


def _domain_process(settings: Settings, clients: int, seconds: float, first: int, start_at: float, out: Any) -> None:
    # Processes start together so that their windows overlap (wall clock, not perf_counter).
    time.sleep(max(0.0, start_at - time.time()))
    out.put(domain_clients(settings, clients, seconds, first))


def _with_pool(settings: Settings, size: int) -> Settings:
    return settings.model_copy(update={"pg_pool_size": size})


def _stored_events(hotline: Hotline) -> int:
    """Events stored: PostgreSQL's positions have gaps (a conflicting batch burns the
    positions it took), so there the rows are counted."""
    recorder: Any = hotline.store.recorder
    if not hotline.store.is_postgres:
        return hotline.store.max_position()
    with recorder.datastore.get_connection() as conn:
        row = conn.execute(f'SELECT count(*) AS n FROM "{recorder.datastore.schema}"."{recorder.events_table_name}"').fetchone()
    return int(row["n"])


def bench_domain(settings: Settings, clients: int, seconds: float, procs: int = 1) -> dict[str, Any]:
    """The command bus in ``procs`` processes (like ``hotline serve --workers``), the
    clients spread over them; events are counted from the store's positions."""
    import multiprocessing

    hotline = Hotline.start(settings.model_copy(update={"pg_pool_size": 4}))  # loads the catalogue, reads positions
    load_catalogue(hotline)
    position0 = _stored_events(hotline)
    try:
        if procs == 1:
            result = domain_clients(settings, clients, seconds)
            parts = [result]
        else:
            ctx = multiprocessing.get_context("spawn")
            queue = ctx.Queue()
            start_at = time.time() + 3.0  # time for every process to import and connect
            shares = [clients // procs + (1 if k < clients % procs else 0) for k in range(procs)]
            workers = [
                ctx.Process(
                    # Connections: one per client thread and a few for the committer and reads.
                    target=_domain_process,
                    args=(_with_pool(settings, shares[k] + 4), shares[k], seconds, sum(shares[:k]), start_at, queue),
                )
                for k in range(procs)
            ]
            for w in workers:
                w.start()
            parts = []
            while len(parts) < procs:
                try:
                    parts.append(queue.get(timeout=1))
                except Exception:
                    dead = [w.exitcode for w in workers if w.exitcode not in (None, 0)]
                    if dead or (all(w.exitcode is not None for w in workers) and queue.empty()):
                        raise RuntimeError(f"a command process died (exit codes {[w.exitcode for w in workers]})") from None
            for w in workers:
                w.join()
            elapsed = max(p["elapsed_s"] for p in parts)
            result = summarise([x for p in parts for x in p["latencies"]], sum(p["errors"] for p in parts), 0, elapsed)
            result["clients"] = clients
        result["processes"] = procs
        # CPU of the command processes per command: the figure that load on the machine
        # does not move (PostgreSQL's own CPU is not in it).
        result["cpu_ms_per_command"] = round(sum(p["cpu_s"] for p in parts) * 1000 / max(1, result["commands"]), 3)
        if all(p.get("pg_cpu_s") is not None for p in parts):
            result["pg_cpu_ms_per_command"] = round(sum(p["pg_cpu_s"] for p in parts) * 1000 / max(1, result["commands"]), 3)
        # Real events written (timer plans and other policies add to what commands emit).
        events = max(1, _stored_events(hotline) - position0)
        result["events_per_s"] = round(events / result["elapsed_s"], 1)
        result["cpu_us_per_event"] = round(sum(p["cpu_s"] for p in parts) * 1e6 / events, 1)
        if all(p.get("pg_cpu_s") is not None for p in parts):
            result["pg_cpu_us_per_event"] = round(sum(p["pg_cpu_s"] for p in parts) * 1e6 / events, 1)
        batches = sum(p["batches"] for p in parts)
        result["commands_per_transaction"] = round(sum(p["batched_commands"] for p in parts) / max(1, batches), 2)
        result["commit_ms_per_batch"] = round(sum(p["commit_s"] for p in parts) * 1000 / max(1, batches), 2)
        return result
    finally:
        hotline.close()


def bench_http(settings: Settings, clients: int, seconds: float, auth: str = "token") -> dict[str, Any]:
    """``auth``: ``token`` signs every request with a bearer JWT (as in production);
    ``gateway`` trusts X-Actor headers instead (no token to verify: the baseline)."""
    import httpx

    from tests.auth import token_for

    env = dict(os.environ, HOTLINE_DATA_DIR=str(settings.data_dir), HOTLINE_PORT="18931", HOTLINE_LOG_LEVEL="warning")
    env["HOTLINE_TRUSTED_GATEWAY"] = "true" if auth == "gateway" else "false"
    env["HOTLINE_AUDIT_CHAIN"] = "true" if settings.audit_chain else "false"
    env["HOTLINE_ENCRYPT_PERSONAL"] = "true" if settings.encrypt_personal else "false"
    if settings.database_url:
        env["HOTLINE_DATABASE_URL"] = settings.database_url
    hotline = Hotline.start(settings)
    load_catalogue(hotline)
    hotline.close()
    server = subprocess.Popen([str(Path(sys.executable).parent / "hotline"), "serve"], env=env, cwd=Path(__file__).resolve().parents[2])
    try:
        base = "http://127.0.0.1:18931"
        for _ in range(100):
            try:
                if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.2)
        local = threading.local()
        refs: list[str] = []
        timings: list[tuple[float, float]] = []  # (app ms, command ms) from Server-Timing

        def note_timing(r: httpx.Response) -> None:
            parts = dict(p.strip().split(";dur=") for p in r.headers.get("server-timing", "").split(",") if ";dur=" in p)
            if "app" in parts and "command" in parts:
                timings.append((float(parts["app"]), float(parts["command"])))

        offset = random.randrange(10**6)
        if auth == "gateway":
            headers = {"X-Actor-Id": "bench", "X-Actor-Role": "agent"}
        else:
            headers = {"Authorization": f"Bearer {token_for(settings, 'bench', 'agent')}"}

        def work(n: int, i: int) -> int:
            if not hasattr(local, "client"):
                local.client = httpx.Client(base_url=base, headers=headers, timeout=30)
            if i % 2 == 0 or not refs:
                r = local.client.post("/requests", json=_register_body(offset + n * 100_000 + i))
                r.raise_for_status()
                note_timing(r)
                refs.append(r.json()["reference"])
                return 4
            r = local.client.post(f"/requests/{refs[random.randrange(len(refs))]}/notes", json={"text": f"note {i}"})
            r.raise_for_status()
            note_timing(r)
            return 1

        position0 = httpx.get(f"{base}/healthz").json()["position"]
        result = run_clients(clients, seconds, work)
        result["events_per_s"] = round((httpx.get(f"{base}/healthz").json()["position"] - position0) / result["elapsed_s"], 1)
        if timings:
            apps = sorted(t[0] for t in timings)
            commands = sorted(t[1] for t in timings)
            # Where a request's time goes (medians): the command inside the app, the rest of
            # the app (FastAPI, validation, JSON), and outside the app (uvicorn, network, client).
            result["p50_command_ms"] = round(commands[len(commands) // 2], 2)
            result["p50_app_other_ms"] = round(apps[len(apps) // 2] - commands[len(commands) // 2], 2)
            result["p50_outside_app_ms"] = round(result["p50_ms"] - apps[len(apps) // 2], 2)
        return result
    finally:
        server.terminate()
        server.wait(timeout=20)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--store", choices=["sqlite", "postgres", "all"], default="all")
    parser.add_argument("--layer", choices=["domain", "http", "all"], default="all")
    parser.add_argument("--clients", default="1,32")
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--procs", type=int, default=1, help="domain layer: processes sharing the clients (like serve --workers)")
    parser.add_argument(
        "--projections",
        choices=["inprocess", "off"],
        default="inprocess",
        help="off: the distributed mode's write path (projections run in their own consumers)",
    )
    parser.add_argument(
        "--audit-chain",
        choices=["on", "off", "both"],
        default="on",
        help="both: each configuration without and with the audit chain, alternated --rounds times (what the chain costs)",
    )
    parser.add_argument(
        "--encryption",
        choices=["on", "off", "both"],
        default="on",
        help="personal data sealed per citizen; both: without and with it, alternated --rounds times",
    )
    parser.add_argument(
        "--audit",
        choices=["both"],
        default=None,
        help="both: without the chain and encryption, then with both, alternated --rounds times (what issue 13 costs)",
    )
    parser.add_argument("--rounds", type=int, default=1, help="with a 'both' switch: off/on pairs per configuration")
    args = parser.parse_args()
    stores = ["sqlite", "postgres"] if args.store == "all" else [args.store]
    layers = ["domain", "http"] if args.layer == "all" else [args.layer]
    results = []
    for store in stores:
        for layer in layers:
            # (audit chain, encryption) per run: a "both" switch alternates off/on, in the
            # order off, on, on, off, off, on…, so that a machine slowing down (or speeding
            # up) through the run weighs on both sides alike.
            if args.audit == "both":
                pair = [(False, False), (True, True)]
            elif args.audit_chain == "both":
                pair = [(False, args.encryption != "off"), (True, args.encryption != "off")]
            elif args.encryption == "both":
                pair = [(args.audit_chain == "on", False), (args.audit_chain == "on", True)]
            else:
                pair = [(args.audit_chain == "on", args.encryption == "on")]
            variants = [v for k in range(args.rounds) for v in (pair if k % 2 == 0 else pair[::-1])] if len(pair) == 2 else pair
            for clients, (chain, encrypt) in [(int(x), v) for x in args.clients.split(",") for v in variants]:
                tmp = Path(tempfile.mkdtemp(prefix="hotline-bench-"))
                url = create_pg_database("bench") if store == "postgres" else None
                try:
                    settings = Settings(
                        data_dir=tmp,
                        database_url=url,
                        pg_pool_size=40,
                        inprocess_projections=args.projections == "inprocess",
                        audit_chain=chain,
                        encrypt_personal=encrypt,
                    )
                    if layer == "domain":
                        out = bench_domain(settings, clients, args.seconds, args.procs)
                    else:
                        out = bench_http(settings, clients, args.seconds)
                    out.pop("latencies", None)
                    row = {
                        "store": store,
                        "layer": layer,
                        "projections": args.projections,
                        "audit_chain": chain,
                        "encryption": encrypt,
                        **out,
                    }
                finally:
                    if url:
                        drop_pg_database(url)
                results.append(row)
                print(json.dumps(row), flush=True)
    heads = (
        "store | layer | projections | audit chain | encryption | processes | clients | commands/s | events/s | p50 ms | p99 ms | cmds/txn"
    )
    print(f"\n| {heads} | CPU µs/event (process + PostgreSQL) |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for r in results:
        cells = [r["store"], r["layer"], r["projections"], "on" if r["audit_chain"] else "off", "on" if r["encryption"] else "off"]
        cells += [r.get("processes", 1), r["clients"]]
        cells += [r["commands_per_s"], r["events_per_s"]]
        cells += [r["p50_ms"], r["p99_ms"]]
        cpu = f"{r['cpu_us_per_event']} + {r.get('pg_cpu_us_per_event', '?')}" if "cpu_us_per_event" in r else ""
        print("| " + " | ".join(str(c) for c in [*cells, r.get("commands_per_transaction", ""), cpu]) + " |")
    # What the audit chain and the encryption cost: mean events/s of each configuration.
    configs = sorted({(r["store"], r["layer"], r["clients"]) for r in results})
    for store, layer, clients in configs:
        runs = [r for r in results if (r["store"], r["layer"], r["clients"]) == (store, layer, clients)]
        plain = [r["events_per_s"] for r in runs if not (r["audit_chain"] or r["encryption"])]
        audited = [r["events_per_s"] for r in runs if r["audit_chain"] or r["encryption"]]
        if plain and audited:
            off, on = sum(plain) / len(plain), sum(audited) / len(audited)
            print(f"\n{store} {layer} {clients} clients: {off:.0f} events/s without, {on:.0f} with: {(on / off - 1) * 100:+.1f} %")


if __name__ == "__main__":
    main()
