"""The agent's desk, in a real browser, in English and Arabic: op-anna signs in to a queue,
a call from a demo citizen rings on her desk without a reload, she accepts it by keyboard,
sees the caller's history, answers from an article, registers a complaint on the problem
code's form and wraps up; the supervisor's wallboard changes meanwhile, without a reload.

The call reaches her through the ACD router that ``hotline serve`` runs in the background:
the test gives her a queue of her own (defined as the supervisor), so the router has no
other agent to offer it to.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.console.conftest import Open, Server, assert_accessible, screenshot

AGENT = "op-anna"
# A demo citizen per language (api/demo.py CITIZENS), recognised by number.
CALLERS = {"en": ("+39 06 1234 5678", "Mario Rossi"), "ar": ("+971 50 123 4567", "فاطمة الزهراء")}
QUERIES = {"en": "broken streetlight", "ar": "إنارة الشوارع"}


def _tile(page: Any, state: str) -> int:
    """A wallboard tile's number (Arabic pages use Arabic-Indic digits: read the digit values)."""
    text = page.locator(f"#board .tile[data-state='{state}'] .value").inner_text()
    return int("".join(str(int(ch)) for ch in text if ch.isdigit()) or 0)


def _scene(server: Server, queue_id: str) -> str:
    """A queue only op-anna serves, op-anna signed out of whatever a previous run left, and
    an open work order for a broken streetlight (the complaint she registers duplicates
    it); answers the work order's id."""
    with server.api("sup-li") as api:
        first = api.post(
            "/requests",
            json={
                "kind": "action",
                "subtype": "complaint",
                "channel": "phone",
                "description": "Streetlight out (the first report)",
                "problem_code": "streetlight-out",
                "contact": {"name": "Luca Verdi", "phone": "+39 06 5550 7777"},
            },
        )
        assert first.status_code == 201, first.text
        ref = first.json()["reference"]
        assert api.post(f"/requests/{ref}/dispatch", json={}).status_code == 200  # new work: a department holds it
        order = api.post(f"/requests/{ref}/work-order")
        assert order.status_code == 201, order.text
        answer = api.post(
            "/queues",
            json={"queue_id": queue_id, "names": {"en": f"Desk test {queue_id}"}, "wrap_seconds": 600, "offer_timeout_seconds": 120},
        )
        assert answer.status_code in (200, 201), answer.text
        agents = api.get("/agents").json()
        if any(a["agent_id"] == AGENT for a in agents):
            assert api.post(f"/agents/{AGENT}/logout").status_code == 200
    return str(order.json()["id"])


