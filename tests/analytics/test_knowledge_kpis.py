"""The knowledge KPIs, computed again in plain Python from the events, against the SQL.

* answer rate = searches followed by ``used_to_answer`` or ``deflected`` / searches (per
  channel too); deflection rate = self-service searches deflected / self-service searches;
* unanswered queries = searches with no results or ``no_good_answer``, by language and
  normalised query;
* articles read but not resolving = articles opened in a search that had no
  ``used_to_answer`` / ``deflected`` naming them.

Once from the generated traffic (envelopes as published), once from real commands run
through the bus on a hotline (the events the aggregate writes), and once after upgrading
an analytics file of schema version 2.
"""

from __future__ import annotations

import io
import json
import unicodedata
from collections import Counter, defaultdict
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import pytest
import sqlalchemy as sa

from analytics import kpis, schema
from analytics.ingest import AnalyticsStore
from analytics.kpis import KpiParams
from analytics.reports import Reports, SavedReports, render
from domain.envelope import Envelope
from domain.knowledge import commands as c
from infra.runtime import Hotline
from tests.analytics.conftest import DAY
from tests.analytics.traffic import published
from tests.knowledge.evaluation import EDITOR

START, END = DAY, DAY + timedelta(days=1)
EVER = (datetime(2000, 1, 1), datetime(2100, 1, 1))
P = KpiParams(top=50)
RESOLVING = {"used_to_answer", "deflected"}


def normalised(query: str) -> str:
    return " ".join(unicodedata.normalize("NFC", query).split()).lower()


def expected(envelopes: list[Envelope], start: datetime, end: datetime) -> dict[str, Any]:
    """The KPIs from the events, without SQL: the searches performed in [start, end)."""
    by_search: dict[str, list[Envelope]] = defaultdict(list)
    for e in envelopes:
        if e.stream == "knowledge":
            by_search[e.aggregate_id].append(e)
    searches = []
    for evs in by_search.values():
        performed = next((e for e in evs if e.name == "search_performed"), None)
        if performed is None or not kpis.as_utc_naive(start) <= kpis.as_utc_naive(performed.time) < kpis.as_utc_naive(end):
            continue
        names = {e.name for e in evs}
        searches.append((performed, evs, names))

    def rates(group: list[tuple[Envelope, list[Envelope], set[str]]]) -> dict[str, Any]:
        self_service = [s for s in group if s[0].data["channel"] == "self_service"]
        return {
            "searches": len(group),
            "resolved": sum(bool(n & RESOLVING) for _, _, n in group),
            "answer_rate": sum(bool(n & RESOLVING) for _, _, n in group) / len(group),
            "self_service_searches": len(self_service),
            "deflection_rate": (sum("deflected" in n for _, _, n in self_service) / len(self_service)) if self_service else None,
            "no_results": sum(p.data["results"] == 0 for p, _, _ in group),
        }

    by_channel: dict[str, list[Any]] = defaultdict(list)
    for s in searches:
        by_channel[s[0].data["channel"]].append(s)
    unanswered: Counter[tuple[str | None, str]] = Counter()
    for p, _, names in searches:
        if p.data["results"] == 0 or "no_good_answer" in names:
            unanswered[(p.data["language"], normalised(p.data["query"]))] += 1
    reads: Counter[str] = Counter()
    not_resolving: Counter[str] = Counter()
    for _, evs, _ in searches:
        opened = {e.data["article_id"] for e in evs if e.name == "article_opened"}
        resolved_by = {e.data["article_id"] for e in evs if e.name in RESOLVING}
        for article in opened:
            reads[article] += 1
            not_resolving[article] += article not in resolved_by
    return {
        "total": rates(searches) if searches else None,
        "channels": {ch: rates(group) for ch, group in by_channel.items()},
        "unanswered": unanswered,
        "articles": {a: (reads[a], n) for a, n in not_resolving.items() if n},
    }


