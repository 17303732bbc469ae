"""The supervisor's screens in a real browser, in English and Arabic: the agents list
(force a state), deadlines (the demo's overdue work, coloured, linked to the cases; a
department's drill-down) and approvals (an extension approved or refused)."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import pytest

from tests.console.conftest import Open, Server, assert_accessible, screenshot

LANGS = ["en", "ar"]


@pytest.mark.parametrize("lang", LANGS)
def test_supervisor_forces_an_agents_state_and_sees_it_change(open_console: Open, console_server: Server, lang: str) -> None:
    with console_server.api("sup-li") as api:
        available = api.get("/agents", params={"state": "available"}).json()
    assert available, "the demo signs in simulated agents"
    agent = available[0]["agent_id"]
    page = open_console("sup-li", lang)
    page.goto("/console/agents")
    assert page.locator("html").get_attribute("dir") == ("rtl" if lang == "ar" else "ltr")
    page.wait_for_function("() => document.querySelector('[sse-connect]') && htmx")
    row = page.locator(f"tr[data-agent='{agent}']")
    state = row.locator("td[data-col='state']")
    assert state.get_attribute("data-state") == "available"
    row.locator("summary").click()
    row.locator("select[name='presence']").select_option("not_ready")
    row.locator("select[name='reason']").select_option("break")
    screenshot(page, f"agents-actions-{lang}")
    row.locator("form[data-api$='/presence'] button[type=submit]").click()
    # The list refreshes (the action, then the wallboard's live signal) without a reload.
    page.wait_for_function(
        f"() => document.querySelector(\"tr[data-agent='{agent}'] td[data-col='state']\")?.dataset.state === 'not_ready'",
        timeout=5000,
    )
    with console_server.api("sup-li") as api:
        after = {a["agent_id"]: a for a in api.get("/agents").json()}
        assert after[agent]["state"] == "not_ready" and after[agent]["reason"] == "break"
        # Back to work, for the other tests; the open page follows by itself (live feed).
        assert api.post(f"/agents/{agent}/presence", json={"presence": "available"}).status_code == 200
    page.wait_for_function(
        f"() => document.querySelector(\"tr[data-agent='{agent}'] td[data-col='state']\")?.dataset.state === 'available'",
        timeout=5000,
    )
    screenshot(page, f"agents-{lang}")
    assert_accessible(page)


@pytest.mark.parametrize("lang", LANGS)
def test_sla_list_shows_the_overdue_work_coloured_and_linked(open_console: Open, console_server: Server, lang: str) -> None:
    with console_server.api("sup-li") as api:
        expected = api.get("/sla/breaches", params={"due_within_hours": 24}).json()
    overdue = [r["reference"] for r in expected["overdue"]]
    assert overdue, "the demo has overdue work"
    page = open_console("sup-li", lang)
    page.goto("/console/sla")
    section = page.locator("section[aria-labelledby='overdue-h']")
    shown = section.locator("tbody tr[data-reference]")
    assert sorted(shown.evaluate_all("rows => rows.map(r => r.dataset.reference)")) == sorted(overdue)
    first = section.locator(f"tr[data-reference='{overdue[0]}']")
    assert first.get_attribute("data-tone") == "bad"
    assert "bad" in (first.locator("[data-col='deadline']").get_attribute("class") or "")
    assert first.locator("a").first.get_attribute("href") == f"/console/cases/{overdue[0]}"
    # Due soon: amber when close, green when there is time.
    for row in page.locator("section[aria-labelledby='soon-h'] tbody tr[data-reference]").all():
        assert row.get_attribute("data-tone") in ("ok", "warn")
    screenshot(page, f"sla-{lang}")
    assert_accessible(page)

    # Drill down: a department's row lists its own overdue work and open cases only.
    load = page.locator("section[aria-labelledby='loads-h'] tbody tr[data-department]").first
    department = load.get_attribute("data-department")
    load.locator("a").click()
    page.wait_for_url(f"**/console/sla?department={department}*")
    mine = {r["reference"] for r in expected["overdue"] + expected["due_soon"] if r["department_id"] == department}
    listed = page.locator("section[aria-labelledby='overdue-h'] tbody tr[data-reference]").evaluate_all(
        "rows => rows.map(r => r.dataset.reference)"
    )
    assert set(listed) <= mine
    assert page.locator("section[aria-labelledby='cases-h'] tbody tr[data-reference]").count() > 0
    screenshot(page, f"sla-department-{lang}")
    assert_accessible(page)


def _pending_extension(console_server: Server) -> str:
    """A transport case in progress, its deadline ahead: the department asks for two more days."""
    with console_server.api("dept-transport") as dept:
        cases = dept.get("/requests", params={"status": "in_progress", "department_id": "transport", "limit": 200}).json()["items"]
        now = datetime.now(UTC)
        for case in cases:
            due = datetime.fromisoformat(case["due_at"])
            if due > now + timedelta(hours=1) and not case.get("extension_pending"):
                body = {
                    "requested_due_at": (due + timedelta(days=2)).isoformat(),
                    "reason": "Spare parts on order",
                    "department_id": "transport",
                }
                answer = dept.post(f"/requests/{case['reference']}/extension", json=body)
                if answer.status_code == 200:
                    return str(case["reference"])
    raise AssertionError("no transport case can ask for an extension")


@pytest.mark.parametrize("lang", LANGS)
def test_supervisor_decides_a_waiting_extension(open_console: Open, console_server: Server, lang: str) -> None:
    ref = _pending_extension(console_server)
    page = open_console("sup-li", lang)
    page.goto("/console/approvals")
    row = page.locator(f"#approvals tr[data-reference='{ref}']")
    assert row.count() == 1
    screenshot(page, f"approvals-{lang}")
    assert_accessible(page)
    if lang == "en":
        row.locator("button[data-action='approve']").click()
    else:
        # Refusing takes a reason.
        row.locator("input[name='comment']").fill("لا مبرر للتمديد")
        row.locator("button[data-action='refuse']").click()
    page.wait_for_selector(f"#approvals tr[data-reference='{ref}']", state="detached", timeout=5000)
    with console_server.api("sup-li") as api:
        case = api.get(f"/requests/{ref}").json()
    assert case["extension_pending"] is False
    decided = [t["type"] for t in case["timeline"] if "extension_approved" in t["type"] or "extension_refused" in t["type"]]
    assert decided[-1].endswith("extension_approved.v1" if lang == "en" else "extension_refused.v1")


@pytest.mark.parametrize("lang", LANGS)
def test_supervisor_listens_in_on_a_live_call(open_console: Open, console_server: Server, lang: str) -> None:
    """An agent on a live call: the agents list offers monitor / whisper / barge-in, and
    what the supervisor chooses reaches the contact (the domain then knows them as
    listening: a "stop" is accepted once, and refused after)."""
    agent, queue = "expert-marco", f"watch-{lang}"
    with console_server.api("sup-li") as api:
        answer = api.post("/queues", json={"queue_id": queue, "names": {"en": queue}, "wrap_seconds": 5, "offer_timeout_seconds": 120})
        assert answer.status_code in (200, 201), answer.text
        if any(a["agent_id"] == agent and a["state"] != "logged_out" for a in api.get("/agents").json()):
            assert api.post(f"/agents/{agent}/logout").status_code == 200
    with console_server.api(agent) as me:
        assert me.post("/agents/login", json={"agent_id": agent, "queues": [queue]}).status_code == 200
        with console_server.api("sup-li") as api:
            arrived = api.post("/contacts", json={"channel": "phone", "queue_id": queue})
            assert arrived.status_code == 201, arrived.text
        contact = arrived.json()["id"]
        deadline = datetime.now(UTC) + timedelta(seconds=10)
        while not [o for o in me.get(f"/agents/{agent}/desk").json()["offers"] if o["contact_id"] == contact]:
            assert datetime.now(UTC) < deadline, "the router never offered the call"
            time.sleep(0.1)
        assert me.post(f"/contacts/{contact}/answer", json={"agent_id": agent}).status_code == 200

        page = open_console("sup-li", lang)
        page.goto("/console/agents")
        row = page.locator(f"tr[data-agent='{agent}']")
        row.locator("summary").click()
        form = row.locator(f"form[data-api='/contacts/{contact}/supervise']")
        form.locator("select[name='mode']").select_option("monitor")
        with page.expect_response(lambda r: r.url.endswith(f"/contacts/{contact}/supervise")) as sent:
            form.locator("button[type=submit]").click()
        assert sent.value.status == 200, sent.value.text()
        screenshot(page, f"agents-supervise-{lang}")
        assert_accessible(page)
        with console_server.api("sup-li") as api:
            stop = {"supervisor_id": "sup-li", "mode": "stop"}
            assert api.post(f"/contacts/{contact}/supervise", json=stop).status_code == 200
            assert api.post(f"/contacts/{contact}/supervise", json=stop).status_code == 409
        assert me.post(f"/contacts/{contact}/end", json={"agent_id": agent}).status_code == 200
        assert me.post(f"/contacts/{contact}/wrap-up", json={"agent_id": agent, "disposition": "supervised"}).status_code == 200
        assert me.post(f"/agents/{agent}/logout").status_code == 200
