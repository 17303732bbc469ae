"""Loading the labelled articles into a hotline and measuring search on them."""

from __future__ import annotations

from typing import Any

from domain.base import Actor
from infra.knowledge_data import KNOWLEDGE_FILE, read_articles
from infra.knowledge_data import load_articles as load_shipped
from infra.runtime import Hotline
from projections import knowledge as kb
from tests.knowledge.queries import QUERIES

EDITOR = Actor(id="kb-editor", role="supervisor")
LANGUAGES = ("zh", "ar", "it", "en")


def load_articles(hotline: Hotline, actor: Actor = EDITOR) -> dict[str, str]:
    """Publishes the shipped articles (as the demo does); returns article id by key."""
    return load_shipped(hotline, read_articles(KNOWLEDGE_FILE), actor)


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
