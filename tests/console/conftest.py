"""The console in a real browser: ``hotline serve --demo`` in its own process and
Debian's Chromium driven by Playwright for Python (Playwright's own browser download is
not reachable here, so it is told where Chromium is).

One server and one browser for the whole session (the demo takes a while to load);
every test gets a fresh browser context (its own cookies), and tests that change data
make their own cases. Screenshots go to ``HOTLINE_ARTIFACTS`` (default
``tests/console/artifacts/``, not committed): one per page per language.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import IN_CI

ROOT = Path(__file__).resolve().parents[2]
HOTLINE = str(Path(os.environ.get("VIRTUAL_ENV", ROOT / ".venv")) / "bin" / "hotline")
CHROMIUM = os.environ.get("HOTLINE_CHROMIUM", "/usr/bin/chromium")
AXE = Path(__file__).parent / "vendor" / "axe.min.js"
ARTIFACTS = Path(os.environ.get("HOTLINE_ARTIFACTS", Path(__file__).parent / "artifacts"))
PASSWORD = "hotline-demo"
PHONE = {"width": 360, "height": 740}
DESKTOP = {"width": 1366, "height": 860}
# What Chromium needs to start here: no sandbox as root, and none of its calls home
# (the network is closed; they would fail one by one and slow every start).
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Server:
    def __init__(self, base: str, data: Path, log: Path) -> None:
        self.base, self.data, self.log = base, data, log

    def sign_in_code(self, identifier: str) -> str:
        """The last sign-in code the server wrote to its log for ``identifier``
        (HOTLINE_LOG_SIGN_IN_CODES, as infra/run.sh sets it)."""
        for _ in range(50):
            for line in reversed(self.log.read_text().splitlines()):
                if "sign-in code for" in line and identifier in line:
                    return str(json.loads(line)["event"].rsplit(": ", 1)[1].split(" ")[0])
            time.sleep(0.1)
        raise AssertionError(f"no sign-in code for {identifier} in the server's log")

    def token(self, username: str) -> str:
        answer = httpx.post(f"{self.base}/auth/token", json={"username": username, "password": PASSWORD})
        answer.raise_for_status()
        return str(answer.json()["access_token"])

    def api(self, username: str) -> httpx.Client:
        """The JSON API as a staff member (to set a scene or check what the browser did)."""
        return httpx.Client(base_url=self.base, headers={"Authorization": f"Bearer {self.token(username)}"}, timeout=30)


def start_server(data: Path, **extra_env: str) -> tuple[subprocess.Popen[bytes], Server]:
    """``hotline serve --demo`` on a free port with its data in ``data``; returns when it answers."""
    port = _free_port()
    log = data / "server.log"
    env = {
        **os.environ,
        "HOTLINE_DATA_DIR": str(data),
        "HOTLINE_PORT": str(port),
        "HOTLINE_LOG_SIGN_IN_CODES": "true",
        "HOTLINE_LOG_LEVEL": "warning",
        "HOTLINE_RATE_LIMIT_SIGN_IN": "1000/minute",
        "HOTLINE_RATE_LIMIT_PUBLIC": "1000/minute",
        **extra_env,
    }
    with log.open("w") as out:
        server = subprocess.Popen([HOTLINE, "serve", "--demo"], env=env, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 180
    while True:
        try:
            if httpx.get(f"{base}/healthz", timeout=2).status_code == 200:
                return server, Server(base, data, log)
        except httpx.HTTPError:
            pass
        if server.poll() is not None or time.monotonic() > deadline:
            server.terminate()
            raise RuntimeError(f"hotline serve --demo did not start:\n{log.read_text()[-3000:]}")
        time.sleep(0.5)


@pytest.fixture(scope="session")
def console_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    try:
        server, running = start_server(tmp_path_factory.mktemp("console-demo"))
    except RuntimeError as exc:
        pytest.fail(str(exc))
    try:
        yield running
    finally:
        server.terminate()
        server.wait(timeout=30)


# Package scope: Playwright's sync API keeps an event loop running in the main thread while
# it is open, and later tests that call asyncio.run (telephony, read-your-writes) would fail.
@pytest.fixture(scope="package")
def browser() -> Iterator[Any]:
    if not Path(CHROMIUM).exists():
        message = f"Chromium is not installed at {CHROMIUM} (apt-get install chromium; infra/test.sh does)"
        if IN_CI:
            pytest.fail(message)
        pytest.skip(message)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


Open = Callable[..., Any]


def sign_in(page: Any, user: str) -> None:
    """Through the sign-in form, as a person does."""
    page.goto("/console/sign-in")
    page.fill("#username", user)
    page.fill("#password", PASSWORD)
    page.click("form[action='/console/sign-in'] button[type=submit]")
    page.wait_for_load_state()


@pytest.fixture
def open_console(browser: Any, console_server: Server) -> Iterator[Open]:
    """``open_console(user=None, lang="en", viewport=DESKTOP)`` → a Playwright page,
    signed in as ``user`` (a demo staff username) through the sign-in form."""
    contexts: list[Any] = []

    def open_(user: str | None = None, lang: str = "en", viewport: dict[str, int] | None = None) -> Any:
        # bypass_csp: only so that the accessibility checker can be injected.
        context = browser.new_context(viewport=viewport or DESKTOP, locale=lang, base_url=console_server.base, bypass_csp=True)
        context.add_cookies([{"name": "hotline_lang", "value": lang, "url": console_server.base}])
        contexts.append(context)
        page = context.new_page()
        page.set_default_timeout(10_000)
        if user:
            sign_in(page, user)
        return page

    yield open_
    for context in contexts:
        context.close()


def screenshot(page: Any, name: str) -> Path:
    """Keeps what the page looks like now, as a test artefact."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


def serious_violations(page: Any) -> list[dict[str, Any]]:
    """axe-core's serious and critical findings on the page as it is now."""
    page.add_script_tag(path=str(AXE))
    result = page.evaluate("async () => (await axe.run(document, {resultTypes: ['violations']})).violations")
    return [
        {"id": v["id"], "impact": v["impact"], "help": v["help"], "nodes": [n["target"] for n in v["nodes"]][:5]}
        for v in result
        if v["impact"] in ("serious", "critical")
    ]


def assert_accessible(page: Any) -> None:
    found = serious_violations(page)
    assert not found, json.dumps(found, indent=1, ensure_ascii=False)


def no_horizontal_scroll(page: Any) -> bool:
    return bool(page.evaluate("() => document.documentElement.scrollWidth <= document.documentElement.clientWidth"))
