"""Notifications: replies and alerts sent by email, SMS, fax and voicemail.

One :class:`Notification` aggregate per message. Its id is derived from the message's
idempotency key (the event that caused it and the purpose), so queueing the same
message twice is one insert that conflicts: a restarted consumer never queues, and so
never sends, the same message twice.

Lifecycle::

    queued ──attempt started──> sending ──> sent
       ^                           │
       │                           └──> failed (retry at …) ──> … ──> dead_lettered
       └─────────────── retried by an operator <──────────────────────────┘

Every attempt and its outcome is an event. An attempt whose outcome is unknown (the
consumer died while sending) is resolved on restart: a channel whose provider honours
the idempotency key is simply retried with the same key; email cannot be asked, so the
message goes to the dead-letter state as "in doubt" for an operator to decide — never
silently sent twice, never silently lost.

Templates per language (zh, ar right-to-left, it, en) live in ``infra/data/templates``;
:func:`render` picks the citizen's language and falls back to English.
"""

from __future__ import annotations

import hashlib
import string
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from domain.base import Context, HotlineAggregate, InvalidCommand, InvalidTransition, NotFound, derived_id

CHANNELS = ("email", "sms", "fax", "voicemail")
# Channels whose provider deduplicates by idempotency key: an in-doubt attempt is retried.
IDEMPOTENT_CHANNELS = ("sms", "fax", "voicemail")
LANGUAGES = ("zh", "ar", "it", "en")
RTL_LANGUAGES = ("ar",)
STATES = ("queued", "sending", "sent", "failed", "dead_lettered")
# The citizen's reply channel → how an automatic message reaches them.
REPLY_CHANNEL_TO_CHANNEL = {"email": "email", "sms": "sms", "phone": "voicemail", "fax": "fax"}


def notification_id(key: str) -> uuid.UUID:
    return derived_id("notification", key)


def message_id(key: str, domain: str = "hotline.local") -> str:
    """A stable RFC 5322 Message-ID for an idempotency key (receivers can deduplicate)."""
    return f"<{hashlib.sha256(key.encode()).hexdigest()[:32]}@{domain}>"


@dataclass(frozen=True)
class RetryPolicy:
    max_attempts: int = 5
    first_retry: timedelta = timedelta(minutes=1)
    factor: float = 2.0

    def next_attempt_at(self, now: datetime, attempts: int) -> datetime | None:
        """When to try again after ``attempts`` failed attempts; None: give up."""
        if attempts >= self.max_attempts:
            return None
        return now + self.first_retry * (self.factor ** (attempts - 1))


