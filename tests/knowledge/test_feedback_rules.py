"""QA's findings on the knowledge base: what a search's feedback may name, queries with no
word, revision 0, and searching a case's text in the language its script says."""

from __future__ import annotations

from pathlib import Path

import pytest

from api.app import create_app
from api.demo import CASES, CITIZEN_TEXTS, DESCRIPTIONS, PORTAL_QUERIES, QUESTIONS
from api.routers.knowledge import recorded_language
from domain.base import InvalidCommand
from domain.knowledge.aggregate import check_query
from infra.settings import Settings
from projections import knowledge_text
from tests.auth import SignedInClient
from tests.knowledge.test_api import AGENT, ARTICLE, SUP


def _published(client: SignedInClient, article: dict | None = None) -> str:
    aid = str(client.post("/knowledge/articles", json=article or ARTICLE, headers=SUP).json()["id"])
    assert client.post(f"/knowledge/articles/{aid}/review", headers=SUP).status_code == 200
    assert client.post(f"/knowledge/articles/{aid}/publish", headers=SUP).status_code == 200
    return aid


def _search(client: SignedInClient, q: str, **params: str) -> dict:
    answer = client.request("GET", "/knowledge/search", params={"q": q, **params}, anonymous=True)
    assert answer.status_code == 200, answer.text
    return dict(answer.json())


def _error(answer: object, status: int, code: str) -> dict:
    assert answer.status_code == status, answer.text  # type: ignore[attr-defined]
    error = answer.json()["error"]  # type: ignore[attr-defined]
    assert error["status"] == status and error["code"] == code, error
    return dict(error)


def test_an_article_is_opened_only_from_a_search_that_showed_it_and_not_after_it_ended(tmp_path: Path) -> None:
    with SignedInClient(create_app(Settings(data_dir=tmp_path))) as client:
        aid = _published(client)
        other = _published(client, {**ARTICLE, "translations": {"en": {"title": "Library card", "body": "Borrow books."}}})

        # QA's case: nothing shown, the search deflected, then any article "opened".
        empty = _search(client, "passeport perdu", lang="en")["search_id"]
        assert client.post(f"/knowledge/searches/{empty}/deflected", json={}).status_code == 200
        _error(client.post(f"/knowledge/searches/{empty}/opened", json={"article_id": aid}), 409, "search_ended")

        # A live search that showed only aid: other was never shown to be opened or deflected by.
        sid = _search(client, "停水", lang="zh")["search_id"]
        error = _error(client.post(f"/knowledge/searches/{sid}/opened", json={"article_id": other}), 422, "article_not_shown")
        assert error["details"]["field"] == "article_id"
        _error(client.post(f"/knowledge/searches/{sid}/deflected", json={"article_id": other}), 422, "article_not_shown")
        assert client.post(f"/knowledge/searches/{sid}/opened", json={"article_id": aid}).status_code == 200
        assert client.post(f"/knowledge/searches/{sid}/no-answer", json={}).status_code == 200
        _error(client.post(f"/knowledge/searches/{sid}/opened", json={"article_id": aid}), 409, "search_ended")
        _error(client.post(f"/knowledge/searches/{sid}/used", json={"article_id": aid}, headers=AGENT), 409, "search_ended")

        assert client.get(f"/knowledge/articles/{aid}/usage").json()["opened"] == 1
        assert client.get(f"/knowledge/articles/{other}/usage").json() == {"article_id": other, "opened": 0, "used": 0, "deflected": 0}


@pytest.mark.parametrize("q", ["   ", "%", " ?! ", "\u064e\u0651", "…—"])
def test_a_query_with_no_word_is_refused_and_not_recorded(tmp_path: Path, q: str) -> None:
    with SignedInClient(create_app(Settings(data_dir=tmp_path))) as client:
        before = client.app.state.hotline.store.max_position()  # type: ignore[attr-defined]
        error = _error(client.request("GET", "/knowledge/search", params={"q": q}, anonymous=True), 422, "query_without_words")
        assert error["details"]["field"] == "q"
        assert client.app.state.hotline.store.max_position() == before  # type: ignore[attr-defined]
        assert client.get("/knowledge/unanswered").json() == []


