"""/knowledge over HTTP: writers and readers, search recorded with its outcomes, revisions, suggestions."""

from __future__ import annotations

from pathlib import Path

from api.app import create_app
from infra.settings import Settings
from projections import knowledge as kb
from tests.auth import SignedInClient

SUP = {"X-Actor-Id": "sup1", "X-Actor-Role": "supervisor"}
AGENT = {"X-Actor-Id": "op-anna", "X-Actor-Role": "agent"}
ARTICLE = {
    "translations": {
        "zh": {"title": "停水通知", "body": "计划停水会提前24小时公布，突发停水请拨打96116。"},
        "ar": {"title": "انقطاع المياه", "body": "يُعلَن عن انقطاع المياه قبل 24 ساعة."},
        "en": {"title": "Water outage", "body": "Planned water outages are announced 24 hours ahead."},
    },
    "phones": ["96116"],
    "problem_codes": ["water-outage"],
    "tags": ["acqua"],
}


def test_article_lifecycle_search_and_outcomes(tmp_path: Path) -> None:
    with SignedInClient(create_app(Settings(data_dir=tmp_path))) as client:
        assert client.post("/knowledge/articles", json=ARTICLE, headers=AGENT).status_code == 403
        created = client.post("/knowledge/articles", json=ARTICLE, headers=SUP)
        assert created.status_code == 201
        aid = created.json()["id"]
        assert client.request("GET", f"/knowledge/articles/{aid}", anonymous=True).status_code == 404  # a draft: not for citizens
        assert client.post(f"/knowledge/articles/{aid}/publish", headers=SUP).status_code == 409  # review first
        assert client.post(f"/knowledge/articles/{aid}/review", headers=SUP).status_code == 200
        assert client.post(f"/knowledge/articles/{aid}/publish", headers=SUP).json()["published_revision"] == 1

        found = client.request("GET", "/knowledge/search", params={"q": "停水", "lang": "zh"}, anonymous=True).json()  # public, no sign-in
        assert [r["id"] for r in found["results"]] == [aid] and "<mark>停水</mark>" in found["results"][0]["snippet"]
        assert found["search_id"] and found["results"][0]["score"] > 0
        ar = client.request(
            "GET", "/knowledge/search", params={"q": "انقطاع المِيَاه"}, anonymous=True
        ).json()  # language guessed, tashkeel ignored
        assert ar["language"] == "ar" and ar["results"][0]["id"] == aid

        revised = client.post(
            f"/knowledge/articles/{aid}/revise", json={"translations": {"zh": {"title": "停水", "body": "请拨打96116。"}}}, headers=SUP
        )
        assert revised.json()["revision"] == 2 and revised.json()["status"] == "published"
        sid = found["search_id"]
        used = client.post(f"/knowledge/searches/{sid}/used", json={"article_id": aid}, headers=AGENT)
        assert used.status_code == 200 and used.json()["outcome"] == "answered"
        assert client.post(f"/knowledge/searches/{sid}/deflected").status_code == 409
        # What the operator read out: revision 1, still readable.
        then = client.get(f"/knowledge/articles/{aid}/revisions/1", params={"lang": "zh"}).json()
        assert then["body"].startswith("计划停水") and then["revision"] == 1
        assert client.get(f"/knowledge/articles/{aid}", params={"lang": "zh"}).json()["body"] == "请拨打96116。"
        assert [r["revision"] for r in client.get(f"/knowledge/articles/{aid}/revisions").json()] == [1, 2]

        nothing = client.request("GET", "/knowledge/search", params={"q": "passeport perdu", "lang": "en"}, anonymous=True).json()
        assert nothing["results"] == []
        assert client.post(f"/knowledge/searches/{nothing['search_id']}/no-answer", json={"note": "no article"}).status_code == 200
        assert client.get("/knowledge/unanswered").json()[0]["query"] == "passeport perdu"
        assert client.get(f"/knowledge/articles/{aid}/usage").json()["used"] == 1

        request = client.post(
            "/requests",
            json={
                "kind": "information",
                "channel": "phone",
                "description": "Why is there no water? Outage since this morning",
                "language": "en",
                "contact": {"name": "Mario Rossi", "phone": "+39 06 1234 5678"},
            },
            headers=AGENT,
        ).json()
        suggested = client.get(
            "/knowledge/suggestions", params={"ref": request["reference"], "min_position": request["position"]}, headers=AGENT
        )
        assert [r["id"] for r in suggested.json()["results"]][:1] == [aid], (request, suggested.json())
        assert client.get("/agents/op-anna/suggestions", headers=AGENT).json()["results"] == []  # no contact on the desk

        assert client.post(f"/knowledge/articles/{aid}/retire", json={"reason": "obsolete"}, headers=SUP).json()["status"] == "retired"
        assert client.request("GET", "/knowledge/search", params={"q": "停水", "lang": "zh"}, anonymous=True).json()["results"] == []
        with client.app.state.hotline.read_store.engine.connect() as conn:  # type: ignore[attr-defined]
            searches = conn.execute(kb.SEARCHES.select()).mappings().all()
        assert {s["channel"] for s in searches} == {"self_service", "agent"}


