"""A phone number or email given beside a citizen's own, from a channel nobody checked
(the public web form, Open311, email-in), never opens that citizen's cases: a stranger
who wrote Giulia's number beside their own address and then signed in with the address
saw all of Giulia's cases, and her replies went to the address. Staff who spoke to the
caller still link a new detail to the citizen on record."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from domain.base import Actor, FixedClock
from domain.citizens.aggregate import Citizen, identity_id
from domain.citizens.aggregate import CitizenIdentity as Claim
from domain.requests import commands as c
from domain.requests.aggregate import request_id_for
from domain.requests.commands import Channel
from infra.runtime import Hotline
from tests.auth import bearer
from tests.identity.test_citizen_sign_in import ask_code, code_from_mail, exchange, start
from tests.sla.servers import SmtpServer

GIULIA = {"name": "Giulia Bianchi", "phone": "+39 347 555 0101"}
STRANGER = "stranger@example.org"
AGENT = Actor("op1", "agent")
WEB = Actor("anonymous", "citizen", via="anonymous")  # the public form, not signed in
EMAIL_IN = Actor("email-in", "system", "Email listener")


@pytest.fixture
def hotline(tmp_path: Path, smtp: SmtpServer, clock: FixedClock) -> Iterator[Hotline]:
    """Sign-in codes by email to the test's SMTP server."""
    h = start(tmp_path, smtp, clock)
    yield h
    h.close()


def complaint(contact: dict[str, Any], channel: Channel = "web") -> c.RegisterRequest:
    return c.RegisterRequest(
        kind="action",
        subtype="complaint",
        channel=channel,
        description="Rifiuti abbandonati",
        problem_code="illegal-dumping",
        contact=c.Contact(**contact),
    )


def register(h: Hotline, contact: dict[str, Any], actor: Actor, channel: Channel = "web") -> dict[str, Any]:
    return h.bus.execute(complaint(contact, channel), actor).result


def claim_of(h: Hotline, identifier: str) -> str | None:
    claim = h.store.read_reference(identity_id(identifier)) if identifier else None
    return claim.citizen_id if isinstance(claim, Claim) else None


def notes(h: Hotline, ref: str) -> list[str]:
    rid = request_id_for(ref)
    return [str(e.data["text"]) for e in h.store.iter_envelopes() if e.aggregate_id == str(rid) and "text" in e.data]


def test_a_web_form_with_a_citizens_number_and_a_new_address_links_nothing(hotline: Hotline) -> None:
    giulia = register(hotline, GIULIA, AGENT, channel="phone")["citizen_id"]
    web = register(hotline, {**GIULIA, "name": "Someone Else", "email": STRANGER}, WEB)

    assert web["citizen_id"] not in (None, giulia), "the request has a citizen of its own"
    assert web["identity_check"] == "not_linked"
    assert any("not_linked" in text for text in notes(hotline, web["reference"])), "the operator is told"
    assert claim_of(hotline, f"email:{STRANGER}") == web["citizen_id"], "the new address is the new citizen's"
    assert claim_of(hotline, "phone:+393475550101") == giulia, "the number stays Giulia's"
    record = hotline.store.read_reference(uuid.UUID(giulia))
    assert isinstance(record, Citizen) and record.personal.get("email") is None, "her replies do not go to the stranger"
    stranger = hotline.store.read_reference(uuid.UUID(web["citizen_id"]))
    assert stranger.personal.get("phone") is None, "Giulia's number is not on the stranger's record"


def test_email_in_with_a_citizens_number_in_the_body_is_not_filed_as_theirs(hotline: Hotline) -> None:
    mario = register(hotline, {"name": "Mario Rossi", "phone": "+39 06 1234 5678"}, AGENT, channel="phone")["citizen_id"]
    mail = register(hotline, {"name": "Mario Rossi", "phone": "06 1234 5678", "email": "evil@example.org"}, EMAIL_IN, channel="email")
    assert mail["citizen_id"] != mario and mail["identity_check"] == "not_linked"
    assert claim_of(hotline, "email:evil@example.org") == mail["citizen_id"]


