"""/knowledge: articles (write, review, publish, revise, retire; read any revision), search
in zh / ar / it / en, suggestions for a request or an agent's current contact, and the
outcomes of a search (opened, used to answer, deflected, no good answer).

Searching is public (citizen self-service, no sign-in; rate-limited per caller) and every
search is recorded as an event (``hotline.knowledge.search_performed.v1``) whose id the
answer carries as ``search_id``: outcomes are posted against it.
"""

from __future__ import annotations

import time
import uuid
from typing import Any

from fastapi import Depends, Query, Request, Response

from api.auth import allow, caller, hotline_limits
from api.deps import CommandRoute, ReadYourWrites, add_command_routes, get_hotline, run_command, set_etag
from api.errors import ProjectionLagging
from api.responses import AgentSuggestions, Article, ArticleUsage, RevisionEntry, SearchResults, UnansweredQuery
from api.routing import HotlineRouter
from domain.access import Access, Action, allows, authorize
from domain.base import Actor, NotFound
from domain.knowledge import commands as c
from domain.knowledge.aggregate import KnowledgeArticle, check_query
from infra.runtime import Hotline
from projections import agent_desk, knowledge_text, request_status
from projections import knowledge as kb

router = HotlineRouter(tags=["knowledge base"])

# Self-service searches per caller (a signed-in citizen, else the client address) and minute.
CITIZEN_SEARCHES = "30/minute"


def _channel(actor: Actor, channel: str | None) -> str:
    if channel:
        return channel
    return {"citizen": "self_service", "system": "ivr"}.get(actor.role, "agent")


def _record(
    hotline: Hotline,
    actor: Actor,
    request: Request,
    *,
    query: str,
    language: str | None,
    channel: str,
    trigger: str,
    results: list[dict[str, Any]],
    contact_id: str | None = None,
    request_id: str | None = None,
) -> dict[str, Any]:
    cmd = c.RecordSearch(
        query=query[:1000],
        language=language,  # type: ignore[arg-type]
        channel=channel,  # type: ignore[arg-type]
        trigger=trigger,  # type: ignore[arg-type]
        shown=[c.ShownArticle(article_id=r["id"], revision=r["revision"], rank=i + 1, score=r["score"]) for i, r in enumerate(results)],
        contact_id=contact_id,
        request_id=request_id,
    )
    answer = run_command(hotline, cmd, actor, request=request)
    return {"results": results, "search_id": answer["search_id"], "language": language, "position": answer["position"]}


@router.get("/knowledge/search", response_model=SearchResults, summary="Search published articles (public; the search is recorded)")
def search(
    request: Request,
    q: str = Query(..., min_length=1, max_length=1000),
    lang: c.Language | None = Query(None, description="The query's language; guessed from its script when absent"),
    limit: int = Query(5, ge=1, le=50),
    channel: c.SearchChannel | None = Query(None, description="Default: self_service for citizens, ivr for the system, else agent"),
    contact_id: str | None = None,
    request_id: str | None = None,
    category: list[str] = Query(default_factory=list, description="Catalogue categories or problem codes to favour"),
    hotline: Hotline = Depends(get_hotline),
    actor: Actor = allow(Action.KNOWLEDGE_SEARCH),
) -> dict[str, Any]:
    check_query(q, field="q")  # before the rate limit and the search: a query with no word costs and records nothing
    if actor.role == "citizen":
        hotline_limits(hotline).hit("knowledge-search", CITIZEN_SEARCHES, caller(actor, request))
    with hotline.read_store.engine.connect() as conn:
        results, language = kb.search(conn, q, lang, limit, category)
    return _record(
        hotline,
        actor,
        request,
        query=q,
        language=language,
        channel=_channel(actor, channel),
        trigger="search",
        results=results,
        contact_id=contact_id,
        request_id=request_id,
    )


def _visible(row: dict[str, Any] | None, actor: Actor, article_id: str) -> dict[str, Any]:
    if row is None or (row["published_revision"] is None and not allows(actor, Action.KNOWLEDGE_WRITE)):
        raise NotFound(f"no published article {article_id}")
    return row


def _view(article_id: str, summary: dict[str, Any], rev: dict[str, Any], lang: str | None) -> dict[str, Any]:
    content = rev["content"]
    translations = content["translations"]
    chosen = lang if lang in translations else next(iter(sorted(translations)))
    return {
        "id": article_id,
        "status": summary["status"],
        "revision": rev["revision"],
        "published_revision": summary["published_revision"],
        "latest_revision": summary["revision"],
        "language": chosen,
        "languages": sorted(translations),
        "title": translations[chosen]["title"],
        "body": translations[chosen]["body"],
        "phones": content["phones"],
        "url": content["url"],
        "links": content["links"],
        "problem_codes": content["problem_codes"],
        "categories": content["categories"],
        "tags": content["tags"],
        "owner": summary["owner"],
        "revised_at": rev["at"],
        "revised_by": rev["actor_id"],
    }


