"""SMS in (issue 16, item 3): the provider's signed webhook, STOP / START honoured by the
notifier, a reference in the text threading it to the citizen's own request, retries
idempotent. On SQLite and PostgreSQL; the provider's outbound side is a real local HTTP
server (tests/sla/servers.py), the signature computed here with hmac/hashlib."""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from consumers.notifications import NotificationConsumer
from domain.base import SYSTEM, Actor, FixedClock
from domain.citizens.aggregate import sms_keyword
from domain.contact_center import commands as ccc
from domain.contact_center.contacts import Contact, contact_uuid_for
from domain.requests import commands as rc
from domain.requests.aggregate import ServiceRequest, request_id_for
from domain.requests.sla import WAITING
from infra.runtime import Hotline
from infra.settings import Settings
from infra.sms_gateway import GatewaySender
from infra.smtp import SmtpSender
from projections import notifications as notification_log
from tests.auth import bearer
from tests.conftest import load_catalogue
from tests.sla.servers import Provider

SECRET = "s3cret-shared-with-the-provider"
URL = "/channels/sms/inbound"
MARIO = "+39 347 123 4567"  # as an operator typed it
MARIO_E164 = "+393471234567"  # as the provider sends it
ANNA_E164 = "+393479876543"
AGENT = Actor("op1", "agent")
Json = dict[str, Any]


@pytest.fixture
def hotline(store_settings: Settings, clock: FixedClock) -> Iterator[Hotline]:
    h = Hotline.start(store_settings.model_copy(update={"sms_inbound_secret": SECRET}), clock)
    load_catalogue(h)
    # Where texts from numbers nobody knows go (HOTLINE_SMS_INBOUND_QUEUE).
    h.bus.execute(ccc.DefineQueue(queue_id="chat", media="chat"), SYSTEM)
    yield h
    h.close()


@pytest.fixture
def client(hotline: Hotline) -> Iterator[TestClient]:
    with TestClient(create_app(hotline=hotline)) as c:
        yield c


@pytest.fixture
def provider() -> Iterator[Provider]:
    with Provider() as p:
        yield p


def sms(msg_id: str, sender: str, body: str) -> Json:
    return {"id": msg_id, "from": sender, "to": "+390600000000", "body": body, "received_at": "2026-11-16T09:00:00Z"}


def signed(payload: Json, at: int, secret: str = SECRET) -> tuple[bytes, dict[str, str]]:
    raw = json.dumps(payload).encode()
    digest = hmac.new(secret.encode(), str(at).encode() + b"." + raw, hashlib.sha256).hexdigest()
    return raw, {"Content-Type": "application/json", "X-Hotline-Signature": digest, "X-Hotline-Timestamp": str(at)}


def now_s(hotline: Hotline) -> int:
    return int(hotline.clock.now().timestamp())


def deliver(client: TestClient, hotline: Hotline, payload: Json) -> Json:
    raw, headers = signed(payload, now_s(hotline))
    r = client.post(URL, content=raw, headers=headers)
    assert r.status_code == 200, r.text
    answer: Json = r.json()
    assert answer["accepted"] is True and answer["message_id"] == payload["id"]
    return answer


def request_of(hotline: Hotline, ref: str) -> ServiceRequest:
    r: ServiceRequest = hotline.store.repository.get(request_id_for(ref))
    return r


def events_of(hotline: Hotline, aggregate_id: str) -> list[Any]:
    return [e for e in hotline.store.envelopes(0, 100_000) if e.aggregate_id == aggregate_id]


def register_by_agent(hotline: Hotline, phone: str = MARIO, name: str = "Mario Rossi") -> Json:
    cmd = rc.RegisterRequest(
        kind="information", channel="phone", description="When is the bulky waste collected?", contact=rc.Contact(name=name, phone=phone)
    )
    return hotline.bus.execute(cmd, AGENT).result


