"""Email in through real SMTP on loopback: the listener (aiosmtpd, ``consumers/email_in.py``)
receives what ``smtplib`` sends, and the event store says what became of it.

Oracles: the events and the attachment store (what was committed, by hash), the SMTP
reply codes (what the sending MTA acts on), the stdlib's own hashlib over the bytes sent.
Killed servers are real processes (``hotline email-in``) killed with SIGKILL or dying on
an injected fault between the commit and the 250.
"""

from __future__ import annotations

import hashlib
import logging
import os
import signal
import smtplib
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import timedelta
from email import policy
from email.message import EmailMessage
from email.utils import make_msgid
from pathlib import Path
from typing import Any

import pytest

from consumers import email_parsing
from consumers.email_in import EmailListener
from consumers.notifications import NotificationConsumer
from domain.attachments.aggregate import Attachment
from domain.base import Actor
from domain.requests import commands as c
from domain.requests.aggregate import ServiceRequest, request_id_for
from infra.outbox import OutboxGateway
from infra.runtime import Hotline
from infra.settings import Settings
from infra.smtp import SmtpSender
from tests.conftest import START
from tests.sla.servers import SmtpServer, free_port

ROOT = Path(__file__).resolve().parents[2]
HOTLINE = "hotline@comune.example"
MARIO = "mario.rossi@example.org"
SIGNATURE = "\n\nMario Rossi\nTel. 06 1234 5678\n"
AGENT = Actor("op1", "agent")
PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 8
EXE = b"MZ\x90\x00\x03\x00\x00\x00" + b"\x00" * 600  # a Windows program: not a type the hotline takes


# ---------------------------------------------------------------------- helpers
@pytest.fixture
def listener(hotline: Hotline) -> Iterator[EmailListener]:
    listener = EmailListener(hotline, "127.0.0.1", free_port()).start()
    yield listener
    listener.stop()


def mail(
    subject: str = "Lampione spento in via Roma 12",
    body: str = "Buongiorno, il lampione davanti al civico 12 è spento da tre giorni." + SIGNATURE,
    sender: str = f"Mario Rossi <{MARIO}>",
    **headers: str,
) -> EmailMessage:
    msg = EmailMessage()
    msg["From"] = sender
    msg["To"] = HOTLINE
    msg["Subject"] = subject
    msg["Message-ID"] = make_msgid(domain="example.org")
    for name, value in headers.items():
        msg[name.replace("_", "-")] = value
    msg.set_content(body)
    return msg


def wire(msg: EmailMessage) -> bytes:
    """The message as an MTA sends it: CRLF line ends (smtplib sends bytes as given)."""
    return msg.as_bytes(policy=policy.SMTP)


def send(port: int, msg: EmailMessage | bytes, envelope_from: str | None = None) -> tuple[int, bytes]:
    """Sends like an MTA (EHLO, MAIL, RCPT, DATA) and answers the DATA reply."""
    raw = msg if isinstance(msg, bytes) else wire(msg)
    with smtplib.SMTP("127.0.0.1", port, timeout=30) as smtp:
        smtp.ehlo()
        code, reply = smtp.mail(MARIO if envelope_from is None else envelope_from)
        assert code == 250, reply
        code, reply = smtp.rcpt(HOTLINE)
        assert code == 250, reply
        return smtp.data(raw)


def envelopes(h: Hotline, event: type) -> list[Any]:
    return [e for e in h.store.iter_envelopes() if e.event_class is event]


def _by_ref(h: Hotline, ref: str) -> ServiceRequest:
    found: ServiceRequest = h.store.repository.get(request_id_for(ref))
    return found


def filename_of(attached: Any) -> str | None:
    return (attached.data.get("personal") or {}).get("filename")  # personal data: erasable


def event_count(h: Hotline) -> int:
    return sum(1 for _ in h.store.iter_envelopes())


def ref_of(reply: bytes) -> str:
    """The reference the 250 names (``250 2.0.0 OK: request 261116123456 (registered)``)."""
    words = reply.decode().split()
    return words[words.index("request") + 1]


