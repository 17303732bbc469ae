"""The knowledge base: articles the hotline answers from, and the searches made in it.

``KnowledgeArticle`` (stream ``knowledge_article``): drafted → reviewed → published;
revised (every revision kept, whole: "what did the article say when the operator read it
out?" is revision N, and the search outcome that used it names N) → retired. A
published article that is revised stays published: its live revision becomes the new one
(the editor is a supervisor or an expert, who review their own changes for now; the
identity issue will separate the roles).

``KnowledgeSearch`` (stream ``knowledge``, the one the knowledge KPI reads): one search —
its query, language, who searched (agent, citizen self-service, IVR), the articles shown —
and what came of it: an article opened, an article used to answer a request ("from
article X, revision N"), the citizen who found the answer and filed nothing (deflection),
or no good answer.
"""

from __future__ import annotations

import uuid
from typing import Any

from domain.base import Context, HotlineAggregate, InvalidCommand, InvalidTransition

LANGUAGES = ("zh", "ar", "it", "en")
ARTICLE_STATES = ("draft", "reviewed", "published", "retired")
SEARCH_CHANNELS = ("agent", "self_service", "ivr")
# The outcomes after which nothing more is recorded against a search.
ENDED = ("deflected", "no_good_answer")
# The content of one revision: what Drafted and Revised carry, and what a revision is.
CONTENT_FIELDS = ("translations", "phones", "url", "links", "problem_codes", "categories", "tags")


def check_translations(translations: dict[str, dict[str, str]]) -> None:
    if not translations:
        raise InvalidCommand("an article needs at least one translation")
    for language, t in translations.items():
        if language not in LANGUAGES:
            raise InvalidCommand(f"unknown language {language!r}", languages=list(LANGUAGES))
        if not (t.get("title") or "").strip() or not (t.get("body") or "").strip():
            raise InvalidCommand(f"the {language} translation needs a title and a body")


def check_query(query: str, field: str = "query") -> None:
    """A typed search needs a word to look for (a letter or a digit, in any script): blanks
    or punctuation alone find nothing, and recorded they would only count as searches and
    as the unanswered query ''."""
    if not any(ch.isalnum() for ch in query):
        raise InvalidCommand("the query has no word to search for", code="query_without_words", field=field)