# ---------------------------------------------------------------------- the signature
def test_unsigned_wrong_or_replayed_calls_are_401_and_record_nothing(client: TestClient, hotline: Hotline) -> None:
    register_by_agent(hotline)
    payload = sms("prov-1", MARIO_E164, "The streetlight in Via Roma 3 is out")
    before = hotline.store.max_position()
    at = now_s(hotline)
    raw, good = signed(payload, at)
    attempts: dict[str, tuple[bytes, dict[str, str]]] = {
        "unsigned": (raw, {"Content-Type": "application/json"}),
        "wrong secret": signed(payload, at, secret="not-the-secret"),
        "signature of another body": (json.dumps(sms("prov-1", MARIO_E164, "something else")).encode(), good),
        "timestamp changed after signing": (raw, {**good, "X-Hotline-Timestamp": str(at + 1)}),
        "no timestamp": (raw, {k: v for k, v in good.items() if k != "X-Hotline-Timestamp"}),
        "garbage signature": (raw, {**good, "X-Hotline-Signature": "zz"}),
        # Signed correctly, but 5 minutes and 1 second ago: a captured call replayed.
        "replayed later": signed(payload, at - 301),
        "from the future": signed(payload, at + 301),
    }
    for what, (body, headers) in attempts.items():
        r = client.post(URL, content=body, headers=headers)
        assert r.status_code == 401, f"{what}: {r.status_code} {r.text}"
        error = r.json()["error"]
        assert error["status"] == 401 and error["code"] == "unauthenticated", what
    assert hotline.store.max_position() == before, "a refused call recorded something"
    # Within the window the same call is taken (the clock moved 4 minutes on).
    hotline.clock.advance(minutes=4)  # type: ignore[attr-defined]
    r = client.post(URL, content=raw, headers=good)
    assert r.status_code == 200, r.text
    assert hotline.store.max_position() > before


def test_sha256_prefix_and_the_text_field_are_accepted(client: TestClient, hotline: Hotline) -> None:
    register_by_agent(hotline)
    payload = {"id": "prov-2", "from": MARIO_E164, "text": "Rubbish not collected in Via Po"}
    raw, headers = signed(payload, now_s(hotline))
    headers["X-Hotline-Signature"] = "sha256=" + headers["X-Hotline-Signature"]
    r = client.post(URL, content=raw, headers=headers)
    assert r.status_code == 200, r.text
    assert request_of(hotline, r.json()["reference"]).description == "Rubbish not collected in Via Po"


def test_without_a_shared_secret_no_signature_is_accepted(client: TestClient, hotline: Hotline) -> None:
    hotline.settings.sms_inbound_secret = None
    before = hotline.store.max_position()
    raw, headers = signed(sms("prov-3", MARIO_E164, "hello"), now_s(hotline))
    r = client.post(URL, content=raw, headers=headers)
    assert r.status_code == 401 and "HOTLINE_SMS_INBOUND_SECRET" in r.json()["error"]["message"]
    assert hotline.store.max_position() == before


def test_the_rule_staff_tokens_are_refused_the_system_is_not(client: TestClient, hotline: Hotline) -> None:
    register_by_agent(hotline)
    raw = json.dumps(sms("prov-4", MARIO_E164, "Noise from the bar every night")).encode()
    before = hotline.store.max_position()
    for role in ("agent", "supervisor", "administrator", "integrator"):
        r = client.post(URL, content=raw, headers={"Content-Type": "application/json", **bearer(hotline.settings, f"{role}-1", role)})
        assert r.status_code == 403, f"{role}: {r.text}"
        assert r.json()["error"]["details"]["permission"] == "channels.sms_receive"
    assert hotline.store.max_position() == before
    # The hotline's own system credentials (replaying a provider's log by hand) are taken.
    r = client.post(URL, content=raw, headers={"Content-Type": "application/json", **bearer(hotline.settings, "ops", "system")})
    assert r.status_code == 200 and r.json()["action"] == "registered", r.text
    doc = client.get("/openapi.json").json()["paths"][URL]["post"]
    assert doc["x-permission"] == "channels.sms_receive" and doc["x-public"] is False