# ---------------------------------------------------------------------- new requests
def test_a_message_registers_a_request_from_its_sender(hotline: Hotline, listener: EmailListener) -> None:
    msg = mail()
    code, reply = send(listener.port, msg)
    assert code == 250, reply
    ref = ref_of(reply)
    assert len(envelopes(hotline, ServiceRequest.Registered)) == 1
    r = _by_ref(hotline, ref)
    assert r.channel == "email"
    assert r.personal is not None
    assert r.personal["email"] == MARIO
    assert r.personal["name"] == "Mario Rossi"
    assert r.personal["phone"] == "+390612345678"  # from the signature
    assert r.reply_channel == "email"
    assert r.language == "it"  # detected from the text
    assert r.description.startswith("Lampione spento in via Roma 12\n\nBuongiorno, il lampione")
    # The raw message is kept for the auditor, by its hash, and attached to the case.
    [raw_file] = envelopes(hotline, Attachment.Attached)
    received = hotline.attachments.get(raw_file.data["sha256"])
    assert hashlib.sha256(received).hexdigest() == raw_file.data["sha256"]
    assert raw_file.data["content_type"] == "message/rfc822"
    assert raw_file.data["request_ref"] == ref
    assert msg["Message-ID"].encode() in received and b"Lampione spento" in received


def test_the_citizen_is_one_across_channels(hotline: Hotline, listener: EmailListener) -> None:
    by_phone = hotline.bus.execute(
        c.RegisterRequest(
            kind="information",
            channel="phone",
            description="Orari dell'anagrafe",
            contact=c.Contact(name="Mario Rossi", phone="+39 06 1234 5678", email="Mario.Rossi@EXAMPLE.org"),
        ),
        AGENT,
    ).result
    code, reply = send(listener.port, mail())
    assert code == 250, reply
    by_email = _by_ref(hotline, ref_of(reply))
    assert by_email.citizen_id is not None
    assert str(by_email.citizen_id) == str(by_phone["citizen_id"])


def test_an_html_only_message_is_read_as_text(hotline: Hotline, listener: EmailListener) -> None:
    msg = mail(subject="Buca")
    msg.set_content(
        "<html><head><style>p{color:red}</style></head><body><p>C&#39;è una <b>buca</b> profonda</p>"
        "<p>in via Appia&nbsp;Nuova.</p><script>alert(1)</script><p>Tel. 06 1234 5678</p></body></html>",
        subtype="html",
    )
    code, reply = send(listener.port, msg)
    assert code == 250, reply
    r = _by_ref(hotline, ref_of(reply))
    assert r.description == "Buca\n\nC'è una buca profonda\n\nin via Appia\xa0Nuova.\n\nTel. 06 1234 5678"


def test_a_sender_the_jurisdiction_cannot_register_is_bounced_with_the_reason(hotline: Hotline, listener: EmailListener) -> None:
    # The default jurisdiction registers nobody without a phone number (domain/requests/intake.py):
    # the sending MTA bounces the message with the reason, nothing is registered.
    code, reply = send(listener.port, mail(body="Il lampione è spento."))
    assert code == 554
    assert b"phone" in reply
    assert envelopes(hotline, ServiceRequest.Registered) == []


# ---------------------------------------------------------------------- attachments
def test_attachments_are_stored_and_attached(hotline: Hotline, listener: EmailListener) -> None:
    msg = mail()
    msg.add_attachment(PNG, maintype="image", subtype="png", filename="lampione.png")
    msg.add_attachment(EXE, maintype="application", subtype="pdf", filename="modulo.pdf")  # lies about its type
    code, reply = send(listener.port, msg)
    assert code == 250, reply
    ref = ref_of(reply)
    attached = {filename_of(e): e.data for e in envelopes(hotline, Attachment.Attached)}
    assert set(attached) == {"lampione.png", "message.eml"}
    photo = attached["lampione.png"]
    assert photo["sha256"] == hashlib.sha256(PNG).hexdigest()
    assert photo["content_type"] == "image/png" and photo["size"] == len(PNG) and photo["source"] == "email"
    assert hotline.attachments.get(photo["sha256"]) == PNG
    assert not hotline.attachments.exists(hashlib.sha256(EXE).hexdigest())
    # What was left out is named for the operator, on the case.
    [note] = envelopes(hotline, ServiceRequest.NoteAdded)
    assert "modulo.pdf" in note.data["text"] and "application/x-msdownload" in note.data["text"]
    assert note.data["internal"] is True
    assert _by_ref(hotline, ref).notes == 1


