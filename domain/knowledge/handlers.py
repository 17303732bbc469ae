"""Knowledge-base handlers: articles written by supervisors and experts, searches recorded."""

from __future__ import annotations

from typing import Any

from domain.base import Context, InvalidCommand
from domain.handling import Handlers, UnitOfWork, parse_id
from domain.knowledge import commands as c
from domain.knowledge.aggregate import KnowledgeArticle, KnowledgeSearch

handles = Handlers("knowledge")


def _content(cmd: c.ArticleContent | c.ReviseArticle) -> dict[str, Any]:
    translations = None if cmd.translations is None else {lang: t.model_dump() for lang, t in cmd.translations.items()}
    return {
        "translations": translations,
        "phones": cmd.phones,
        "url": cmd.url,
        "links": cmd.links,
        "problem_codes": cmd.problem_codes,
        "categories": cmd.categories,
        "tags": cmd.tags,
    }


def _summary(a: KnowledgeArticle) -> dict[str, Any]:
    return {"id": str(a.id), "status": a.status, "revision": a.revision, "published_revision": a.published_revision, "version": a.version}


def _article(uow: UnitOfWork, article_id: str, expected_version: int | None) -> KnowledgeArticle:
    article = uow.get(KnowledgeArticle, parse_id(article_id, "article"))
    article.expect_version(expected_version)
    return article


def _check_links(uow: UnitOfWork, links: list[str] | None) -> None:
    for link in links or ():
        if uow.find(KnowledgeArticle, parse_id(link, "linked article")) is None:
            raise InvalidCommand(f"the linked article {link} does not exist", link=link)


@handles(c.DraftArticle)
def draft_article(uow: UnitOfWork, ctx: Context, cmd: c.DraftArticle) -> dict[str, Any]:
    content = _content(cmd)
    _check_links(uow, content["links"])
    article = KnowledgeArticle.draft(content=content, owner=cmd.owner or ctx.actor.id, ctx=ctx)
    uow.add(article)
    return _summary(article)


@handles(c.ReviewArticle)
def review_article(uow: UnitOfWork, ctx: Context, cmd: c.ReviewArticle) -> dict[str, Any]:
    article = _article(uow, cmd.article_id, cmd.expected_version)
    article.review(cmd.note, ctx)
    return _summary(article)


@handles(c.PublishArticle)
def publish_article(uow: UnitOfWork, ctx: Context, cmd: c.PublishArticle) -> dict[str, Any]:
    article = _article(uow, cmd.article_id, cmd.expected_version)
    article.publish(ctx)
    return _summary(article)


@handles(c.ReviseArticle)
def revise_article(uow: UnitOfWork, ctx: Context, cmd: c.ReviseArticle) -> dict[str, Any]:
    article = _article(uow, cmd.article_id, cmd.expected_version)
    changes = _content(cmd)
    _check_links(uow, changes["links"])
    article.revise(changes, cmd.note, ctx)
    return _summary(article)


@handles(c.RetireArticle)
def retire_article(uow: UnitOfWork, ctx: Context, cmd: c.RetireArticle) -> dict[str, Any]:
    article = _article(uow, cmd.article_id, cmd.expected_version)
    article.retire(cmd.reason, ctx)
    return _summary(article)


@handles(c.RecordSearch, issued_by=("api.routers.knowledge",))
def record_search(uow: UnitOfWork, ctx: Context, cmd: c.RecordSearch) -> dict[str, Any]:
    search = KnowledgeSearch.perform(
        query=cmd.query,
        language=cmd.language,
        channel=cmd.channel,
        trigger=cmd.trigger,
        shown=[s.model_dump() for s in cmd.shown],
        contact_id=cmd.contact_id,
        request_id=cmd.request_id,
        ctx=ctx,
    )
    uow.add(search)
    return {"search_id": str(search.id)}


def _search(uow: UnitOfWork, search_id: str) -> KnowledgeSearch:
    return uow.get(KnowledgeSearch, parse_id(search_id, "search"))


def _revision_of(uow: UnitOfWork, search: KnowledgeSearch, article_id: str, revision: int | None) -> int:
    """The revision named, else the one the search showed, else the article's live one."""
    article = uow.get(KnowledgeArticle, parse_id(article_id, "article"))
    if revision is not None:
        article.content(revision)  # refuses a revision that does not exist
        return revision
    shown = next((s["revision"] for s in search.shown if s["article_id"] == article_id), None)
    return int(shown or article.published_revision or article.revision)


def _outcome(search: KnowledgeSearch) -> dict[str, Any]:
    return {"search_id": str(search.id), "outcome": search.outcome, "version": search.version}


@handles(c.RecordArticleOpened)
def record_article_opened(uow: UnitOfWork, ctx: Context, cmd: c.RecordArticleOpened) -> dict[str, Any]:
    search = _search(uow, cmd.search_id)
    search.open(cmd.article_id, _revision_of(uow, search, cmd.article_id, cmd.revision), ctx)
    return _outcome(search)


@handles(c.RecordUsedToAnswer)
def record_used_to_answer(uow: UnitOfWork, ctx: Context, cmd: c.RecordUsedToAnswer) -> dict[str, Any]:
    search = _search(uow, cmd.search_id)
    search.use_to_answer(cmd.article_id, _revision_of(uow, search, cmd.article_id, cmd.revision), cmd.request_id, ctx)
    return _outcome(search)


@handles(c.RecordDeflection)
def record_deflection(uow: UnitOfWork, ctx: Context, cmd: c.RecordDeflection) -> dict[str, Any]:
    search = _search(uow, cmd.search_id)
    revision = _revision_of(uow, search, cmd.article_id, cmd.revision) if cmd.article_id else None
    search.deflect(cmd.article_id, revision, ctx)
    return _outcome(search)


@handles(c.RecordNoGoodAnswer)
def record_no_good_answer(uow: UnitOfWork, ctx: Context, cmd: c.RecordNoGoodAnswer) -> dict[str, Any]:
    search = _search(uow, cmd.search_id)
    search.no_good_answer(cmd.note, ctx)
    return _outcome(search)