class Notification(HotlineAggregate):
    STREAM = "notification"

    class Queued(HotlineAggregate.Created):
        key: str
        purpose: str
        channel: str
        personal: dict[str, Any]  # {"to": address or number}: personal data, erasable
        language: str
        subject: str
        body: str
        html: str | None
        request_id: str | None
        source_event: str | None

    class AttemptStarted(HotlineAggregate.Event):
        attempt: int

        def apply(self, n: Notification) -> None:
            n.status = "sending"
            n.attempts = self.attempt

    class Sent(HotlineAggregate.Event):
        attempt: int
        provider_ref: str | None

        def apply(self, n: Notification) -> None:
            n.status = "sent"
            n.provider_ref = self.provider_ref
            n.next_attempt_at = None

    class AttemptFailed(HotlineAggregate.Event):
        attempt: int
        error: str
        permanent: bool
        retry_at: datetime | None

        def apply(self, n: Notification) -> None:
            n.status = "failed"
            n.last_error = self.error
            n.next_attempt_at = self.retry_at

    class DeadLettered(HotlineAggregate.Event):
        reason: str
        attempts: int

        def apply(self, n: Notification) -> None:
            n.status = "dead_lettered"
            n.next_attempt_at = None

    class RetryRequested(HotlineAggregate.Event):
        reason: str | None

        def apply(self, n: Notification) -> None:
            n.status = "queued"
            n.next_attempt_at = self.timestamp
            n.retry_rounds += 1
            n.attempts_before_retry = n.attempts

    def __init__(
        self,
        key: str,
        purpose: str,
        channel: str,
        personal: dict[str, Any],
        language: str,
        subject: str,
        body: str,
        html: str | None,
        request_id: str | None,
        source_event: str | None,
    ) -> None:
        self.key, self.purpose, self.channel = key, purpose, channel
        self.personal = personal
        self.language = language
        self.subject, self.body, self.html = subject, body, html
        self.request_id = request_id
        self.source_event = source_event
        self.status = "queued"
        self.attempts = 0
        self.attempts_before_retry = 0
        self.retry_rounds = 0
        self.next_attempt_at: datetime | None = None
        self.last_error: str | None = None
        self.provider_ref: str | None = None

    @property
    def to(self) -> str:
        return str(self.personal.get("to") or "")

    @classmethod
    def queue(cls, spec: MessageSpec, ctx: Context) -> Notification:
        if spec.channel not in CHANNELS:
            raise InvalidCommand(f"channel {spec.channel!r} must be one of {list(CHANNELS)}", field="channel")
        if not spec.to:
            raise InvalidCommand(f"a message by {spec.channel} needs an address", field="to")
        n = cls._start(
            cls.Queued,
            notification_id(spec.key),
            ctx,
            key=spec.key,
            purpose=spec.purpose,
            channel=spec.channel,
            personal={"to": spec.to},
            language=spec.language,
            subject=spec.subject,
            body=spec.body,
            html=spec.html,
            request_id=spec.request_id,
            source_event=spec.source_event,
        )
        return n

    def start_attempt(self, ctx: Context) -> int:
        if self.status not in ("queued", "failed"):
            raise InvalidTransition(f"notification {self.key} is {self.status}: nothing to send")
        if self.next_attempt_at is not None and ctx.now < self.next_attempt_at:
            raise InvalidTransition(f"notification {self.key} is not to be retried before {self.next_attempt_at.isoformat()}")
        attempt = self.attempts + 1
        self._record(self.AttemptStarted, ctx, attempt=attempt)
        return attempt

    def record_sent(self, provider_ref: str | None, ctx: Context) -> None:
        if self.status != "sending":
            raise InvalidTransition(f"notification {self.key} is {self.status}, not sending")
        self._record(self.Sent, ctx, attempt=self.attempts, provider_ref=provider_ref)

    def record_failure(self, error: str, permanent: bool, policy: RetryPolicy, ctx: Context) -> None:
        if self.status != "sending":
            raise InvalidTransition(f"notification {self.key} is {self.status}, not sending")
        used = self.attempts - self.attempts_before_retry
        retry_at = None if permanent else policy.next_attempt_at(ctx.now, used)
        self._record(self.AttemptFailed, ctx, attempt=self.attempts, error=error[:2000], permanent=permanent, retry_at=retry_at)
        if retry_at is None:
            reason = "permanent failure" if permanent else f"gave up after {used} attempts"
            self._record(self.DeadLettered, ctx, reason=f"{reason}: {error[:500]}", attempts=self.attempts)

    def resolve_in_doubt(self, policy: RetryPolicy, ctx: Context) -> None:
        """An attempt started but its outcome was never recorded (the sender died)."""
        if self.status != "sending":
            return
        if self.channel in IDEMPOTENT_CHANNELS:
            # The provider deduplicates by key: trying again cannot deliver twice.
            self._record(
                self.AttemptFailed,
                ctx,
                attempt=self.attempts,
                error="outcome unknown (sender stopped)",
                permanent=False,
                retry_at=ctx.now,
            )
            return
        self._record(
            self.AttemptFailed,
            ctx,
            attempt=self.attempts,
            error="outcome unknown (sender stopped)",
            permanent=True,
            retry_at=None,
        )
        self._record(self.DeadLettered, ctx, reason="in doubt: may have been sent; check before retrying", attempts=self.attempts)

    def retry(self, reason: str | None, ctx: Context) -> None:
        if self.status != "dead_lettered":
            raise InvalidTransition(f"only a dead-lettered message is retried by hand; this one is {self.status}")
        self._record(self.RetryRequested, ctx, reason=reason)


# ------------------------------------------------------------------ what to send
@dataclass(frozen=True)
class MessageSpec:
    key: str
    purpose: str
    channel: str
    to: str
    language: str
    subject: str
    body: str
    html: str | None = None
    request_id: str | None = None
    source_event: str | None = None


class _Blank(dict[str, Any]):
    def __missing__(self, key: str) -> str:
        return ""


def render(templates: Mapping[str, Any], purpose: str, language: str, values: Mapping[str, Any]) -> tuple[str, str, str, str]:
    """(language used, subject, text body, HTML body) from the language's template."""
    lang = language if language in templates and purpose in (templates[language].get("messages") or {}) else "en"
    if lang not in templates or purpose not in (templates[lang].get("messages") or {}):
        raise NotFound(f"no template for {purpose!r}", code="template_missing")
    doc = templates[lang]
    tpl = doc["messages"][purpose]
    fmt = string.Formatter()
    data = _Blank({k: "" if v is None else v for k, v in values.items()})
    subject = fmt.vformat(str(tpl.get("subject", "")), (), data).strip()
    body = fmt.vformat(str(tpl["body"]), (), data).strip()
    rtl = doc.get("direction") == "rtl" or lang in RTL_LANGUAGES
    paragraphs = "".join(f"<p>{_escape(p)}</p>" for p in body.split("\n") if p.strip())
    direction = "rtl" if rtl else "ltr"
    html = f'<!doctype html><html lang="{lang}" dir="{direction}"><body dir="{direction}">{paragraphs}</body></html>'
    if rtl:
        # Plain-text readers get a right-to-left mark on every line, so numbers and Latin
        # references inside Arabic text keep their place.
        body = "\n".join("\u200f" + line for line in body.split("\n"))
    return lang, subject, body, html


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