def test_an_attachment_over_the_attachment_limit_refuses_the_message(hotline: Hotline, listener: EmailListener) -> None:
    hotline.attachments.max_bytes = 100_000  # under the message limit, over the attachment limit
    msg = mail()
    msg.add_attachment(b"%PDF-1.4\n" + os.urandom(150_000), maintype="application", subtype="pdf", filename="scan.pdf")
    code, reply = send(listener.port, msg)
    assert code == 552
    assert b"scan.pdf" in reply and b"100000" in reply
    assert envelopes(hotline, ServiceRequest.Registered) == []


def test_a_20_mb_attachment_is_refused_with_552(hotline: Hotline, listener: EmailListener) -> None:
    msg = mail()
    msg.add_attachment(b"%PDF-1.4\n" + os.urandom(20 * 1024 * 1024), maintype="application", subtype="pdf", filename="big.pdf")
    raw = wire(msg)
    # An MTA that declares the size (ESMTP SIZE) is refused at MAIL, before sending it.
    with smtplib.SMTP("127.0.0.1", listener.port, timeout=60) as smtp, pytest.raises(smtplib.SMTPSenderRefused) as refused:
        smtp.sendmail(MARIO, [HOTLINE], raw)
    assert refused.value.smtp_code == 552
    assert b"size" in refused.value.smtp_error
    # One that does not is refused at the end of DATA: the message is read and dropped.
    code, reply = send(listener.port, raw)
    assert code == 552
    assert b"Too much mail data" in reply
    assert envelopes(hotline, ServiceRequest.Registered) == []


# ---------------------------------------------------------------------- threading
def test_a_reply_to_the_hotlines_email_joins_the_request_and_resumes_its_clock(
    hotline: Hotline, listener: EmailListener, tmp_path: Path
) -> None:
    code, reply = send(listener.port, mail())
    ref = ref_of(reply)
    interim = c.InterimReply(
        ref=ref, message="Abbiamo segnalato il guasto.", delay_reason="Serve un sopralluogo", expected_at=START + timedelta(days=5)
    )
    hotline.bus.execute(interim, AGENT)
    hotline.bus.execute(c.WaitForCitizen(ref=ref, reason="Quale lampione, il numero sul palo?"), AGENT)
    assert _by_ref(hotline, ref).status == "waiting_citizen"
    # The hotline's email goes out through real SMTP (a sink standing in for the citizen's provider).
    with SmtpServer() as sink:
        NotificationConsumer(
            hotline,
            email=SmtpSender("127.0.0.1", sink.port, HOTLINE),
            gateway=OutboxGateway(tmp_path / "outbox", hotline.clock.now),
            department_mail="{department_id}@uffici.example",
        ).run_once()
        [sent] = [m for m in sink.messages if m["To"] == MARIO]
    answer = mail(subject="Re: la sua segnalazione", In_Reply_To=sent["Message-ID"], References=sent["Message-ID"])
    answer.set_content(
        "Il numero sul palo è 4711.\n\nIl giorno lun 16 nov 2026 alle 10:00 Comune ha scritto:\n> Abbiamo segnalato il guasto.\n"
    )
    answer.add_attachment(PNG, maintype="image", subtype="png", filename="palo.png")
    code, reply = send(listener.port, answer)
    assert code == 250, reply
    assert ref_of(reply) == ref and b"threaded" in reply
    [wrote] = envelopes(hotline, ServiceRequest.CitizenWrote)
    assert wrote.data["text"] == "Il numero sul palo è 4711."  # the quoted message left out
    assert wrote.data["channel"] == "email"
    photo = next(e for e in envelopes(hotline, Attachment.Attached) if filename_of(e) == "palo.png")
    assert wrote.data["attachment_ids"] == [photo.aggregate_id]
    raw = hotline.attachments.get(wrote.data["raw_message_sha256"])
    assert answer["Message-ID"].encode() in raw and b"palo.png" in raw
    r = _by_ref(hotline, ref)
    assert r.status != "waiting_citizen"  # the clock runs again
    assert len(envelopes(hotline, ServiceRequest.Registered)) == 1


