"""Email in: an SMTP server (aiosmtpd) that turns citizens' email into requests.

``hotline email-in`` runs it (``HOTLINE_EMAIL_IN_HOST`` / ``_PORT``), and ``hotline
serve`` beside the API when ``HOTLINE_EMAIL_IN_INPROCESS`` is set. It is the last hop of
the hotline's mail (the MTA in front forwards the hotline's address to it), so what it
answers is what the sending MTA acts on:

* **250 only after the commands committed** (the bus returns after the commit): a server
  killed mid-delivery has either answered nothing, and the sender retries, or kept it all.
  Every command carries an idempotency key derived from the Message-ID, so the retry of a
  message whose commands committed before the kill replays their answers instead of
  registering it again (and completes the steps that had not run).
* **552** for a message over ``HOTLINE_EMAIL_IN_MAX_BYTES`` (aiosmtpd refuses it at MAIL
  ``SIZE=`` or at the end of DATA) or an attachment over the attachment limit: the
  sender's MTA bounces it to the citizen with the reason.
* **554** for a message the domain refuses (no usable sender address); **451** for a
  failure of ours (the sender retries later).

What a message does (``consumers/email_parsing.py`` reads it, without I/O):

* an auto-reply or a bounce (RFC 3834 ``Auto-Submitted``, ``X-Autoreply``,
  ``Precedence: bulk|junk|auto_reply``, ``X-Auto-Response-Suppress``, a null or
  MAILER-DAEMON return path, ``multipart/report``) is accepted, logged and dropped;
* a message answering one the hotline sent (In-Reply-To/References naming its
  Message-ID, or the Message-ID of the email that registered a request), or whose subject
  carries a request's reference *and* comes from the request's own address, is added to
  that request: ``AddCitizenMessage`` (which resumes a clock paused for the citizen);
* anything else registers a request (``RegisterRequest``, channel email, the sender as the
  contact: the citizen is matched by address, one citizen across channels).

Attachments are stored by content (``infra/attachments.py``) and recorded with
``AttachFile``; one of a type the hotline does not take is left out and named in an
internal note. The raw message is kept content-addressed in the same store for the
auditor: its sha256 is on the ``CitizenWrote`` event of a reply, and attached to a new
request as ``message.eml``. A malformed message (MIME defects) is registered all the same,
as far as it can be read, with an internal note listing the defects: held aside it would
wait for somebody to look; on the case, the operator sees it with the raw message.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
import threading
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from email.utils import parseaddr
from typing import Any

import sqlalchemy as sa
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session
from eventsourcing.application import AggregateNotFoundError

from consumers.email_parsing import ParsedEmail, description_of, flag_note, parse, strip_quoted
from domain.attachments import commands as ac
from domain.attachments.aggregate import TooLarge
from domain.base import Actor, DomainError, InvalidCommand, NotFound
from domain.citizens.aggregate import email_key
from domain.idempotency import IdempotencyRecord, idempotency_id
from domain.requests import commands as rc
from domain.requests.aggregate import ServiceRequest, request_id_for
from infra.runtime import Hotline
from projections import notifications

log = logging.getLogger("hotline.email_in")
EMAIL_IN = Actor("email-in", "system", "Email listener")
REGISTER_SCOPE = "email-in.register"  # its records map a Message-ID to the request it registered


@dataclass
class Outcome:
    """What became of one message."""

    action: str  # registered | threaded | ignored
    reference: str | None = None
    reason: str | None = None
    attachments: list[str] = field(default_factory=list)  # attachment ids
    refused: list[str] = field(default_factory=list)  # attachments left out, and why
    raw_sha256: str | None = None
    flagged: bool = False
    replayed: bool = False  # every command answered from its idempotency record


class TooBig(Exception):
    """An attachment over the limit: the message is refused (552)."""


class EmailIntake:
    """Decides what a message does and issues the commands; runs in a worker thread."""

    def __init__(self, hotline: Hotline) -> None:
        self.hotline = hotline
        st = hotline.settings
        self.own = {_key(parseaddr(a)[1]) for a in (st.mail_from, *st.email_in_addresses) if "@" in a}

    def receive(self, raw: bytes, envelope_sender: str | None) -> Outcome:
        parsed = parse(raw, envelope_sender, self.hotline.bus.deps.policy.default_region)
        if parsed.automatic is None and parsed.sender and _key(parsed.sender) in self.own:
            parsed.automatic = "sent by the hotline itself"
        if parsed.automatic is not None:
            log.info("email ignored (%s): message-id %s from %s", parsed.automatic, parsed.message_id, envelope_sender)
            return Outcome("ignored", reason=parsed.automatic)
        limit = self.hotline.attachments.max_bytes
        for part in parsed.attachments:  # refused before anything is stored
            if len(part.data) > limit:
                raise TooBig(f"attachment {part.filename or part.declared_type} is {len(part.data)} bytes, the limit is {limit}")
        raw_sha = self._keep_raw(raw)
        raw_size = len(raw)
        # One key per message: its Message-ID, else its content (a retry resends the same bytes).
        key = parsed.message_id or f"sha256:{raw_sha}"
        try:
            return self._work(parsed, key, raw_sha, raw_size)
        except InvalidCommand as exc:
            if exc.code != "idempotency_key_reused":
                raise
            # Another message under an old Message-ID (a broken client reuses them): its own key.
            return self._work(parsed, f"{key}/{raw_sha}", raw_sha, raw_size)

    def _work(self, parsed: ParsedEmail, key: str, raw_sha: str, raw_size: int) -> Outcome:
        stored, refused = self._store_attachments(parsed)
        target = self.find_request(parsed)
        outcome = Outcome("threaded" if target else "registered", raw_sha256=raw_sha, refused=refused)
        replays: list[bool] = []
        if target is None:
            res = self._run(self._registration(parsed), key, REGISTER_SCOPE, replays)
            target = str(res["reference"])
        outcome.reference = target
        for i, (blob, filename) in enumerate(stored):
            try:
                res = self._run(self._attach(target, blob, filename), f"{key}#{i}", "email-in.attach", replays)
            except DomainError as exc:  # a closed request takes no files: the raw message still has it
                outcome.refused.append(f"{filename or blob.sha256[:12]}: {exc}")
                continue
            outcome.attachments.append(str(res["id"]))
        if outcome.action == "threaded":
            text = strip_quoted(parsed.text) or parsed.subject or "(empty message)"
            cmd = rc.AddCitizenMessage(
                ref=target, text=text[:100_000], channel="email", attachment_ids=outcome.attachments, raw_message_sha256=raw_sha
            )
            self._run(cmd, key, "email-in.message", replays)
        else:
            raw_file = ac.AttachFile(
                request_ref=target,
                sha256=raw_sha,
                content_type="message/rfc822",
                size=raw_size,
                filename="message.eml",
                source="email",
            )
            self._run(raw_file, f"{key}#raw", "email-in.attach", replays)
        note = flag_note(parsed, outcome.refused)
        if note:
            self._run(rc.AddNote(ref=target, text=note, internal=True), key, "email-in.note", replays)
        outcome.flagged = parsed.malformed
        outcome.replayed = all(replays)
        log.info(
            "email %s: request %s, message-id %s, %d attachment(s)%s%s",
            outcome.action,
            target,
            parsed.message_id,
            len(outcome.attachments),
            ", malformed" if parsed.malformed else "",
            " (re-delivery)" if outcome.replayed else "",
        )
        return outcome

    # ------------------------------------------------------------------ commands
    def _run(self, cmd: Any, key: str, scope: str, replays: list[bool]) -> dict[str, Any]:
        answer = self.hotline.bus.execute(cmd, EMAIL_IN, idempotency_key=key, idempotency_scope=scope)
        replays.append(answer.replayed)
        return answer.result

    def _registration(self, parsed: ParsedEmail) -> rc.RegisterRequest:
        name = (parsed.name or "")[:200] or None
        return rc.RegisterRequest(
            kind=self.hotline.settings.email_in_kind,
            channel="email",
            description=description_of(parsed),
            contact=rc.Contact(name=name, email=parsed.sender, phone=parsed.phone),
            language=parsed.language,  # type: ignore[arg-type]  # one of LANGUAGES or None
            reply_channel="email",
        )

    @staticmethod
    def _attach(ref: str, blob: Any, filename: str | None) -> ac.AttachFile:
        return ac.AttachFile(
            request_ref=ref, sha256=blob.sha256, content_type=blob.content_type, size=blob.size, filename=filename, source="email"
        )

    # ------------------------------------------------------------------ bytes
    def _keep_raw(self, raw: bytes) -> str:
        """The message as received, by its hash: not checked as an attachment (it is
        the record of what arrived, whatever it holds), never served as a web page."""
        sha = hashlib.sha256(raw).hexdigest()
        self.hotline.attachments.blobs.write(sha, raw)
        return sha

    def _store_attachments(self, parsed: ParsedEmail) -> tuple[list[tuple[Any, str | None]], list[str]]:
        store = self.hotline.attachments
        stored: list[tuple[Any, str | None]] = []
        refused: list[str] = []
        for part in parsed.attachments:
            try:
                blob = store.put(part.data, part.filename)
            except TooLarge as exc:
                raise TooBig(str(exc)) from exc
            except InvalidCommand as exc:
                refused.append(f"{part.filename or part.declared_type}: {exc}")
                continue
            stored.append((blob, blob.filename))
        return stored, refused

    # ------------------------------------------------------------------ threading
    def find_request(self, parsed: ParsedEmail) -> str | None:
        """The request a message answers, or None for a new one. Headers first (a
        Message-ID the hotline sent, or the one of the email that registered a request:
        unguessable, so whoever holds it is in the conversation); then a reference in the
        subject, taken only from the request's own address (anybody can type a number)."""
        for mid in parsed.references:
            try:
                record: IdempotencyRecord = self.hotline.store.repository.get(idempotency_id(mid, REGISTER_SCOPE))
            except AggregateNotFoundError:
                continue
            ref = record.response.get("reference")
            if ref:
                return str(ref)
        if parsed.references:
            found = self._sent_by_hotline(parsed.references)
            if found:
                return found
        for ref in parsed.subject_references:
            request = self._request(ref)
            if request is not None and parsed.sender and self._same_sender(request, parsed.sender):
                return ref
        return None

    def _sent_by_hotline(self, message_ids: list[str]) -> str | None:
        # A sent email's provider_ref is its Message-ID (infra/smtp.py).
        m = notifications.MESSAGES
        q = sa.select(m.c.request_id).where(m.c.channel == "email", m.c.provider_ref.in_(message_ids[:50]), m.c.request_id.is_not(None))
        with self.hotline.read_store.engine.connect() as conn:
            row = conn.execute(q.limit(1)).first()
        if row is None:
            return None
        request = self._request(str(row[0]))
        return request.reference if request is not None else None

    def _request(self, ref: str) -> ServiceRequest | None:
        try:
            rid = request_id_for(ref) if ref.isdigit() else uuid.UUID(ref)
            request: ServiceRequest = self.hotline.store.repository.get(rid)
        except (AggregateNotFoundError, ValueError, NotFound):
            return None
        return request

    def _same_sender(self, request: ServiceRequest, sender: str) -> bool:
        email = (request.personal or {}).get("email")
        return bool(email) and _key(str(email)) == _key(sender)