class KnowledgeArticle(HotlineAggregate):
    STREAM = "knowledge_article"

    class Drafted(HotlineAggregate.Created):
        """A knowledge-base article was drafted, in one or more languages."""

        translations: dict[str, dict[str, str]]
        phones: list[str]
        url: str | None
        links: list[str]
        problem_codes: list[str]
        categories: list[str]
        tags: list[str]
        owner: str

    class Reviewed(HotlineAggregate.Event):
        """A revision of the article was reviewed."""

        revision: int
        note: str | None

        def apply(self, a: KnowledgeArticle) -> None:
            a.status = "reviewed"

    class Published(HotlineAggregate.Event):
        """A revision of the article was published: agents and citizens see it."""

        revision: int

        def apply(self, a: KnowledgeArticle) -> None:
            a.status = "published"
            a.published_revision = self.revision

    class Revised(HotlineAggregate.Event):
        """A new revision of the article was written."""

        revision: int
        translations: dict[str, dict[str, str]]
        phones: list[str]
        url: str | None
        links: list[str]
        problem_codes: list[str]
        categories: list[str]
        tags: list[str]
        note: str | None

        def apply(self, a: KnowledgeArticle) -> None:
            a.revisions.append({f: getattr(self, f) for f in CONTENT_FIELDS})
            if a.status == "published":
                a.published_revision = self.revision
            else:
                a.status = "draft"

    class Retired(HotlineAggregate.Event):
        """The article was retired: no longer shown."""

        reason: str

        def apply(self, a: KnowledgeArticle) -> None:
            a.status = "retired"

    def __init__(
        self,
        translations: dict[str, dict[str, str]],
        phones: list[str],
        url: str | None,
        links: list[str],
        problem_codes: list[str],
        categories: list[str],
        tags: list[str],
        owner: str,
    ) -> None:
        self.revisions: list[dict[str, Any]] = [
            {
                "translations": translations,
                "phones": phones,
                "url": url,
                "links": links,
                "problem_codes": problem_codes,
                "categories": categories,
                "tags": tags,
            }
        ]
        self.owner = owner
        self.status = "draft"
        self.published_revision: int | None = None

    @property
    def revision(self) -> int:
        """The latest revision's number (1 for the first draft)."""
        return len(self.revisions)

    def content(self, revision: int | None = None) -> dict[str, Any]:
        # ``is None``, not ``or``: revision 0 is a revision asked for (and refused), not "the latest".
        n = self.revision if revision is None else revision
        if not 1 <= n <= self.revision:
            raise InvalidCommand(f"article {self.id} has no revision {n}")
        return dict(self.revisions[n - 1])

    @classmethod
    def draft(cls, *, content: dict[str, Any], owner: str, ctx: Context) -> KnowledgeArticle:
        check_translations(content["translations"])
        return cls._start(cls.Drafted, uuid.uuid4(), ctx, owner=owner, **content)

    def review(self, note: str | None, ctx: Context) -> None:
        if self.status != "draft":
            raise InvalidTransition(f"article {self.id} is {self.status}: only a draft is reviewed")
        self._record(self.Reviewed, ctx, revision=self.revision, note=note)

    def publish(self, ctx: Context) -> None:
        if self.status == "published":
            raise InvalidTransition(f"article {self.id} is already published (revision {self.published_revision})")
        if self.status != "reviewed":
            raise InvalidTransition(f"article {self.id} is {self.status}: it is reviewed before it is published")
        self._record(self.Published, ctx, revision=self.revision)

    def revise(self, changes: dict[str, Any], note: str | None, ctx: Context) -> None:
        if self.status == "retired":
            raise InvalidTransition(f"article {self.id} is retired: draft a new one")
        current = self.content()
        content = {**current, **{k: v for k, v in changes.items() if v is not None}}
        # Translations are revised per language: those not given are kept.
        content["translations"] = {**current["translations"], **(changes.get("translations") or {})}
        check_translations(content["translations"])
        if content == self.content():
            raise InvalidCommand("the revision changes nothing")
        self._record(self.Revised, ctx, revision=self.revision + 1, note=note, **content)

    def retire(self, reason: str, ctx: Context) -> None:
        if self.status == "retired":
            raise InvalidTransition(f"article {self.id} is already retired")
        if not reason.strip():
            raise InvalidCommand("say why the article is retired")
        self._record(self.Retired, ctx, reason=reason)