@router.get(
    "/knowledge/articles/{article_id}",
    response_model=Article,
    summary="An article: its published revision (writers also see drafts)",
)
def get_article(
    article_id: str,
    lang: c.Language | None = None,
    revision: int | None = Query(None, ge=1, le=1_000_000, description="A past revision: what the article said then"),
    hotline: Hotline = Depends(get_hotline),
    actor: Actor = allow(Action.KNOWLEDGE_SEARCH),
    _ryw: None = ReadYourWrites,
    # Last and optional: the consoles call this function directly (api/console/), with no response.
    response: Response = None,  # type: ignore[assignment]
) -> dict[str, Any]:
    return _read_article(hotline, actor, response, article_id, lang, revision)


def _read_article(
    hotline: Hotline, actor: Actor, response: Response | None, article_id: str, lang: str | None, revision: int | None
) -> dict[str, Any]:
    deadline = time.monotonic() + LAG_TIMEOUT_SECONDS
    while True:
        # Both again on each try: a write between the two reads puts the read model ahead.
        stored = _stored_article(hotline, article_id)
        with hotline.read_store.engine.connect() as conn:
            summary = _visible(kb.article(conn, article_id), actor, article_id)
            # ``is None``, not ``or``: revision 0 was asked for, and there is none (404 below).
            if revision is not None:
                number = revision
            else:
                number = summary["revision"] if allows(actor, Action.KNOWLEDGE_WRITE) else summary["published_revision"]
            rev = kb.revision(conn, article_id, number)
        # The ETag is the aggregate's version, read from the event store; the body comes
        # from the read model, which shows that version once it has caught up with it
        # (each event of an article changes its status, revision or published revision).
        if stored is None or _state(summary) == (stored.status, stored.revision, stored.published_revision):
            break
        if time.monotonic() >= deadline:
            raise ProjectionLagging(f"the read model has not yet applied version {stored.version} of article {article_id}; retry shortly")
        time.sleep(0.01)
    if rev is None:
        raise NotFound(f"article {article_id} has no revision {number}")
    if stored is not None and response is not None:
        set_etag(response, stored.version)  # If-Match on the article's commands (review, publish, revise, retire)
    return {**_view(article_id, summary, rev, lang), "version": stored.version if stored else None}


LAG_TIMEOUT_SECONDS = 5.0


def _state(summary: dict[str, Any]) -> tuple[Any, ...]:
    return summary["status"], summary["revision"], summary["published_revision"]


def _stored_article(hotline: Hotline, article_id: str) -> KnowledgeArticle | None:
    try:
        found = hotline.store.read_reference(uuid.UUID(article_id))
    except ValueError:
        return None
    return found if isinstance(found, KnowledgeArticle) else None


@router.get(
    "/knowledge/articles/{article_id}/revisions",
    response_model=list[RevisionEntry],
    summary="Every revision of an article: when, by whom, why",
)
def list_revisions(
    article_id: str, hotline: Hotline = Depends(get_hotline), actor: Actor = allow(Action.KNOWLEDGE_READ_INTERNAL)
) -> list[dict[str, Any]]:
    with hotline.read_store.engine.connect() as conn:
        _visible(kb.article(conn, article_id), actor, article_id)
        return kb.revisions(conn, article_id)


@router.get("/knowledge/articles/{article_id}/revisions/{revision}", response_model=Article, summary="One revision, as it was read out")
def get_revision(
    article_id: str,
    revision: int,
    response: Response,
    lang: c.Language | None = None,
    hotline: Hotline = Depends(get_hotline),
    actor: Actor = allow(Action.KNOWLEDGE_SEARCH),
) -> dict[str, Any]:
    return _read_article(hotline, actor, response, article_id, lang, revision)


@router.get(
    "/knowledge/articles/{article_id}/usage",
    response_model=ArticleUsage,
    summary="How often the article was opened, used to answer, and deflected a request",
)
def article_usage(
    article_id: str, hotline: Hotline = Depends(get_hotline), _: Actor = allow(Action.KNOWLEDGE_READ_INTERNAL)
) -> dict[str, Any]:
    with hotline.read_store.engine.connect() as conn:
        return kb.usage(conn, article_id)


@router.get(
    "/knowledge/unanswered",
    response_model=list[UnansweredQuery],
    summary="Queries most often left without a good answer: what to write next",
)
def unanswered(
    lang: c.Language | None = None,
    limit: int = Query(20, ge=1, le=500),
    hotline: Hotline = Depends(get_hotline),
    _: Actor = allow(Action.KNOWLEDGE_READ_INTERNAL),
) -> list[dict[str, Any]]:
    with hotline.read_store.engine.connect() as conn:
        return kb.unanswered(conn, lang, limit)


def recorded_language(text: str, recorded: str | None) -> str | None:
    """The language to search a case's text in, given the language recorded on the case.

    The recorded language is who the caller is (the language they are answered in), not
    necessarily what the text was written in; an article is indexed per language, so a text
    searched in a language its script cannot be (Arabic letters as zh) finds nothing. So the
    script decides when it contradicts the record: Han or Arabic script searches as the
    search guesses it (zh, ar), Latin-only text under zh or ar as an unnamed Latin language
    (it and en are both tried); otherwise, Latin text under it or en, the record stands."""
    guessed = knowledge_text.guess_language(text)
    if guessed is not None:
        return guessed
    if recorded in ("zh", "ar") and any(ch.isalpha() for ch in text):
        return None
    return recorded


