"""The knowledge editor: four languages side by side; a saved translation is searchable."""

from __future__ import annotations

import uuid

import pytest

from tests.console.conftest import Open, Server, assert_accessible, screenshot


def published_article(console_server: Server) -> str:
    """A fresh article, drafted, reviewed and published through the API."""
    with console_server.api("expert-marco") as api:
        answer = api.post(
            "/knowledge/articles",
            json={
                "translations": {
                    "it": {"title": "Orari della biblioteca civica", "body": "La biblioteca è aperta dal lunedì al venerdì."},
                    "en": {"title": "Public library opening hours", "body": "The library is open Monday to Friday."},
                    "ar": {"title": "مواعيد المكتبة العامة", "body": "المكتبة مفتوحة من الاثنين إلى الجمعة."},
                },
                "tags": ["biblioteca"],
            },
        )
        assert answer.status_code == 201, answer.text
        article_id = str(answer.json()["id"])
        assert api.post(f"/knowledge/articles/{article_id}/review").status_code == 200
        assert api.post(f"/knowledge/articles/{article_id}/publish").status_code == 200
    return article_id


@pytest.mark.parametrize("lang", ["en", "ar"])
def test_an_expert_edits_the_italian_translation_and_search_finds_it(open_console: Open, console_server: Server, lang: str) -> None:
    article_id = published_article(console_server)
    page = open_console("expert-marco", lang)
    page.goto(f"/console/knowledge/{article_id}/edit")
    # The four languages side by side, each text area in its language and direction.
    for code, direction in (("zh", "ltr"), ("ar", "rtl"), ("it", "ltr"), ("en", "ltr")):
        area = page.locator(f"#body-{code}")
        assert area.get_attribute("lang") == code and area.get_attribute("dir") == direction
    boxes = [page.locator(f"fieldset[data-lang='{c}']").bounding_box() for c in ("zh", "ar", "it", "en")]
    assert len({round(b["y"]) for b in boxes if b}) == 1, "the translations are not side by side"
    word = "zanzibarquok" + uuid.uuid4().hex[:6]
    page.fill("#body-it", f"La biblioteca è aperta dal lunedì al sabato. Parola chiave: {word}.")
    page.fill("#kb-note", "sabato")
    screenshot(page, f"knowledge-editor-{lang}")
    assert_accessible(page)
    # The form reloads the page it is on once saved: wait for that navigation itself, as the
    # URL matches before it starts and a later goto would be interrupted by it.
    with (
        page.expect_navigation(url=f"**/console/knowledge/{article_id}/edit"),
        page.expect_response(lambda r: r.url.endswith(f"/knowledge/articles/{article_id}/revise")) as saved,
    ):
        page.click("#article-form button[type=submit]")
    assert saved.value.status == 200, saved.value.text()
    assert word in page.locator("#body-it").input_value()
    # The console's search finds the new Italian text.
    page.goto(f"/console/knowledge?q={word}&lang=it")
    assert page.locator(f"#kb-found li[data-article='{article_id}']").count() == 1
    screenshot(page, f"knowledge-search-{lang}")
    assert_accessible(page)
    page.goto(f"/console/knowledge/{article_id}")
    assert word in page.locator("section[lang='it']").inner_text()
    screenshot(page, f"knowledge-article-{lang}")
    assert_accessible(page)


def test_an_agent_reads_but_does_not_edit(open_console: Open, console_server: Server) -> None:
    article_id = published_article(console_server)
    page = open_console("op-anna", "en")
    page.goto("/console/knowledge")
    assert page.locator(f"#kb-articles tr[data-article='{article_id}']").count() == 1
    assert page.locator("a[href='/console/knowledge/new']").count() == 0
    refused = page.goto(f"/console/knowledge/{article_id}/edit")
    assert refused is not None and refused.status == 403
    page.goto(f"/console/knowledge/{article_id}")
    assert page.locator("section[lang='ar']").get_attribute("dir") == "rtl"