def test_a_reply_in_the_thread_of_the_first_email_joins_the_request(hotline: Hotline, listener: EmailListener) -> None:
    first = mail()
    _, reply = send(listener.port, first)
    ref = ref_of(reply)
    # From another address (a phone's mail app), in the same thread: the Message-ID vouches.
    again = mail(subject="Anche il secondo lampione", sender="Mario <m.rossi@phone.example>", References=first["Message-ID"])
    code, reply = send(listener.port, again)
    assert code == 250 and ref_of(reply) == ref
    assert len(envelopes(hotline, ServiceRequest.Registered)) == 1
    assert len(envelopes(hotline, ServiceRequest.CitizenWrote)) == 1


def test_a_reference_in_the_subject_threads_only_from_the_requests_own_address(hotline: Hotline, listener: EmailListener) -> None:
    _, reply = send(listener.port, mail())
    ref = ref_of(reply)
    code, reply = send(listener.port, mail(subject=f"Richiesta {ref}: novità", body="È di nuovo spento." + SIGNATURE))
    assert code == 250 and ref_of(reply) == ref and b"threaded" in reply
    [wrote] = envelopes(hotline, ServiceRequest.CitizenWrote)
    assert wrote.data["text"].startswith("È di nuovo spento.")
    # Anybody can type a number: from another address it is a new request that mentions it.
    stranger = mail(subject=f"Richiesta {ref}", sender="Luca Neri <luca@example.net>", body="Anche da me." + SIGNATURE)
    code, reply = send(listener.port, stranger)
    assert code == 250 and ref_of(reply) != ref
    assert len(envelopes(hotline, ServiceRequest.Registered)) == 2
    assert len(envelopes(hotline, ServiceRequest.CitizenWrote)) == 1


# ---------------------------------------------------------------------- automatic messages
DSN = (
    "From: Mail Delivery System <bounce-handler@mx.example.org>\r\n"
    f"To: {HOTLINE}\r\n"
    "Subject: Undelivered Mail Returned to Sender\r\n"
    "Message-ID: <dsn-1@mx.example.org>\r\n"
    "MIME-Version: 1.0\r\n"
    'Content-Type: multipart/report; report-type=delivery-status; boundary="B"\r\n\r\n'
    "--B\r\nContent-Type: text/plain\r\n\r\nYour message could not be delivered.\r\n"
    "--B\r\nContent-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; mx.example.org\r\n\r\n"
    "Final-Recipient: rfc822; nobody@example.org\r\nAction: failed\r\nStatus: 5.1.1\r\n"
    f"--B\r\nContent-Type: message/rfc822\r\n\r\nFrom: {HOTLINE}\r\nSubject: La sua richiesta\r\n\r\nTesto.\r\n"
    "--B--\r\n"
).encode()


@pytest.mark.parametrize(
    ("headers", "envelope_from"),
    [
        ({"Auto_Submitted": "auto-replied"}, None),
        ({"Auto_Submitted": "auto-generated"}, None),
        ({"X_Autoreply": "yes"}, None),
        ({"Precedence": "bulk"}, None),
        ({"Precedence": "junk"}, None),
        ({"Precedence": "auto_reply"}, None),
        ({"X_Auto_Response_Suppress": "All"}, None),
        ({}, ""),  # null return path: a delivery report
        ({}, "MAILER-DAEMON@mx.example.org"),
        ({"dsn": "yes"}, "bounce-handler@mx.example.org"),
    ],
    ids=["auto-replied", "auto-generated", "x-autoreply", "bulk", "junk", "auto_reply", "suppress", "null-path", "mailer-daemon", "dsn"],
)
def test_auto_replies_and_bounces_are_ignored_and_logged(
    hotline: Hotline, listener: EmailListener, caplog: pytest.LogCaptureFixture, headers: dict[str, str], envelope_from: str | None
) -> None:
    before = event_count(hotline)
    headers = dict(headers)  # the parameter is shared by both stores' runs
    if headers.pop("dsn", None):
        msg: EmailMessage | bytes = DSN
    else:
        msg = mail(subject="Fuori ufficio: Re: La sua richiesta", body="Sono fuori ufficio fino a lunedì." + SIGNATURE, **headers)
    with caplog.at_level(logging.INFO, logger="hotline.email_in"):
        code, reply = send(listener.port, msg, envelope_from)
    assert code == 250, reply
    assert b"not registered" in reply
    assert event_count(hotline) == before
    assert any("email ignored" in r.getMessage() for r in caplog.records)