def suggest_and_record(
    hotline: Hotline,
    actor: Actor,
    request: Request,
    *,
    text: str,
    language: str | None,
    codes: list[str],
    limit: int,
    contact_id: str | None,
    request_id: str | None,
) -> dict[str, Any]:
    with hotline.read_store.engine.connect() as conn:
        results, searched = kb.suggest(conn, text, language, limit, codes)
    return _record(
        hotline,
        actor,
        request,
        query=text,
        language=searched,
        channel=_channel(actor, None),
        trigger="suggestion",
        results=results,
        contact_id=contact_id,
        request_id=request_id,
    )


@router.get(
    "/knowledge/suggestions",
    response_model=SearchResults,
    summary="Articles for a request (from its description and category), or for a text being typed",
    responses={404: {"description": "No request with that reference or id"}},
)
def suggestions(
    request: Request,
    ref: str | None = Query(None, description="A request's reference or id: its description, language and category"),
    text: str | None = Query(None, max_length=10_000, description="Free text (the intake form's description)"),
    lang: c.Language | None = None,
    category: list[str] = Query(default_factory=list),
    limit: int = Query(5, ge=1, le=20),
    hotline: Hotline = Depends(get_hotline),
    actor: Actor = allow(Action.KNOWLEDGE_ANSWER),
    _ryw: None = ReadYourWrites,
) -> dict[str, Any]:
    codes = list(category)
    request_id = contact_id = None
    language: str | None = lang
    if ref is not None:
        with hotline.read_store.engine.connect() as conn:
            row = request_status.by_reference(conn, ref) or request_status.get(conn, ref)
        if row is None:
            raise NotFound(f"no request {ref}")
        text = text or row["description"] or ""
        language = lang or recorded_language(text, row["language"])
        codes += [x for x in (row["problem_code"], row["category_id"]) if x]
        request_id = row["id"]
    return suggest_and_record(
        hotline, actor, request, text=text or "", language=language, codes=codes, limit=limit, contact_id=contact_id, request_id=request_id
    )


@router.get(
    "/agents/{agent_id}/suggestions",
    response_model=AgentSuggestions,
    summary="Articles for the agent's current contact: its subject, language and requests' categories",
)
def agent_suggestions(
    agent_id: str,
    request: Request,
    limit: int = Query(5, ge=1, le=20),
    hotline: Hotline = Depends(get_hotline),
    actor: Actor = allow(Action.AGENTS_DESK),
) -> dict[str, Any]:
    authorize(actor, Action.AGENTS_DESK, Access(subject=agent_id))
    with hotline.read_store.engine.connect() as conn:
        current = agent_desk.current_contact(conn, agent_id)
    if current is None:
        return {"agent_id": agent_id, "contact_id": None, "results": [], "search_id": None}
    answer = suggest_and_record(
        hotline,
        actor,
        request,
        text=current["text"],
        language=recorded_language(current["text"], current["language"]),
        codes=current["codes"],
        limit=limit,
        contact_id=current["contact_id"],
        request_id=current["request_id"],
    )
    return {"agent_id": agent_id, "contact_id": current["contact_id"], **answer}


@router.post("/knowledge/articles", status_code=201, summary="Draft an article (supervisors and experts)")
def draft_article(
    cmd: c.DraftArticle,
    request: Request,
    response: Response,
    hotline: Hotline = Depends(get_hotline),
    actor: Actor = allow(Action.KNOWLEDGE_WRITE),
) -> dict[str, Any]:
    body = run_command(hotline, cmd, actor, request=request, response=response)
    response.headers["Location"] = f"/knowledge/articles/{body['id']}"
    return body


add_command_routes(
    router,
    "/knowledge/articles/{article_id}",
    [
        CommandRoute("review", c.ReviewArticle, "Review the draft", body_optional=True),
        CommandRoute("publish", c.PublishArticle, "Publish the reviewed revision: searchable and readable by everyone", body_optional=True),
        CommandRoute(
            "revise", c.ReviseArticle, "A new revision (the fields given replace the current ones; a published article stays live)"
        ),
        CommandRoute("retire", c.RetireArticle, "Retire: out of search, past revisions stay readable"),
    ],
)
add_command_routes(
    router,
    "/knowledge/searches/{search_id}",
    [
        CommandRoute("opened", c.RecordArticleOpened, "An article shown was opened"),
        CommandRoute(
            "used", c.RecordUsedToAnswer, "An article answered the citizen (an information request answered from article X, revision N)"
        ),
        CommandRoute("deflected", c.RecordDeflection, "The citizen found the answer and filed nothing", body_optional=True),
        CommandRoute("no-answer", c.RecordNoGoodAnswer, "Nothing shown answered the question", body_optional=True),
    ],
)
