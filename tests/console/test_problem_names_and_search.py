"""The console names problem codes in the user's language, and the staff case search finds
cases by free text exactly as ``GET /requests?q=`` finds them for the same person.

Server-side (FastAPI's TestClient renders the HTML; no browser), on SQLite and PostgreSQL.
The names' oracle is the catalogue file itself (``infra/data/catalogue.yaml``), read here
independently of the store; the search's oracle is the JSON API answering the same actor.
"""

from __future__ import annotations

from collections.abc import Iterator
from html.parser import HTMLParser
from typing import Any

import pytest
import yaml
from fastapi.testclient import TestClient

from api.app import create_app
from api.console.web import LANGUAGES
from domain.base import Actor
from domain.requests import commands as c
from infra.runtime import Hotline
from tests.auth import bearer, token_for
from tests.conftest import CATALOGUE
from tests.read_log import ReadLog

SUP = Actor("sup-names", "supervisor")
TRANSPORT = {"sub": "roads-names", "roles": "department", "departments": ["transport"]}
SUPERVISOR = {"sub": "sup-names", "roles": "supervisor", "departments": []}


def catalogue_names() -> dict[str, dict[str, str]]:
    """Problem code, department, provider and category id → names, straight from the
    catalogue file (the catalogue's codes and ids are distinct)."""
    found: dict[str, dict[str, str]] = {}

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            key = node.get("code") or node.get("id")
            if isinstance(key, str) and isinstance(node.get("names"), dict):
                found[key] = node["names"]
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(yaml.safe_load(CATALOGUE.read_text("utf-8")))
    return found


class Page(HTMLParser):
    """What a test reads of a rendered page: each ``data-problem-code`` element's text (with
    the case it belongs to), the result rows' references, and the page's visible text."""

    def __init__(self, html: str) -> None:
        super().__init__()
        self.problems: list[tuple[str | None, str, str]] = []  # (case reference, code, shown text)
        self.rows: list[str] = []
        self.row_text: dict[str, str] = {}  # reference → its row's text
        self.row_classes: dict[str, list[str]] = {}  # reference → the classes inside its row
        self._row: str | None = None
        self.text: list[str] = []
        self._case: str | None = None
        self._open: list[tuple[str, str, list[str]]] = []  # (tag, code, text) of open problem elements
        self.feed(html)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if a.get("data-ref"):
            self._case = self._row = a["data-ref"]
            self.rows.append(str(a["data-ref"]))
        elif a.get("data-reference"):
            self._case = a["data-reference"]
        if self._row is not None and a.get("class"):
            self.row_classes.setdefault(self._row, []).extend(str(a["class"]).split())
        if a.get("data-problem-code") is not None:
            self._open.append((tag, str(a["data-problem-code"]), []))

    def handle_endtag(self, tag: str) -> None:
        if tag == "tr":
            self._row = None
        if self._open and self._open[-1][0] == tag:
            _, code, text = self._open.pop()
            self.problems.append((self._case, code, "".join(text).strip()))

    def handle_data(self, data: str) -> None:
        self.text.append(data)
        if self._row is not None:
            self.row_text[self._row] = self.row_text.get(self._row, "") + data
        for _, _, text in self._open:
            text.append(data)

    def visible(self) -> str:
        return " ".join(self.text)


@pytest.fixture
def client(hotline: Hotline) -> Iterator[TestClient]:
    with TestClient(create_app(hotline=hotline), base_url="http://testserver") as c:
        yield c


def register(hotline: Hotline, description: str, problem_code: str, name: str, phone: str) -> str:
    """A case registered and dispatched to its problem code's department; its reference."""
    contact = c.Contact(name=name, phone=phone)
    fields: dict[str, Any] = {"kind": "action", "subtype": "complaint", "channel": "phone", "description": description}
    result = hotline.bus.execute(c.RegisterRequest(**fields, contact=contact, problem_code=problem_code), SUP).result
    reference = str(result["reference"])
    hotline.bus.execute(c.Dispatch(ref=reference), SUP)
    return reference


