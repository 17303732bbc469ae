"""The supervisor's wallboard: live, in two languages, accessible."""

from __future__ import annotations

from typing import Any

import pytest

from tests.console.conftest import Open, Server, assert_accessible, screenshot


@pytest.mark.parametrize("lang", ["en", "ar"])
def test_wallboard_changes_without_a_reload(open_console: Open, console_server: Server, lang: str) -> None:
    page = open_console("sup-li", lang)
    page.goto("/console/wallboard")
    assert page.locator("html").get_attribute("dir") == ("rtl" if lang == "ar" else "ltr")
    waiting = page.locator("tr[data-queue='general'] td[data-col='waiting']")
    before = int(waiting.inner_text().strip() or 0) if lang == "en" else None
    page.wait_for_function("() => document.querySelector('[sse-connect]') && htmx")
    # A call arrives in the general queue while the board is open.
    with console_server.api("sup-li") as api:
        answer = api.post("/contacts", json={"channel": "phone", "queue_id": "general", "subject": "wallboard test", "language": "it"})
        assert answer.status_code == 201, answer.text
    marker: Any = page.locator("#board").get_attribute("data-at")
    page.wait_for_function(f"() => document.querySelector('#board').dataset.at !== {marker!r}", timeout=3000)
    if before is not None:
        assert int(waiting.inner_text().strip()) >= before
    screenshot(page, f"wallboard-{lang}")
    assert_accessible(page)
