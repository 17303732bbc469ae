"""The analyst's reports: KPIs, the standard reports and their charts, served from here."""

from __future__ import annotations

import time

import pytest

from tests.console.conftest import Open, assert_accessible, screenshot


@pytest.mark.parametrize("lang", ["en", "ar"])
def test_an_analyst_opens_a_report_and_its_chart_loads(open_console: Open, lang: str) -> None:
    page = open_console("analyst-sara", lang)
    deadline = time.monotonic() + 60
    while True:  # the analytics ingest runs in the background after the demo loads
        page.goto("/console/reports?name=requests")
        if page.locator("#report-chart").count() or time.monotonic() > deadline:
            break
        time.sleep(2)
    assert page.locator("[data-kpi='requests_registered'] .value").inner_text().strip() not in ("", "–")
    chart = page.locator("#report-chart")
    src = chart.get_attribute("src") or ""
    assert src.startswith("/console/")  # same origin, no CDN
    assert f"lang={lang}" in src  # a chart cached in another language is never reused after a switch
    answer = page.request.get(src)
    assert answer.status == 200 and answer.headers["content-type"] == "image/png"
    assert answer.body()[:8] == b"\x89PNG\r\n\x1a\n"
    page.wait_for_function("() => { const i = document.getElementById('report-chart'); return i.complete && i.naturalWidth > 0; }")
    assert page.locator("table tbody tr").count() > 0
    screenshot(page, f"reports-{lang}")
    assert_accessible(page)


def test_reports_are_not_for_agents(open_console: Open) -> None:
    page = open_console("op-anna", "en")
    answer = page.goto("/console/reports")
    assert answer is not None and answer.status == 403
