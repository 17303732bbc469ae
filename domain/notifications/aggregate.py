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
    queued / failed ──> suppressed (the recipient said no: an SMS to a number that
                        answered STOP; final, with the reason, never sent)

Every attempt and its outcome is an event. An attempt whose outcome is unknown (the
consumer died while sending) is resolved on restart: a channel whose provider honours
the idempotency key is simply retried with the same key; email cannot be asked, so the
message goes to the dead-letter state as "in doubt" for an operator to decide — never
silently sent twice, never silently lost.

What to send for which event, and the templates, are in :mod:`domain.notifications.messages`.
"""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from domain.base import Context, HotlineAggregate, InvalidCommand, InvalidTransition, derived_id

if TYPE_CHECKING:
    from domain.notifications.messages import MessageSpec

CHANNELS = ("email", "sms", "fax", "voicemail")
# Channels whose provider deduplicates by idempotency key: an in-doubt attempt is retried.
IDEMPOTENT_CHANNELS = ("sms", "fax", "voicemail")
LANGUAGES = ("zh", "ar", "it", "en")
RTL_LANGUAGES = ("ar",)
STATES = ("queued", "sending", "sent", "failed", "dead_lettered", "suppressed")
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
    CASE = True  # its events carry its case's correlation id

    class Queued(HotlineAggregate.Created):
        """A message to a citizen was queued (email, SMS …): one per idempotency key."""

        key: str
        purpose: str
        channel: str
        personal: dict[str, Any]
        """The recipient, ``{"to": email address or phone number}``: personal data, erased with the citizen."""
        language: str
        subject: str
        body: str
        html: str | None
        request_id: str | None
        source_event: str | None

    class AttemptStarted(HotlineAggregate.Event):
        """An attempt to send the message started."""

        attempt: int

        def apply(self, n: Notification) -> None:
            n.status = "sending"
            n.attempts = self.attempt

    class Sent(HotlineAggregate.Event):
        """The provider accepted the message."""

        attempt: int
        provider_ref: str | None

        def apply(self, n: Notification) -> None:
            n.status = "sent"
            n.provider_ref = self.provider_ref
            n.next_attempt_at = None

    class AttemptFailed(HotlineAggregate.Event):
        """An attempt to send the message failed; another follows at ``retry_at`` unless the failure is permanent."""

        attempt: int
        error: str
        permanent: bool
        retry_at: datetime | None

        def apply(self, n: Notification) -> None:
            n.status = "failed"
            n.last_error = self.error
            n.next_attempt_at = self.retry_at

    class DeadLettered(HotlineAggregate.Event):
        """The message was given up after its attempts: it waits for someone to retry it by hand."""

        reason: str
        attempts: int

        def apply(self, n: Notification) -> None:
            n.status = "dead_lettered"
            n.next_attempt_at = None

    class Suppressed(HotlineAggregate.Event):
        """Not sent, on purpose: the recipient refused this channel (an SMS opt-out)."""

        reason: str

        def apply(self, n: Notification) -> None:
            n.status = "suppressed"
            n.last_error = self.reason
            n.next_attempt_at = None

    class RetryRequested(HotlineAggregate.Event):
        """Someone asked for a dead-lettered message to be sent again."""

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

    def suppress(self, reason: str, ctx: Context) -> None:
        """Instead of an attempt: the message stays on record with why it was not sent."""
        if self.status not in ("queued", "failed"):
            raise InvalidTransition(f"notification {self.key} is {self.status}: nothing to suppress")
        self._record(self.Suppressed, ctx, reason=reason[:2000])

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
