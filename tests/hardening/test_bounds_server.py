"""Bounds the real server keeps (issue 18), against ``hotline serve`` on SQLite: a 100 MB
chunked body is refused at the limit without being held in memory, and SIGTERM stops the
server within 10 s whatever it is doing (live feeds open, uploads stalled half-way,
staffing questions running)."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx

from tests.hardening.bounds_server import ROOT, Server, hotline_server


def _rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


def _connect(server: Server) -> socket.socket:
    host, port = server.base.removeprefix("http://").split(":")
    return socket.create_connection((host, int(port)), timeout=10)


def _chunked_upload(server: Server, total: int) -> tuple[bytes, int]:
    """POSTs ``total`` bytes chunked (no Content-Length); the answer and the bytes sent
    before the server answered or closed."""
    sock = _connect(server)
    head = (
        f"POST /requests HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {server.token}\r\n"
        "Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
    )
    sock.sendall(head.encode())
    chunk = b"x" * 65536
    framed = f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n"
    sent = 0
    sock.setblocking(False)
    answer = b""
    try:
        while sent < total:
            try:
                answer += sock.recv(65536)
                if answer:
                    break
            except BlockingIOError:
                pass
            try:
                sock.sendall(framed)
                sent += len(chunk)
            except BlockingIOError:
                time.sleep(0.001)
            except OSError:
                break
        sock.settimeout(10)
        while b"\r\n\r\n" not in answer or not answer.rstrip().endswith(b"}"):
            more = sock.recv(65536)
            if not more:
                break
            answer += more
    finally:
        sock.close()
    return answer, sent


def test_a_100_mb_chunked_body_is_refused_at_the_limit_without_being_buffered(tmp_path: Path) -> None:
    with hotline_server("sqlite", tmp_path) as server:
        before = _rss_kib(server.proc.pid)
        answers = []
        for _ in range(3):
            answer, sent = _chunked_upload(server, 100 * 1024 * 1024)
            answers.append(answer)
            assert sent < 20 * 1024 * 1024, f"the server read {sent} bytes before refusing"
        for answer in answers:
            head, _, body = answer.partition(b"\r\n\r\n")
            assert head.startswith(b"HTTP/1.1 413"), answer[:300]
            assert json.loads(body)["error"]["code"] == "body_too_large"
        grown = _rss_kib(server.proc.pid) - before
        assert grown < 30 * 1024, f"the server grew by {grown} KiB"
        # And it still serves.
        assert httpx.get(f"{server.base}/healthz").status_code == 200


def test_sigterm_stops_the_server_within_10_seconds_with_requests_in_flight(tmp_path: Path) -> None:
    with hotline_server("sqlite", tmp_path) as server:
        stop = threading.Event()
        opened: list[socket.socket] = []

        def live_feed() -> None:
            try:
                with httpx.stream("GET", f"{server.base}/live/wallboard", headers=server.auth, timeout=60) as r:
                    for _ in r.iter_bytes():
                        pass
            except httpx.HTTPError:
                pass

        def stalled_upload() -> None:
            sock = _connect(server)
            opened.append(sock)
            head = (
                f"POST /requests HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {server.token}\r\n"
                "Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n{"
            )
            sock.sendall(head.encode())  # and never the rest

        def staffing() -> None:
            params = {"calls": 990_000, "aht": 180, "target_sl": 0.99, "target_seconds": 0}
            with httpx.Client(base_url=server.base, headers=server.auth, timeout=60) as client:
                while not stop.is_set():
                    try:
                        client.get("/staffing/erlang-c", params=params)
                    except httpx.HTTPError:
                        return

        threads = [threading.Thread(target=f, daemon=True) for f in [live_feed] * 4 + [stalled_upload] * 4 + [staffing] * 8]
        for t in threads:
            t.start()
        time.sleep(1.5)  # everything in flight
        assert server.proc.poll() is None
        seconds = server.terminate()
        stop.set()
        for sock in opened:
            sock.close()
        print(f"\nstopped {seconds:.2f} s after SIGTERM")
        assert seconds < 10, server.log.read_text(errors="replace")[-3000:]


HUNG_SHUTDOWN = """
import asyncio, time
from contextlib import asynccontextmanager
from fastapi import FastAPI
from api.main import bound_shutdown

@asynccontextmanager
async def lifespan(app):
    yield
    time.sleep(60)  # a background thread that will not stop, a store that will not close

app = FastAPI(lifespan=lifespan)
bound_shutdown(app, 1.0)

async def main():
    async with app.router.lifespan_context(app):
        pass

asyncio.run(main())
"""


def test_a_shutdown_that_hangs_is_cut_short(tmp_path: Path) -> None:
    env = {**os.environ, "HOTLINE_DATA_DIR": str(tmp_path)}
    done = subprocess.run([sys.executable, "-c", HUNG_SHUTDOWN], env=env, cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 1, done.stderr[-2000:]
    assert "exiting now" in done.stderr