def _key(address: str) -> str:
    try:
        return email_key(address)
    except InvalidCommand:
        return address.strip().casefold()


# ---------------------------------------------------------------------- the SMTP side
class EmailHandler:
    """aiosmtpd's handler: recipients checked at RCPT, the message worked on in a thread
    pool (the bus blocks), the answer given once it is committed."""

    def __init__(self, hotline: Hotline, workers: int | None = None) -> None:
        self.hotline = hotline
        self.intake = EmailIntake(hotline)
        st = hotline.settings
        self.accepted = {_key(parseaddr(a)[1]) for a in st.email_in_addresses}
        self.max_bytes = st.email_in_max_bytes
        self.pool = ThreadPoolExecutor(max_workers=workers or st.email_in_workers, thread_name_prefix="email-in")
        self.exit_after_commit = st.fault_email_in_exit_after_commit
        self.counts: dict[str, int] = {}
        self._lock = threading.Lock()

    async def handle_RCPT(self, server: SMTP, session: Session, envelope: Envelope, address: str, rcpt_options: list[str]) -> str:
        if self.accepted and _key(address) not in self.accepted:
            return f"550 5.1.1 <{address}>: no such mailbox here"
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        raw = envelope.original_content or b""
        if len(raw) > self.max_bytes:  # aiosmtpd's own limit catches it first; kept in case it is configured off
            return f"552 5.3.4 message too big: {len(raw)} bytes, the limit is {self.max_bytes}"
        loop = asyncio.get_running_loop()
        try:
            outcome = await loop.run_in_executor(self.pool, self.intake.receive, raw, envelope.mail_from)
        except TooBig as exc:
            return f"552 5.3.4 {exc}"
        except DomainError as exc:
            log.warning("email refused: %s", exc)
            return f"554 5.6.0 not accepted: {_one_line(str(exc))}"
        except Exception:
            log.exception("email not stored: the sender will retry")
            return "451 4.3.0 not stored, try again later"
        with self._lock:
            self.counts[outcome.action] = self.counts.get(outcome.action, 0) + 1
        if self.exit_after_commit and outcome.action != "ignored":
            os._exit(137)  # tests: killed between the commit and the answer
        if outcome.action == "ignored":
            return "250 2.0.0 OK: automatic message, not registered"
        return f"250 2.0.0 OK: request {outcome.reference} ({outcome.action})"

    def close(self) -> None:
        self.pool.shutdown(wait=True)


def _one_line(text: str) -> str:
    return " ".join(text.split())[:400]


class EmailListener:
    """The SMTP server in its own thread (aiosmtpd's Controller): ``start``, ``stop``."""

    def __init__(self, hotline: Hotline, host: str | None = None, port: int | None = None) -> None:
        st = hotline.settings
        self.host = host or st.email_in_host
        self.port = port if port is not None else st.email_in_port
        self.handler = EmailHandler(hotline)
        self.controller = Controller(
            self.handler,
            hostname=self.host,
            port=self.port,
            server_hostname=st.mail_from.partition("@")[2] or None,
            data_size_limit=st.email_in_max_bytes,
            ident="Hotline email-in",
        )

    def start(self) -> EmailListener:
        self.controller.start()
        log.info("email-in: listening on %s:%d (SMTP), messages up to %d bytes", self.host, self.port, self.handler.max_bytes)
        return self

    def stop(self) -> None:
        self.controller.stop()
        self.handler.close()


def start_listener(hotline: Hotline, host: str | None = None, port: int | None = None) -> EmailListener:
    return EmailListener(hotline, host, port).start()
