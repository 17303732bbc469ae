"""The notification consumer (``hotline notify``): replies and alerts by email, SMS, fax
and voicemail.

It follows the event log like the in-process projector (its position is kept in the
read store's ``projection_positions`` under ``notifier``). For each request event that
calls for a message (a reply to the citizen, an SLA alert to a department, the
satisfaction callback) it queues a :class:`~domain.notifications.aggregate.Notification` whose id
is derived from the message's idempotency key: a restarted consumer that reads the same
events again queues nothing new. It then works through the queue (read model
``projections/notifications.py``): attempt started (an event) → send → sent or failed
(events) → retried later with backoff → dead-lettered after the last attempt; an
operator can retry a dead-lettered message. See the domain module for how an attempt
interrupted by a crash is resolved without sending twice.
"""

from __future__ import annotations

import logging
import threading
import uuid
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any, Protocol

import yaml
from eventsourcing.application import AggregateNotFoundError

from consumers.fast_decode import FastDecoder
from domain.base import Actor, DomainError
from domain.catalogue.aggregate import Catalogue, catalogue_id
from domain.notifications import aggregate as n
from domain.notifications import commands as nc
from domain.notifications import messages
from domain.requests.aggregate import ServiceRequest
from infra.outbox import OutboxGateway, OutboxMail, outbox_root
from infra.read_store import read_position, write_position
from infra.runtime import Hotline
from infra.settings import Settings
from infra.sms_gateway import GatewaySender
from infra.smtp import DeliveryError, SmtpSender, smtp_configured
from projections import notifications as read_model

log = logging.getLogger("hotline.notify")
NOTIFIER = Actor("notifier", "system", "Notification consumer")
POSITION_NAME = "notifier"
TEMPLATES_DIR = Path(__file__).resolve().parent.parent / "infra" / "data" / "templates"


def load_templates(directory: Path = TEMPLATES_DIR) -> dict[str, Any]:
    found = {}
    for path in sorted(directory.glob("*.yaml")):
        doc = yaml.safe_load(path.read_text("utf-8"))
        found[doc.get("language") or path.stem] = doc
    return found


class EmailSender(Protocol):
    """An SMTP server (infra/smtp.py) or the local outbox (infra/outbox.py)."""

    def send(
        self, *, to: str, subject: str, body: str, html: str | None, language: str, key: str, request_id: str | None = None
    ) -> str: ...


class MessageGateway(Protocol):
    """An SMS / fax / voicemail provider (infra/sms_gateway.py) or the local outbox."""

    def send(self, *, channel: str, to: str, body: str, language: str, key: str, reference: str | None = None) -> str: ...


def runs_in_serve(settings: Settings) -> bool:
    """Whether `hotline serve` sends the replies itself: yes on the embedded default
    (SQLite), no with PostgreSQL or Kafka, where `hotline notify` is its own process (one
    sender for many API processes); ``HOTLINE_NOTIFIER_INPROCESS`` decides when set."""
    if settings.notifier_inprocess is not None:
        return settings.notifier_inprocess
    return settings.database_url is None and settings.kafka_bootstrap_servers is None


def describe(sender: EmailSender | MessageGateway | None) -> str:
    """Where a sender delivers, for the start-up line and the status."""
    if isinstance(sender, SmtpSender):
        return f"SMTP {sender.host}:{sender.port}"
    if isinstance(sender, GatewaySender):
        return f"gateway {sender.url}"
    if isinstance(sender, OutboxMail):
        return f"outbox {sender.root / 'email'}"
    if isinstance(sender, OutboxGateway):
        return f"outbox {sender.root}/<channel>"
    return "not configured" if sender is None else type(sender).__name__


def notifier_metrics(consumer: NotificationConsumer) -> Any:
    """The notifier's figures for /metrics: attempts' outcomes counted by this process, and
    the messages by status (dead letters among them) read from the read model at scrape time."""
    from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

    from infra.metrics import StatsCollector

    def build() -> Any:
        s = consumer.stats
        outcomes = CounterMetricFamily("hotline_notifications", "Delivery attempts by outcome, this process", labels=["outcome"])
        for outcome in ("sent", "failed", "dead_lettered", "in_doubt", "suppressed"):
            outcomes.add_metric([outcome], getattr(s, outcome))
        yield outcomes
        yield CounterMetricFamily("hotline_notifier_errors", "Rounds of the notifier that failed", value=s.errors)
        channels = CounterMetricFamily("hotline_notifications_sent_by_channel", "Messages delivered, by channel", labels=["channel"])
        for channel, sent in sorted(s.by_channel.items()):
            channels.add_metric([channel], sent)
        yield channels
        with consumer.hotline.read_store.engine.connect() as conn:
            counts = read_model.counts(conn)
        messages = GaugeMetricFamily("hotline_notification_messages", "Messages by status (read model)", labels=["status"])
        for status, count in sorted(counts.items()):
            messages.add_metric([status], count)
        yield messages
        yield GaugeMetricFamily(
            "hotline_notification_dead_letters", "Messages given up on (an operator may retry them)", value=counts.get("dead_lettered", 0)
        )

    return StatsCollector("hotline_notifier", build)