def measured(conn: duckdb.DuckDBPyConnection, start: datetime, end: datetime) -> dict[str, Any]:
    keys = ("searches", "resolved", "answer_rate", "self_service_searches", "deflection_rate", "no_results")
    total = kpis.knowledge(conn, start, end)
    return {
        "total": {k: total[0][k] for k in keys} if total else None,
        "channels": {r["bucket"]: {k: r[k] for k in keys} for r in kpis.knowledge(conn, start, end, "channel")},
        "unanswered": Counter({(r["language"], r["query"]): r["searches"] for r in kpis.knowledge_unanswered(conn, start, end, P)}),
        "articles": {r["article_id"]: (r["reads"], r["not_resolved"]) for r in kpis.knowledge_unresolved_articles(conn, start, end, P)},
    }


def assert_same(got: dict[str, Any], want: dict[str, Any]) -> None:
    assert got["unanswered"] == want["unanswered"]
    assert got["articles"] == want["articles"]
    assert got["channels"].keys() == want["channels"].keys()
    for part in (got["total"], *got["channels"].values()):
        assert part is not None
    for g, w in [(got["total"], want["total"]), *((got["channels"][k], want["channels"][k]) for k in want["channels"])]:
        assert g == pytest.approx(w)


def test_generated_traffic_matches_plain_python(reader: duckdb.DuckDBPyConnection, traffic: list[Envelope]) -> None:
    want = expected(traffic, START, END)
    assert want["total"]["searches"] == 60 and want["unanswered"] and want["articles"]
    assert 0 < want["channels"]["self_service"]["deflection_rate"] < 1
    assert_same(measured(reader, START, END), want)
    # The fact view has one row per search, and the answer rate no longer reads "answered"
    # (something shown): a search that showed articles is not yet one that answered.
    rows = reader.execute("SELECT count(*), count(DISTINCT search_id) FROM knowledge_searches").fetchone()
    assert rows == (120, 120)
    shown, resolved = reader.execute("SELECT count(*) FILTER (answered), count(*) FILTER (resolved) FROM knowledge_searches").fetchone()  # type: ignore[misc]
    assert resolved < shown


def _article(h: Hotline, title: str) -> str:
    cmd = c.DraftArticle(translations={"it": c.Translation(title=title, body=f"{title}: come fare")})  # type: ignore[dict-item]
    article_id = str(h.bus.execute(cmd, EDITOR).result["id"])
    h.bus.execute(c.ReviewArticle(article_id=article_id), EDITOR)
    h.bus.execute(c.PublishArticle(article_id=article_id), EDITOR)
    return article_id


def _search(h: Hotline, query: str, channel: str, shown: list[str]) -> str:
    cmd = c.RecordSearch(
        query=query,
        language="it",
        channel=channel,  # type: ignore[arg-type]
        shown=[c.ShownArticle(article_id=a, revision=1, rank=i + 1, score=1.0) for i, a in enumerate(shown)],
    )
    return str(h.bus.execute(cmd, EDITOR).result["search_id"])


@pytest.fixture()
def driven(sqlite_hotline: Hotline) -> tuple[list[Envelope], dict[str, str]]:
    """Searches and their outcomes recorded through the bus, as the API records them."""
    h = sqlite_hotline
    a, b = _article(h, "Bollo auto"), _article(h, "Passaporto")
    run = h.bus.execute
    _search(h, "bollo auto", "agent", [])  # no results
    s = _search(h, "bollo", "self_service", [a])  # read, deflected by it
    run(c.RecordArticleOpened(search_id=s, article_id=a), EDITOR)
    run(c.RecordDeflection(search_id=s, article_id=a), EDITOR)
    s = _search(h, "passaporto", "agent", [a, b])  # a read and not used; b used to answer
    run(c.RecordArticleOpened(search_id=s, article_id=a), EDITOR)
    run(c.RecordArticleOpened(search_id=s, article_id=b), EDITOR)
    run(c.RecordUsedToAnswer(search_id=s, article_id=b), EDITOR)
    s = _search(h, "  Bollo   AUTO ", "agent", [a])  # shown, but no good answer
    run(c.RecordNoGoodAnswer(search_id=s, note="scaduto"), EDITOR)
    s = _search(h, "bollo", "self_service", [a])  # read, nothing came of it
    run(c.RecordArticleOpened(search_id=s, article_id=a), EDITOR)
    return list(h.store.iter_envelopes()), {"a": a, "b": b}