def ingest_analytics(hotline: Hotline) -> None:
    """Brings the analytics store (what reports read) up to the event store."""
    from analytics.ingest import InProcessAnalytics

    ingest = InProcessAnalytics(hotline.store, hotline.settings.duckdb_path)
    try:
        ingest.catch_up()
    finally:
        ingest.close()


def page_as(client: TestClient, hotline: Hotline, who: dict[str, Any], url: str, lang: str = "en") -> Page:
    client.cookies.set("hotline_session", token_for(hotline.settings, who["sub"], who["roles"], departments=who["departments"]))
    client.cookies.set("hotline_lang", lang)
    answer = client.get(url)
    assert answer.status_code == 200, answer.text[:2000]
    return Page(answer.text)


def api_refs(client: TestClient, hotline: Hotline, who: dict[str, Any], q: str) -> list[str]:
    answer = client.get(
        "/requests", params={"q": q}, headers=bearer(hotline.settings, who["sub"], who["roles"], departments=who["departments"])
    )
    assert answer.status_code == 200, answer.text
    return [item["reference"] for item in answer.json()["items"]]


def test_problem_codes_are_named_in_every_language(client: TestClient, hotline: Hotline) -> None:
    names = catalogue_names()
    lamp = register(hotline, "Lamp post dark near the school", "streetlight-out", "Mario Rossi", "+39 06 5550 1234")
    for lang in LANGUAGES:
        expected = names["streetlight-out"][lang]
        # The department's inbox card, the case search's row and the case's own page.
        for url in ("/console/inbox", "/console/cases", f"/console/cases/{lamp}"):
            page = page_as(client, hotline, TRANSPORT, url, lang)
            # (the case page is about one case: its elements name none)
            shown = [text for case, code, text in page.problems if case in (lamp, None) and code == "streetlight-out"]
            assert shown and all(text == expected for text in shown), (url, lang, shown)
        inbox = page_as(client, hotline, TRANSPORT, "/console/inbox", lang)
        assert "streetlight-out" not in inbox.visible(), f"the inbox shows the raw code ({lang})"
    # The language the names come in really is the user's: four different names.
    assert len({names["streetlight-out"][lang] for lang in LANGUAGES}) == len(LANGUAGES)


def test_an_unknown_problem_code_is_shown_as_it_is(client: TestClient, hotline: Hotline) -> None:
    from starlette.requests import Request

    from api.console.web import context

    scope = {"type": "http", "app": client.app, "headers": [(b"cookie", b"hotline_lang=ar")], "path": "/", "query_string": b""}
    values = context(Request(scope), SUP)
    assert values["problem_name"]("no-such-code") == "no-such-code"
    assert values["problem_name"]("pothole") == catalogue_names()["pothole"]["ar"]
    assert values["problem_name"](None) == ""