@pytest.mark.parametrize("lang", ["en", "ar"])
def test_agent_takes_a_call_from_offer_to_wrap_up(open_console: Open, console_server: Server, lang: str) -> None:
    queue_id = f"desk-{lang}"
    phone, caller_name = CALLERS[lang]
    order_id = _scene(console_server, queue_id)

    # The supervisor watches the wallboard in another browser.
    board = open_console("sup-li", lang)
    board.goto("/console/wallboard")
    board.wait_for_function("() => document.querySelector('[sse-connect]') && window.htmx")
    board.evaluate("() => { window.__notReloaded = true; }")
    on_contact_before = _tile(board, "on_contact")

    page = open_console(AGENT, lang)
    page.goto("/console/desk")
    assert page.locator("html").get_attribute("dir") == ("rtl" if lang == "ar" else "ltr")
    page.wait_for_function("() => document.querySelector('[sse-connect]') && window.htmx")
    page.evaluate("() => { window.__notReloaded = true; }")
    screenshot(page, f"desk-sign-in-{lang}")

    # Sign in to her queue only (a previous run may have left others ticked).
    for box in page.locator("#login-form input[name='queues[]']").all():
        box.set_checked(box.get_attribute("value") == queue_id)
    page.click("#login-form button[type=submit]")
    page.wait_for_selector("#desk-presence[data-state='available']")

    # A call from a known citizen arrives; the router offers it to her; it rings, no reload.
    with console_server.api("sup-li") as api:
        arrived = api.post("/contacts", json={"channel": "phone", "queue_id": queue_id, "phone": phone})
        assert arrived.status_code == 201, arrived.text
    offer = page.wait_for_selector("[data-ring][data-offer]", timeout=10_000)
    assert offer is not None
    page.wait_for_function("() => document.activeElement && document.activeElement.dataset.key === 'a'")
    screenshot(page, f"desk-offer-{lang}")

    # Accepted with the keyboard: the screen pop shows the caller and their history.
    page.keyboard.press("Alt+a")
    page.wait_for_selector("#desk-contact [data-active]")
    page.wait_for_selector("#caller [data-citizen]:not([data-citizen=''])")
    assert caller_name in page.locator("#caller").inner_text()
    assert page.locator("#caller-history li").count() >= 1
    # Each step in the agent's language (its facts from the read model, its words from here).
    steps = page.locator("#caller-history").inner_text()
    assert ("تسجيل الطلب" if lang == "ar" else "Request registered") in steps, steps
    assert page.evaluate("() => window.__notReloaded === true")

    # The wallboard counted her on a contact, without a reload.
    board.wait_for_function(
        f"() => Number(document.querySelector(\"#board .tile[data-state='on_contact'] .value\").textContent.trim()"
        f".replace(/[\\u0660-\\u0669]/g, d => d.charCodeAt(0) - 0x0660)) !== {on_contact_before}",
        timeout=15_000,
    )
    assert board.evaluate("() => window.__notReloaded === true")
    screenshot(board, f"desk-wallboard-during-call-{lang}")

    # Knowledge: Alt+K goes to the search; an article is shown and used to answer.
    page.keyboard.press("Alt+k")
    assert page.evaluate("() => document.activeElement.id") == "kb-q"
    page.keyboard.type(QUERIES[lang])
    page.keyboard.press("Enter")
    first = page.wait_for_selector("#kb-results .kb-list [data-article]")
    assert first is not None
    article_id = first.get_attribute("data-article")
    first.click()
    page.wait_for_selector(f"#kb-article [data-article='{article_id}'] h3")
    page.click("#answer-form button[type=submit]")
    page.wait_for_selector("#toast .message")
    with console_server.api("sup-li") as api:
        usage = api.get(f"/knowledge/articles/{article_id}/usage").json()
    assert usage["used"] >= 1, usage
    screenshot(page, f"desk-caller-and-article-{lang}")
    assert_accessible(page)

    # Register a complaint on the problem code's form: the API's refusal shows on the field first.
    page.keyboard.press("Alt+r")
    assert page.evaluate("() => document.activeElement.id") == "rq-code"
    page.select_option("#rq-code", "streetlight-out")
    page.wait_for_selector("#fld-pole_number")
    page.select_option("#rq-kind", "action")
    page.select_option("#rq-subtype", "complaint")
    page.fill("#rq-description", "The streetlight in front of number 8 has been out for a week")
    page.fill("#rq-address", "x" * 501)  # longer than the API allows
    page.click("#register-form button[type=submit]")
    page.wait_for_selector("#rq-address[aria-invalid='true']")
    assert page.locator("#register-form [data-errors]").inner_text().strip()
    page.fill("#rq-address", "Via Roma 8")
    page.fill("#fld-pole_number", "B-204")
    page.click("#register-form button[type=submit]")
    reference = page.wait_for_selector("#registered a[data-reference]").get_attribute("data-reference")  # type: ignore[union-attr]
    assert reference
    page.wait_for_selector("#dup-list")
    with console_server.api("sup-li") as api:
        case = api.get(f"/requests/{reference}").json()
        assert (case["kind"], case["subtype"], case["problem_code"]) == ("action", "complaint", "streetlight-out"), case
        desk = api.get(f"/agents/{AGENT}/desk").json()
        assert case["id"] in desk["contacts"][0]["request_ids"], desk
        citizen_id = page.locator("#caller [data-citizen]").get_attribute("data-citizen")
        assert case.get("citizen_id") in (None, citizen_id)
    screenshot(page, f"desk-registered-{lang}")

    # The open work order for the same problem is listed: she links the complaint to it.
    linked = page.locator(f"#dup-list [data-order='{order_id}']")
    with page.expect_response(lambda r: r.url.endswith(f"/requests/{reference}/link-duplicate")) as sent:
        linked.locator("button[type=submit]").click()
    assert sent.value.status == 200, sent.value.text()
    with console_server.api("sup-li") as api:
        assert api.get(f"/requests/{reference}").json()["work_order_id"] == order_id

    # Hold and resume, end, wrap up with a disposition: all by keyboard.
    page.keyboard.press("Alt+h")
    page.wait_for_selector("#desk-contact [data-hold='yes']")
    page.keyboard.press("Alt+h")
    page.wait_for_selector("#desk-contact [data-active]:not(:has([data-hold='yes']))")
    page.keyboard.press("Alt+e")
    page.wait_for_selector("#desk-contact [data-wrapping]")
    page.select_option("#desk-contact select[name=disposition]", "request_registered")
    screenshot(page, f"desk-wrap-up-{lang}")
    page.keyboard.press("Alt+w")
    page.wait_for_selector("#desk-contact:not(:has([data-wrapping]))", state="attached")
    page.wait_for_selector("#desk-presence[data-state='available']")
    assert page.evaluate("() => window.__notReloaded === true")
    with console_server.api("sup-li") as api:
        desk = api.get(f"/agents/{AGENT}/desk").json()
    assert not desk["contacts"] and not desk["wrapping"] and not desk["offers"], desk

    # Signed out of the queues at the end (leaves the next test a clean desk).
    page.click("#logout-form button[type=submit]")
    page.wait_for_selector("#login-form")
