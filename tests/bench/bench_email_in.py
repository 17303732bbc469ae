"""Email in throughput: messages per second through real SMTP on loopback, each answered
250 only after its commands committed (register, the raw message attached, a photo on
every fourth one).

    python tests/bench/bench_email_in.py                           # 2,000 messages, 8 clients, SQLite
    python tests/bench/bench_email_in.py --store postgres          # a fresh database on 127.0.0.1:55432, dropped after
    python tests/bench/bench_email_in.py --messages 5000 --clients 16 --workers 32

The hotline and its listener (``consumers/email_in.py``) run in this process; the
senders are separate processes (smtplib, one SMTP connection each, messages sent one
after another as an MTA's delivery queue does), so they do not share the listener's
interpreter. Senders rotate over 500 citizens' addresses, so most messages find their
citizen on record. Counted: from the first message sent to the last 250; checked after:
one ``Registered`` event per message (the oracle is the event store, not the replies).
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import shutil
import smtplib
import statistics
import sys
import tempfile
import time
from email import policy
from email.message import EmailMessage
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from consumers.email_in import EmailListener  # noqa: E402
from domain.requests.aggregate import ServiceRequest  # noqa: E402
from infra.runtime import Hotline  # noqa: E402
from infra.settings import Settings  # noqa: E402

PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 64  # 16 KB
TO = "hotline@comune.example"


def message(client: int, n: int) -> bytes:
    citizen = (client * 7919 + n) % 500
    msg = EmailMessage()
    msg["From"] = f"Cittadino {citizen} <citizen{citizen}@example.org>"
    msg["To"] = TO
    msg["Subject"] = f"Segnalazione {client}-{n}: lampione spento"
    msg["Message-ID"] = f"<bench-{client}-{n}-{time.time_ns()}@example.org>"
    msg.set_content(f"Buongiorno, il lampione al civico {n} è spento da ieri sera.\n\nCittadino {citizen}\nTel. 06 1234 {citizen:04d}\n")
    if n % 4 == 0:
        msg.add_attachment(PNG, maintype="image", subtype="png", filename="foto.png")
    return msg.as_bytes(policy=policy.SMTP)


def sender(args: tuple[int, int, int]) -> list[float]:
    """One MTA's queue: ``count`` messages over one connection; the latency of each."""
    port, client, count = args
    latencies = []
    with smtplib.SMTP("127.0.0.1", port, timeout=120) as smtp:
        for n in range(count):
            raw = message(client, n)
            started = time.perf_counter()
            refused = smtp.sendmail(f"citizen{client}@example.org", [TO], raw)
            latencies.append(time.perf_counter() - started)
            assert not refused
    return latencies


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--messages", type=int, default=2000)
    ap.add_argument("--clients", type=int, default=8)
    ap.add_argument("--workers", type=int, default=None, help="messages worked on at once (default HOTLINE_EMAIL_IN_WORKERS)")
    ap.add_argument("--store", choices=("sqlite", "postgres"), default="sqlite")
    ap.add_argument(
        "--projections",
        choices=("on", "off"),
        default="on",
        help="on: every read model after each commit, in this process (the embedded default); "
        "off: the distributed layout, where `hotline email-in` only writes and the projection consumers apply",
    )
    args = ap.parse_args()

    folder = Path(tempfile.mkdtemp(prefix="bench_email_in_"))
    url = None
    if args.store == "postgres":
        from tests.conftest import create_pg_database

        url = create_pg_database("bench_email_in")
    updates = {"email_in_workers": args.workers} if args.workers else {}
    settings = Settings(
        data_dir=folder, database_url=url, mail_from=TO, log_level="warning", inprocess_projections=args.projections == "on", **updates
    )
    hotline = Hotline.start(settings)
    listener = EmailListener(hotline, "127.0.0.1", _free_port()).start()
    per_client = args.messages // args.clients
    total = per_client * args.clients
    try:
        # Warm-up: first commands build caches and tables.
        sender((listener.port, 999, 8))
        before = _registered(hotline)
        ctx = multiprocessing.get_context("spawn")
        with ctx.Pool(args.clients) as pool:
            started, cpu = time.perf_counter(), time.process_time()
            results = pool.map(sender, [(listener.port, c, per_client) for c in range(args.clients)])
            elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
        registered = _registered(hotline) - before
        latencies = sorted(x for r in results for x in r)
        print(f"store {args.store}, projections {args.projections}, {args.clients} senders, {settings.email_in_workers} workers")
        print(f"{total} messages in {elapsed:.2f} s: {total / elapsed:.1f} messages/s")
        load = os.getloadavg()[0]
        per_cpu = total / cpu
        print(f"listener CPU {cpu:.2f} s: {cpu / total * 1000:.1f} ms per message, {per_cpu:.0f} messages per CPU-second (load {load:.1f})")
        print(
            f"latency (send → 250): p50 {statistics.median(latencies) * 1000:.1f} ms, "
            f"p95 {latencies[int(len(latencies) * 0.95)] * 1000:.1f} ms, max {latencies[-1] * 1000:.1f} ms"
        )
        print(f"registered: {registered} (expected {total}); listener counts {listener.handler.counts}")
        if registered != total:
            raise SystemExit("FAILED: not every message registered exactly once")
    finally:
        listener.stop()
        hotline.close()
        shutil.rmtree(folder, ignore_errors=True)
        if url:
            from tests.conftest import drop_pg_database

            drop_pg_database(url)


def _registered(hotline: Hotline) -> int:
    return sum(1 for e in hotline.store.iter_envelopes() if e.event_class is ServiceRequest.Registered)


def _free_port() -> int:
    from tests.sla.servers import free_port

    return free_port()


if __name__ == "__main__":
    main()
