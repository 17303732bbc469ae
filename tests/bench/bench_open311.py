"""Open311 benchmark: ``GET /open311/v2/requests.json`` answering 1,000 requests, over HTTP.

1. A store with the catalogue and an integrator's API key (through the command path), and
   the Open311 read model filled directly (no events: this measures the endpoint, not the
   projection): ``--requests`` requests (default 100,000) over two years ending now, 80 %
   with a problem code (an Open311 service), 85 % of those closed, each with a location,
   a description, a deadline, notes on the closed ones, and three updates.
2. ``hotline``'s ASGI app under uvicorn in its own process (one worker, background
   processes off), a client on loopback calling as an Open311 client does (``api_key`` in
   the query string): the default query (the last 90 days, the first 1,000), and beside it
   a status, a service code, a later page, the XML answer and the request updates. Each
   answer is checked (1,000 items, valid JSON / XML); p50 / p95 / max in ms per query.

Run:  python tests/bench/bench_open311.py [--store sqlite|postgres|both] [--requests 100000] [--rounds 200]
      (PostgreSQL: a scratch database on the local server, ``bash infra/postgres.sh start``)
"""

from __future__ import annotations

import argparse
import os
import random
import secrets
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402
import yaml  # noqa: E402

from consumers.replay import _bulk_load  # noqa: E402
from domain.base import SYSTEM  # noqa: E402
from domain.catalogue import commands as catc  # noqa: E402
from domain.identity import commands as ic  # noqa: E402
from infra.identity.secrets import api_key_hash  # noqa: E402
from infra.identity.service import API_KEY_PREFIX  # noqa: E402
from infra.runtime import Hotline  # noqa: E402
from infra.settings import Settings  # noqa: E402
from projections import open311 as rm  # noqa: E402

CATALOGUE = ROOT / "infra" / "data" / "catalogue.yaml"
CODES = ["pothole", "streetlight-out", "illegal-dumping", "missed-collection", "appliance-removal", "bus-complaint", "benefit-application"]
DEPARTMENTS = {"pothole": "transport", "streetlight-out": "transport", "bus-complaint": "transport", "benefit-application": "social"}
STREETS = ["Via Roma", "Via Nazionale", "Corso Vittorio Emanuele", "Via del Corso", "Viale Trastevere", "Via Appia Nuova", "Via Tiburtina"]
PROBLEMS = [
    "Deep pothole by the bus stop",
    "Streetlight out since Monday",
    "Rubbish dumped on the pavement",
    "Bins not collected",
    "Fridge to collect",
]


def prepare(settings: Settings, requests: int) -> str:
    """The catalogue and a key through commands; the read model filled directly. Returns the key."""
    hotline = Hotline.start(settings)
    try:
        hotline.bus.execute(catc.ImportCatalogue(document=yaml.safe_load(CATALOGUE.read_text("utf-8"))), SYSTEM)
        secret = secrets.token_urlsafe(32)
        issued = hotline.bus.execute(
            ic.IssueApiKey(name="bench", actions=["requests.read", "catalogue.read"], secret_hash=api_key_hash(secret)), SYSTEM
        ).result
        key = f"{API_KEY_PREFIX}{uuid.UUID(issued['id']).hex}_{secret}"
        fill(hotline, requests)
    finally:
        hotline.close()
    return key


