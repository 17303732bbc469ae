"""The citizens' portal: public pages on a phone in English and Arabic (right to left, no
horizontal scroll, accessible), the knowledge base searched, and a request filed with the
API's rules: contact details refused when missing, the request registered when given."""

from __future__ import annotations

import secrets
from typing import Any

import pytest

from tests.console.conftest import PHONE, Open, Server, assert_accessible, no_horizontal_scroll, screenshot

SEARCHES = {"en": "waste collection", "ar": "النفايات"}


def check_page(page: Any, name: str, lang: str) -> None:
    """What every portal page must be: in the user's direction, no sideways scroll on a
    phone, accessible; and a screenshot of it."""
    assert page.locator("html").get_attribute("dir") == ("rtl" if lang == "ar" else "ltr")
    assert no_horizontal_scroll(page), f"{name} scrolls sideways on a phone"
    screenshot(page, f"{name}-{lang}")
    assert_accessible(page)


@pytest.mark.parametrize("lang", ["en", "ar"])
def test_public_pages_and_the_knowledge_base(open_console: Open, lang: str) -> None:
    page = open_console(None, lang, PHONE)
    page.goto("/portal")
    check_page(page, "portal-home", lang)

    page.fill("#portal-q", SEARCHES[lang])
    page.click("form[role=search] button[type=submit]")
    page.wait_for_url(lambda url: "/portal/knowledge?q=" in url)
    results = page.locator("ol.results > li")
    assert results.count() >= 1, "the knowledge base found nothing"
    check_page(page, "portal-search", lang)

    results.first.locator("a").click()
    page.wait_for_url(lambda url: "/portal/knowledge/" in url)
    assert page.locator("article.article h1").inner_text().strip()
    check_page(page, "portal-article", lang)


@pytest.mark.parametrize("lang", ["ar", "en"])
def test_a_citizen_files_a_request_on_a_phone(open_console: Open, console_server: Server, lang: str) -> None:
    page = open_console(None, lang, PHONE)
    page.goto("/portal/file")
    check_page(page, "portal-file", lang)
    description = (
        "الرصيف مكسور أمام المدرسة" if lang == "ar" else "The pavement is broken outside the school"
    ) + f" {secrets.token_hex(3)}"

    # Without contact details the API refuses (this jurisdiction takes no anonymous
    # requests): its message is shown and the required fields are marked.
    page.fill("#description", description)
    page.click("#file-request button[type=submit]")
    page.locator("#file-request [data-errors]:not(:empty)").wait_for()
    # The refusal in the citizen's language (by its code), not the API's English.
    refusal = page.locator("#file-request [data-errors]").inner_text()
    expected = "لا يسجل هذا الخط الطلبات المجهولة" if lang == "ar" else "This hotline does not register anonymous requests"
    assert expected in refusal, refusal
    assert page.locator("#contact-name").get_attribute("aria-invalid") == "true"
    assert page.locator("#contact-phone").get_attribute("aria-invalid") == "true"
    assert "/portal/file" in page.url
    assert no_horizontal_scroll(page)
    screenshot(page, f"portal-file-refused-{lang}")
    assert_accessible(page)

    # With them, it is registered: the reference is shown, and the API has the request.
    page.fill("#contact-name", "سارة أحمد" if lang == "ar" else "Sara Ahmed")
    page.fill("#contact-phone", f"+39 06 {secrets.randbelow(10**7):07d}")
    page.fill("#address", "شارع روما ١٢" if lang == "ar" else "Via Roma 12")
    page.click("#file-request button[type=submit]")
    page.wait_for_url(lambda url: "/portal/filed?reference=" in url)
    reference = page.locator("[data-reference]").get_attribute("data-reference")
    assert reference
    check_page(page, "portal-filed", lang)
    with console_server.api("sup-li") as api:
        answer = api.get(f"/requests/{reference}")
        assert answer.status_code == 200, answer.text
        registered = answer.json()
    assert registered["description"] == description
    assert registered["channel"] == "web" and registered["language"] == lang and registered["status"] == "registered"


def test_my_requests_need_a_citizen_session(open_console: Open) -> None:
    page = open_console(None, "en")
    page.goto("/portal/requests")
    assert "/portal/sign-in" in page.url
    staff = open_console("dept-transport", "en")
    staff.goto("/portal/requests")
    assert "/portal/sign-in" in staff.url  # staff have no "my requests": never everyone's
