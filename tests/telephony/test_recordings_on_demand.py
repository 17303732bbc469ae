"""Recording on the agent's demand (issue 19, item 3): ``POST /contacts/{id}/recording``
(``RecordCall``), its rules and refusals, and the ``recording_demanded`` event on the
contact that the auditor reads and the PBX adapter reacts to; on SQLite and PostgreSQL.

What the queue's policy says to a demand: ``none`` forbids it (409
``recording_not_allowed``); ``on_demand`` allows it; ``all`` records every call already,
and ``sample`` the calls in its sample (409 ``already_recording``), while a call outside
the sample may be recorded on demand.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import jsonschema
import pytest

from api.app import create_app
from domain.base import Actor, FixedClock, InvalidTransition
from domain.contact_center import commands as cc
from domain.recordings import commands as recc
from domain.recordings.policy import in_sample
from infra.runtime import Hotline
from telephony_adapter.recorder import Recorder
from tests.auth import SignedInClient, actor
from tests.telephony.test_recordings import wav

SUP = Actor("sup1", "supervisor")
PBX = Actor("pbx", "system")
ANNOUNCE = "sound:hotline/call-recorded"


@pytest.fixture
def client(hotline: Hotline) -> Iterator[SignedInClient]:
    with SignedInClient(create_app(hotline=hotline)) as c:
        yield c


def policy(h: Hotline, mode: str, **extra: Any) -> None:
    body: dict[str, Any] = {"queue_id": "general", "mode": mode, **extra}
    if mode != "none":
        body["announcement"] = ANNOUNCE
    h.bus.execute(recc.SetRecordingPolicy(**body), SUP)


def setup(h: Hotline, mode: str = "on_demand") -> None:
    h.bus.execute(cc.DefineQueue(queue_id="general", wrap_seconds=0), SUP)
    for agent in ("op1", "op2", "op3"):
        h.bus.execute(cc.LoginAgent(agent_id=agent, queues=["general"]), Actor(agent, "agent"))
    policy(h, mode)


def arrive(h: Hotline) -> str:
    return str(h.bus.execute(cc.ContactArrives(channel="phone", queue_id="general", phone="+390612345678"), PBX).result["id"])


def answer(h: Hotline, contact_id: str, agent: str) -> None:
    h.bus.execute(cc.OfferContact(contact_id=contact_id, agent_id=agent), PBX)
    h.bus.execute(cc.Answer(contact_id=contact_id, agent_id=agent), Actor(agent, "agent"))


def call(h: Hotline, agent: str = "op1") -> str:
    contact_id = arrive(h)
    answer(h, contact_id, agent)
    return contact_id


def end(h: Hotline, contact_id: str) -> None:
    h.bus.execute(cc.End(contact_id=contact_id, ended_by="citizen"), PBX)


def demand(client: SignedInClient, contact_id: str, who: dict[str, str], body: dict[str, Any] | None = None) -> Any:
    return client.post(f"/contacts/{contact_id}/recording", json=body, headers=who)


def refused(response: Any, status: int, code: str) -> None:
    assert response.status_code == status, response.text
    assert response.json()["error"]["code"] == code, response.json()


def demands_of(h: Hotline, contact_id: str) -> list[Any]:
    return [e for e in h.store.iter_envelopes() if e.aggregate_id == contact_id and e.name == "recording_demanded"]


def test_an_agent_on_the_call_asks_to_record_it(hotline: Hotline, client: SignedInClient) -> None:
    h = hotline
    setup(h)
    contact_id = call(h, "op1")
    r = demand(client, contact_id, actor("op1", "agent"))  # no body: the agent acts for themselves
    assert r.status_code == 202, r.text
    answer_ = r.json()
    assert (answer_["contact_id"], answer_["agent_id"], answer_["requested_by"]) == (contact_id, "op1", "op1")
    assert (answer_["queue_id"], answer_["mode"], answer_["announcement"]) == ("general", "on_demand", ANNOUNCE)
    assert answer_["position"] > 0 and answer_["requested_at"] == h.clock.now().isoformat()
    # The answer is what the OpenAPI document promises (its own schema, resolved).
    doc = client.get("/openapi.json").json()
    operation = doc["paths"]["/contacts/{contact_id}/recording"]["post"]
    schema = operation["responses"]["202"]["content"]["application/json"]["schema"]
    jsonschema.validate(answer_, {**schema, "components": doc["components"]})
    assert operation["x-permission"] == "recordings.demand"
    # The demand is an event on the contact's own stream: who asked, for whom, when.
    [event] = demands_of(h, contact_id)
    assert event.type == "hotline.contact.recording_demanded.v1"
    assert event.data == {
        "agent_id": "op1",
        "requested_by": "op1",
        "queue_id": "general",
        "mode": "on_demand",
        "announcement": ANNOUNCE,
    }
    assert event.meta["actor_id"] == "op1" and event.time == h.clock.now()
    arrived = next(e for e in h.store.iter_envelopes() if e.aggregate_id == contact_id and e.name == "arrived")
    assert event.meta["correlation_id"] == arrived.meta["correlation_id"]  # on the case, for the auditor
    # Asked twice: the call is being recorded already.
    refused(demand(client, contact_id, actor("op1", "agent")), 409, "already_recording")
    refused(demand(client, contact_id, actor("sup1", "supervisor")), 409, "already_recording")
    assert len(demands_of(h, contact_id)) == 1
    # The PBX adapter's StartRecording for it is one the policy allows (reason agent_demand).
    started = Recorder(h.bus, h.attachments).started("hl-rec.demo", contact_id, "op1", None, "agent_demand", h.clock.now())
    assert (started["reason"], started["agent_id"], started["status"]) == ("agent_demand", "op1", "recording")


def test_who_may_ask_and_on_which_call(hotline: Hotline, client: SignedInClient) -> None:
    h = hotline
    setup(h)
    waiting = arrive(h)
    refused(demand(client, waiting, actor("sup1", "supervisor"), {"agent_id": "op1"}), 409, "not_connected")
    contact_id = call(h, "op1")
    # Another agent: not on this call (for themselves), and may not act for op1.
    refused(demand(client, contact_id, actor("op2", "agent")), 409, "not_on_contact")
    refused(demand(client, contact_id, actor("op2", "agent"), {"agent_id": "op1"}), 403, "forbidden")
    refused(demand(client, contact_id, actor("sara", "analyst")), 403, "forbidden")
    refused(demand(client, contact_id, actor("roads", "department", ["transport"])), 403, "forbidden")
    refused(demand(client, str(uuid.uuid4()), actor("op1", "agent")), 404, "contact_not_found")
    r = demand(client, contact_id, actor("op1", "agent"), {"agent_id": "op1", "contact_id": contact_id})
    refused(r, 422, "invalid_command")  # the contact comes from the path
    refused(demand(client, contact_id, actor("op1", "agent"), {"agent_id": "x" * 101}), 422, "invalid_request")
    assert demands_of(h, contact_id) == []
    # An expert consulted on the call is on it too, and may ask.
    h.bus.execute(cc.Transfer(contact_id=contact_id, agent_id="op1", to_agent_id="op3", mode="warm"), Actor("op1", "agent"))
    h.bus.execute(cc.Answer(contact_id=contact_id, agent_id="op3"), Actor("op3", "agent"))
    r = demand(client, contact_id, actor("op3", "agent"))
    assert r.status_code == 202, r.text
    assert (r.json()["agent_id"], r.json()["requested_by"]) == ("op3", "op3")
    refused(demand(client, contact_id, actor("sup1", "supervisor")), 409, "already_recording")
    end(h, contact_id)
    refused(demand(client, contact_id, actor("op1", "agent")), 409, "not_connected")
    # A supervisor asks for the agent on the call (the contact's own, by default).
    other = call(h, "op2")
    r = demand(client, other, actor("sup1", "supervisor"))
    assert r.status_code == 202, r.text
    assert (r.json()["agent_id"], r.json()["requested_by"]) == ("op2", "sup1")
    assert [e.meta["actor_id"] for e in demands_of(h, other)] == ["sup1"]


def test_the_queue_policy_decides(hotline: Hotline, client: SignedInClient) -> None:
    h = hotline
    setup(h, "none")
    confidential = call(h, "op1")
    refused(demand(client, confidential, actor("op1", "agent")), 409, "recording_not_allowed")
    refused(demand(client, confidential, actor("sup1", "supervisor")), 409, "recording_not_allowed")
    end(h, confidential)
    policy(h, "all")
    everything = call(h, "op1")
    refused(demand(client, everything, actor("op1", "agent")), 409, "already_recording")
    end(h, everything)
    policy(h, "sample", sample_percent=50)
    seen = {True: 0, False: 0}
    for _ in range(40):  # calls until one in the sample and one outside it (1 in 2**40 to fail)
        if min(seen.values()) > 0:
            break
        contact_id = call(h, "op1")
        sampled = in_sample(contact_id, 50)
        r = demand(client, contact_id, actor("op1", "agent"))
        if sampled:
            refused(r, 409, "already_recording")
        else:
            assert r.status_code == 202 and r.json()["mode"] == "sample", r.text
        seen[sampled] += 1
        end(h, contact_id)
    assert min(seen.values()) > 0, seen


def test_a_new_leg_after_a_cold_transfer_may_be_recorded_again(hotline: Hotline) -> None:
    h = hotline
    setup(h)
    contact_id = call(h, "op1")
    h.bus.execute(recc.RecordCall(contact_id=contact_id), Actor("op1", "agent"))
    clock = h.clock
    assert isinstance(clock, FixedClock)
    clock.advance(seconds=20)
    h.bus.execute(cc.Transfer(contact_id=contact_id, agent_id="op1", to_agent_id="op2"), Actor("op1", "agent"))
    with pytest.raises(InvalidTransition) as not_connected:  # between legs: nobody is on the call
        h.bus.execute(recc.RecordCall(contact_id=contact_id, agent_id="op2"), SUP)
    assert not_connected.value.code == "not_connected"
    clock.advance(seconds=5)
    h.bus.execute(cc.Answer(contact_id=contact_id, agent_id="op2"), Actor("op2", "agent"))
    # The old bridge went with the transfer: op2's leg is a new one, recorded on a new demand.
    result = h.bus.execute(recc.RecordCall(contact_id=contact_id), Actor("op2", "agent")).result
    assert (result["agent_id"], result["requested_by"]) == ("op2", "op2")
    with pytest.raises(InvalidTransition) as again:
        h.bus.execute(recc.RecordCall(contact_id=contact_id), Actor("op2", "agent"))
    assert again.value.code == "already_recording"
    assert [e.data["agent_id"] for e in demands_of(h, contact_id)] == ["op1", "op2"]


def test_the_desk_shows_the_agent_their_call_is_recorded(hotline: Hotline, client: SignedInClient) -> None:
    """Asked (until the PBX starts it), recording (asked or by the queue's policy), and no
    more once the recording or the agent's leg ends."""
    h = hotline
    setup(h)
    recorder = Recorder(h.bus, h.attachments)

    def shown(agent: str, contact_id: str) -> list[str | None]:
        desk = client.get(f"/agents/{agent}/desk", headers=actor(agent, "agent")).json()
        return [c["recording"] for c in desk["contacts"] if c["contact_id"] == contact_id]

    asked = call(h, "op1")
    assert shown("op1", asked) == [None]
    assert demand(client, asked, actor("op1", "agent")).status_code == 202
    assert shown("op1", asked) == ["asked"]
    recorder.started("hl-rec.asked", asked, "op1", None, "agent_demand", h.clock.now())
    assert shown("op1", asked) == ["recording"]
    # A cold transfer: the old bridge, and its recording, went; op2's leg is not recorded.
    h.bus.execute(cc.Transfer(contact_id=asked, agent_id="op1", to_agent_id="op2"), Actor("op1", "agent"))
    h.bus.execute(cc.Answer(contact_id=asked, agent_id="op2"), Actor("op2", "agent"))
    assert shown("op2", asked) == [None]

    policy(h, "all")
    recorded = call(h, "op3")
    assert shown("op3", recorded) == [None]  # until the PBX starts recording it
    recorder.started("hl-rec.policy", recorded, "op3", None, "policy", h.clock.now())
    assert shown("op3", recorded) == ["recording"]
    recorder.finished("hl-rec.policy", wav(), 0.5)  # the recording of its bridge ended
    assert shown("op3", recorded) == [None]


def test_the_desk_offers_to_record_only_where_the_queues_policy_allows_a_demand(hotline: Hotline) -> None:
    from fastapi.testclient import TestClient

    from tests.identity.test_console_offers import page

    h = hotline
    setup(h, mode="none")
    contact_id = call(h, "op1")
    record = f'data-api="/contacts/{contact_id}/recording"'
    with TestClient(create_app(hotline=h)) as browser:
        assert record not in page(browser, h, "/console/desk/contact", "op1", "agent")  # none: never
        policy(h, "on_demand")
        shown = page(browser, h, "/console/desk/contact", "op1", "agent")
        assert record in shown and "data-recording" not in shown
        h.bus.execute(recc.RecordCall(contact_id=contact_id), Actor("op1", "agent"))
        shown = page(browser, h, "/console/desk/contact", "op1", "agent")
        assert record not in shown and 'data-recording="asked"' in shown
        policy(h, "all")  # every call is recorded by the policy: nothing to ask
        other = call(h, "op2")
        assert f'data-api="/contacts/{other}/recording"' not in page(browser, h, "/console/desk/contact", "op2", "agent")
