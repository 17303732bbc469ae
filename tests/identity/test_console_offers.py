"""The console offers only what the policy allows: a form the API would refuse with 403 is
not shown (the auditor's desk had "Sign in to the queues"; an agent saw "Force state" on
every colleague). The API still decides; these are the pages as each role sees them."""

from __future__ import annotations

from fastapi.testclient import TestClient

from api.app import create_app
from domain.contact_center import commands as cc
from infra.runtime import Hotline
from tests.auth import token_for


def page(client: TestClient, hotline: Hotline, path: str, user: str, role: str) -> str:
    client.cookies.set("hotline_session", token_for(hotline.settings, user, role))
    client.cookies.set("hotline_lang", "en")
    answer = client.get(path)
    assert answer.status_code == 200, answer.text
    return answer.text


def test_the_desk_offers_the_queues_only_to_who_signs_in_to_them(hotline: Hotline) -> None:
    with TestClient(create_app(hotline=hotline)) as client:
        assert 'id="login-form"' in page(client, hotline, "/console/desk", "op-anna", "agent")
        auditor = page(client, hotline, "/console/desk", "auditor-omar", "auditor")
        assert 'id="login-form"' not in auditor and "Read only" in auditor


def test_force_state_is_offered_for_oneself_to_an_agent_and_for_all_to_a_supervisor(hotline: Hotline) -> None:
    from domain.base import Actor

    for agent in ("op-anna", "op-bruno"):
        hotline.bus.execute(cc.LoginAgent(agent_id=agent, name=agent), Actor(agent, "agent"))
    with TestClient(create_app(hotline=hotline)) as client:
        as_agent = page(client, hotline, "/console/agents", "op-anna", "agent")
        assert 'data-api="/agents/op-anna/presence"' in as_agent and 'data-api="/agents/op-bruno/presence"' not in as_agent
        assert 'data-api="/agents/op-bruno/queues"' not in as_agent
        as_supervisor = page(client, hotline, "/console/agents", "sup-li", "supervisor")
        assert 'data-api="/agents/op-bruno/presence"' in as_supervisor and 'data-api="/agents/op-bruno/queues"' in as_supervisor
