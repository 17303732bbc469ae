"""The labelled evaluation set's articles: the knowledge base the hotline ships
(``infra/data/knowledge.yaml``, 30 topics, each in zh, ar, it and en), in the shape the
evaluation and the benchmark read: key → codes, tags, phones, and (title, body) per language.
"""

from __future__ import annotations

from typing import Any

from infra.knowledge_data import KNOWLEDGE_FILE, read_articles

ARTICLES: dict[str, dict[str, Any]] = {
    a["key"]: {
        "codes": a["problem_codes"],
        "tags": a["tags"],
        "phones": a["phones"],
        **{lang: (t["title"], t["body"]) for lang, t in a["translations"].items()},
    }
    for a in read_articles(KNOWLEDGE_FILE)
}