def test_details_of_two_citizens_from_the_web_belong_to_neither(hotline: Hotline) -> None:
    giulia = register(hotline, GIULIA, AGENT, channel="phone")["citizen_id"]
    mario = register(hotline, {"name": "Mario Rossi", "phone": "+39 06 1234 5678", "email": "mario@example.it"}, AGENT, channel="phone")[
        "citizen_id"
    ]
    web = register(hotline, {"name": "X", "phone": GIULIA["phone"], "email": "mario@example.it"}, WEB)
    assert web["citizen_id"] is None and web["identity_check"] == "not_linked"
    assert claim_of(hotline, "phone:+393475550101") == giulia and claim_of(hotline, "email:mario@example.it") == mario


def test_what_the_citizen_on_record_gave_before_still_finds_them_from_the_web(hotline: Hotline) -> None:
    both = {"name": "Mario Rossi", "phone": "+39 06 1234 5678", "email": "mario@example.it"}
    mario = register(hotline, both, AGENT, channel="phone")["citizen_id"]
    assert register(hotline, both, WEB)["citizen_id"] == mario
    assert register(hotline, {"name": "Mario Rossi", "email": "mario@example.it"}, WEB)["citizen_id"] == mario


def test_staff_who_spoke_to_the_caller_link_a_new_address(hotline: Hotline) -> None:
    giulia = register(hotline, GIULIA, AGENT, channel="phone")["citizen_id"]
    again = register(hotline, {**GIULIA, "email": "giulia@example.it"}, AGENT, channel="phone")
    assert again["citizen_id"] == giulia and again["identity_check"] is None
    assert claim_of(hotline, "email:giulia@example.it") == giulia


def test_the_stranger_signs_in_to_their_own_request_only(client: TestClient, hotline: Hotline, smtp: SmtpServer) -> None:
    agent = bearer(hotline.settings, "agent-1", "agent")
    body = complaint(GIULIA, "phone").model_dump(mode="json")
    hers = client.post("/requests", json=body, headers=agent)
    assert hers.status_code == 201, hers.text

    posted = client.post("/requests", json={**body, "channel": "web", "contact": {**GIULIA, "name": "Someone Else", "email": STRANGER}})
    assert posted.status_code == 201, posted.text
    answer = posted.json()
    assert answer["citizen_id"] is None and answer["identity_check"] is None, "nothing about whose number it is, unsigned"

    ask_code(client, STRANGER)
    token = exchange(client, code_from_mail(smtp, STRANGER), STRANGER)
    assert token.status_code == 200, token.text
    me = {"Authorization": f"Bearer {token.json()['access_token']}"}
    listed = client.get("/requests", headers=me)
    assert listed.status_code == 200, listed.text
    assert [r["reference"] for r in listed.json()["items"]] == [answer["reference"]]
    refused = client.get(f"/requests/{hers.json()['reference']}", headers=me)
    assert refused.status_code == 403, refused.text

    seen_by_staff = client.post(
        "/requests", json={**body, "channel": "web", "contact": {**GIULIA, "email": "other@example.org"}}, headers=agent
    )
    assert seen_by_staff.json()["citizen_id"] == hers.json()["citizen_id"], "staff who spoke to her link the address"


# ------------------------------------------------------------------ tentative claims
# A stranger who writes Giulia's number beside their own address *before* she ever
# contacted the hotline: both identifiers were free, so both went to one new record. The
# number's claim is tentative (nobody checked it is the writer's); when the number is
# checked for someone (the agent who takes Giulia's call, her sign-in code) it is hers.


def signed_in(client: TestClient, smtp: SmtpServer, email: str) -> dict[str, str]:
    ask_code(client, email)
    token = exchange(client, code_from_mail(smtp, email), email)
    assert token.status_code == 200, token.text
    return {"Authorization": f"Bearer {token.json()['access_token']}"}


