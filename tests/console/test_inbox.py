"""The department inbox: a department accepts a dispatched case and replies from it; the
citizen then signs in on the portal with a one-time code, reads the reply and rates it.
A department also asks for a deadline extension and pauses its deadline for the citizen.
In English and in Arabic, accessible, with a screenshot per page."""

from __future__ import annotations

import secrets
import time
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest

from domain.citizens.aggregate import normalise_phone
from tests.console.conftest import PHONE, Open, Server, assert_accessible, no_horizontal_scroll, screenshot


def dispatched_case(api: httpx.Client, email: str, description: str) -> tuple[str, str]:
    """A pothole reported by a citizen (name, phone, email), dispatched to transport (as
    sup-li); its reference and the citizen's phone number."""
    phone = f"+39 06 {secrets.randbelow(10**7):07d}"
    answer = api.post(
        "/requests",
        json={
            "kind": "action",
            "subtype": "complaint",
            "channel": "phone",
            "description": description,
            "problem_code": "pothole",
            "contact": {"name": "Giulia Bianchi", "phone": phone, "email": email},
        },
    )
    assert answer.status_code == 201, answer.text
    reference = str(answer.json()["reference"])
    dispatched = api.post(f"/requests/{reference}/dispatch", json={})
    assert dispatched.status_code == 200, dispatched.text
    return reference, phone


def status_of(api: httpx.Client, reference: str) -> dict[str, Any]:
    answer = api.get(f"/requests/{reference}")
    assert answer.status_code == 200, answer.text
    return dict(answer.json())


@pytest.mark.parametrize("lang", ["en", "ar"])
def test_department_accepts_and_replies_then_the_citizen_rates(open_console: Open, console_server: Server, lang: str) -> None:
    email = f"giulia.{secrets.token_hex(4)}@example.org"
    description = f"Deep pothole outside number 12 ({lang} {secrets.token_hex(3)})"
    with console_server.api("sup-li") as api:
        reference, phone = dispatched_case(api, email, description)

    # The department's inbox: the case is waiting to be accepted, its deadline coloured.
    page = open_console("dept-transport", lang)
    page.goto("/console/inbox")
    assert page.locator("html").get_attribute("dir") == ("rtl" if lang == "ar" else "ltr")
    case = page.locator(f"li.case[data-reference='{reference}']")
    assert case.get_attribute("data-status") == "dispatched"
    assert case.locator("[data-deadline]").get_attribute("data-deadline") in ("ok", "warn", "bad")
    assert case.locator(f"a[href='/console/cases/{reference}']").count() == 1
    screenshot(page, f"inbox-{lang}")
    assert_accessible(page)

    # Accept: the list refreshes and the case moves to "in progress".
    case.locator("[data-action=accept]").click()
    moved = page.locator(f"section[data-section='in-progress'] li.case[data-reference='{reference}']")
    moved.wait_for()
    assert status_of(console_server.api("dept-transport"), reference)["status"] == "in_progress"

    # The final reply, typed in the inbox.
    moved.locator("details.act summary").first.click()
    reply = "Il tombino è stato riparato ieri." if lang == "en" else "تم إصلاح الحفرة أمس."
    moved.locator("textarea[name=message]").first.fill(reply)
    moved.locator("[data-action=reply]").click()
    page.locator(f"section[data-section='replied'] li.case[data-reference='{reference}']").wait_for()
    with console_server.api("sup-li") as api:
        assert status_of(api, reference)["final_reply"] == reply
        # The hotline closes the case (a department cannot): then it can be rated.
        closed = api.post(f"/requests/{reference}/close", json={})
        assert closed.status_code == 200, closed.text
    screenshot(page, f"inbox-replied-{lang}")

    # The citizen signs in on the portal with a one-time code sent to their phone (with no
    # SMTP server here an email code cannot be sent; HOTLINE_LOG_SIGN_IN_CODES logs an SMS's).
    citizen = open_console(None, lang, PHONE)
    citizen.goto("/portal/sign-in")
    screenshot(citizen, f"portal-sign-in-{lang}")
    assert_accessible(citizen)
    citizen.fill("#sign-in-phone", phone)
    citizen.click("#send-code-form button[type=submit]")
    citizen.wait_for_url(lambda url: "phone=" in url)
    screenshot(citizen, f"portal-sign-in-code-{lang}")
    assert_accessible(citizen)
    citizen.fill("#code", console_server.sign_in_code(f"phone:{normalise_phone(phone, 'IT')}"))
    citizen.click("#code-form button[type=submit]")
    citizen.wait_for_url(lambda url: urlsplit(url).path == "/portal/requests")
    assert no_horizontal_scroll(citizen)
    screenshot(citizen, f"portal-my-requests-{lang}")
    assert_accessible(citizen)

    # Their case, its reply, and the rating.
    citizen.click(f"li[data-reference='{reference}'] a")
    citizen.wait_for_url(f"**/portal/requests/{reference}")
    screenshot(citizen, f"portal-request-{lang}")
    assert reply in citizen.locator("article[data-reply='final']").inner_text()
    assert_accessible(citizen)
    citizen.check("#score-4")
    citizen.fill("#rate-comment", "Grazie" if lang == "en" else "شكراً")
    citizen.click("#rate-form button[type=submit]")
    citizen.locator("[data-rating='4']").wait_for()
    with console_server.api("sup-li") as api:
        assert status_of(api, reference)["rating"] == 4
    screenshot(citizen, f"portal-rated-{lang}")

    # Not solved after all: the citizen reopens it, then writes to the case.
    citizen.fill("#reopen-text", "The pothole is back" if lang == "en" else "عادت الحفرة")
    citizen.click("#reopen-form button[type=submit]")
    citizen.locator("#my-request[data-status='in_progress']").wait_for()
    message = "It is deeper now" if lang == "en" else "أصبحت أعمق الآن"
    citizen.fill("#message-text", message)
    citizen.click("#message-form button[type=submit]")
    with console_server.api("sup-li") as api:
        deadline = time.monotonic() + 10
        while True:  # the form posts, then the case's timeline has the message
            case = status_of(api, reference)
            wrote = [t for t in case["timeline"] if t["type"].endswith(".citizen_wrote.v1")]
            if wrote or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        assert case["status"] == "in_progress" and case["reopen_count"] == 1
        assert wrote and wrote[-1]["details"]["text"] == message, case["timeline"][-3:]
    screenshot(citizen, f"portal-reopened-{lang}")
    assert_accessible(citizen)


