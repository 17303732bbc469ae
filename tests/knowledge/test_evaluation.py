"""The labelled evaluation set, on both stores: recall@5 and hit@1 per language, and the
same top 5 from SQLite (FTS5) and PostgreSQL (GIN).

Run with ``-s`` to see the report."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from domain.base import FixedClock
from infra.runtime import Hotline
from infra.settings import Settings
from tests.conftest import START, create_pg_database, drop_pg_database
from tests.knowledge.articles import ARTICLES
from tests.knowledge.evaluation import load_articles, metrics, misses, run_queries
from tests.knowledge.queries import QUERIES

pytestmark = pytest.mark.postgres


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, dict]]:
    out = {}
    url = create_pg_database("kb")
    try:
        for store, settings in (
            ("sqlite", Settings(data_dir=tmp_path_factory.mktemp("kb-sqlite"))),
            ("postgres", Settings(data_dir=Path(tmp_path_factory.mktemp("kb-pg")), database_url=url, pg_pool_size=4)),
        ):
            hotline = Hotline.start(settings, FixedClock(START))
            try:
                out[store] = run_queries(hotline, load_articles(hotline))
            finally:
                hotline.close()
        yield out
    finally:
        drop_pg_database(url)


def test_the_set_is_big_enough() -> None:
    assert len(ARTICLES) >= 30
    assert all(all(lang in a for lang in ("zh", "ar", "it", "en")) for a in ARTICLES.values())
    for lang in ("zh", "ar", "it", "en"):
        assert len(QUERIES[lang]) >= 50, lang
        assert all(expected in ARTICLES for _, expected in QUERIES[lang])


@pytest.mark.parametrize("store", ["sqlite", "postgres"])
def test_recall_and_hit_per_language(runs: dict[str, dict], store: str) -> None:
    report = metrics(runs[store])
    print(
        f"\n{store}: "
        + "  ".join(f"{lang} recall@5={m['recall@5']:.3f} hit@1={m['hit@1']:.3f} (n={m['queries']})" for lang, m in report.items())
    )
    for miss in misses(runs[store]):
        print("  miss:", miss)
    for lang, m in report.items():
        assert m["recall@5"] >= 0.95, (store, lang, m)
        assert m["hit@1"] >= 0.85, (store, lang, m)
        assert m["empty"] == 0, (store, lang, "an answerable query found nothing")


def test_sqlite_and_postgres_rank_alike(runs: dict[str, dict]) -> None:
    total = same = 0
    for lang in QUERIES:
        for a, b in zip(runs["sqlite"][lang], runs["postgres"][lang], strict=True):
            total += 1
            same += a["top"] == b["top"]
            if a["top"] != b["top"]:
                print(f"  differ ({lang}) {a['query']!r}: sqlite {a['top']} postgres {b['top']}")
    print(f"\nsame top 5 on both stores: {same}/{total}")
    assert same / total >= 0.99