def test_auto_submitted_no_is_a_person_writing(hotline: Hotline, listener: EmailListener) -> None:
    code, reply = send(listener.port, mail(Auto_Submitted="no"))
    assert code == 250 and b"registered" in reply
    assert len(envelopes(hotline, ServiceRequest.Registered)) == 1


# ---------------------------------------------------------------------- malformed
MALFORMED = (
    "From: Anna Verdi <anna.verdi@example.org>\r\n"
    f"To: {HOTLINE}\r\n"
    "Subject: Rifiuti non raccolti\r\n"
    "Message-ID: <malformed-1@example.org>\r\n"
    "MIME-Version: 1.0\r\n"
    'Content-Type: multipart/mixed; boundary="XYZ"\r\n\r\n'
    "--XYZ\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n"
    "I sacchi in via Tiburtina 100 non sono stati raccolti. Tel. 06 9876 5432\r\n"
    '--XYZ\r\nContent-Type: image/png; name="foto.png"\r\nContent-Transfer-Encoding: base64\r\n\r\n'
    "iVBORw0KGgo@@@ not base64 at all ###\r\n"
    # no closing boundary
).encode()


def test_a_malformed_message_is_registered_kept_and_flagged(hotline: Hotline, listener: EmailListener) -> None:
    code, reply = send(listener.port, MALFORMED)
    assert code == 250, reply
    ref = ref_of(reply)
    r = _by_ref(hotline, ref)
    assert "I sacchi in via Tiburtina 100 non sono stati raccolti." in r.description
    [note] = envelopes(hotline, ServiceRequest.NoteAdded)
    assert note.data["text"].startswith("email-in: malformed message")
    assert "CloseBoundaryNotFoundDefect" in note.data["text"]
    [raw_file] = [e for e in envelopes(hotline, Attachment.Attached) if filename_of(e) == "message.eml"]
    kept = hotline.attachments.get(raw_file.data["sha256"])
    assert kept.rstrip(b"\r\n") == MALFORMED.rstrip(b"\r\n")  # byte for byte, as received


# ---------------------------------------------------------------------- delivered once
def test_a_redelivered_message_is_registered_once(hotline: Hotline, listener: EmailListener) -> None:
    msg = mail()
    msg.add_attachment(PNG, maintype="image", subtype="png", filename="lampione.png")
    first = send(listener.port, msg)
    again = send(listener.port, msg)
    assert first[0] == again[0] == 250
    assert ref_of(first[1]) == ref_of(again[1])
    assert len(envelopes(hotline, ServiceRequest.Registered)) == 1
    assert len(envelopes(hotline, Attachment.Attached)) == 2  # the photo and the raw message, once each


def test_another_message_under_a_reused_message_id_is_not_lost(hotline: Hotline, listener: EmailListener) -> None:
    first = mail()
    other = mail(subject="Cassonetto rotto", body="Il cassonetto in piazza è rotto." + SIGNATURE)
    other.replace_header("Message-ID", first["Message-ID"])
    assert send(listener.port, first)[0] == 250
    code, reply = send(listener.port, other)
    assert code == 250, reply
    assert len(envelopes(hotline, ServiceRequest.Registered)) == 2


