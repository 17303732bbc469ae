"""Loading the labelled articles into a hotline and measuring search on them."""

from __future__ import annotations

from typing import Any

from domain.base import Actor
from domain.knowledge import commands as c
from infra.runtime import Hotline
from projections import knowledge as kb
from tests.knowledge.articles import ARTICLES
from tests.knowledge.queries import QUERIES

EDITOR = Actor(id="kb-editor", role="supervisor")
LANGUAGES = ("zh", "ar", "it", "en")


def load_articles(hotline: Hotline, actor: Actor = EDITOR) -> dict[str, str]:
    """Drafts, reviews and publishes every article; returns article id by key."""
    ids: dict[str, str] = {}
    for key, a in ARTICLES.items():
        translations = {lang: c.Translation(title=a[lang][0], body=a[lang][1]) for lang in LANGUAGES if lang in a}
        cmd = c.DraftArticle(translations=translations, problem_codes=a["codes"], tags=a["tags"], phones=a["phones"])  # type: ignore[arg-type]
        article_id = hotline.bus.execute(cmd, actor).result["id"]
        hotline.bus.execute(c.ReviewArticle(article_id=article_id), actor)
        hotline.bus.execute(c.PublishArticle(article_id=article_id), actor)
        ids[key] = article_id
    return ids


def run_queries(hotline: Hotline, ids: dict[str, str]) -> dict[str, list[dict[str, Any]]]:
    """Every labelled query's top 5 (as keys), per language."""
    by_id = {v: k for k, v in ids.items()}
    out: dict[str, list[dict[str, Any]]] = {}
    with hotline.read_store.engine.connect() as conn:
        for lang, queries in QUERIES.items():
            out[lang] = []
            for query, expected in queries:
                results, _ = kb.search(conn, query, lang, 5)
                out[lang].append({"query": query, "expected": expected, "top": [by_id.get(r["id"], r["id"]) for r in results]})
    return out


def metrics(runs: dict[str, list[dict[str, Any]]]) -> dict[str, dict[str, float]]:
    report = {}
    for lang, rows in runs.items():
        n = len(rows)
        report[lang] = {
            "queries": n,
            "recall@5": sum(r["expected"] in r["top"] for r in rows) / n,
            "hit@1": sum(bool(r["top"]) and r["top"][0] == r["expected"] for r in rows) / n,
            "empty": sum(not r["top"] for r in rows),
        }
    return report


def misses(runs: dict[str, list[dict[str, Any]]]) -> list[str]:
    return [
        f"{lang}: {r['query']!r} expected {r['expected']}, got {r['top']}"
        for lang, rows in runs.items()
        for r in rows
        if not r["top"] or r["top"][0] != r["expected"]
    ]