def test_a_department_sees_only_its_own_cases(open_console: Open, console_server: Server) -> None:
    with console_server.api("sup-li") as api:
        reference, _ = dispatched_case(api, f"x.{secrets.token_hex(4)}@example.org", "Pothole for transport only")
    page = open_console("dept-environment", "en")
    page.goto("/console/inbox")
    assert page.locator(f"li.case[data-reference='{reference}']").count() == 0
    # Asking for another department's inbox in the URL is refused, as the API refuses it.
    answer = page.goto("/console/inbox?department=transport")
    assert answer is not None and answer.status == 403


@pytest.mark.parametrize("lang", ["en", "ar"])
def test_department_asks_for_an_extension_and_waits_for_the_citizen(open_console: Open, console_server: Server, lang: str) -> None:
    """Ask for an extension (the supervisor approves it; the card follows live), then pause
    the deadline while waiting for the citizen and resume it when they answer."""
    # One API client each (every token costs a password check: this test is kept short).
    with console_server.api("sup-li") as sup, console_server.api("dept-transport") as dept:
        reference, _ = dispatched_case(sup, f"e.{secrets.token_hex(4)}@example.org", f"Sinkhole ({lang} {secrets.token_hex(3)})")
        assert dept.post(f"/requests/{reference}/accept", json={}).status_code == 200
        due = datetime.fromisoformat(status_of(dept, reference)["due_at"])
        page = open_console("dept-transport", lang)
        page.goto("/console/inbox")
        case = page.locator(f"li.case[data-reference='{reference}']")

        case.locator("details.act:has([data-action=extend]) summary").click()
        case.locator("input[name=requested_due_at]").fill((due + timedelta(days=3)).strftime("%Y-%m-%dT%H:%M"))
        case.locator("textarea[name=reason]").first.fill("Asphalt on order" if lang == "en" else "الأسفلت قيد الطلب")
        case.locator("[data-action=extend]").click()
        case.locator("[data-extension=pending]").wait_for()
        # The supervisor approves (their approvals screen's form posts this): the card follows, live.
        assert sup.post(f"/requests/{reference}/extension/decision", json={"approve": True}).status_code == 200
        case.locator("[data-extension=approved]").wait_for()
        assert datetime.fromisoformat(status_of(dept, reference)["due_at"]) > due + timedelta(days=2)

        case.locator("details.act:has([data-action=wait]) summary").click()
        case.locator("details.act:has([data-action=wait]) textarea[name=reason]").fill(
            "A photo, please" if lang == "en" else "صورة من فضلك"
        )
        case.locator("[data-action=wait]").click()
        case.locator("[data-deadline=paused]").wait_for()
        assert case.get_attribute("data-status") == "waiting_citizen"
        case.locator("details.act:has([data-action=resume]) summary").click()
        screenshot(page, f"inbox-waiting-{lang}")
        assert_accessible(page)  # the approved extension, the paused deadline and the resume form
        case.locator("[data-action=resume]").click()
        page.locator(f"li.case[data-reference='{reference}'][data-status='in_progress']").wait_for()
        assert case.locator("[data-deadline=paused]").count() == 0
        assert status_of(dept, reference)["status"] == "in_progress"


def test_an_opened_form_stays_open_while_the_list_changes_live(open_console: Open, console_server: Server) -> None:
    """A department member opens a case's reply form; another case arrives in the inbox
    meanwhile (the live feed refreshes the list): the form they opened is still open."""
    with console_server.api("sup-li") as sup, console_server.api("dept-transport") as dept:
        reference, _ = dispatched_case(sup, f"o.{secrets.token_hex(4)}@example.org", f"Broken kerb ({secrets.token_hex(3)})")
        assert dept.post(f"/requests/{reference}/accept", json={}).status_code == 200
        page = open_console("dept-transport", "en")
        page.goto("/console/inbox")
        case = page.locator(f"li.case[data-reference='{reference}']")
        case.locator("details.act:has([data-action=reply]) summary").click()
        before = page.locator("#inbox").get_attribute("data-at")
        other, _ = dispatched_case(sup, f"p.{secrets.token_hex(4)}@example.org", f"Fallen sign ({secrets.token_hex(3)})")
        page.locator(f"li.case[data-reference='{other}']").wait_for()  # the list was swapped, live
        assert page.locator("#inbox").get_attribute("data-at") != before
        case.locator("details.act[open]:has([data-action=reply])").wait_for(timeout=2000)  # restored with the swap
        # An action of the user's own closes its form: it has done its work.
        case.locator("textarea[name=message]").first.fill("Fixed this morning")
        case.locator("[data-action=reply]").click()
        page.locator(f"section[data-section='replied'] li.case[data-reference='{reference}']").wait_for()
        assert page.locator("li.case details[open]").count() == 0
