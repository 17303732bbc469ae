"""The knowledge base as shipped (``infra/data/knowledge.yaml``), loaded as events: each
article drafted, reviewed and published by its editor. Used by the demo and by
``hotline load-knowledge``; an article whose title is already in the knowledge base (in
the same language) is left as it is, so loading twice adds nothing.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import sqlalchemy as sa
import yaml

from domain.base import Actor
from domain.knowledge import commands as kc
from infra.runtime import Hotline
from projections import knowledge as kb

KNOWLEDGE_FILE = Path(__file__).resolve().parent / "data" / "knowledge.yaml"


def read_articles(path: Path) -> list[dict[str, Any]]:
    document = yaml.safe_load(path.read_text(encoding="utf-8"))
    return list(document["articles"])


def load_articles(hotline: Hotline, articles: list[dict[str, Any]], editor: Actor) -> dict[str, str]:
    """Drafts, reviews and publishes each article not yet there; answers the new articles'
    ids by their ``key``."""
    if hotline.projector is not None:
        hotline.projector.catch_up()
    with hotline.read_store.engine.connect() as conn:
        titles = [json.loads(t) if isinstance(t, str) else t for t in conn.execute(sa.select(kb.ARTICLES.c.titles)).scalars()]
    known = {(lang, title) for t in titles if t for lang, title in t.items()}
    added: dict[str, str] = {}
    for number, article in enumerate(articles):
        translations = article["translations"]
        if any((lang, t["title"]) in known for lang, t in translations.items()):
            continue
        draft = kc.DraftArticle(
            translations=translations,
            phones=article.get("phones", []),
            url=article.get("url"),
            problem_codes=article.get("problem_codes", []),
            categories=article.get("categories", []),
            tags=article.get("tags", []),
        )
        article_id = hotline.bus.execute(draft, editor).result["id"]
        hotline.bus.execute(kc.ReviewArticle(article_id=article_id, note="shipped with the hotline"), editor)
        hotline.bus.execute(kc.PublishArticle(article_id=article_id), editor)
        added[article.get("key", str(number))] = article_id
    return added