def test_the_case_search_finds_by_words_as_the_api_does(client: TestClient, hotline: Hotline, caplog: pytest.LogCaptureFixture) -> None:
    pothole = register(hotline, "Deep pothole in via Roma at the corner", "pothole", "Giulia Bianchi", "+39 06 5550 2222")
    bins = register(hotline, "Bins not emptied in via Roma since Monday", "missed-collection", "Paolo Verdi", "+39 06 5550 3333")
    lamp = register(hotline, "Lamp post dark near the school", "streetlight-out", "Giulia Bianchi", "+39 06 5550 4444")
    names = catalogue_names()

    # A supervisor finds both cases of via Roma, and nothing else.
    page = page_as(client, hotline, SUPERVISOR, "/console/cases?q=via+Roma")
    assert sorted(page.rows) == sorted([pothole, bins]) == sorted(api_refs(client, hotline, SUPERVISOR, "via Roma"))
    # Each row: the reference, the problem's name, the status and the deadline.
    shown = {(case, text) for case, _, text in page.problems}
    assert shown == {(pothole, names["pothole"]["en"]), (bins, names["missed-collection"]["en"])}
    for ref in (pothole, bins):
        detail = client.get(f"/requests/{ref}", headers=bearer(hotline.settings, "sup-names", "supervisor")).json()
        assert detail["status"] == "dispatched" and detail["due_at"]  # a deadline runs: the row shows how close it is
        assert ref in page.row_text[ref] and "dispatched" in page.row_text[ref]
        assert {"ok", "warn", "bad"} & set(page.row_classes[ref]), page.row_classes[ref]
    assert 'value="via Roma"' in client.get("/console/cases?q=via+Roma").text  # the box keeps what was typed
    # The last word may be the start of one (typing), as the API's search allows.
    assert sorted(page_as(client, hotline, SUPERVISOR, "/console/cases?q=pothol").rows) == [pothole]
    # By the caller's name: staff who may read personal data find it, and the read is logged.
    log = ReadLog(caplog, hotline.settings)
    log.new_lines()  # the searches before
    by_name = page_as(client, hotline, SUPERVISOR, "/console/cases?q=Bianchi").rows
    read = [line for line in log.new_lines() if line.get("endpoint") == "console case search"]
    assert len(read) == 1 and read[0]["actor_id"] == "sup-names" and read[0]["count"] == 2 and len(read[0]["citizen_ids"]) >= 1
    assert sorted(by_name) == sorted([pothole, lamp]) == sorted(api_refs(client, hotline, SUPERVISOR, "Bianchi"))

    # A department sees its own cases only (transport: the pothole and the lamp, never the bins)
    # and cannot find a case by the caller's name: exactly what the API answers it.
    for q in ("via Roma", "Bianchi", "Bins", "school"):
        mine = page_as(client, hotline, TRANSPORT, f"/console/cases?q={q.replace(' ', '+')}").rows
        assert sorted(mine) == sorted(api_refs(client, hotline, TRANSPORT, q)), q
        assert bins not in mine
    assert page_as(client, hotline, TRANSPORT, "/console/cases?q=via+Roma").rows == [pothole]
    assert page_as(client, hotline, TRANSPORT, "/console/cases?q=Bianchi").rows == []

    # The words narrow the other filters, not the other way round.
    assert page_as(client, hotline, SUPERVISOR, "/console/cases?q=via+Roma&problem_code=pothole").rows == [pothole]
    assert page_as(client, hotline, SUPERVISOR, "/console/cases?q=via+Roma&status=closed").rows == []
    # Only punctuation: no word to search for, said on the page (not an error page).
    empty = page_as(client, hotline, SUPERVISOR, "/console/cases?q=%21%21")
    assert empty.rows == [] and "at least one word" in empty.visible()


def test_the_problems_report_names_codes_and_departments(client: TestClient, hotline: Hotline) -> None:
    register(hotline, "Deep pothole in via Roma", "pothole", "Giulia Bianchi", "+39 06 5550 2222")
    register(hotline, "Lamp post dark near the school", "streetlight-out", "Paolo Verdi", "+39 06 5550 3333")
    ingest_analytics(hotline)
    names = catalogue_names()
    document = yaml.safe_load(CATALOGUE.read_text("utf-8"))
    transport = next(d["names"] for d in document["departments"] if d["id"] == "transport")
    analyst = {"sub": "analyst-names", "roles": "analyst", "departments": []}
    for lang in ("ar", "zh"):
        page = page_as(client, hotline, analyst, "/console/reports?name=problems", lang)
        shown = {code: text for _, code, text in page.problems}
        assert shown == {code: names[code][lang] for code in ("pothole", "streetlight-out")}, shown
        assert "transport" not in page.visible(), "the department is shown by its id"
        assert transport[lang] in page.visible()
