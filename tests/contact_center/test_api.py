"""The contact-center HTTP API and its live feed, on an embedded (SQLite) hotline."""

from __future__ import annotations

from fastapi.testclient import TestClient

from infra.runtime import Hotline

SUP = {"X-Actor-Id": "sup1", "X-Actor-Role": "supervisor"}
PBX = {"X-Actor-Id": "pbx", "X-Actor-Role": "system"}


def agent(agent_id: str) -> dict[str, str]:
    return {"X-Actor-Id": agent_id, "X-Actor-Role": "agent"}


def test_queue_agent_contact_and_wallboard(api: tuple[TestClient, Hotline]) -> None:
    from consumers.router import Router

    client, hotline = api
    r = client.post("/queues", json={"queue_id": "general", "sl_seconds": 20, "wrap_seconds": 0}, headers=SUP)
    assert r.status_code == 200, r.text
    r = client.post("/agents/login", json={"agent_id": "A1", "queues": ["general"], "languages": ["it"]}, headers=agent("A1"))
    assert r.status_code == 200 and r.json()["state"] == "available"
    r = client.post("/contacts", json={"channel": "phone", "queue_id": "general", "language": "it", "phone": "+39061"}, headers=PBX)
    assert r.status_code == 201, r.text
    cid = r.json()["id"]
    assert client.get(f"/contacts/{cid}/position").json()["position"] == 1
    Router(hotline.store, hotline.bus).run_until_idle()  # the router (a thread in `hotline serve`)
    desk = client.get("/agents/A1/desk").json()
    assert [o["contact_id"] for o in desk["offers"]] == [cid]
    live = client.get("/live/agents/A1?once=true")
    assert live.status_code == 200 and live.headers["content-type"].startswith("text/event-stream")
    assert "event: desk" in live.text and cid in live.text
    r = client.post(f"/contacts/{cid}/answer", json={"agent_id": "A1"}, headers=agent("A1"))
    assert r.status_code == 200 and r.json()["status"] == "connected"
    r = client.post(f"/contacts/{cid}/answer", json={"agent_id": "A1"}, headers=agent("A1"))
    assert r.status_code == 409  # no second answer
    r = client.post(f"/contacts/{cid}/end", json={"agent_id": "B9"}, headers=agent("A1"))
    assert r.status_code == 403  # an agent acts only for themselves
    r = client.post(f"/contacts/{cid}/end", json={"agent_id": "A1"}, headers=agent("A1"))
    assert r.status_code == 200 and r.json()["status"] == "closed"
    board = client.get("/wallboard").json()
    q = board["queues"][0]
    assert q["answered_today"] == 1 and q["service_level_today"] == 1.0
    live = client.get("/live/wallboard?once=true")
    assert "event: wallboard" in live.text and '"answered_today": 1' in live.text


def test_errors_are_clear(api: tuple[TestClient, Hotline]) -> None:
    client, _ = api
    r = client.post("/contacts", json={"channel": "phone", "queue_id": "nope"}, headers=PBX)
    assert r.status_code == 404
    r = client.post("/queues", json={"queue_id": "x", "required_skills": {"a": 9}}, headers=SUP)
    assert r.status_code == 422
    r = client.post("/queues", json={"queue_id": "x"}, headers=agent("A1"))
    assert r.status_code == 403  # forbidden for agents


def test_the_desk_suggests_articles_for_the_contact_in_hand(api: tuple[TestClient, Hotline]) -> None:
    from consumers.router import Router

    client, hotline = api
    article = {"translations": {"it": {"title": "Interruzione dell'acqua", "body": "Le interruzioni programmate sono annunciate."}}}
    aid = client.post("/knowledge/articles", json=article, headers=SUP).json()["id"]
    client.post(f"/knowledge/articles/{aid}/review", headers=SUP)
    client.post(f"/knowledge/articles/{aid}/publish", headers=SUP)
    client.post("/queues", json={"queue_id": "general", "wrap_seconds": 0}, headers=SUP)
    client.post("/agents/login", json={"agent_id": "A1", "queues": ["general"], "languages": ["it"]}, headers=agent("A1"))
    contact = {"channel": "phone", "queue_id": "general", "language": "it", "subject": "Manca l'acqua da stamattina"}
    cid = client.post("/contacts", json=contact, headers=PBX).json()["id"]
    Router(hotline.store, hotline.bus).run_until_idle()
    assert client.get("/agents/A1/desk", headers=agent("A1")).json()["suggestions"] == []  # offered, not yet in hand
    client.post(f"/contacts/{cid}/answer", json={"agent_id": "A1"}, headers=agent("A1"))
    desk = client.get("/agents/A1/desk", headers=agent("A1")).json()
    assert [s["id"] for s in desk["suggestions"]][:1] == [aid]
    assert client.get("/agents/A1/desk", headers=agent("B2")).status_code == 403  # another agent's desk


def test_the_agents_state_filter_takes_exactly_the_domains_states() -> None:
    """The filter's enum in the API (so the document lists it and 'tue' is a 422) is the
    domain's list of states, not a copy that drifts."""
    from typing import get_args

    from api.routers.contact_center import AgentStateName
    from domain.contact_center.agents import STATES

    assert get_args(AgentStateName) == STATES


def test_a_desk_nobody_has_is_not_found(api: tuple[TestClient, Hotline]) -> None:
    """A supervisor's link to a desk with a typo is a 404, not an empty desk of a "known"
    agent; an agent not yet signed in to a queue still opens their own desk."""
    from domain.base import SYSTEM
    from domain.identity import commands as ic

    client, hotline = api
    missing = client.get("/agents/nobody-here/desk", headers=SUP)
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "not_found", missing.text
    own = client.get("/agents/new-agent/desk", headers=agent("new-agent"))
    assert own.status_code == 200 and own.json()["agent"]["state"] == "unknown", own.text
    client.post("/agents/login", json={"agent_id": "A1", "queues": [], "languages": ["it"]}, headers=agent("A1"))
    assert client.get("/agents/A1/desk", headers=SUP).status_code == 200
    hotline.bus.execute(ic.EnrollStaff(username="new-hire", name="Nadia", roles=["agent"]), SYSTEM)
    if hotline.projector:
        hotline.projector.catch_up()
    assert client.get("/agents/new-hire/desk", headers=SUP).status_code == 200  # enrolled, never signed in
