"""``hotline serve`` as a subprocess on loopback, for the bounds and poison tests: on
SQLite in a fresh folder or on a fresh PostgreSQL database, the catalogue loaded, and a
supervisor's token the server accepts."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

from infra.runtime import Hotline
from infra.settings import Settings
from tests.auth import token_for
from tests.conftest import create_pg_database, drop_pg_database, load_catalogue

ROOT = Path(__file__).resolve().parents[2]
HOTLINE = str(Path(sys.executable).parent / "hotline")  # the installed CLI, beside this interpreter


@dataclass
class Server:
    base: str
    proc: subprocess.Popen[bytes]
    token: str
    log: Path

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}

    def terminate(self) -> float:
        """SIGTERM; the seconds until the process has exited (it is killed after 30)."""
        started = time.monotonic()
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            return float("inf")
        return time.monotonic() - started


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def hotline_server(store: str, data: Path, **env_settings: str) -> Iterator[Server]:
    """A running ``hotline serve`` (``store``: "sqlite" or "postgres")."""
    url = create_pg_database("hard") if store == "postgres" else None
    settings = Settings(data_dir=data, database_url=url)
    hotline = Hotline.start(settings)
    try:
        load_catalogue(hotline)
    finally:
        hotline.close()
    token = token_for(settings, "sup-bounds", "supervisor")  # the keys the server will read
    port = free_port()
    env = {
        **os.environ,
        "HOTLINE_DATA_DIR": str(data),
        "HOTLINE_PORT": str(port),
        "HOTLINE_LOG_LEVEL": "warning",
        **{f"HOTLINE_{k.upper()}": v for k, v in env_settings.items()},
    }
    env.pop("HOTLINE_DATABASE_URL", None)
    if url:
        env["HOTLINE_DATABASE_URL"] = url
    log = data / "serve.log"
    with log.open("wb") as out:
        proc = subprocess.Popen([HOTLINE, "serve"], env=env, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT)
    server = Server(f"http://127.0.0.1:{port}", proc, token, log)
    try:
        deadline = time.monotonic() + 180  # a loaded CI machine
        while True:
            try:
                if httpx.get(f"{server.base}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"hotline serve did not start: {log.read_text(errors='replace')[-2000:]}")
            time.sleep(0.1)
        yield server
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        if url:
            drop_pg_database(url)