# A real `hotline email-in` process, killed.
def spawn(settings: Settings, port: int, **env: str) -> subprocess.Popen[bytes]:
    environ = {k: v for k, v in os.environ.items() if not k.startswith("HOTLINE_")}
    environ.update(
        HOTLINE_DATA_DIR=str(settings.data_dir), HOTLINE_LOG_LEVEL="warning", HOTLINE_MAIL_FROM=HOTLINE, PYTHONPATH=str(ROOT), **env
    )
    if settings.database_url:
        environ["HOTLINE_DATABASE_URL"] = settings.database_url
    proc = subprocess.Popen(
        [sys.executable, "-c", "from api.cli import main; main()", "email-in", "--port", str(port)],
        cwd=ROOT,
        env=environ,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"hotline email-in exited: {proc.stderr.read().decode() if proc.stderr else ''}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1) as s:
                if s.recv(100).startswith(b"220"):
                    return proc
        except OSError:
            time.sleep(0.1)
    proc.kill()
    raise AssertionError("hotline email-in did not start")


def registered_in(settings: Settings) -> list[Any]:
    h = Hotline.start(settings)
    try:
        return envelopes(h, ServiceRequest.Registered)
    finally:
        h.close()


def test_killed_between_the_commit_and_the_250_the_retry_is_not_registered_twice(store_settings: Settings) -> None:
    port = free_port()
    msg = mail()
    proc = spawn(store_settings, port, HOTLINE_FAULT_EMAIL_IN_EXIT_AFTER_COMMIT="true")
    try:
        with pytest.raises(smtplib.SMTPServerDisconnected):
            send(port, msg)
        assert proc.wait(timeout=30) == 137
    finally:
        proc.kill()
    # It had committed: the sender, which saw no 250, retries to a restarted server.
    assert len(registered_in(store_settings)) == 1
    proc = spawn(store_settings, port)
    try:
        code, reply = send(port, msg)
        assert code == 250, reply
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)
    [registered] = registered_in(store_settings)
    assert ref_of(reply) == registered.data["reference"]


def test_killed_mid_data_nothing_is_half_stored_and_the_retry_registers_once(store_settings: Settings) -> None:
    port = free_port()
    raw = wire(mail())
    proc = spawn(store_settings, port)
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
            s.recv(1000)
            commands = (b"EHLO mta.example.org", f"MAIL FROM:<{MARIO}>".encode(), f"RCPT TO:<{HOTLINE}>".encode(), b"DATA")
            for command in commands:
                line = command + b"\r\n"
                s.sendall(line)
                time.sleep(0.05)
                s.recv(1000)
            s.sendall(raw[: len(raw) // 2])
            time.sleep(0.2)
            proc.send_signal(signal.SIGKILL)
            proc.wait(timeout=30)
            # The sender sees the connection drop without a 250: it keeps the message and retries.
            assert s.recv(1000) == b""
    finally:
        proc.kill()
    assert registered_in(store_settings) == []
    proc = spawn(store_settings, port)
    try:
        code, reply = send(port, raw)
        assert code == 250, reply
        assert send(port, raw)[0] == 250  # and once more, as a duplicate delivery
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)
    assert len(registered_in(store_settings)) == 1


# ---------------------------------------------------------------------- hotline serve, and the pure reading
def test_hotline_serve_starts_the_listener_when_the_setting_says_so(hotline: Hotline) -> None:
    from consumers.background import start_email_in

    assert start_email_in(hotline) is None  # off by default
    port = free_port()
    hotline.settings = hotline.settings.model_copy(update={"email_in_inprocess": True, "email_in_port": port})
    stop = start_email_in(hotline)
    assert stop is not None
    try:
        code, reply = send(port, mail())
        assert code == 250, reply
    finally:
        stop()
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", port), timeout=1)


@pytest.mark.parametrize(
    ("text", "language"),
    [
        ("路灯坏了，在人民路口，已经三天了。", "zh"),
        ("المصباح في الشارع مكسور منذ ثلاثة أيام", "ar"),
        ("Buongiorno, il lampione della strada non funziona", "it"),
        ("Hello, the street light is not working, please fix it", "en"),
        ("OK", None),
    ],
)
def test_the_language_is_read_from_the_script_or_the_words(text: str, language: str | None) -> None:
    assert email_parsing.detect_language("", text) == language
    assert email_parsing.detect_language("en-GB", text) == "en"  # the header wins


def test_a_reference_is_a_date_and_six_digits_standing_alone() -> None:
    found = email_parsing.REFERENCE.findall
    assert found("Re: La sua richiesta 261116123456: risposta") == ["261116123456"]
    assert found("[261231000001]") == ["261231000001"]
    assert found("IBAN 12261116123456 / +39261116123456 / 261399123456 / 26111612345") == []


def test_the_quoted_message_of_a_reply_is_left_out() -> None:
    reply = "Sì, è il numero 12.\n\nOn Mon, 16 Nov 2026 at 10:00, Comune <h@c.it> wrote:\n> La sua richiesta\n> è stata presa in carico"
    assert email_parsing.strip_quoted(reply) == "Sì, è il numero 12."
    assert email_parsing.strip_quoted("> only a quote") == "> only a quote"  # nothing of its own: kept whole
