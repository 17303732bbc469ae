"""The control office's screen in a real browser, in English and Arabic: a case returned
twice waits for a ruling; the control office rules and the case leaves the list."""

from __future__ import annotations

import pytest

from tests.console.conftest import Open, Server, assert_accessible, screenshot


def _returned_twice(console_server: Server) -> str:
    """A bus complaint the transport department returns twice: it awaits a ruling."""
    with console_server.api("op-anna") as agent, console_server.api("dept-transport") as dept:
        body = {
            "kind": "action",
            "subtype": "complaint",
            "channel": "phone",
            "description": "Bus 64 skipped the stop again",
            "contact": {"name": "Test Citizen", "phone": "+39 347 555 0199"},
            "problem_code": "bus-complaint",
            "collected": {"line": "64"},
        }
        registered = agent.post("/requests", json=body)
        assert registered.status_code == 201, registered.text
        ref = str(registered.json()["reference"])
        for reason in ("Not ours: private shuttle", "Still not ours"):
            assert agent.post(f"/requests/{ref}/dispatch", json={}).status_code == 200
            assert dept.post(f"/requests/{ref}/return", json={"reason": reason}).status_code == 200
        assert agent.get(f"/requests/{ref}").json()["status"] == "awaiting_ruling"
    return ref


@pytest.mark.parametrize("lang", ["en", "ar"])
def test_control_office_rules_on_a_case_and_it_leaves_the_list(open_console: Open, console_server: Server, lang: str) -> None:
    ref = _returned_twice(console_server)
    page = open_console("ctrl-office", lang)
    page.goto("/console/control")
    assert page.locator("html").get_attribute("dir") == ("rtl" if lang == "ar" else "ltr")
    row = page.locator(f"#ruling tr[data-reference='{ref}']")
    assert row.count() == 1
    assert "Still not ours" in row.inner_text()  # why it is here: the departments' reasons
    assert row.locator("a").first.get_attribute("href") == f"/console/cases/{ref}"
    # The other lists are there too, with the demo's overdue work.
    assert page.locator("#overdue tbody tr[data-reference]").count() > 0
    screenshot(page, f"control-{lang}")
    assert_accessible(page)

    row.locator("select[name='department_id']").select_option("transport")
    row.locator("input[name='reason']").fill(
        "Line 64 is run by the municipal transport company" if lang == "en" else "الخط 64 تابع لشركة النقل البلدية"
    )
    row.locator("button[type=submit]").click()
    page.wait_for_selector(f"#ruling tr[data-reference='{ref}']", state="detached", timeout=5000)
    with console_server.api("ctrl-office") as api:
        case = api.get(f"/requests/{ref}").json()
    assert case["status"] == "dispatched" and case["department_id"] == "transport"
    screenshot(page, f"control-ruled-{lang}")
