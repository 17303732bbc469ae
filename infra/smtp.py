"""Email through a real SMTP server (smtplib). The message's idempotency key becomes a
stable Message-ID and an ``X-Hotline-Idempotency-Key`` header, so receivers can drop a
duplicate; the consumer itself never sends a message twice (domain/notifications.py)."""

from __future__ import annotations

import smtplib
import ssl
from dataclasses import dataclass
from datetime import datetime
from email.message import EmailMessage
from email.utils import format_datetime, formatdate

from domain.notifications.aggregate import message_id
from infra.settings import Settings


class DeliveryError(Exception):
    """A send failed. ``permanent``: retrying cannot help (bad address, refused)."""

    def __init__(self, message: str, *, permanent: bool = False) -> None:
        super().__init__(message)
        self.permanent = permanent


def smtp_configured(st: Settings) -> bool:
    """An SMTP server was named (``HOTLINE_SMTP_HOST``, or only ``HOTLINE_SMTP_PORT`` for one
    on this host); otherwise the notifier delivers email to the local outbox."""
    return bool(st.smtp_host) or "smtp_port" in st.model_fields_set


@dataclass
class SmtpSender:
    host: str
    port: int
    mail_from: str
    username: str | None = None
    password: str | None = None
    starttls: bool = False
    timeout: float = 10.0

    @classmethod
    def from_settings(cls, st: Settings) -> SmtpSender:
        """The configured server. Unset, localhost:25 (what the sign-in codes still try;
        the notifier writes to the local outbox instead: ``infra/outbox.py``)."""
        return cls(
            host=st.smtp_host or "127.0.0.1",
            port=st.smtp_port,
            mail_from=st.mail_from,
            username=st.smtp_username,
            password=st.smtp_password,
            starttls=st.smtp_starttls,
            timeout=st.smtp_timeout,
        )

    def send(self, *, to: str, subject: str, body: str, html: str | None, language: str, key: str, request_id: str | None = None) -> str:
        msg = build_message(self.mail_from, to=to, subject=subject, body=body, html=html, language=language, key=key, request_id=request_id)
        try:
            with smtplib.SMTP(self.host, self.port, timeout=self.timeout) as smtp:
                if self.starttls:
                    smtp.starttls(context=ssl.create_default_context())
                if self.username:
                    smtp.login(self.username, self.password or "")
                refused = smtp.send_message(msg)
        except smtplib.SMTPRecipientsRefused as exc:
            raise DeliveryError(f"recipient refused: {exc.recipients}", permanent=True) from exc
        except smtplib.SMTPResponseException as exc:
            # 5xx: the server will never take it; 4xx: try again later.
            raise DeliveryError(f"SMTP {exc.smtp_code}: {exc.smtp_error!r}", permanent=500 <= exc.smtp_code < 600) from exc
        except (OSError, smtplib.SMTPException) as exc:
            raise DeliveryError(f"SMTP {self.host}:{self.port} unreachable: {exc}") from exc
        if refused:
            raise DeliveryError(f"recipient refused: {refused}", permanent=True)
        return str(msg["Message-ID"])


def build_message(
    mail_from: str,
    *,
    to: str,
    subject: str,
    body: str,
    html: str | None,
    language: str,
    key: str,
    request_id: str | None = None,
    when: datetime | None = None,
) -> EmailMessage:
    """The RFC 5322 message for a notification, the same whether it goes to an SMTP server
    or to the local outbox (``infra/outbox.py``)."""
    msg = EmailMessage()
    msg["From"] = mail_from
    msg["To"] = to
    msg["Subject"] = subject
    msg["Date"] = format_datetime(when) if when is not None else formatdate(localtime=False)
    msg["Message-ID"] = message_id(key)
    msg["X-Hotline-Idempotency-Key"] = key
    if request_id:
        msg["X-Hotline-Request-Id"] = request_id
    msg.set_content(body)
    if html:
        msg.add_alternative(html, subtype="html")
    msg["Content-Language"] = language  # after the body: set_content clears Content-* headers
    return msg