def test_the_rule_on_a_query_is_the_domains_too() -> None:
    with pytest.raises(InvalidCommand) as refused:
        check_query(" . ")
    assert refused.value.code == "query_without_words"
    for query in ("停水", "انقطاع", "a", "64"):
        check_query(query)


def test_there_is_no_revision_0(tmp_path: Path) -> None:
    with SignedInClient(create_app(Settings(data_dir=tmp_path))) as client:
        aid = _published(client)
        _error(client.get(f"/knowledge/articles/{aid}/revisions/0"), 404, "not_found")
        _error(client.get(f"/knowledge/articles/{aid}/revisions/-1"), 404, "not_found")
        _error(client.get(f"/knowledge/articles/{aid}", params={"revision": 0}), 422, "invalid_request")
        assert client.get(f"/knowledge/articles/{aid}/revisions/1").json()["revision"] == 1
        # An outcome naming revision 0 is refused too (it was read as "the latest").
        sid = _search(client, "停水", lang="zh")["search_id"]
        _error(
            client.post(f"/knowledge/searches/{sid}/used", json={"article_id": aid, "revision": 0}, headers=AGENT), 422, "invalid_command"
        )


def test_a_case_is_searched_in_the_language_its_script_says() -> None:
    assert recorded_language("لم يتم جمع النفايات منذ أسبوع", "zh") == "ar"
    assert recorded_language("路灯已经三天不亮了", "ar") == "zh"
    assert recorded_language("Streetlight out at the bus stop", "zh") is None  # Latin: it and en are tried
    assert recorded_language("Lampione spento", "it") == "it"
    assert recorded_language("Lampione spento", "en") == "en"  # Latin under a Latin language: the record stands
    assert recorded_language("", "zh") == "zh"  # nothing to read: the case's categories decide, in its language
    assert recorded_language("路灯 LED", "zh") == "zh"


def test_suggestions_for_a_request_whose_text_contradicts_its_language(tmp_path: Path) -> None:
    with SignedInClient(create_app(Settings(data_dir=tmp_path))) as client:
        aid = _published(client)
        request = client.post(
            "/requests",
            json={
                "kind": "information",
                "channel": "phone",
                "description": "انقطاع المياه منذ الصباح",
                "language": "zh",
                "contact": {"name": "Fatima", "phone": "+971 50 123 4567"},
            },
            headers=AGENT,
        ).json()
        found = client.get(
            "/knowledge/suggestions", params={"ref": request["reference"], "min_position": request["position"]}, headers=AGENT
        )
        assert found.status_code == 200, found.text
        assert found.json()["language"] == "ar" and [r["id"] for r in found.json()["results"]][:1] == [aid]


SCRIPT = {"zh": "zh", "ar": "ar", "it": None, "en": None}  # what guess_language reads from each language's script


def test_the_demos_texts_are_in_their_language() -> None:
    for code, _kind, _subtype, text, _collected in CASES:
        assert text in DESCRIPTIONS[code].values()
    texts = [(language, t) for by_language in DESCRIPTIONS.values() for language, t in by_language.items()]
    texts += [(language, t) for language, questions in QUESTIONS.items() for t in questions]
    # What citizens read (replies) and write (ratings, reopenings) in the demo.
    texts += [(language, t) for by_language in CITIZEN_TEXTS.values() for language, t in by_language.items()]
    assert all(set(by_language) == set(SCRIPT) for by_language in DESCRIPTIONS.values()) and set(QUESTIONS) == set(SCRIPT)
    assert all(set(by_language) == set(SCRIPT) for by_language in CITIZEN_TEXTS.values())
    for language, t in texts:
        assert knowledge_text.guess_language(t) == SCRIPT[language], (language, t)
    for q in PORTAL_QUERIES:  # searched with no language: each has a word to search for
        check_query(q)