# Request events that produce messages: purpose, and whether it goes to the citizen.
CITIZEN_PURPOSES = {
    "interim_replied": "interim_reply",
    "final_replied": "final_reply",
    "satisfaction_callback_due": "satisfaction_callback",
}
DEPARTMENT_PURPOSES = {
    "deadline_approaching": "deadline_approaching",
    "deadline_missed": "deadline_missed",
    "reminder_sent": "reminder",
    "interim_reply_due": "interim_reply_due",
    "escalated": "escalated",
}


def messages_for(
    envelope: Any,
    request: Mapping[str, Any],
    templates: Mapping[str, Any],
    *,
    department_address: str,
    control_office_address: str,
    staff_language: str,
) -> list[MessageSpec]:
    """The messages one request event causes (pure: the consumer does the sending).

    ``request`` holds what the templates need: reference, language, reply_channel,
    personal (the citizen's contact), department_id, due_at."""
    name = envelope.type.split(".")[2]
    data = dict(envelope.data)
    values = {
        "reference": request.get("reference"),
        "department": data.get("department_id") or request.get("department_id") or "",
        "due_at": _when(data.get("due_at") or request.get("due_at")),
        "message": data.get("message"),
        "delay_reason": data.get("delay_reason"),
        "expected_at": _when(data.get("expected_at")),
        "percent": data.get("detail"),
        "number": data.get("detail"),
        "days": data.get("detail"),
    }
    key_base = f"{envelope.aggregate_id}/{envelope.version}"
    if name in CITIZEN_PURPOSES:
        purpose = CITIZEN_PURPOSES[name]
        reply_channel = data.get("channel") or request.get("reply_channel")
        personal = request.get("personal") or {}
        channel = REPLY_CHANNEL_TO_CHANNEL.get(str(reply_channel))
        if channel is None or (request.get("contact_hidden") and not personal):
            return []
        to = personal.get("email") if channel == "email" else personal.get("fax") if channel == "fax" else personal.get("phone")
        if not to:
            return []
        lang, subject, body, html = render(templates, purpose, str(request.get("language") or "en"), values)
        return [
            MessageSpec(
                f"{key_base}:{purpose}",
                purpose,
                channel,
                str(to),
                lang,
                subject,
                body,
                html if channel == "email" else None,
                envelope.aggregate_id,
                envelope.event_id,
            )
        ]
    if name in DEPARTMENT_PURPOSES:
        purpose = DEPARTMENT_PURPOSES[name]
        to = control_office_address if name == "escalated" else department_address
        if not to:
            return []
        lang, subject, body, html = render(templates, purpose, staff_language, values)
        return [
            MessageSpec(f"{key_base}:{purpose}", purpose, "email", to, lang, subject, body, html, envelope.aggregate_id, envelope.event_id)
        ]
    return []


def _when(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return str(value.strftime("%Y-%m-%d %H:%M %Z").strip())


# ------------------------------------------------------------------ command handlers
def queue_notification(uow: Any, ctx: Context, deps: Any, spec: MessageSpec) -> dict[str, Any]:
    """Queue once: the id is derived from the key, so a second queueing is a no-op."""
    existing = uow.find(Notification, notification_id(spec.key))
    if existing is not None:
        return {"id": str(existing.id), "queued": False, "status": existing.status}
    n = Notification.queue(spec, ctx)
    uow.add(n)
    return {"id": str(n.id), "queued": True, "status": n.status}


def start_attempt(uow: Any, ctx: Context, deps: Any, nid: uuid.UUID) -> dict[str, Any]:
    n = uow.get(Notification, nid)
    attempt = n.start_attempt(ctx)
    return {"id": str(n.id), "attempt": attempt}


def record_outcome(
    uow: Any, ctx: Context, deps: Any, nid: uuid.UUID, ok: bool, detail: str | None, permanent: bool, policy: RetryPolicy
) -> dict[str, Any]:
    n = uow.get(Notification, nid)
    if ok:
        n.record_sent(detail, ctx)
    else:
        n.record_failure(detail or "unknown error", permanent, policy, ctx)
    return {"id": str(n.id), "status": n.status, "next_attempt_at": n.next_attempt_at.isoformat() if n.next_attempt_at else None}


def resolve_in_doubt(uow: Any, ctx: Context, deps: Any, nid: uuid.UUID, policy: RetryPolicy) -> dict[str, Any]:
    n = uow.get(Notification, nid)
    n.resolve_in_doubt(policy, ctx)
    return {"id": str(n.id), "status": n.status}


def retry_notification(uow: Any, ctx: Context, deps: Any, nid: uuid.UUID, reason: str | None) -> dict[str, Any]:
    if ctx.actor.role not in ("supervisor", "agent", "system"):
        raise InvalidTransition("only operators retry dead-lettered messages", code="forbidden")
    n = uow.get(Notification, nid)
    n.retry(reason, ctx)
    return {"id": str(n.id), "status": n.status, "version": n.version}