def fill(hotline: Hotline, n: int) -> None:
    rng = random.Random(311)
    now = datetime.now(UTC)
    span = timedelta(days=730).total_seconds()
    requests, updates = [], []
    position = 10_000
    for i in range(n):
        at = now - timedelta(seconds=rng.random() * span)
        code = rng.choice(CODES) if rng.random() < 0.8 else None
        is_open = rng.random() < 0.15
        rid = str(uuid.UUID(int=rng.getrandbits(128), version=4))
        requests.append(
            {
                "id": rid,
                "reference": f"{at:%y%m%d}{i:06d}",
                "service_code": code,
                "open": is_open,
                "description": f"{rng.choice(PROBLEMS)} at {rng.choice(STREETS)} {rng.randint(1, 200)}",
                "address": f"{rng.choice(STREETS)} {rng.randint(1, 200)}, Roma",
                "lat": 41.85 + rng.random() * 0.1,
                "lon": 12.45 + rng.random() * 0.1,
                "department_id": DEPARTMENTS.get(code or "", "environment") if code else None,
                "citizen_id": str(uuid.UUID(int=rng.getrandbits(128), version=4)),
                "status_notes": None if is_open else "Repaired, thank you for reporting it",
                "requested_at": at,
                "updated_at": at + timedelta(days=2),
                "expected_at": at + timedelta(days=5),
            }
        )
        for k in range(3):
            position += 1
            updates.append(
                {
                    "update_id": position,
                    "request_id": rid,
                    "open": is_open or k < 2,
                    "description": ["", "Scheduled for Friday", "Repaired, thank you for reporting it"][k],
                    "updated_at": at + timedelta(hours=6 * (k + 1)),
                }
            )
    with hotline.read_store.engine.begin() as conn:
        _bulk_load(conn, rm.REQUESTS, requests)
        _bulk_load(conn, rm.UPDATES, updates)
        if conn.dialect.name == "postgresql":
            conn.exec_driver_sql(f'ANALYZE "{rm.REQUESTS.name}"')
            conn.exec_driver_sql(f'ANALYZE "{rm.UPDATES.name}"')
        else:
            conn.exec_driver_sql("ANALYZE")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def cpu_ms(pid: int) -> float:
    """The process's CPU time (user + system), ms: what a request costs whatever the
    machine's load (the latency also counts the wait for a core)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) * 1000 / os.sysconf("SC_CLK_TCK")


@contextmanager
def server(settings: Settings) -> Iterator[tuple[str, int]]:
    port = _free_port()
    env = {
        **os.environ,
        "HOTLINE_DATA_DIR": str(settings.data_dir),
        "HOTLINE_LOG_LEVEL": "warning",
        "HOTLINE_TIMERS_INPROCESS": "false",
        "HOTLINE_ROUTER_INPROCESS": "false",
        "HOTLINE_ANALYTICS_INPROCESS": "false",
        "HOTLINE_NOTIFIER_INPROCESS": "false",
    }
    if settings.database_url:
        env["HOTLINE_DATABASE_URL"] = settings.database_url
    log = settings.data_dir / "server.log"
    command = [sys.executable, "-m", "uvicorn", "api.main:app", "--host", "127.0.0.1", "--port", str(port), "--log-level", "warning"]
    with log.open("w") as out:
        process = subprocess.Popen(command, env=env, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                if httpx.get(f"{base}/healthz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the server did not start:\n{log.read_text()[-3000:]}")
            time.sleep(0.3)
        yield base, process.pid
    finally:
        process.terminate()
        process.wait(timeout=30)


def _count(response: httpx.Response, xml: bool) -> int:
    assert response.status_code == 200, response.text[:500]
    if xml:
        return len(ET.fromstring(response.content))
    return len(response.json())


def measure(base: str, pid: int, key: str, rounds: int) -> dict[str, dict[str, float]]:
    now = datetime.now(UTC)
    day = {"start_date": (now - timedelta(days=30)).isoformat(), "end_date": (now - timedelta(days=23)).isoformat()}
    queries: list[tuple[str, str, dict[str, str], int | None]] = [
        ("requests.json (90 days, first 1,000)", "requests.json", {}, 1000),
        ("requests.json status=open", "requests.json", {"status": "open"}, None),
        ("requests.json service_code=pothole", "requests.json", {"service_code": "pothole"}, None),
        ("requests.json page=5", "requests.json", {"page": "5"}, None),
        ("requests.xml (90 days, first 1,000)", "requests.xml", {}, 1000),
        ("servicerequestupdates.json (a week)", "servicerequestupdates.json", day, None),
    ]
    results = {}
    with httpx.Client(base_url=f"{base}/open311/v2", timeout=30) as client:
        for name, path, params, expected in queries:
            call = {"api_key": key, **params}
            for _ in range(5):  # warm-up: caches, the key's check, the query plans
                client.get(path, params=call)
            times, sizes = [], set()
            cpu_before = cpu_ms(pid)
            for _ in range(rounds):
                started = time.perf_counter()
                response = client.get(path, params=call)
                times.append((time.perf_counter() - started) * 1000)
                sizes.add(_count(response, path.endswith(".xml")))
            cpu = (cpu_ms(pid) - cpu_before) / rounds
            if expected is not None:
                assert sizes == {expected}, f"{name}: {sizes} results, expected {expected}"
            times.sort()
            results[name] = {
                "results": float(max(sizes)),
                "p50": statistics.median(times),
                "p95": times[int(0.95 * (len(times) - 1))],
                "max": times[-1],
                "bytes": float(len(response.content)),
                "cpu": cpu,
            }
    return results


def run(store: str, requests: int, rounds: int) -> None:
    folder = Path(tempfile.mkdtemp(prefix="hotline-bench-open311-"))
    url = None
    if store == "postgres":
        from tests.conftest import create_pg_database

        url = create_pg_database("bench_open311")
    settings = Settings(data_dir=folder, database_url=url, timers_inprocess=False, router_inprocess=False, analytics_inprocess=False)
    try:
        started = time.perf_counter()
        key = prepare(settings, requests)
        print(f"[{store}] {requests:,} requests in the read model ({time.perf_counter() - started:.1f} s)")
        with server(settings) as (base, pid):
            print(f"[{store}] load average before: {' '.join(f'{x:.1f}' for x in os.getloadavg())} on {os.cpu_count()} CPUs")
            for name, r in measure(base, pid, key, rounds).items():
                print(
                    f"[{store}] {name:42s} {int(r['results']):5d} results {r['bytes'] / 1024:5.0f} KiB  "
                    f"p50 {r['p50']:6.1f} ms  p95 {r['p95']:6.1f} ms  max {r['max']:6.1f} ms  server CPU {r['cpu']:5.1f} ms"
                )
            print(f"[{store}] load average after: {' '.join(f'{x:.1f}' for x in os.getloadavg())}")
    finally:
        if url is not None:
            from tests.conftest import drop_pg_database

            drop_pg_database(url)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--store", choices=["sqlite", "postgres", "both"], default="both")
    parser.add_argument("--requests", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=200)
    args = parser.parse_args(argv)
    for store in ["sqlite", "postgres"] if args.store == "both" else [args.store]:
        run(store, args.requests, args.rounds)


if __name__ == "__main__":
    main()