# ---------------------------------------------------------------------- what a text does
def test_a_text_registers_a_request_from_the_citizen_known_by_phone(client: TestClient, hotline: Hotline) -> None:
    known = register_by_agent(hotline)
    answer = deliver(client, hotline, sms("prov-10", MARIO_E164, "  The streetlight in Via Roma 3 is out  "))
    assert answer["action"] == "registered" and answer["duplicate"] is False
    r = request_of(hotline, answer["reference"])
    assert r.reference != known["reference"]
    assert r.channel == "sms" and r.reply_channel == "sms"
    assert r.description == "The streetlight in Via Roma 3 is out"
    assert r.citizen_id == known["citizen_id"], "the number's citizen was not recognised"
    assert r.personal is not None and r.personal["phone"] == MARIO_E164
    # Registered by the SMS channel (the provider's signature), as the audit trail says.
    registered = events_of(hotline, str(r.id))[0]
    assert (registered.meta["actor_id"], registered.meta["actor_role"]) == ("channel:sms", "system")
    assert r.personal["name"] == "Mario Rossi"  # the name on record: the intake policy wants one


def test_a_number_nobody_knows_goes_to_an_agent(client: TestClient, hotline: Hotline) -> None:
    """The intake policy wants a name and a number is none: the text becomes an SMS
    contact in the chat queue, for an agent to ask the name and register the request."""
    before = [e for e in hotline.store.envelopes(0, 100_000) if e.stream == "request"]
    answer = deliver(client, hotline, sms("prov-11", ANNA_E164, "Bus 64 skipped my stop"))
    assert answer["action"] == "queued_for_agent"
    assert [e for e in hotline.store.envelopes(0, 100_000) if e.stream == "request"] == before
    contact: Contact = hotline.store.repository.get(contact_uuid_for("sms:prov-11"))
    assert str(contact.id) == answer["contact_id"]
    assert (contact.channel, contact.queue_id, contact.subject) == ("sms", "chat", "Bus 64 skipped my stop")
    assert contact.personal is not None and contact.personal["phone"] == ANNA_E164
    position = hotline.store.max_position()
    assert deliver(client, hotline, sms("prov-11", ANNA_E164, "Bus 64 skipped my stop"))["duplicate"] is True
    assert hotline.store.max_position() == position
    # Once the citizen is known with a name, the next text registers a request of theirs.
    anna = register_by_agent(hotline, phone=ANNA_E164, name="Anna Bianchi")
    answer = deliver(client, hotline, sms("prov-12", ANNA_E164, "Bus 64 again"))
    assert answer["action"] == "registered"
    assert request_of(hotline, answer["reference"]).citizen_id == anna["citizen_id"]


def test_a_retried_delivery_does_nothing_again(client: TestClient, hotline: Hotline) -> None:
    known = register_by_agent(hotline)
    payload = sms("prov-20", MARIO_E164, "Fallen tree on Via Appia")
    first = deliver(client, hotline, payload)
    after_first = hotline.store.max_position()
    hotline.clock.advance(seconds=30)  # type: ignore[attr-defined]
    for _ in range(2):  # the provider signs each retry afresh
        again = deliver(client, hotline, payload)
        assert again["duplicate"] is True
    assert hotline.store.max_position() == after_first
    requests = [e for e in hotline.store.envelopes(0, 100_000) if e.stream == "request" and e.name == "registered"]
    assert [e.data["reference"] for e in requests] == [known["reference"], first["reference"]]
    # A STOP retried is one opt-out.
    stop = sms("prov-21", MARIO_E164, "STOP")
    assert deliver(client, hotline, stop)["action"] == "opted_out"
    position = hotline.store.max_position()
    assert deliver(client, hotline, stop)["duplicate"] is True
    assert hotline.store.max_position() == position


def test_simultaneous_duplicates_register_once(client: TestClient, hotline: Hotline) -> None:
    """The provider's retry can overlap the first delivery: both race, one request."""
    register_by_agent(hotline)
    raw, headers = signed(sms("prov-25", MARIO_E164, "Water leak in Via Flaminia 40"), now_s(hotline))
    with ThreadPoolExecutor(max_workers=6) as pool:
        answers = list(pool.map(lambda _: client.post(URL, content=raw, headers=headers), range(6)))
    assert [a.status_code for a in answers] == [200] * 6, [a.text for a in answers]
    registered = [
        e for e in hotline.store.envelopes(0, 100_000) if e.stream == "request" and e.name == "registered" and e.data["channel"] == "sms"
    ]
    assert len(registered) == 1
    references = {a.json().get("reference") for a in answers} - {None}
    assert references == {registered[0].data["reference"]}


