"""A report's page speaks the reader's language everywhere: every column heading, every
"Group by" choice, and the coded values in its table (departments, categories, problem
codes, channels, urgencies, kinds) by their names, not their ids.

Server-side (FastAPI's TestClient renders the page; no browser). The names' oracle is the
catalogue file (``infra/data/catalogue.yaml``) read here, apart from the store.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from html.parser import HTMLParser

import pytest
from fastapi.testclient import TestClient

from analytics.charts import figure
from analytics.reports import STANDARD, Reports
from api.app import create_app
from api.console.reports import chart_text
from api.console.web import translations
from domain.base import Actor, SystemClock
from domain.requests import commands as c
from infra.runtime import Hotline
from infra.settings import Settings
from tests.auth import token_for
from tests.conftest import load_catalogue
from tests.console.test_problem_names_and_search import catalogue_names, ingest_analytics, register

ANALYST = ("analyst-names", "analyst")
# An untranslated heading or choice would be the data's own name: ASCII, lower case, digits
# and underscores ("avg_age_days", "department_category").
DATA_NAME = re.compile(r"^[a-z][a-z0-9_]*$")


class ReportPage(HTMLParser):
    """The headings, the "Group by" choices and the table's cells of a rendered report."""

    def __init__(self, html: str) -> None:
        super().__init__()
        self.headings: list[str] = []
        self.choices: list[tuple[str, str]] = []  # (value, shown)
        self.cells: list[str] = []
        self._in: tuple[str, str] | None = None  # (tag, option value)
        self._text: list[str] = []
        self.feed(html)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in ("th", "td", "option"):
            self._in = (tag, dict(attrs).get("value") or "")
            self._text = []

    def handle_endtag(self, tag: str) -> None:
        if self._in is None or self._in[0] != tag:
            return
        text = "".join(self._text).strip()
        if tag == "th":
            self.headings.append(text)
        elif tag == "td":
            self.cells.append(text)
        else:
            self.choices.append((self._in[1], text))
        self._in = None

    def handle_data(self, data: str) -> None:
        if self._in is not None:
            self._text.append(data)


@pytest.fixture(scope="module")
def hotline(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Hotline]:
    h = Hotline.start(Settings(data_dir=tmp_path_factory.mktemp("report-names")), SystemClock())
    load_catalogue(h)
    register(h, "Deep pothole in via Roma", "pothole", "Giulia Bianchi", "+39 06 5550 2222")
    register(h, "Lamp post dark near the school", "streetlight-out", "Paolo Verdi", "+39 06 5550 3333")
    register(h, "The bins were not emptied this week", "missed-collection", "Anna Neri", "+39 06 5550 4444")
    # An information request answered at once: no problem code, no department.
    question = c.RegisterRequest(
        kind="information",
        subtype="consultation",
        channel="phone",
        description="When is the office open?",
        contact=c.Contact(name="Ugo Blu", phone="+39 06 5550 5555"),
    )
    h.bus.execute(question, Actor("sup-names", "supervisor"))
    ingest_analytics(h)
    yield h
    h.close()


@pytest.fixture(scope="module")
def client(hotline: Hotline) -> Iterator[TestClient]:
    with TestClient(create_app(hotline=hotline), base_url="http://testserver") as c:
        yield c


def report(client: TestClient, hotline: Hotline, name: str, by: str, lang: str) -> ReportPage:
    client.cookies.set("hotline_session", token_for(hotline.settings, *ANALYST))
    client.cookies.set("hotline_lang", lang)
    answer = client.get("/console/reports", params={"name": name, "by": by})
    assert answer.status_code == 200, answer.text[:2000]
    assert "The reports cannot be run now" not in answer.text, (name, by)
    return ReportPage(answer.text)


@pytest.mark.parametrize("lang", ["ar", "zh", "it"])
def test_every_heading_and_grouping_of_every_report_is_translated(client: TestClient, hotline: Hotline, lang: str) -> None:
    untranslated: set[str] = set()
    for name, standard in STANDARD.items():
        for by in standard.by:
            page = report(client, hotline, name, by, lang)
            assert page.headings, (name, by)
            untranslated |= {f"{name}: heading {h!r}" for h in page.headings if DATA_NAME.match(h)}
            choices = dict(page.choices)
            assert set(standard.by) <= set(choices), (name, choices)
            untranslated |= {f"{name}: grouping {v!r}" for v in standard.by if DATA_NAME.match(choices[v])}
    assert not untranslated, sorted(untranslated)


@pytest.mark.parametrize("lang", ["ar", "zh"])
def test_coded_values_are_shown_by_their_names(client: TestClient, hotline: Hotline, lang: str) -> None:
    names = catalogue_names()
    requests_by = {by: report(client, hotline, "requests", by, lang).cells for by in ("department", "category", "problem_code")}
    assert names["transport"][lang] in requests_by["department"] and "transport" not in requests_by["department"]
    assert names["road-surface"][lang] in requests_by["category"] and "road-surface" not in requests_by["category"]
    assert names["pothole"][lang] in requests_by["problem_code"] and "pothole" not in requests_by["problem_code"]
    # The backlog grouped by department and category: both columns named.
    backlog = report(client, hotline, "backlog", "department_category", lang).cells
    assert {names["environment"][lang], names["residential-collection"][lang]} <= set(backlog), backlog[:24]
    assert not {"environment", "residential-collection", "transport"} & set(backlog)
    # No department, no problem code: said for what it means, not a dash.
    t = translations(lang, "reports")
    assert t.gettext("not sent to a department") in requests_by["department"]
    assert t.gettext("not classified") in requests_by["problem_code"]
    # The domain's own words: a channel, an urgency, a kind of request.
    for by, raw in (("channel", "phone"), ("urgency", "normal"), ("kind", "action")):
        cells = report(client, hotline, "requests", by, lang).cells
        assert raw not in cells and not any(DATA_NAME.match(c) for c in cells[:1]), (by, cells[:12])


def test_the_backlog_by_department_and_category_charts_one_bar_per_category(hotline: Hotline) -> None:
    result = Reports(hotline.settings.duckdb_path).run("backlog", by="department_category")
    fig = figure(result, chart_text(hotline, "ar", "backlog", "department_category"))
    labels = {t.get_text() for t in fig.axes[0].get_xticklabels()}
    names = catalogue_names()
    assert {names["road-surface"]["ar"], names["residential-collection"]["ar"]} <= labels, labels