def test_commands_through_the_bus_match_plain_python(tmp_path: Path, driven: tuple[list[Envelope], dict[str, str]]) -> None:
    envelopes, ids = driven
    store = AnalyticsStore(tmp_path / "a.duckdb")
    store.ingest_envelopes(envelopes)
    got = measured(store.conn, *EVER)
    want = expected(envelopes, *EVER)
    assert_same(got, want)
    # And by hand: 5 searches, 2 resolved (the deflection, the answer) …
    assert got["total"] == pytest.approx(
        {"searches": 5, "resolved": 2, "answer_rate": 0.4, "self_service_searches": 2, "deflection_rate": 0.5, "no_results": 1}
    )
    assert got["channels"]["agent"]["answer_rate"] == pytest.approx(1 / 3)
    # … "bollo auto" twice unanswered (no results, then no good answer) …
    assert got["unanswered"] == Counter({("it", "bollo auto"): 2})
    # … and article a read three times, resolving once; b resolved its one read.
    assert got["articles"] == {ids["a"]: (3, 2)}
    row = store.conn.execute(
        "SELECT answered_from, answered_from_revision, request_id IS NULL FROM knowledge_searches WHERE used_to_answer"
    ).fetchone()
    assert row == (ids["b"], 1, True)
    store.close()


def test_an_analytics_file_of_version_2_is_upgraded(tmp_path: Path, driven: tuple[list[Envelope], dict[str, str]]) -> None:
    envelopes, _ = driven
    path = tmp_path / "a.duckdb"
    store = AnalyticsStore(path)
    store.ingest_envelopes(envelopes)
    want = measured(store.conn, *EVER)
    # Back to version 2: the knowledge events without the columns version 3 added.
    for table, column, _type, _since in schema.ADDED_COLUMNS:
        store.conn.execute(f"DROP VIEW IF EXISTS knowledge_article_reads; DROP VIEW IF EXISTS knowledge_searches; "
                           f"DROP MACRO TABLE IF EXISTS knowledge_searches_between; ALTER TABLE {table} DROP COLUMN {column}")  # fmt: skip
    store.conn.execute("UPDATE schema_info SET value = '2' WHERE key = 'schema_version'")
    store.conn.close()
    again = AnalyticsStore(path)
    assert schema.stored_schema_version(again.conn) == schema.SCHEMA_VERSION == 6
    assert measured(again.conn, *EVER) == want
    again.close()


def test_the_knowledge_report_shows_every_kpi(tmp_path: Path, driven: tuple[list[Envelope], dict[str, str]]) -> None:
    envelopes, ids = driven
    path = published(tmp_path / "a.duckdb", envelopes)
    reports = Reports(path, SavedReports(sa.create_engine(f"sqlite:///{tmp_path / 'read.sqlite'}")), timeout=5.0)
    result = reports.run("knowledge", *EVER)
    assert result.records()[0]["answer_rate"] == pytest.approx(0.4)
    assert result.records()[0]["deflection_rate"] == pytest.approx(0.5)
    sections = {s.name: s for s in result.sections}
    assert set(sections) == {"knowledge_by_channel", "knowledge_unanswered", "knowledge_unresolved_articles"}
    assert {r["channel"]: r["searches"] for r in sections["knowledge_by_channel"].records()} == {"agent": 3, "self_service": 2}
    assert [(r["query"], r["searches"]) for r in sections["knowledge_unanswered"].records()] == [("bollo auto", 2)]
    assert [(r["article_id"], r["not_resolved"]) for r in sections["knowledge_unresolved_articles"].records()] == [(ids["a"], 2)]

    doc = json.loads(render(result, "json"))
    assert [s["name"] for s in doc["sections"]] == [s.name for s in result.sections]
    assert doc["sections"][1]["rows"][0]["query"] == "bollo auto"
    csv_text = render(result, "csv").decode()
    assert csv_text.splitlines()[0].split(",") == result.columns
    assert "# knowledge_unanswered:" in csv_text and "bollo auto" in csv_text and ids["a"] in csv_text
    page = render(result, "html").decode()
    assert page.count("<table>") == 4 and "bollo auto" in page and "<svg" in page
    assert render(result, "png")[:8] == b"\x89PNG\r\n\x1a\n"
    import pyarrow.parquet as pq

    assert pq.read_table(io.BytesIO(render(result, "parquet"))).column_names == result.columns
