"""Cases: the search narrowed as the API narrows it, and one case's page, live."""

from __future__ import annotations

import uuid

import pytest

from tests.console.conftest import Open, Server, assert_accessible, screenshot


def register_case(console_server: Server, description: str) -> str:
    with console_server.api("sup-li") as api:
        answer = api.post(
            "/requests",
            json={
                "kind": "action",
                "subtype": "complaint",
                "channel": "phone",
                "description": description,
                "urgency": "normal",
                "problem_code": "streetlight-out",
                "contact": {"name": "Mario Rossi", "phone": "+39 06 5550 1234"},
            },
        )
        assert answer.status_code == 201, answer.text
        return str(answer.json()["reference"])


@pytest.mark.parametrize("lang", ["en", "ar"])
def test_a_department_finds_only_its_own_cases(open_console: Open, lang: str) -> None:
    page = open_console("dept-transport", lang)
    page.goto("/console/cases")
    assert page.locator("html").get_attribute("dir") == ("rtl" if lang == "ar" else "ltr")
    rows = page.locator("#case-results tbody tr[data-ref]")
    assert rows.count() > 0
    assert set(rows.evaluate_all("rows => rows.map(r => r.dataset.department)")) == {"transport"}
    # Filtering by status keeps the narrowing; asking for another department is refused.
    page.select_option("#f-status", "in_progress")
    page.click("form[role=search] button[type=submit]")
    page.wait_for_load_state()
    assert page.locator("#f-status").input_value() == "in_progress"
    assert set(rows.evaluate_all("rows => rows.map(r => r.dataset.status)")) <= {"in_progress"}
    assert set(rows.evaluate_all("rows => rows.map(r => r.dataset.department)")) <= {"transport"}
    refused = page.goto("/console/cases?department_id=environment")
    assert refused is not None and refused.status == 403
    page.goto("/console/cases")
    screenshot(page, f"cases-search-dept-{lang}")
    assert_accessible(page)


def test_a_supervisor_searches_by_reference(open_console: Open, console_server: Server) -> None:
    ref = register_case(console_server, "Lamp post dark near the school")
    page = open_console("sup-li", "en")
    page.goto("/console/cases")
    page.fill("#f-ref", ref)
    page.click("form[role=search] button[type=submit]")
    page.wait_for_load_state()
    assert page.locator("#case-results tbody tr[data-ref]").evaluate_all("rows => rows.map(r => r.dataset.ref)") == [ref]


@pytest.mark.parametrize("lang", ["en", "ar"])
def test_a_note_appears_in_the_timeline_without_a_reload(open_console: Open, console_server: Server, lang: str) -> None:
    ref = register_case(console_server, f"Streetlight out at the bus stop ({lang})")
    page = open_console("op-anna", lang)
    page.goto(f"/console/cases/{ref}")
    assert page.locator("#case-state [data-status]").get_attribute("data-status") == "registered"
    page.wait_for_function("() => document.querySelector('[sse-connect]') && window.htmx")
    page.evaluate("() => { window.__samePage = true; }")
    text = f"Called the citizen back {uuid.uuid4().hex[:8]}"
    page.fill("#note-text", text)
    page.click("#note-form button[type=submit]")
    page.locator("#timeline li[data-type='note_added']", has_text=text).wait_for(timeout=5000)
    assert page.evaluate("() => window.__samePage === true"), "the page was reloaded"
    # The API agrees: the note is on the case, internal.
    with console_server.api("sup-li") as api:
        notes = [t for t in api.get(f"/requests/{ref}").json()["timeline"] if t["details"].get("text") == text]
    assert notes and notes[0]["details"]["internal"] is True
    screenshot(page, f"case-{lang}")
    assert_accessible(page)


def test_a_department_sees_no_internal_actions_it_may_not_take(open_console: Open, console_server: Server) -> None:
    ref = register_case(console_server, "A case not dispatched to anyone")
    page = open_console("dept-transport", "en")
    answer = page.goto(f"/console/cases/{ref}")
    assert answer is not None and answer.status == 403  # not dispatched to transport
    page = open_console("analyst-sara", "en")
    answer = page.goto(f"/console/cases/{ref}")
    assert answer is not None and answer.status == 403  # analysts read no cases