def test_a_reference_threads_the_text_to_the_citizens_own_request(client: TestClient, hotline: Hotline) -> None:
    mine = register_by_agent(hotline)
    ref = mine["reference"]
    hotline.bus.execute(rc.WaitForCitizen(ref=ref, reason="Which street exactly?"), AGENT)
    assert request_of(hotline, ref).status == WAITING
    text = f"Re {ref[:6]}-{ref[6:]}: it is Via Roma, corner of Via Po"
    answer = deliver(client, hotline, sms("prov-30", MARIO_E164, text))
    assert answer == {"accepted": True, "message_id": "prov-30", "duplicate": False, "action": "threaded", "reference": ref}
    r = request_of(hotline, ref)
    assert r.citizen_messages == 1
    assert r.status != WAITING, "the clock paused for the citizen did not resume"
    [wrote] = [e for e in events_of(hotline, mine["id"]) if e.name == "citizen_wrote"]
    assert wrote.data["text"] == text and wrote.data["channel"] == "sms"
    assert (wrote.meta["actor_id"], wrote.meta["actor_role"]) == (f"citizen:{mine['citizen_id']}", "citizen")
    # Retried: threaded once.
    assert deliver(client, hotline, sms("prov-30", MARIO_E164, text))["duplicate"] is True
    assert request_of(hotline, ref).citizen_messages == 1


def test_someone_elses_reference_is_not_threaded_but_registered_anew(client: TestClient, hotline: Hotline) -> None:
    marios = register_by_agent(hotline)
    anna = register_by_agent(hotline, phone=ANNA_E164, name="Anna Bianchi")  # Anna is a known citizen too
    text = f"Please close {marios['reference']}, it is fixed"
    answer = deliver(client, hotline, sms("prov-40", ANNA_E164, text))
    assert answer["action"] == "registered" and answer["reference"] != marios["reference"]
    assert request_of(hotline, marios["reference"]).citizen_messages == 0
    new = request_of(hotline, answer["reference"])
    assert new.citizen_id == anna["citizen_id"] and new.description == text
    # A number nobody knows quoting Mario's reference: not threaded either.
    answer = deliver(client, hotline, sms("prov-41", "+393331112222", f"{marios['reference']} any news?"))
    assert answer["action"] == "queued_for_agent"
    assert request_of(hotline, marios["reference"]).citizen_messages == 0
    # A reference that exists nowhere, from Mario: a new request of his.
    answer = deliver(client, hotline, sms("prov-42", MARIO_E164, "About 991231000001: still broken"))
    assert answer["action"] == "registered"
    assert request_of(hotline, answer["reference"]).citizen_id == marios["citizen_id"]


# ---------------------------------------------------------------------- STOP and START
def notifier(hotline: Hotline, provider: Provider) -> NotificationConsumer:
    return NotificationConsumer(
        hotline,
        email=SmtpSender("127.0.0.1", 9, "hotline@comune.example"),  # unused: every reply here goes by SMS
        gateway=GatewaySender(provider.url, retries=0, backoff=0.0, sleep=lambda _s: None),
    )


