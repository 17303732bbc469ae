"""Notifications through real channels: aiosmtpd on loopback for email, a local HTTP
server standing in for the SMS / fax / voicemail provider."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from consumers.notifications import NOTIFIER, NotificationConsumer
from consumers.timers import TimerProcess
from domain.base import Actor, FixedClock, Forbidden
from domain.notifications import commands as nc
from domain.notifications.aggregate import RetryPolicy, message_id
from domain.notifications.messages import render
from domain.requests import commands as c
from infra.read_store import positions
from infra.runtime import Hotline
from infra.settings import Settings
from infra.sms_gateway import GatewaySender
from infra.smtp import SmtpSender
from projections import notifications as read_model
from tests.conftest import START
from tests.sla.conftest import AGENT, ROADS, register, request_events, run, start
from tests.sla.servers import Provider, SmtpServer

SUP = Actor("sup1", "supervisor")


@pytest.fixture
def smtp() -> Iterator[SmtpServer]:
    with SmtpServer() as server:
        yield server


@pytest.fixture
def provider() -> Iterator[Provider]:
    with Provider() as p:
        yield p


@pytest.fixture
def hotline(tmp_path: Path) -> Iterator[Hotline]:
    h = start(Settings(data_dir=tmp_path, jurisdiction="rome"), FixedClock(START))
    yield h
    h.close()


def consumer(h: Hotline, smtp: SmtpServer, provider: Provider, **kw: object) -> NotificationConsumer:
    return NotificationConsumer(
        h,
        email=SmtpSender("127.0.0.1", smtp.port, "hotline@comune.example"),
        gateway=GatewaySender(provider.url, retries=2, backoff=0.01, sleep=lambda _s: None),
        department_mail="{department_id}@uffici.example",
        **kw,  # type: ignore[arg-type]
    )


def replied(h: Hotline, **kw: object) -> dict:
    req = register(h, problem_code="pothole", **kw)
    run(h, c.Dispatch(ref=req["reference"]), AGENT)
    run(h, c.Accept(ref=req["reference"], department_id="transport"), ROADS)
    run(h, c.FinalReply(ref=req["reference"], message="La buca è stata riparata."), ROADS)
    return req


def _part(mail: Any, kind: str) -> str:
    part = mail.get_body((kind,))
    assert part is not None, f"no {kind} part"
    return str(part.get_content())


def notification_events(h: Hotline) -> list[str]:
    return [e.name for e in h.store.iter_envelopes() if e.stream == "notification"]


def test_final_reply_by_email_in_the_citizens_language(hotline: Hotline, smtp: SmtpServer, provider: Provider) -> None:
    req = replied(hotline, language="it", reply_channel="email")
    sender = consumer(hotline, smtp, provider)
    assert sender.run_once() == 1
    [mail] = smtp.messages
    assert mail["To"] == "mario@example.it"
    assert mail["Subject"] == f"La sua richiesta {req['reference']}: risposta"
    assert "La buca è stata riparata." in _part(mail, "plain")
    assert mail["Message-ID"] == message_id(mail["X-Hotline-Idempotency-Key"])
    assert notification_events(hotline) == ["queued", "attempt_started", "sent"]
    # A restarted consumer that reads the whole log again sends nothing twice.
    with hotline.read_store.engine.begin() as conn:
        conn.execute(sa.delete(positions).where(positions.c.name == "notifier"))
    assert consumer(hotline, smtp, provider).run_once() == 0
    assert len(smtp.messages) == 1
    assert notification_events(hotline) == ["queued", "attempt_started", "sent"]


def test_arabic_reply_is_right_to_left(hotline: Hotline, smtp: SmtpServer, provider: Provider) -> None:
    replied(hotline, language="ar", reply_channel="email")
    consumer(hotline, smtp, provider).run_once()
    [mail] = smtp.messages
    html = _part(mail, "html")
    text = _part(mail, "plain")
    assert 'dir="rtl"' in html and 'lang="ar"' in html
    assert all(line.startswith("\u200f") for line in text.strip().split("\n"))
    assert "عزيزي المواطن" in text
    assert mail["Content-Language"] == "ar"


def test_chinese_and_fallback_templates() -> None:
    from consumers.notifications import load_templates

    templates = load_templates()
    assert set(templates) == {"zh", "ar", "it", "en"}
    lang, subject, _, _ = render(templates, "final_reply", "zh", {"reference": "123"})
    assert (lang, subject) == ("zh", "您的诉求 123：答复")
    lang, subject, _, _ = render(templates, "final_reply", "fr", {"reference": "123"})
    assert (lang, subject) == ("en", "Your request 123: answer")
    for doc in templates.values():  # every language has every purpose
        assert set(doc["messages"]) == set(templates["en"]["messages"])


def test_sms_through_the_gateway_with_retries(hotline: Hotline, smtp: SmtpServer, provider: Provider) -> None:
    req = replied(hotline, language="it", reply_channel="sms")
    provider.fail_next = 2  # the adapter retries with backoff inside one attempt
    assert consumer(hotline, smtp, provider).run_once() == 1
    assert len(provider.calls) == 3
    [(key, body)] = provider.delivered.items()
    assert body["channel"] == "sms" and body["to"] == "+390612345678" and req["reference"] in body["body"]
    assert key.endswith(":final_reply")
    assert notification_events(hotline) == ["queued", "attempt_started", "sent"]


def test_failing_message_is_retried_then_dead_lettered_then_retried_by_an_operator(
    hotline: Hotline, smtp: SmtpServer, provider: Provider
) -> None:
    clock = hotline.clock
    assert isinstance(clock, FixedClock)
    replied(hotline, language="en", reply_channel="phone")  # an automatic voicemail
    provider.fail_next = 10_000
    sender = consumer(hotline, smtp, provider, retry=RetryPolicy(max_attempts=3, first_retry=timedelta(minutes=1)))
    assert sender.run_once() == 0
    with hotline.read_store.engine.connect() as conn:
        [row] = read_model.listing(conn)
    assert row["status"] == "failed" and row["next_attempt_at"] == clock.now() + timedelta(minutes=1)
    assert sender.run_once() == 0  # not yet due: no attempt
    clock.advance(minutes=1)
    sender.run_once()
    clock.advance(minutes=2)  # backoff doubles
    sender.run_once()
    assert notification_events(hotline) == [
        "queued",
        *["attempt_started", "attempt_failed"] * 3,
        "dead_lettered",
    ]
    with hotline.read_store.engine.connect() as conn:
        assert [r["status"] for r in read_model.listing(conn, status="dead_lettered")] == ["dead_lettered"]
    # The provider recovers; an operator retries the dead letter.
    provider.fail_next = 0
    with pytest.raises(Forbidden):
        hotline.bus.execute(nc.RetryNotification(notification_id=row["id"], reason="again"), ROADS)
    hotline.bus.execute(nc.RetryNotification(notification_id=row["id"], reason="provider fixed"), SUP)
    assert sender.run_once() == 1
    assert notification_events(hotline)[-3:] == ["retry_requested", "attempt_started", "sent"]
    assert next(iter(provider.delivered.values()))["channel"] == "voicemail"


def test_permanent_refusal_goes_straight_to_dead_letter(hotline: Hotline, smtp: SmtpServer, provider: Provider) -> None:
    replied(hotline, reply_channel="sms")
    provider.refuse = True
    consumer(hotline, smtp, provider).run_once()
    assert notification_events(hotline) == ["queued", "attempt_started", "attempt_failed", "dead_lettered"]


def test_sla_alerts_go_to_the_department_and_the_control_office(hotline: Hotline, smtp: SmtpServer, provider: Provider) -> None:
    clock = hotline.clock
    assert isinstance(clock, FixedClock)
    req = register(hotline, urgency="urgent", problem_code="pothole")
    run(hotline, c.Dispatch(ref=req["reference"]), AGENT)
    clock.advance(days=5)
    TimerProcess(hotline).tick()
    consumer(hotline, smtp, provider).run_once()
    by_to: dict[str, list[str]] = {}
    for m in smtp.messages:
        by_to.setdefault(m["To"], []).append(m["Subject"])
    assert any("scaduta" in subj for subj in by_to["transport@uffici.example"])  # staff language: it
    assert any(subj.startswith("[Sollecito 1]") for subj in by_to["transport@uffici.example"])
    assert [subj for subj in by_to["control@uffici.example"] if subj.startswith("[Escalation]")]
    kinds = [e.name for e in request_events(hotline, req["id"])]
    assert kinds.count("reminder_sent") == len([x for x in by_to["transport@uffici.example"] if x.startswith("[Sollecito")])


def test_in_doubt_email_is_dead_lettered_not_resent(hotline: Hotline, smtp: SmtpServer, provider: Provider) -> None:
    replied(hotline, reply_channel="email")
    first = consumer(hotline, smtp, provider)
    first.follow()
    first.catch_up()
    with hotline.read_store.engine.connect() as conn:
        [row] = read_model.due(conn, hotline.clock.now())
    # The first consumer starts the attempt and dies before recording the outcome.
    hotline.bus.execute(nc.StartAttempt(notification_id=str(uuid.UUID(row["id"]))), NOTIFIER)
    second = consumer(hotline, smtp, provider)
    second.run_once()
    assert smtp.messages == []
    assert notification_events(hotline)[-3:] == ["attempt_started", "attempt_failed", "dead_lettered"]