def test_public_search_is_rate_limited_per_caller(tmp_path: Path) -> None:
    citizen = {"X-Actor-Id": "cit-flood", "X-Actor-Role": "citizen"}
    other = {"X-Actor-Id": "cit-calm", "X-Actor-Role": "citizen"}
    with SignedInClient(create_app(Settings(data_dir=tmp_path))) as client:
        answers = [client.get("/knowledge/search", params={"q": f"water {i}", "lang": "en"}, headers=citizen) for i in range(31)]
        assert [a.status_code for a in answers[:30]] == [200] * 30
        refused = answers[30]
        assert refused.status_code == 429 and 1 <= int(refused.headers["Retry-After"]) <= 61
        assert refused.json()["error"]["status"] == 429
        assert client.get("/knowledge/search", params={"q": "water", "lang": "en"}, headers=other).status_code == 200


def test_information_requests_and_the_desk_come_with_suggestions(tmp_path: Path) -> None:
    with SignedInClient(create_app(Settings(data_dir=tmp_path))) as client:
        aid = client.post("/knowledge/articles", json=ARTICLE, headers=SUP).json()["id"]
        client.post(f"/knowledge/articles/{aid}/review", headers=SUP)
        client.post(f"/knowledge/articles/{aid}/publish", headers=SUP)
        body = {
            "kind": "information",
            "channel": "web",
            "description": "没有水了，什么时候恢复供水？停水多久",
            "language": "zh",
            "contact": {"name": "王伟", "phone": "+39 06 5555 0101"},
        }
        # Registered by a citizen on the web, unsigned: the answer suggests the article.
        registered = client.request("POST", "/requests", json=body, anonymous=True)
        assert registered.status_code == 201, registered.text
        answer = registered.json()
        assert [s["id"] for s in answer["suggestions"]][:1] == [aid] and answer["search_id"]
        with client.app.state.hotline.read_store.engine.connect() as conn:  # type: ignore[attr-defined]
            recorded = conn.execute(kb.SEARCHES.select().where(kb.SEARCHES.c.search_id == answer["search_id"])).mappings().one()
        assert recorded["request_id"] == answer["id"] and recorded["channel"] == "self_service"
        # The deflection outcome can be posted against it: the citizen found the answer.
        assert client.request("POST", f"/knowledge/searches/{answer['search_id']}/deflected", json={}, anonymous=True).status_code == 200
        # A complaint is not answered from the knowledge base: no suggestions.
        complaint = client.post("/requests", json={**body, "kind": "action", "subtype": "complaint"}, headers=AGENT).json()
        assert complaint.get("suggestions") is None
        # An agent with no contact in hand: the desk suggests nothing.
        assert client.get("/agents/op-anna/desk", headers=AGENT).json()["suggestions"] == []
