"""Knowledge-base commands: write and publish articles; record searches and their outcomes."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from domain.access import Action
from domain.handling import Command, Target

Language = Literal["zh", "ar", "it", "en"]
SearchChannel = Literal["agent", "self_service", "ivr"]


class Translation(BaseModel):
    model_config = ConfigDict(extra="forbid")
    title: str = Field(min_length=1, max_length=300)
    body: str = Field(min_length=1, max_length=50_000, description="The text to read out")


class ArticleContent(Command):
    translations: dict[Language, Translation] = Field(description="At least one of zh, ar, it, en")
    phones: list[str] = Field(default_factory=list, description="Numbers to give the citizen")
    url: str | None = Field(default=None, max_length=2000, description="An external page")
    links: list[str] = Field(default_factory=list, description="Ids of related articles")
    problem_codes: list[str] = Field(default_factory=list, description="Catalogue problem codes the article answers")
    categories: list[str] = Field(default_factory=list, description="Catalogue categories the article answers")
    tags: list[str] = Field(default_factory=list, description="Keywords, in any language (indexed with the title)")


class DraftArticle(ArticleContent):
    action = Action.KNOWLEDGE_WRITE

    owner: str | None = Field(default=None, description="Who keeps the article up to date (default: the author)")


class ArticleCommand(Command):
    action = Action.KNOWLEDGE_WRITE

    article_id: Target = ""


class ReviewArticle(ArticleCommand):
    note: str | None = None


class PublishArticle(ArticleCommand):
    pass


class ReviseArticle(ArticleCommand):
    """A new revision: the fields given replace the current revision's (translations per
    language), the others are kept."""

    translations: dict[Language, Translation] | None = None
    phones: list[str] | None = None
    url: str | None = None
    links: list[str] | None = None
    problem_codes: list[str] | None = None
    categories: list[str] | None = None
    tags: list[str] | None = None
    note: str | None = None


class RetireArticle(ArticleCommand):
    reason: str = Field(min_length=1)


class ShownArticle(BaseModel):
    article_id: str
    revision: int
    rank: int
    score: float


class RecordSearch(Command):
    """Issued by the search endpoint with what it showed (a query is not a command, its record is)."""

    action = Action.KNOWLEDGE_FEEDBACK

    query: str = Field(max_length=1000)
    language: Language | None = None
    channel: SearchChannel
    trigger: Literal["search", "suggestion"] = "search"
    shown: list[ShownArticle]
    contact_id: str | None = None
    request_id: str | None = None


class SearchCommand(Command):
    search_id: Target = ""


class RecordArticleOpened(SearchCommand):
    action = Action.KNOWLEDGE_FEEDBACK

    article_id: str
    revision: int | None = None


class RecordUsedToAnswer(SearchCommand):
    """The article (revision N) answered the citizen: an information request answered from it."""

    action = Action.KNOWLEDGE_ANSWER

    article_id: str
    revision: int | None = Field(default=None, description="Default: the revision the search showed, else the live one")
    request_id: str | None = None


class RecordDeflection(SearchCommand):
    """The citizen found the answer and filed nothing."""

    action = Action.KNOWLEDGE_FEEDBACK

    article_id: str | None = None
    revision: int | None = None


class RecordNoGoodAnswer(SearchCommand):
    action = Action.KNOWLEDGE_FEEDBACK

    note: str | None = Field(default=None, max_length=2000)