@dataclass
class NotifyStats:
    queued: int = 0
    sent: int = 0
    failed: int = 0
    dead_lettered: int = 0
    in_doubt: int = 0
    suppressed: int = 0
    errors: int = 0
    last_error: str | None = None
    by_channel: dict[str, int] = field(default_factory=dict)


class NotificationConsumer:
    def __init__(
        self,
        hotline: Hotline,
        *,
        email: EmailSender | None,
        gateway: MessageGateway | None,
        templates: dict[str, Any] | None = None,
        retry: n.RetryPolicy | None = None,
        department_mail: str = "{department_id}@departments.hotline.local",
        batch: int = 200,
    ) -> None:
        self.hotline = hotline
        self.email = email
        self.gateway = gateway
        self.templates = templates or load_templates()
        self.retry = retry or n.RetryPolicy()
        self.department_mail = department_mail
        self.batch = batch
        self.stats = NotifyStats()
        self._started: set[str] = set()  # attempts this process started (not in doubt)
        self._decoder = FastDecoder(hotline.store.to_envelope)  # its stored topic → event type, cached
        self._topics: dict[str, bool] = {}  # stored topic → whether it calls for a message
        self._lock = threading.Lock()

    @classmethod
    def from_settings(cls, hotline: Hotline) -> NotificationConsumer:
        """The configured SMTP server and gateway; the local outbox for what is not configured."""
        st = hotline.settings
        box, now = outbox_root(st), hotline.clock.now
        email: EmailSender = SmtpSender.from_settings(st) if smtp_configured(st) else OutboxMail(box, now, st.mail_from)
        gateway: MessageGateway = GatewaySender.from_settings(st) or OutboxGateway(box, now)
        retry = n.RetryPolicy(max_attempts=st.notify_max_attempts, first_retry=timedelta(seconds=st.notify_retry_seconds))
        return cls(hotline, email=email, gateway=gateway, retry=retry, department_mail=st.department_mail)

    def delivery(self) -> dict[str, str]:
        """Where each channel's messages go."""
        gateway = describe(self.gateway)
        return {"email": describe(self.email), "sms": gateway, "fax": gateway, "voicemail": gateway}

    # -------------------------------------------------------------- following the log
    def follow(self) -> int:
        """Queues the messages that new events call for; returns how many were queued."""
        engine = self.hotline.read_store.engine
        with engine.connect() as conn:
            position = read_position(conn, POSITION_NAME)
        queued = 0
        store = self.hotline.store
        while True:
            page = store.notifications(position, self.batch)
            if not page:
                return queued
            # Only the few event types that call for a message are decoded: decoding every
            # event (and opening its personal data) cost this loop most of its time.
            for stored in page:
                if self._calls_for_message(stored.topic):
                    queued += self._queue_for(store.to_envelope(stored))
            position = page[-1].id
            # Position after the queueing: a crash in between re-reads events whose
            # messages are already queued, and queueing them again is a no-op.
            with engine.begin() as conn:
                write_position(conn, POSITION_NAME, -1, position)

    def _calls_for_message(self, topic: str) -> bool:
        known = self._topics.get(topic)
        if known is None:
            kind = self._decoder.type_of(topic)
            name = kind[0] if kind is not None else ""
            known = self._topics[topic] = name in messages.CITIZEN_PURPOSES or name in messages.DEPARTMENT_PURPOSES
        return known

    def _queue_for(self, env: Any) -> int:
        if env.type not in messages.CITIZEN_PURPOSES and env.type not in messages.DEPARTMENT_PURPOSES:
            return 0
        try:
            r: ServiceRequest = self.hotline.store.repository.get(uuid.UUID(env.aggregate_id))
        except AggregateNotFoundError:
            return 0
        request = {
            "reference": r.reference,
            "language": r.language,
            "reply_channel": r.reply_channel,
            "personal": r.personal,
            "contact_hidden": r.contact_hidden,
            "department_id": r.department_id,
            "due_at": r.due_at.isoformat(),
        }
        department = env.data.get("department_id") or r.department_id
        specs = messages.messages_for(
            env,
            request,
            self.templates,
            department_address=self.department_mail.format(department_id=department) if department else "",
            control_office_address=self.department_mail.format(department_id=self._control_office()),
            staff_language=self.hotline.settings.default_language,
        )
        count = 0
        for spec in specs:
            result = self.hotline.bus.execute(
                nc.QueueNotification(message=spec), NOTIFIER, correlation_id=env.meta.get("correlation_id"), causation_id=env.event_id
            ).result
            count += int(result["queued"])
        self.stats.queued += count
        return count

    def _control_office(self) -> str:
        try:
            cat: Catalogue = self.hotline.store.repository.get(catalogue_id(self.hotline.bus.deps.jurisdiction))
        except AggregateNotFoundError:
            return "control"
        offices = cat.control_offices()
        return offices[0] if offices else "control"

    # -------------------------------------------------------------- sending
    def catch_up(self) -> None:
        rs = self.hotline.read_store
        position = rs.position(read_model.projection.name)
        while True:
            envelopes = self.hotline.store.envelopes(position, 2000)
            if not envelopes:
                return
            rs.apply(envelopes, only=[read_model.projection])
            position = envelopes[-1].position

    def send_due(self) -> int:
        """Works through the queue once; returns how many messages were sent."""
        sent = 0
        now = self.hotline.clock.now()
        with self.hotline.read_store.engine.connect() as conn:
            rows = read_model.due(conn, now, self.batch)
        for row in rows:
            nid = uuid.UUID(row["id"])
            try:
                if row["status"] == "sending":
                    if row["id"] not in self._started:  # an earlier run died mid-attempt
                        self.hotline.bus.execute(nc.ResolveInDoubt(notification_id=str(nid), retry=self.retry), NOTIFIER)
                        self.stats.in_doubt += 1
                    continue
                sent += self._attempt(nid)
            except DomainError as exc:  # the read model lagged: the aggregate knows better
                log.info("notification %s skipped: %s", row["id"], exc)
        return sent

    def _attempt(self, nid: uuid.UUID) -> int:
        started = self.hotline.bus.execute(nc.StartAttempt(notification_id=str(nid)), NOTIFIER).result
        if "suppressed" in started:  # the recipient opted out of the channel: recorded, not sent
            self.stats.suppressed += 1
            return 0
        self._started.add(str(nid))
        msg: n.Notification = self.hotline.store.repository.get(nid)
        try:
            ref = self._deliver(msg)
        except DeliveryError as exc:
            result = self.hotline.bus.execute(
                nc.RecordOutcome(notification_id=str(nid), delivered=False, detail=str(exc), permanent=exc.permanent, retry=self.retry),
                NOTIFIER,
            ).result
            self.stats.failed += 1
            if result["status"] == "dead_lettered":
                self.stats.dead_lettered += 1
            return 0
        self.hotline.bus.execute(nc.RecordOutcome(notification_id=str(nid), delivered=True, detail=ref, retry=self.retry), NOTIFIER)
        self.stats.sent += 1
        self.stats.by_channel[msg.channel] = self.stats.by_channel.get(msg.channel, 0) + 1
        return 1

    def _deliver(self, msg: n.Notification) -> str:
        if msg.channel == "email":
            if self.email is None:
                raise DeliveryError("no SMTP server configured")
            return self.email.send(
                to=msg.to, subject=msg.subject, body=msg.body, html=msg.html, language=msg.language, key=msg.key, request_id=msg.request_id
            )
        if self.gateway is None:
            raise DeliveryError(f"no gateway configured for {msg.channel} (HOTLINE_SMS_GATEWAY_URL)")
        text = msg.body if msg.channel != "fax" else f"{msg.subject}\n\n{msg.body}"
        return self.gateway.send(channel=msg.channel, to=msg.to, body=text, language=msg.language, key=msg.key, reference=msg.request_id)

    # -------------------------------------------------------------- running
    def run_once(self) -> int:
        with self._lock:
            self.follow()
            self.catch_up()
            sent = self.send_due()
            self.catch_up()
            return sent

    def run(self, stop: threading.Event, poll_seconds: float = 1.0, until_idle: bool = False) -> None:
        while not stop.is_set():
            try:
                sent = self.run_once()
            except Exception as exc:
                self.stats.errors += 1
                self.stats.last_error = f"{type(exc).__name__}: {exc}"
                log.exception("notification round failed")
                sent = 0
            if until_idle and sent == 0:
                return
            stop.wait(poll_seconds)

    def status(self) -> dict[str, Any]:
        with self.hotline.read_store.engine.connect() as conn:
            counts = read_model.counts(conn)
            position = read_position(conn, POSITION_NAME)
        return {
            "process": dict(self.stats.__dict__),
            "messages": counts,
            "position": position,
            "lag": self.hotline.store.max_position() - position,
            "delivery": self.delivery(),
        }