class KnowledgeSearch(HotlineAggregate):
    """One search and its outcomes (its id is the ``search_id`` the API hands out)."""

    STREAM = "knowledge"

    class SearchPerformed(HotlineAggregate.Created):
        """Someone searched the knowledge base (typed by a person, or suggested from a request or contact)."""

        query: str
        language: str | None
        channel: str
        trigger: str  # "search" (typed by someone) or "suggestion" (from a request or contact)
        results: int  # how many articles were shown
        answered: bool  # something was shown; what came of it are the later events
        shown: list[dict[str, Any]]
        """The articles shown, in rank order: ``article_id``, ``revision``, ``rank`` and relevance ``score`` each."""
        contact_id: str | None
        request_id: str | None

    class ArticleOpened(HotlineAggregate.Event):
        """An article from the search's results was opened."""

        article_id: str
        revision: int | None
        rank: int | None

        def apply(self, s: KnowledgeSearch) -> None:
            s.opened.append(self.article_id)

    class UsedToAnswer(HotlineAggregate.Event):
        """An article from the search answered the citizen (on a request, if any)."""

        article_id: str
        revision: int
        rank: int | None
        request_id: str | None

        def apply(self, s: KnowledgeSearch) -> None:
            s.outcome = "answered"

    class Deflected(HotlineAggregate.Event):
        """The citizen's self-service search ended with their answer: no request was needed."""

        article_id: str | None
        revision: int | None

        def apply(self, s: KnowledgeSearch) -> None:
            s.outcome = "deflected"

    class NoGoodAnswer(HotlineAggregate.Event):
        """The search ended without a good answer."""

        note: str | None

        def apply(self, s: KnowledgeSearch) -> None:
            s.outcome = "no_good_answer"

    def __init__(
        self,
        query: str,
        language: str | None,
        channel: str,
        trigger: str,
        results: int,
        answered: bool,
        shown: list[dict[str, Any]],
        contact_id: str | None,
        request_id: str | None,
    ) -> None:
        self.query = query
        self.language = language
        self.channel = channel
        self.shown = shown
        self.request_id = request_id
        self.opened: list[str] = []
        self.outcome: str | None = None

    @classmethod
    def perform(
        cls,
        *,
        query: str,
        language: str | None,
        channel: str,
        trigger: str,
        shown: list[dict[str, Any]],
        contact_id: str | None,
        request_id: str | None,
        ctx: Context,
    ) -> KnowledgeSearch:
        if channel not in SEARCH_CHANNELS:
            raise InvalidCommand(f"unknown search channel {channel!r}", channels=list(SEARCH_CHANNELS))
        if language is not None and language not in LANGUAGES:
            raise InvalidCommand(f"unknown language {language!r}", languages=list(LANGUAGES))
        if trigger == "search":  # a suggestion's text may be empty: it then falls back on the case's categories
            check_query(query)
        return cls._start(
            cls.SearchPerformed,
            uuid.uuid4(),
            ctx,
            query=query,
            language=language,
            channel=channel,
            trigger=trigger,
            results=len(shown),
            answered=bool(shown),
            shown=shown,
            contact_id=contact_id,
            request_id=request_id,
        )

    def _rank(self, article_id: str) -> int | None:
        return next((s["rank"] for s in self.shown if s["article_id"] == article_id), None)

    def _check_not_ended(self) -> None:
        # "answered" does not end a search (the agent may answer from another of its
        # articles too); a deflection or "no good answer" is its last word.
        if self.outcome in ENDED:
            raise InvalidTransition(f"search {self.id} already ended: {self.outcome}", code="search_ended", outcome=self.outcome)

    def _check_shown(self, article_id: str) -> None:
        # Opening and deflection are public feedback: an article they name must be one this
        # search showed, or anyone could inflate any article's counts.
        if self._rank(article_id) is None:
            raise InvalidCommand(
                f"search {self.id} did not show article {article_id}", code="article_not_shown", field="article_id", results=len(self.shown)
            )

    def open(self, article_id: str, revision: int | None, ctx: Context) -> None:
        self._check_not_ended()
        self._check_shown(article_id)
        self._record(self.ArticleOpened, ctx, article_id=article_id, revision=revision, rank=self._rank(article_id))

    def use_to_answer(self, article_id: str, revision: int, request_id: str | None, ctx: Context) -> None:
        self._check_not_ended()
        self._record(
            self.UsedToAnswer,
            ctx,
            article_id=article_id,
            revision=revision,
            rank=self._rank(article_id),
            request_id=request_id or self.request_id,
        )

    def deflect(self, article_id: str | None, revision: int | None, ctx: Context) -> None:
        if self.outcome is not None:
            raise InvalidTransition(f"search {self.id} already ended: {self.outcome}", code="search_ended", outcome=self.outcome)
        if article_id is not None:
            self._check_shown(article_id)
        self._record(self.Deflected, ctx, article_id=article_id, revision=revision)

    def no_good_answer(self, note: str | None, ctx: Context) -> None:
        if self.outcome is not None:
            raise InvalidTransition(f"search {self.id} already ended: {self.outcome}", code="search_ended", outcome=self.outcome)
        self._record(self.NoGoodAnswer, ctx, note=note)
