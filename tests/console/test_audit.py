"""The auditor: a case's full history from the event store, and the case as of a time."""

from __future__ import annotations

import math
import time
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from tests.console.conftest import Open, Server, assert_accessible, screenshot
from tests.console.test_cases import register_case

TIME_ZONE = ZoneInfo("Europe/Rome")  # the demo's hotline time zone (Settings.time_zone)


@pytest.mark.parametrize("lang", ["en", "ar"])
def test_an_auditor_reads_a_case_history_and_its_state_as_of_a_time(open_console: Open, console_server: Server, lang: str) -> None:
    ref = register_case(console_server, f"Audit me ({lang})")
    with console_server.api("sup-li") as api:
        registered_at = datetime.fromisoformat(api.get(f"/requests/{ref}").json()["timeline"][0]["at"])
        time.sleep(1.2)  # the note lands in a later second than the registration
        assert api.post(f"/requests/{ref}/notes", json={"text": "Checked on site", "internal": True}).status_code == 200
        events = len(api.get(f"/requests/{ref}").json()["timeline"])

    page = open_console("auditor-omar", lang)
    page.goto("/console/audit")
    page.fill("#audit-ref", ref)
    page.click("form[role=search] button[type=submit]")
    page.wait_for_url(f"**/console/audit/{ref}")
    rows = page.locator("table.history tbody tr")
    assert rows.count() == events
    first = rows.first
    assert first.get_attribute("data-type") == "hotline.request.registered.v1"
    assert "supervisor" in first.inner_text() or lang == "ar"
    assert page.locator("tr[data-type='hotline.request.note_added.v1']").count() == 1
    # The case as it stood just after registration: no note yet.
    moment = datetime.fromtimestamp(math.ceil(registered_at.timestamp()), TIME_ZONE)
    page.fill("#as-of", moment.strftime("%Y-%m-%dT%H:%M:%S"))
    page.click("#as-of ~ button")
    page.wait_for_load_state()
    state = page.locator("#as-of-state")
    assert state.get_attribute("data-status") == "registered"
    assert int(state.get_attribute("data-version") or 0) < events
    screenshot(page, f"audit-history-{lang}")
    assert_accessible(page)
    page.goto("/console/audit")
    assert_accessible(page)


@pytest.mark.parametrize("user", ["op-anna", "sup-li", "dept-transport", "ctrl-office", "expert-marco"])
def test_the_event_log_is_the_auditors_alone(open_console: Open, console_server: Server, user: str) -> None:
    """As GET /audit/request/{ref} is: staff read a case's timeline on its case page, not
    its events with their actors, correlations and personal data as of any time."""
    ref = register_case(console_server, f"Not for {user}")
    page = open_console(user, "en")
    for path in ("/console/audit", f"/console/audit/{ref}", f"/console/audit/trace/{ref}"):
        answer = page.goto(path)
        assert answer is not None and answer.status == 403, f"{user} {path}: {answer and answer.status}"
    assert page.locator("nav a[href='/console/audit']").count() == 0