def listed(client: TestClient, me: dict[str, str]) -> list[str]:
    answer = client.get("/requests", headers=me)
    assert answer.status_code == 200, answer.text
    return [r["reference"] for r in answer.json()["items"]]


def test_a_number_typed_beside_a_strangers_address_is_hers_once_she_calls(client: TestClient, hotline: Hotline, smtp: SmtpServer) -> None:
    posted = client.post("/requests", json={**complaint({**GIULIA, "name": "Someone Else", "email": STRANGER}).model_dump(mode="json")})
    assert posted.status_code == 201, posted.text
    theirs = posted.json()["reference"]
    stranger = claim_of(hotline, f"email:{STRANGER}")
    assert stranger is not None and claim_of(hotline, "phone:+393475550101") == stranger, "both were free: one record"
    me = signed_in(client, smtp, STRANGER)  # the stranger's own address, checked by its code
    assert listed(client, me) == [theirs]

    call = register(hotline, GIULIA, AGENT, channel="phone")  # Giulia calls; the agent registers
    assert call["citizen_id"] not in (None, stranger), "her call is not filed on the stranger's record"
    assert claim_of(hotline, "phone:+393475550101") == call["citizen_id"], "her number is hers now"
    record = hotline.store.read_reference(uuid.UUID(stranger))
    assert isinstance(record, Citizen) and record.personal.get("phone") is None, "no SMS to her about their cases"
    assert listed(client, me) == [theirs], "the stranger does not see her case"
    assert client.get(f"/requests/{call['reference']}", headers=me).status_code == 403

    # From the web again, her number finds her record (the claim is hers and checked).
    again = register(hotline, {"name": "Giulia Bianchi", "phone": GIULIA["phone"]}, WEB)
    assert again["citizen_id"] == call["citizen_id"], "hers now: the claim was separated to her"


def test_the_stranger_who_signs_in_after_her_call_gets_a_record_of_their_own(
    client: TestClient, hotline: Hotline, smtp: SmtpServer
) -> None:
    posted = client.post("/requests", json=complaint({**GIULIA, "name": "Someone Else", "email": STRANGER}).model_dump(mode="json"))
    theirs = posted.json()["reference"]
    call = register(hotline, GIULIA, AGENT, channel="phone")  # nobody had checked the record: her number confirmed there
    me = signed_in(client, smtp, STRANGER)
    # Their address, checked now, does not open the record her call is on; their own web
    # request stays there, beside her confirmed number (they typed it so).
    assert listed(client, me) == [] and theirs != call["reference"]
    assert claim_of(hotline, f"email:{STRANGER}") != claim_of(hotline, "phone:+393475550101")


def test_a_citizen_who_gave_both_on_the_web_is_one_record_when_they_call(hotline: Hotline) -> None:
    mario = {"name": "Mario Rossi", "phone": "+39 06 1234 5678", "email": "mario@example.it"}
    web = register(hotline, mario, WEB)
    call = register(hotline, {"name": "Mario Rossi", "phone": mario["phone"]}, AGENT, channel="phone")
    assert call["citizen_id"] == web["citizen_id"], "nobody checked anything else of the record: his number is confirmed there"
    claim = hotline.store.read_reference(identity_id("phone:+390612345678"))
    assert isinstance(claim, Claim) and claim.verified


def test_unchecked_a_disputed_number_is_linked_to_nobody(client: TestClient, hotline: Hotline, smtp: SmtpServer) -> None:
    client.post("/requests", json=complaint({**GIULIA, "name": "Someone Else", "email": STRANGER}).model_dump(mode="json"))
    signed_in(client, smtp, STRANGER)  # the record has a checked address now; the number is still tentative on it
    web = register(hotline, {"name": "Giulia Bianchi", "phone": GIULIA["phone"]}, WEB)
    assert web["citizen_id"] is None and web["identity_check"] == "not_linked"
    stored = hotline.store.read_reference(request_id_for(web["reference"]))
    assert stored.personal.get("email") is None, "not completed with the stranger's address"
