"""Attachments on the case page (issue 16, item 4): a staff member uploads a photo from the
case page, sees it listed with a download link, and a refused file (HTML named .png) is
said on the form; in English and Arabic, checked with axe."""

from __future__ import annotations

import io
import uuid

import pytest
from PIL import Image

from tests.console.conftest import Open, Server, assert_accessible, screenshot


def jpeg() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (64, 48), (30, 120, 200)).save(out, format="JPEG")
    return out.getvalue()


@pytest.mark.parametrize("lang", ["en", "ar"])
def test_upload_from_the_case_page(open_console: Open, console_server: Server, lang: str) -> None:
    with console_server.api("sup-li") as api:
        answer = api.post(
            "/requests",
            json={
                "kind": "action",
                "subtype": "complaint",
                "channel": "phone",
                "description": f"Pothole in front of number 12 ({lang})",
                "problem_code": "pothole",
                "contact": {"name": "Mario Rossi", "phone": "+39 06 5550 1234"},
            },
        )
        assert answer.status_code == 201, answer.text
        ref = answer.json()["reference"]
    page = open_console("op-anna", lang)
    page.goto(f"/console/cases/{ref}")
    assert page.locator("#attachments li").count() == 0
    photo, name = jpeg(), f"buca-{uuid.uuid4().hex[:6]}.jpg"
    page.set_input_files("#attach-file", files=[{"name": name, "mimeType": "image/jpeg", "buffer": photo}])
    page.click("#attach-form button[type=submit]")
    link = page.locator("#attachments a[download]", has_text=name)
    link.wait_for(timeout=10_000)
    # The link serves the very bytes, as the API does.
    with console_server.api("sup-li") as api:
        [listed] = api.get(f"/requests/{ref}/attachments").json()
        assert listed["filename"] == name and listed["source"] == "console" and listed["content_type"] == "image/jpeg"
        assert link.get_attribute("href") == listed["content_url"]
        assert api.get(listed["content_url"]).content == photo
    assert page.locator("#attachments img").count() == 1

    # Refused by its content: the API's reason appears on the form, nothing is added.
    html = b"<!doctype html><html><script>alert(1)</script></html>"
    page.set_input_files("#attach-file", files=[{"name": "innocent.png", "mimeType": "image/png", "buffer": html}])
    page.click("#attach-form button[type=submit]")
    error = page.locator("#attach-form [data-errors]")
    error.wait_for(timeout=5000)
    page.wait_for_function("() => document.querySelector('#attach-form [data-errors]').textContent.length > 0")
    assert "text/html" in error.text_content()
    assert page.locator("#attach-file").get_attribute("aria-invalid") == "true"
    assert page.locator("#attachments li").count() == 1
    screenshot(page, f"case-attachments-{lang}")
    assert_accessible(page)
