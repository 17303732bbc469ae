"""Replies without an SMTP server or SMS gateway: the local outbox (infra/outbox.py), the
endpoints that show it, a request's messages with their failures, and the notifier
running inside `hotline serve` on the embedded default.

Oracles: the .eml files are parsed with the stdlib's own parser, the JSON with json, the
expected addresses and texts are the ones the test registered."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from datetime import timedelta
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import phonenumbers
import pytest

from api.app import create_app
from consumers.notifications import NotificationConsumer, runs_in_serve
from domain.base import FixedClock, SystemClock
from domain.notifications.aggregate import RetryPolicy, message_id, notification_id
from infra.outbox import OutboxGateway, OutboxMail
from infra.runtime import Hotline
from infra.settings import Settings
from infra.smtp import SmtpSender
from projections import notifications as read_model
from tests.auth import SignedInClient, actor
from tests.conftest import START, load_catalogue
from tests.sla.conftest import load_calendars, start
from tests.sla.servers import free_port

AGENT = actor("op1", "agent")
ROADS = actor("roads", "department", ["transport"])
ENV = actor("env", "department", ["environment"])
SUP = actor("sup1", "supervisor")
ANALYST = actor("an1", "analyst")
MAIL = "giulia.bianchi@example.it"
PHONE = "+39 06 4567 8901"
REPLY = "La buca in via Appia Nuova è stata chiusa dalla squadra stradale."


@pytest.fixture
def hotline(tmp_path: Path) -> Iterator[Hotline]:
    h = start(Settings(data_dir=tmp_path, jurisdiction="rome"), FixedClock(START))
    yield h
    h.close()


@pytest.fixture
def client(hotline: Hotline) -> Iterator[SignedInClient]:
    with SignedInClient(create_app(hotline=hotline)) as tc:
        yield tc


def reply_through_api(client: SignedInClient, *, reply_channel: str, message: str = REPLY) -> str:
    """Register, dispatch, accept and answer a pothole complaint the way the console does."""
    r = client.post(
        "/requests",
        json={
            "kind": "action",
            "subtype": "complaint",
            "channel": "phone",
            "description": "Buca profonda davanti al civico 12",
            "problem_code": "pothole",
            "language": "it",
            "reply_channel": reply_channel,
            "contact": {"name": "Giulia Bianchi", "email": MAIL, "phone": PHONE},
        },
        headers=AGENT,
    )
    assert r.status_code == 201, r.text
    ref = str(r.json()["reference"])
    for path, body, who in (
        ("dispatch", {}, AGENT),
        ("accept", {"department_id": "transport"}, ROADS),
        ("reply", {"message": message}, ROADS),
    ):
        r = client.post(f"/requests/{ref}/{path}", json=body, headers=who)
        assert r.status_code == 200, (path, r.text)
    return ref


def final_reply_row(hotline: Hotline) -> dict[str, Any]:
    with hotline.read_store.engine.connect() as conn:
        rows = [r for r in read_model.listing(conn, limit=1000) if r["purpose"] == "final_reply"]
    assert len(rows) == 1, rows
    return rows[0]


def test_an_email_reply_is_an_rfc5322_message_in_the_outbox(client: SignedInClient, hotline: Hotline, tmp_path: Path) -> None:
    ref = reply_through_api(client, reply_channel="email")
    notifier = NotificationConsumer.from_settings(hotline)
    assert notifier.delivery()["email"] == f"outbox {tmp_path / 'outbox' / 'email'}"
    notifier.run_once()

    row = final_reply_row(hotline)
    files = list((tmp_path / "outbox" / "email").glob(f"*-{row['id']}.eml"))
    assert len(files) == 1, list((tmp_path / "outbox").rglob("*"))
    raw = files[0].read_bytes()
    assert b"\r\n" in raw and raw.count(b"\n") == raw.count(b"\r\n"), "the wire format has CRLF line ends"
    mail = message_from_bytes(raw, policy=policy.default)
    assert isinstance(mail, EmailMessage)
    assert mail["To"] == MAIL and mail["Message-ID"] == message_id(row["key"])
    assert mail["Content-Language"] == "it" and mail["X-Hotline-Request-Id"] == row["request_id"]
    text = mail.get_body(("plain",))
    assert text is not None and REPLY in text.get_content()  # type: ignore[attr-defined]
    html = mail.get_body(("html",))
    assert html is not None and "via Appia Nuova" in html.get_content()  # type: ignore[attr-defined]
    # Recorded as sent, and where it went.
    assert row["status"] == "sent" and row["provider_ref"] == f"outbox:email/{files[0].name}"

    listed = client.get("/outbox", headers=SUP).json()
    assert listed["total"] >= 1 and listed["folder"] == str(tmp_path / "outbox")
    entry = next(m for m in listed["messages"] if m["id"] == row["id"])
    assert entry["to"] == MAIL and entry["channel"] == "email" and entry["subject"] == mail["Subject"] and entry["reference"] == ref
    assert client.get("/outbox", params={"request": ref}, headers=SUP).json()["total"] == 1
    one = client.get(f"/outbox/{row['id']}", headers=SUP).json()
    assert REPLY in one["body"] and one["headers"]["To"] == MAIL
    r = client.get(f"/outbox/{row['id']}/raw", headers=SUP)
    assert r.status_code == 200 and r.headers["content-type"].startswith("message/rfc822") and r.content == raw

    on_case = client.get(f"/requests/{ref}/notifications", headers=ROADS).json()
    assert on_case["reference"] == ref and on_case["undelivered"] == 0
    [message] = [m for m in on_case["messages"] if m["purpose"] == "final_reply"]
    assert message["status"] == "sent" and message["outbox"] == f"email/{files[0].name}" and message["last_error"] is None

    # Another round (or a restarted notifier) sends nothing again.
    before = sorted((tmp_path / "outbox").rglob("*.*"))
    NotificationConsumer.from_settings(hotline).run_once()
    assert sorted((tmp_path / "outbox").rglob("*.*")) == before


def test_an_sms_reply_is_a_json_file_with_the_citizens_number(client: SignedInClient, hotline: Hotline, tmp_path: Path) -> None:
    reply_through_api(client, reply_channel="sms", message="Buca chiusa.")
    NotificationConsumer.from_settings(hotline).run_once()
    row = final_reply_row(hotline)
    [path] = list((tmp_path / "outbox" / "sms").glob(f"*-{row['id']}.json"))
    doc = json.loads(path.read_text("utf-8"))
    e164 = phonenumbers.format_number(phonenumbers.parse(PHONE), phonenumbers.PhoneNumberFormat.E164)
    assert doc["to"] == e164 and "Buca chiusa." in doc["body"] and doc["channel"] == "sms" and doc["language"] == "it"
    assert row["status"] == "sent" and row["provider_ref"] == f"outbox:sms/{path.name}"
    assert client.get(f"/outbox/{row['id']}", headers=SUP).json()["to"] == e164


def test_a_failed_reply_is_visible_on_the_request(client: SignedInClient, hotline: Hotline, tmp_path: Path) -> None:
    ref = reply_through_api(client, reply_channel="email")
    # An SMTP server is configured, and nobody listens there.
    notifier = NotificationConsumer(
        hotline,
        email=SmtpSender("127.0.0.1", free_port(), "hotline@comune.example", timeout=2),
        gateway=None,
        retry=RetryPolicy(max_attempts=2, first_retry=timedelta(minutes=1)),
    )
    notifier.run_once()
    case = client.get(f"/requests/{ref}/notifications", headers=AGENT).json()
    [reply] = [m for m in case["messages"] if m["purpose"] == "final_reply"]
    assert reply["status"] == "failed" and "unreachable" in reply["last_error"] and reply["next_attempt_at"]
    assert case["undelivered"] == 1 and case["counts"]["failed"] == 1

    clock = hotline.clock
    assert isinstance(clock, FixedClock)
    clock.advance(minutes=2)
    notifier.run_once()
    case = client.get(f"/requests/{ref}/notifications", headers=AGENT).json()
    [reply] = [m for m in case["messages"] if m["purpose"] == "final_reply"]
    assert reply["status"] == "dead_lettered" and reply["attempts"] == 2 and "gave up after 2 attempts" in reply["last_error"]
    assert case["undelivered"] == 1 and reply["outbox"] is None
    assert not (tmp_path / "outbox").exists(), "a configured server is not replaced by the outbox"


def test_who_may_read_the_outbox_and_a_requests_messages(client: SignedInClient, hotline: Hotline) -> None:
    ref = reply_through_api(client, reply_channel="email")
    NotificationConsumer.from_settings(hotline).run_once()
    nid = final_reply_row(hotline)["id"]
    assert client.get("/outbox", headers=ANALYST).status_code == 403  # no personal data for analysts
    assert client.get(f"/outbox/{nid}", headers=AGENT).status_code == 403
    assert client.request("GET", "/outbox", anonymous=True).status_code == 401
    assert client.get(f"/outbox/{nid}", headers=actor("aud1", "auditor")).status_code == 200
    assert client.get(f"/requests/{ref}/notifications", headers=ENV).status_code == 403  # not their department
    assert client.get(f"/requests/{ref}/notifications", headers=ROADS).status_code == 200
    bad = client.get("/outbox", params={"channel": "pigeon"}, headers=SUP)
    assert bad.status_code == 422 and "email" in json.dumps(bad.json())
    assert client.get("/outbox/not-a-uuid", headers=SUP).status_code == 404
    assert client.get(f"/outbox/{notification_id('never sent')}", headers=SUP).status_code == 404
    assert client.get("/requests/XX-0000/notifications", headers=SUP).status_code == 404


def test_the_outbox_writes_a_message_once(tmp_path: Path) -> None:
    clock = FixedClock(START)
    mail = OutboxMail(tmp_path, clock.now, "hotline@example.org")
    first = mail.send(to="a@example.org", subject="S", body="B", html=None, language="en", key="k1")
    clock.advance(minutes=5)
    again = mail.send(to="a@example.org", subject="S", body="B", html=None, language="en", key="k1")
    assert first == again and len(list((tmp_path / "email").iterdir())) == 1
    assert first == f"outbox:email/{START:%Y%m%dT%H%M%S}000000Z-{notification_id('k1')}.eml"
    sms = OutboxGateway(tmp_path, clock.now)
    assert sms.send(channel="voicemail", to="+390612345678", body="B", language="it", key="k2").startswith("outbox:voicemail/")
    assert [p.suffix for p in (tmp_path / "voicemail").iterdir()] == [".json"]


def test_the_notifier_runs_in_serve_only_on_the_embedded_default(tmp_path: Path) -> None:
    pg = "postgresql://postgres@127.0.0.1:55432/hotline"
    assert runs_in_serve(Settings(data_dir=tmp_path))
    assert not runs_in_serve(Settings(data_dir=tmp_path, database_url=pg))
    assert not runs_in_serve(Settings(data_dir=tmp_path, kafka_bootstrap_servers="127.0.0.1:9092"))
    assert runs_in_serve(Settings(data_dir=tmp_path, database_url=pg, notifier_inprocess=True))
    assert not runs_in_serve(Settings(data_dir=tmp_path, notifier_inprocess=False))


def test_serve_sends_a_reply_to_the_outbox_by_itself(tmp_path: Path) -> None:
    """The app as `hotline serve` runs it (real clock, its lifespan starts the background
    work): a reply reaches the outbox with nobody running `hotline notify`."""
    h = Hotline.start(Settings(data_dir=tmp_path, jurisdiction="rome", notify_poll_seconds=0.05), SystemClock())
    try:
        load_catalogue(h)
        load_calendars(h)
        with SignedInClient(create_app(hotline=h)) as client:
            assert "notifier" in h.extras
            ref = reply_through_api(client, reply_channel="email")
            deadline = time.monotonic() + 30
            listed: dict[str, Any] = {}
            while time.monotonic() < deadline:
                listed = client.get("/outbox", params={"request": ref}, headers=SUP).json()
                if listed["total"]:
                    break
                time.sleep(0.1)
            assert listed.get("total") == 1, listed
            [entry] = listed["messages"]
            assert entry["to"] == MAIL
            assert REPLY in client.get(f"/outbox/{entry['id']}", headers=SUP).json()["body"]
            case = client.get(f"/requests/{ref}/notifications", headers=SUP).json()
            assert [m["status"] for m in case["messages"]] == ["sent"]
    finally:
        h.close()
