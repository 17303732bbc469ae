"""Max-score top-k (``projections.knowledge.rank``) against scoring every row, on both stores.

The reference below reads every index row of a language and scores it in Python from the
token columns (not from the tf map, TERMS or STATS that ranking reads), with the same
double arithmetic in the same order: the top k must be the same rows with bit-identical
scores, whatever the limit, the batch size, the problem-code boost, on SQLite and on
PostgreSQL. The collection: the labelled articles plus generated ones (common terms with
long lists, as in the benchmark), one revised, one retired, one with a very long word.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from domain.base import FixedClock
from domain.knowledge import commands as c
from infra.runtime import Hotline
from infra.settings import Settings
from projections import knowledge as kb
from projections import knowledge_text as text
from tests.bench.bench_knowledge import generate
from tests.conftest import START, create_pg_database, drop_pg_database
from tests.knowledge.evaluation import EDITOR, load_articles
from tests.knowledge.queries import QUERIES

pytestmark = pytest.mark.postgres

LONG_WORD = "Supercalifragilisticexpialidocious" * 2  # longer than the tf map's head
CODES = ("heating-fault", "missed-collection")


def _publish(h: Hotline, doc: dict[str, Any]) -> str:
    article_id = h.bus.execute(c.DraftArticle(**doc), EDITOR).result["id"]
    h.bus.execute(c.ReviewArticle(article_id=article_id), EDITOR)
    h.bus.execute(c.PublishArticle(article_id=article_id), EDITOR)
    return str(article_id)


@pytest.fixture(scope="module")
def stores(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Hotline]]:
    url = create_pg_database("kb_rank")
    hotlines: dict[str, Hotline] = {}
    try:
        for store, settings in (
            ("sqlite", Settings(data_dir=tmp_path_factory.mktemp("rank-sqlite"))),
            ("postgres", Settings(data_dir=Path(tmp_path_factory.mktemp("rank-pg")), database_url=url, pg_pool_size=4)),
        ):
            h = hotlines[store] = Hotline.start(settings, FixedClock(START))
            ids = load_articles(h)
            for doc in generate(120, seed=3):
                _publish(h, doc)
            long_title = c.Translation(title=f"{LONG_WORD} modulo", body=f"Il modulo {LONG_WORD} si chiede allo sportello.")
            _publish(h, {"translations": {"it": long_title, "en": long_title}, "problem_codes": ["forms"]})
            h.bus.execute(c.ReviseArticle(article_id=ids["water_outage"], tags=["acquedotto", "自来水"], note="keywords"), EDITOR)
            h.bus.execute(c.RetireArticle(article_id=ids["library"], reason="moved"), EDITOR)
        yield hotlines
    finally:
        for h in hotlines.values():
            h.close()
        drop_pg_database(url)


def _rows(conn: sa.Connection, language: str) -> list[dict[str, Any]]:
    q = sa.select(kb.INDEX).where(kb.INDEX.c.language == language)
    return [dict(r) for r in conn.execute(q).mappings()]


def _reference(rows: list[dict[str, Any]], terms: list[str], codes: tuple[str, ...], limit: int) -> list[tuple[str, float]]:
    """Every row scored in Python from its token columns; the best ``limit``."""
    counts = []
    for r in rows:
        f = Counter(r["body_tokens"].split())
        for t in r["title_tokens"].split():
            f[t] += kb.TITLE_WEIGHT
        counts.append(f)
    df = {t: sum(1 for f in counts if f[t]) for t in terms}
    present = [t for t in terms if df[t]]
    if not present:
        return []
    n_docs = max(len(rows), *df.values())
    avg = sum(kb.TITLE_WEIGHT * r["title_len"] + r["body_len"] for r in rows) / len(rows)
    c1, c2 = kb.K1 * (1 - kb.B), kb.K1 * kb.B / avg
    weights = {t: math.log(1 + (n_docs - df[t] + 0.5) / (df[t] + 0.5)) * (kb.K1 + 1) for t in present}
    scored = []
    for r, f in zip(rows, counts, strict=True):
        if not any(f[t] for t in present):
            continue
        n = c1 + c2 * (kb.TITLE_WEIGHT * r["title_len"] + r["body_len"])
        score = sum(w * (1 - n / (min(f[t], kb.MAX_TF) + n)) for t, w in weights.items())
        if codes and any(f" {code} " in (r["codes"] or "") for code in codes):
            score *= 1.5
        scored.append((r["article_id"], score, r["title"]))
    scored.sort(key=lambda s: (-s[1], s[2], s[0]))  # ties: by title, then id
    return [(article_id, score) for article_id, score, _ in scored[:limit]]


def _queries() -> list[tuple[str, str]]:
    return [(q, lang) for lang in QUERIES for q, _ in QUERIES[lang]] + [
        ("modulo " + LONG_WORD.lower(), "it"),
        (LONG_WORD, "en"),
        ("a the", "en"),  # stop words only: nothing
    ]


@pytest.mark.parametrize("store", ["sqlite", "postgres"])
def test_max_score_equals_scoring_every_row(stores: dict[str, Hotline], store: str, monkeypatch: pytest.MonkeyPatch) -> None:
    with stores[store].read_store.engine.connect() as conn:
        rows = {lang: _rows(conn, lang) for lang in QUERIES}
        checked = 0
        for i, (query, lang) in enumerate(_queries()):
            terms = text.query_terms(query, lang)
            codes = CODES if i % 3 == 0 else ()
            for limit, batch_docs in ((5, kb.BATCH_DOCS), (1, kb.BATCH_DOCS), (12, kb.BATCH_DOCS), (5, 1)):
                monkeypatch.setattr(kb, "BATCH_DOCS", batch_docs)  # 1: one term per statement
                trace: dict[str, int] = {}
                got = kb.rank(conn, terms, lang, codes, limit, trace)
                assert got == _reference(rows[lang], terms, codes, limit), (store, query, limit, batch_docs, codes)
                assert trace.get("scored", 0) <= trace.get("postings", 0)
                checked += 1
            monkeypatch.undo()
        assert checked > 1000
        assert kb.rank(conn, text.query_terms(LONG_WORD, "en"), "en")[0][1] > 0


@pytest.mark.parametrize("store", ["sqlite", "postgres"])
def test_document_frequencies_and_totals_follow_the_index(stores: dict[str, Hotline], store: str) -> None:
    """TERMS and STATS, kept by the projection through publish, revise and retire, are what
    the index rows say."""
    with stores[store].read_store.engine.connect() as conn:
        for lang in ("zh", "ar", "it", "en"):
            rows = _rows(conn, lang)
            df = Counter(t for r in rows for t in set(r["title_tokens"].split()) | set(r["body_tokens"].split()))
            kept = dict(conn.execute(sa.select(kb.TERMS.c.term, kb.TERMS.c.docs).where(kb.TERMS.c.language == lang)).all())
            assert kept == dict(df)
            stats = conn.execute(sa.select(kb.STATS).where(kb.STATS.c.language == lang)).mappings().one()
            assert (stats["docs"], stats["title_len"], stats["body_len"]) == (
                len(rows),
                sum(r["title_len"] for r in rows),
                sum(r["body_len"] for r in rows),
            )


def test_both_stores_score_bit_for_bit_alike(stores: dict[str, Hotline]) -> None:
    """Same content, different article ids: the scores (not only the order) are identical.
    Rows tied with the 10th are left out of the comparison (the last tie-break is the id)."""
    out: dict[str, list[tuple[list[float], set[str]]]] = {}
    for store, h in stores.items():
        with h.read_store.engine.connect() as conn:
            bodies = dict(conn.execute(sa.select(kb.INDEX.c.article_id, kb.INDEX.c.body).where(kb.INDEX.c.language == "en")).all())
            out[store] = []
            for q, _ in QUERIES["en"]:
                top = kb.rank(conn, text.query_terms(q, "en"), "en", (), 10)
                out[store].append(([score for _, score in top], {bodies[a] for a, score in top if score > top[-1][1]}))
    assert out["sqlite"] == out["postgres"]
