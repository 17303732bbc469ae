"""The console's reports page: the knowledge report's further tables (unanswered queries,
articles that do not resolve, answer rate by channel) with their titles and headings in
the reader's language, and day buckets shown as the hotline's local dates.

Server-side (FastAPI's TestClient renders the page; no browser)."""

from __future__ import annotations

import re
import shutil
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from analytics.ingest import snapshot_path_for
from api.app import create_app
from api.console.web import translations
from domain.base import SystemClock
from infra.runtime import Hotline
from infra.settings import Settings
from tests.auth import token_for

DATA_NAME = re.compile(r"^[a-z][a-z0-9_]*$")  # an untranslated heading: the data's own name


class Tables(HTMLParser):
    """Each table of the page: the title above it (the nearest h2/h3), headings and cells."""

    def __init__(self, html: str) -> None:
        super().__init__()
        self.tables: list[dict[str, list[str] | str]] = []
        self.paragraphs: list[str] = []
        self._title = ""
        self._tag: str | None = None
        self._text: list[str] = []
        self.feed(html)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "table":
            self.tables.append({"title": self._title, "headings": [], "cells": []})
        if tag in ("h2", "h3", "th", "td", "p"):
            self._tag, self._text = tag, []

    def handle_endtag(self, tag: str) -> None:
        if tag != self._tag:
            return
        text = " ".join("".join(self._text).split())
        if tag in ("h2", "h3"):
            self._title = text
        elif tag == "p":
            self.paragraphs.append(text)
        else:
            self.tables[-1]["headings" if tag == "th" else "cells"].append(text)  # type: ignore[union-attr]
        self._tag = None

    def handle_data(self, data: str) -> None:
        if self._tag is not None:
            self._text.append(data)


@pytest.fixture(scope="module")
def hotline(tmp_path_factory: pytest.TempPathFactory, loaded_db: Path) -> Iterator[Hotline]:
    # Nothing in the background: the analytics file is the two days of generated traffic.
    settings = Settings(
        data_dir=tmp_path_factory.mktemp("console-reports"),
        analytics_inprocess=False,
        timers_inprocess=False,
        router_inprocess=False,
        notifier_inprocess=False,
    )
    h = Hotline.start(settings, SystemClock())
    shutil.copyfile(snapshot_path_for(loaded_db).resolve(), settings.duckdb_path)
    yield h
    h.close()


@pytest.fixture(scope="module")
def client(hotline: Hotline) -> Iterator[TestClient]:
    with TestClient(create_app(hotline=hotline), base_url="http://testserver") as c:
        yield c


def page(client: TestClient, hotline: Hotline, name: str, lang: str) -> Tables:
    client.cookies.set("hotline_session", token_for(hotline.settings, "analyst-fixes", "analyst"))
    client.cookies.set("hotline_lang", lang)
    answer = client.get("/console/reports", params={"name": name})
    assert answer.status_code == 200, answer.text[:2000]
    assert "The reports cannot be run now" not in answer.text
    return Tables(answer.text)


SECTIONS = {
    "knowledge_by_channel": "Answer rate by channel",
    "knowledge_unanswered": "Unanswered queries: the %(top)s most frequent in each language (no results, or no good answer)",
    "knowledge_unresolved_articles": "Articles that do not resolve: read, but neither used to answer nor deflecting",
}


@pytest.mark.parametrize("lang", ["en", "it", "zh", "ar"])
def test_the_knowledge_report_shows_its_further_tables(client: TestClient, hotline: Hotline, lang: str) -> None:
    tables = page(client, hotline, "knowledge", lang).tables
    t = translations(lang, "reports")
    titles = [str(table["title"]) for table in tables]
    assert len(tables) == 4, titles  # the answer rate, then the three further tables
    for title, (_name, english) in zip(titles[1:], SECTIONS.items(), strict=True):
        assert title == t.gettext(english) % {"top": 10}
        if lang != "en":
            assert title != english % {"top": 10}, "translated"
    for table in tables:
        assert table["headings"] and not [h for h in table["headings"] if DATA_NAME.match(h)], table["headings"]
    unanswered = tables[2]["cells"]
    assert "tari" in unanswered and "路灯" in unanswered, unanswered[:20]  # the queries, as grouped
    articles = tables[3]["cells"]
    assert any(c.startswith("art-") for c in articles), articles[:20]
    by_channel = tables[1]["cells"]
    assert t.gettext("self-service") in by_channel and "self_service" not in by_channel


def test_day_buckets_are_local_dates(client: TestClient, hotline: Hotline) -> None:
    tables = page(client, hotline, "daily", "en")
    days = [row for row in tables.tables[0]["cells"] if re.match(r"^\w{3}, \d+ \w{3} \d{4}$", row)]
    # The traffic's calls are 08:00–17:00 UTC on 6 and 7 May, a few at 23:58 UTC: in
    # Rome, 01:58 on the next day.
    assert days[:3] == ["Mon, 6 May 2024", "Tue, 7 May 2024", "Wed, 8 May 2024"]
    # The window's bounds: local midnights (the UTC ones would read 02:00).
    assert any(re.fullmatch(r"\d\d/05/2024, 00:00 – \d\d/05/2024, 00:00", p) for p in tables.paragraphs), tables.paragraphs


def test_the_backlog_says_as_of_when(client: TestClient, hotline: Hotline) -> None:
    # The generated traffic is in May 2024: the default window ended long ago, so the
    # backlog is as of its end, the local midnight after the latest data.
    tables = page(client, hotline, "backlog", "en")
    assert any(re.fullmatch(r"As of \d\d/05/2024, 00:00", p) for p in tables.paragraphs), tables.paragraphs
    zh = page(client, hotline, "backlog", "zh")
    assert any(p.startswith("截至 ") for p in zh.paragraphs), zh.paragraphs