def test_stop_suppresses_sms_and_start_restores_it(client: TestClient, hotline: Hotline, provider: Provider) -> None:
    register_by_agent(hotline)
    ref = deliver(client, hotline, sms("prov-50", MARIO_E164, "Is the library open on Sunday?"))["reference"]
    rid = str(request_id_for(ref))
    sender = notifier(hotline, provider)

    answer = deliver(client, hotline, sms("prov-51", MARIO_E164, "Stop!"))
    assert (answer["action"], answer["changed"]) == ("opted_out", True)
    later = hotline.clock.now() + timedelta(days=3)
    hotline.bus.execute(rc.InterimReply(ref=ref, message="We are checking", delay_reason="asking the library", expected_at=later), AGENT)
    assert sender.run_once() == 0
    assert provider.calls == [], "an SMS went to a number that answered STOP"
    with hotline.read_store.engine.connect() as conn:
        [row] = notification_log.for_request(conn, rid)["messages"]
    assert row["channel"] == "sms" and row["purpose"] == "interim_reply" and row["status"] == "suppressed"
    assert "opted out of SMS" in row["last_error"] and "STOP" in row["last_error"]
    assert [e.name for e in events_of(hotline, row["id"])] == ["queued", "suppressed"]
    assert sender.stats.suppressed == 1
    # Nothing is tried again: a suppressed message is not in the sender's queue.
    hotline.clock.advance(hours=1)  # type: ignore[attr-defined]
    assert sender.run_once() == 0 and provider.calls == []

    answer = deliver(client, hotline, sms("prov-52", MARIO_E164, "start"))
    assert (answer["action"], answer["changed"]) == ("opted_in", True)
    hotline.bus.execute(rc.FinalReply(ref=ref, message="Yes, from 10 to 13"), AGENT)
    assert sender.run_once() == 1
    [call] = provider.calls
    assert call["channel"] == "sms" and call["to"] == MARIO_E164 and "10 to 13" in call["body"]
    with hotline.read_store.engine.connect() as conn:
        statuses = {m["purpose"]: m["status"] for m in notification_log.for_request(conn, rid)["messages"]}
    assert statuses == {"interim_reply": "suppressed", "final_reply": "sent"}


def test_a_stop_after_queueing_is_honoured_and_other_numbers_are_not_affected(
    client: TestClient, hotline: Hotline, provider: Provider
) -> None:
    register_by_agent(hotline)
    register_by_agent(hotline, phone=ANNA_E164, name="Anna Bianchi")
    mario = deliver(client, hotline, sms("prov-60", MARIO_E164, "Pothole in Via Nazionale"))["reference"]
    anna = deliver(client, hotline, sms("prov-61", ANNA_E164, "Pothole in Via Cavour"))["reference"]
    sender = notifier(hotline, provider)
    for ref in (mario, anna):
        hotline.bus.execute(rc.FinalReply(ref=ref, message="Repaired this morning"), AGENT)
    sender.follow()  # both replies queued, none sent yet
    assert deliver(client, hotline, sms("prov-62", MARIO_E164, "UNSUBSCRIBE"))["action"] == "opted_out"
    assert deliver(client, hotline, sms("prov-63", MARIO_E164, "quit"))["changed"] is False  # already out
    assert sender.run_once() == 1
    assert [c["to"] for c in provider.calls] == [ANNA_E164]


def test_stop_from_an_unknown_number_creates_its_citizen_opted_out(client: TestClient, hotline: Hotline, provider: Provider) -> None:
    assert deliver(client, hotline, sms("prov-70", MARIO_E164, "END"))["action"] == "opted_out"
    # The number's first request comes later, by phone: its SMS replies are still suppressed.
    ref = register_by_agent(hotline)["reference"]
    hotline.bus.execute(rc.FinalReply(ref=ref, message="Tuesdays and Fridays", channel="sms"), AGENT)
    assert notifier(hotline, provider).run_once() == 0 and provider.calls == []


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("STOP", ("opt_out", "STOP")),
        ("stop", ("opt_out", "STOP")),
        (" Stop. ", ("opt_out", "STOP")),
        ("STOPALL", ("opt_out", "STOPALL")),
        ("unsubscribe", ("opt_out", "UNSUBSCRIBE")),
        ("Cancel", ("opt_out", "CANCEL")),
        ("END", ("opt_out", "END")),
        ("quit!", ("opt_out", "QUIT")),
        ("START", ("opt_in", "START")),
        ("unstop", ("opt_in", "UNSTOP")),
        ("stop the noise at night", None),
        ("please stop", None),
        ("STOP 123", None),
        ("starter", None),
        ("", None),
    ],
)
def test_keywords_are_whole_messages(text: str, expected: tuple[str, str] | None) -> None:
    assert sms_keyword(text) == expected
