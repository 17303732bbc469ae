"""A contact from a known number carries the citizen's id (the agent's screen pop), however
the PBX spells the number; hold and resume need no agent id when the agent acts.
Through the HTTP API, on an embedded (SQLite) hotline."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from consumers.router import Router
from domain.base import FixedClock
from domain.contact_center.contacts import Contact
from infra.runtime import Hotline
from infra.settings import Settings
from tests.auth import SignedInClient
from tests.conftest import load_catalogue
from tests.contact_center.harness import START

SUP = {"X-Actor-Id": "sup1", "X-Actor-Role": "supervisor"}
PBX = {"X-Actor-Id": "pbx", "X-Actor-Role": "system"}


def agent(agent_id: str) -> dict[str, str]:
    return {"X-Actor-Id": agent_id, "X-Actor-Role": "agent"}


def open_center(tmp_path: Path, **settings: Any) -> tuple[Hotline, SignedInClient]:
    hotline = Hotline.start(Settings(data_dir=tmp_path, **settings), clock=FixedClock(START))
    load_catalogue(hotline)
    client = SignedInClient(create_app(hotline=hotline))
    client.__enter__()
    for queue, media in (("general", "voice"), ("web-chat", "chat")):
        r = client.post("/queues", json={"queue_id": queue, "media": media, "wrap_seconds": 0}, headers=SUP)
        assert r.status_code == 200, r.text
    for a in ("A1", "A2"):
        r = client.post(
            "/agents/login", json={"agent_id": a, "queues": ["general", "web-chat"], "languages": ["it", "zh"]}, headers=agent(a)
        )
        assert r.status_code == 200, r.text
    return hotline, client


@pytest.fixture
def center(tmp_path: Path) -> Iterator[tuple[Hotline, SignedInClient]]:
    hotline, client = open_center(tmp_path)
    try:
        yield hotline, client
    finally:
        client.__exit__(None, None, None)
        hotline.close()


def known_citizen(client: TestClient, **contact: Any) -> str:
    r = client.post(
        "/requests",
        json={"kind": "information", "channel": "phone", "description": "Opening hours?", "contact": contact},
        headers=agent("A1"),
    )
    assert r.status_code == 201, r.text
    citizen_id: str = r.json()["citizen_id"]
    return citizen_id


def arrive(client: TestClient, **fields: Any) -> str:
    r = client.post("/contacts", json={"channel": "phone", "queue_id": "general", "language": "it", **fields}, headers=PBX)
    assert r.status_code == 201, r.text
    contact_id: str = r.json()["id"]
    return contact_id


def contact(hotline: Hotline, contact_id: str) -> Contact:
    found: Contact = hotline.store.checkout(uuid.UUID(contact_id))
    return found


def test_a_call_from_a_known_number_carries_the_citizens_id(center: tuple[Hotline, SignedInClient]) -> None:
    hotline, client = center
    mario = known_citizen(client, name="Mario Rossi", phone="+39 06 1234 5678")
    # The PBX gives the number as the network does: without the country code.
    cid = arrive(client, phone="06 1234 5678")
    arrived = contact(hotline, cid)
    assert arrived.citizen_id == mario
    assert arrived.personal == {"phone": "+390612345678"}
    # Routed to an agent, the offer on the desk names the citizen: the screen pop.
    Router(hotline.store, hotline.bus).run_until_idle()
    desks = {a: client.get(f"/agents/{a}/desk", headers=agent(a)).json() for a in ("A1", "A2")}
    offers = [o for d in desks.values() for o in d["offers"]]
    assert [(o["contact_id"], o["citizen_id"]) for o in offers] == [(cid, mario)]


def test_unknown_withheld_and_named_callers(center: tuple[Hotline, SignedInClient]) -> None:
    hotline, client = center
    mario = known_citizen(client, name="Mario Rossi", phone="+39 06 1234 5678", email="Mario.Rossi@example.it")
    stranger = contact(hotline, arrive(client, phone="+39 06 9876 5432"))
    assert stranger.citizen_id is None and stranger.personal == {"phone": "+390698765432"}
    # A withheld or garbled caller id never refuses the call; it recognises nobody.
    withheld = contact(hotline, arrive(client, phone="anonymous"))
    assert withheld.citizen_id is None and withheld.personal == {"phone": "anonymous"}
    # A chat by email, whatever the case it is typed in.
    chat = contact(hotline, arrive(client, channel="chat", queue_id="web-chat", email="MARIO.ROSSI@EXAMPLE.IT"))
    assert chat.citizen_id == mario
    # A citizen named by the caller (an IVR that identified them) is kept.
    other = str(uuid.uuid4())
    assert contact(hotline, arrive(client, phone="+39 06 1234 5678", citizen_id=other)).citizen_id == other
    # A callback to a known number is the citizen's too.
    r = client.post(
        "/callbacks",
        json={"queue_id": "general", "phone": "06 1234 5678", "due_at": START.isoformat(), "reason": "survey"},
        headers=SUP,
    )
    assert r.status_code == 201, r.text
    assert contact(hotline, r.json()["id"]).citizen_id == mario


def test_a_chinese_hotline_recognises_a_caller_by_the_local_number(tmp_path: Path) -> None:
    hotline, client = open_center(tmp_path, jurisdiction="shanghai")
    try:
        wang = known_citizen(client, name="王芳", phone="138 0013 8001")
        assert contact(hotline, arrive(client, phone="+8613800138001", language="zh")).citizen_id == wang
        assert contact(hotline, arrive(client, phone="13800138001", language="zh")).citizen_id == wang
    finally:
        client.__exit__(None, None, None)
        hotline.close()


def test_hold_and_resume_take_the_agent_from_the_actor(center: tuple[Hotline, SignedInClient]) -> None:
    hotline, client = center
    cid = arrive(client, phone="+39 06 1234 5678")
    Router(hotline.store, hotline.bus).run_until_idle()
    [holder] = [a for a in ("A1", "A2") if contact(hotline, cid).offered_to == a]
    other = "A2" if holder == "A1" else "A1"
    r = client.post(f"/contacts/{cid}/answer", json={"agent_id": holder}, headers=agent(holder))
    assert r.status_code == 200, r.text

    r = client.post(f"/contacts/{cid}/hold", headers=agent(holder))  # no body at all
    assert r.status_code == 200, r.text
    assert contact(hotline, cid).held_since is not None
    r = client.post(f"/contacts/{cid}/resume", json={}, headers=agent(holder))
    assert r.status_code == 200, r.text
    assert contact(hotline, cid).held_since is None

    # Another agent is not on the contact: refused, whatever they name.
    r = client.post(f"/contacts/{cid}/hold", headers=agent(other))
    assert r.status_code == 409 and r.json()["error"]["code"] == "not_handler", r.text
    r = client.post(f"/contacts/{cid}/hold", json={"agent_id": holder}, headers=agent(other))
    assert r.status_code == 403, r.text

    # A supervisor acts on the contact's agent, or on the one named.
    r = client.post(f"/contacts/{cid}/hold", headers=SUP)
    assert r.status_code == 200, r.text
    held = [e for e in hotline.store.iter_envelopes() if e.event_class is Contact.Held]
    assert [e.data["agent_id"] for e in held] == [holder, holder]
    r = client.post(f"/contacts/{cid}/resume", json={"agent_id": holder}, headers=SUP)
    assert r.status_code == 200, r.text
    # Still refused for an agent not on it.
    r = client.post(f"/contacts/{cid}/hold", json={"agent_id": other}, headers=SUP)
    assert r.status_code == 409, r.text
