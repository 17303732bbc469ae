"""The knowledge editor: the article list and search, an article read in its four
languages, and the editor with the translations side by side.

Saving and publishing post to the knowledge API (``/knowledge/articles/...``: draft,
revise, review, publish), so the editor validates as the API does. Reading and
searching is for everyone who may search the knowledge base; editing needs
``knowledge.write`` (experts and supervisors).
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from fastapi import Query, Request
from fastapi.responses import HTMLResponse

from api.console.session import page
from api.console.web import LANGUAGE_NAMES, LANGUAGES, N_, RTL, render
from api.routers import knowledge as knowledge_api
from api.routing import HotlineRouter
from domain.access import Action, allows
from domain.base import Actor, NotFound
from domain.knowledge.commands import Language
from infra.runtime import Hotline
from projections import knowledge as kb

router = HotlineRouter(include_in_schema=False)
LIST_SIZE = 200
SEARCH_SIZE = 20
STATUS_NAMES = {"draft": N_("draft"), "reviewed": N_("reviewed"), "published": N_("published"), "retired": N_("retired")}


def _columns() -> list[dict[str, str]]:
    """The editor's columns: one per language, with the direction its text runs in."""
    return [{"code": lang, "name": LANGUAGE_NAMES[lang], "dir": "rtl" if lang in RTL else "ltr"} for lang in LANGUAGES]


def _articles(hotline: Hotline, writer: bool) -> list[dict[str, Any]]:
    """Every article (a writer also sees drafts and retired ones), most recently changed first."""
    q = sa.select(kb.ARTICLES).order_by(kb.ARTICLES.c.updated_at.desc()).limit(LIST_SIZE)
    if not writer:
        q = q.where(kb.ARTICLES.c.published_revision.is_not(None), kb.ARTICLES.c.status != "retired")
    with hotline.read_store.engine.connect() as conn:
        return [dict(r) for r in conn.execute(q).mappings()]


def _list_values(request: Request, actor: Actor, q: str | None, lang: Language | None) -> dict[str, Any]:
    hotline: Hotline = request.app.state.hotline
    writer = allows(actor, Action.KNOWLEDGE_WRITE)
    found = None
    if q and q.strip():
        # Through the API's own search: ranked the same, and recorded like every search.
        found = knowledge_api.search(
            request,
            q=q.strip(),
            lang=lang,
            limit=SEARCH_SIZE,
            channel=None,
            contact_id=None,
            request_id=None,
            category=[],
            hotline=hotline,
            actor=actor,
        )
    return {
        "articles": _articles(hotline, writer),
        "found": found,
        "q": q or "",
        "search_lang": lang or "",
        "languages": _columns(),
        "status_names": STATUS_NAMES,
        "writer": writer,
    }


@router.get("/console/knowledge", response_class=HTMLResponse)
def knowledge_page(
    request: Request,
    q: str | None = Query(None, max_length=1000),
    lang: Language | None = Query(None),
    actor: Actor = page(Action.KNOWLEDGE_SEARCH),
) -> HTMLResponse:
    return render(request, "knowledge/list.html", actor, part="knowledge/_articles.html", **_list_values(request, actor, q, lang))


def _article(hotline: Hotline, actor: Actor, article_id: str) -> dict[str, Any]:
    """The article's summary and the revision this actor reads: writers the latest, the
    others the published one (as ``GET /knowledge/articles/{id}``)."""
    writer = allows(actor, Action.KNOWLEDGE_WRITE)
    with hotline.read_store.engine.connect() as conn:
        summary = kb.article(conn, article_id)
        if summary is None or (summary["published_revision"] is None and not writer):
            raise NotFound(f"no published article {article_id}")
        number = summary["revision"] if writer else summary["published_revision"]
        rev = kb.revision(conn, article_id, number)
        history = kb.revisions(conn, article_id) if allows(actor, Action.KNOWLEDGE_READ_INTERNAL) else []
    if rev is None:
        raise NotFound(f"article {article_id} has no revision {number}")
    return {"summary": summary, "content": rev["content"], "rev": rev, "history": history}


def _article_values(request: Request, actor: Actor, article_id: str) -> dict[str, Any]:
    hotline: Hotline = request.app.state.hotline
    return {
        **_article(hotline, actor, article_id),
        "article_id": article_id,
        "languages": _columns(),
        "status_names": STATUS_NAMES,
        "writer": allows(actor, Action.KNOWLEDGE_WRITE),
    }


@router.get("/console/knowledge/new", response_class=HTMLResponse)
def new_article(request: Request, actor: Actor = page(Action.KNOWLEDGE_WRITE)) -> HTMLResponse:
    return render(request, "knowledge/new.html", actor, languages=_columns(), content=None)


@router.get("/console/knowledge/{article_id}", response_class=HTMLResponse)
def article_page(request: Request, article_id: str, actor: Actor = page(Action.KNOWLEDGE_SEARCH)) -> HTMLResponse:
    return render(request, "knowledge/article.html", actor, **_article_values(request, actor, article_id))


@router.get("/console/knowledge/{article_id}/edit", response_class=HTMLResponse)
def edit_article(request: Request, article_id: str, actor: Actor = page(Action.KNOWLEDGE_WRITE)) -> HTMLResponse:
    return render(request, "knowledge/edit.html", actor, **_article_values(request, actor, article_id))
