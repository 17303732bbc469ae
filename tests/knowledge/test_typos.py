"""Typo tolerance: a query with a misspelt word still finds its article, on both stores.

Only a query that found nothing is retried with corrections (projections/knowledge.py,
``corrected_terms``), so the labelled evaluation set's results are untouched by it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from domain.base import FixedClock
from infra.runtime import Hotline
from infra.settings import Settings
from projections import knowledge as kb
from projections import knowledge_text as text
from tests.conftest import START, create_pg_database, drop_pg_database
from tests.knowledge.evaluation import load_articles

pytestmark = pytest.mark.postgres

# (query, language, expected article): the one word that says it, with a letter swapped,
# dropped or doubled (so that without correction the search finds nothing at all).
TYPOS = [
    ("lampoine", "it", "streetlight"),
    ("riscaldamneto", "it", "heating"),
    ("passaporot", "it", "passport"),
    ("disoccupazoine", "it", "unemployment"),
    ("ingomrbanti", "it", "bulky_waste"),
    ("matrimonoi", "it", "marriage"),
    ("streetlgiht", "en", "streetlight"),
    ("heatnig", "en", "heating"),
    ("pasport", "en", "passport"),
    ("unemploymnet", "en", "unemployment"),
    ("potholle", "en", "pothole"),
    ("libarry", "en", "library"),
    ("الكهرباءء", "ar", "power_outage"),
    ("المكتبةة", "ar", "library"),
]


@pytest.fixture(scope="module")
def stores(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, tuple[Hotline, dict[str, str]]]]:
    url = create_pg_database("kbtypo")
    opened: dict[str, tuple[Hotline, dict[str, str]]] = {}
    try:
        for store, settings in (
            ("sqlite", Settings(data_dir=tmp_path_factory.mktemp("typo-sqlite"))),
            ("postgres", Settings(data_dir=Path(tmp_path_factory.mktemp("typo-pg")), database_url=url, pg_pool_size=4)),
        ):
            hotline = Hotline.start(settings, FixedClock(START))
            opened[store] = (hotline, load_articles(hotline))
        yield opened
    finally:
        for hotline, _ in opened.values():
            hotline.close()
        drop_pg_database(url)


@pytest.mark.parametrize("store", ["sqlite", "postgres"])
def test_misspelt_queries_find_their_article(stores: dict[str, tuple[Hotline, dict[str, str]]], store: str) -> None:
    hotline, ids = stores[store]
    found, missed = 0, []
    with hotline.read_store.engine.connect() as conn:
        for query, lang, expected in TYPOS:
            top = [r["id"] for r in kb.search(conn, query, lang, 5)[0]]
            if ids[expected] in top:
                found += 1
            else:
                missed.append(f"{lang}: {query!r} expected {expected}")
    print(f"\n{store}: {found}/{len(TYPOS)} misspelt queries found their article")
    assert found / len(TYPOS) >= 0.85, missed


def test_without_a_correction_they_find_nothing(stores: dict[str, tuple[Hotline, dict[str, str]]]) -> None:
    """What the correction adds: the words as typed are not in the index."""
    hotline, _ = stores["sqlite"]
    with hotline.read_store.engine.connect() as conn:
        for query, lang, _ in TYPOS:
            terms = text.query_terms(query, lang)
            assert not kb.rank(conn, terms, lang, (), 5), query


def test_both_stores_correct_alike(stores: dict[str, tuple[Hotline, dict[str, str]]]) -> None:
    tops = {}
    for store, (hotline, ids) in stores.items():
        by_id = {v: k for k, v in ids.items()}
        with hotline.read_store.engine.connect() as conn:
            tops[store] = [[by_id[r["id"]] for r in kb.search(conn, q, lang, 5)[0]] for q, lang, _ in TYPOS]
    assert tops["sqlite"] == tops["postgres"]


def test_a_known_word_is_never_corrected(stores: dict[str, tuple[Hotline, dict[str, str]]]) -> None:
    hotline, _ = stores["sqlite"]
    with hotline.read_store.engine.connect() as conn:
        assert kb.corrected_terms(conn, ["passport", "renew"], "en") is None
        assert kb.corrected_terms(conn, ["停水"], "zh") is None  # no guessing in Chinese
