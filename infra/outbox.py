"""The local outbox: where replies and alerts go when no SMTP server (``HOTLINE_SMTP_HOST``)
or SMS gateway (``HOTLINE_SMS_GATEWAY_URL``) is configured, as on a laptop.

One file per message, under ``<outbox>/<channel>/<UTC time>-<notification id>.<ext>``:
an email is the RFC 5322 message an SMTP server would have received (``.eml``, the same
bytes :mod:`infra.smtp` sends, openable in any mail client); an SMS, fax or voicemail is
the JSON the gateway would have been posted (``.json``). The notifier records the message
as sent with the reference ``outbox:<channel>/<file>``, so its outcome says where it
went, and ``GET /outbox`` (api/routers/outbox.py) shows what each citizen received.

Like the gateway, the outbox deduplicates by notification: a second delivery of the same
message (a retry after a crash) finds the file already written and writes nothing.
"""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any

from domain.notifications.aggregate import CHANNELS, notification_id
from domain.privacy.aggregate import ERASED
from infra.settings import Settings
from infra.smtp import DeliveryError, build_message

PREFIX = "outbox:"  # provider_ref of a message delivered here
SUFFIX = {"email": ".eml", "sms": ".json", "fax": ".json", "voicemail": ".json"}
# The headers a reader of the outbox is shown (the rest are in the raw message).
SHOWN_HEADERS = ("From", "To", "Subject", "Date", "Message-ID", "Content-Language", "X-Hotline-Request-Id")


def outbox_root(settings: Settings) -> Path:
    return settings.outbox_dir or settings.data_dir / "outbox"


def _utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass
class _Outbox:
    root: Path
    clock: Callable[[], datetime] = _utc_now

    def _write(self, channel: str, key: str, data: bytes, when: datetime) -> str:
        nid = notification_id(key)
        folder = self.root / channel
        try:
            existing = next(folder.glob(f"*-{nid}{SUFFIX[channel]}"), None) if folder.is_dir() else None
            if existing is not None:  # delivered before (a retry after a crash): not twice
                return PREFIX + f"{channel}/{existing.name}"
            folder.mkdir(parents=True, exist_ok=True)
            name = f"{when.astimezone(UTC):%Y%m%dT%H%M%S%fZ}-{nid}{SUFFIX[channel]}"
            # Written aside, then renamed: a reader never sees half a message.
            tmp = folder / f".{name}.tmp"
            tmp.write_bytes(data)
            os.replace(tmp, folder / name)
        except OSError as exc:
            raise DeliveryError(f"outbox {folder} not writable: {exc}") from exc
        return PREFIX + f"{channel}/{name}"


@dataclass
class OutboxMail(_Outbox):
    """Email into ``<outbox>/email``; the same interface as :class:`infra.smtp.SmtpSender`."""

    mail_from: str = "hotline@localhost"

    def send(self, *, to: str, subject: str, body: str, html: str | None, language: str, key: str, request_id: str | None = None) -> str:
        when = self.clock()
        msg = build_message(
            self.mail_from, to=to, subject=subject, body=body, html=html, language=language, key=key, request_id=request_id, when=when
        )
        # The wire format (CRLF line ends, non-ASCII encoded): what an SMTP server receives.
        return self._write("email", key, msg.as_bytes(policy=policy.SMTP), when)


@dataclass
class OutboxGateway(_Outbox):
    """SMS, fax and voicemail into ``<outbox>/<channel>``; the interface of
    :class:`infra.sms_gateway.GatewaySender`."""

    def send(self, *, channel: str, to: str, body: str, language: str, key: str, reference: str | None = None) -> str:
        if channel not in SUFFIX or channel == "email":
            raise DeliveryError(f"the gateway outbox takes sms, fax or voicemail, not {channel!r}", permanent=True)
        when = self.clock()
        doc = {
            "id": str(notification_id(key)),
            "channel": channel,
            "to": to,
            "body": body,
            "language": language,
            "request_id": reference,
            "idempotency_key": key,
            "written_at": when.astimezone(UTC).isoformat(),
        }
        return self._write(channel, key, json.dumps(doc, ensure_ascii=False, indent=2).encode("utf-8"), when)


# ------------------------------------------------------------------------ reading
def path_of(root: Path, nid: uuid.UUID) -> Path | None:
    """The file of one message, if it was delivered to this outbox."""
    for channel in CHANNELS:
        folder = root / channel
        if folder.is_dir():
            found = next(folder.glob(f"*-{nid}{SUFFIX[channel]}"), None)
            if found is not None:
                return found
    return None


def _files(root: Path, channel: str | None) -> list[Path]:
    channels = [channel] if channel else list(CHANNELS)
    found = [p for c in channels if (root / c).is_dir() for p in (root / c).glob(f"*-*{SUFFIX[c]}")]
    # Names start with the UTC time: newest first, whatever the channel.
    return sorted(found, key=lambda p: p.name, reverse=True)


def _id_of(path: Path) -> str:
    return path.stem[-36:]


def _written_at(path: Path) -> str:
    return datetime.strptime(path.name.split("-", 1)[0], "%Y%m%dT%H%M%S%fZ").replace(tzinfo=UTC).isoformat()


def read(path: Path) -> dict[str, Any]:
    """One message as its recipient got it: headers and text (and HTML) of an email, the
    posted fields of an SMS, fax or voicemail."""
    channel = path.parent.name
    base: dict[str, Any] = {"id": _id_of(path), "channel": channel, "file": f"{channel}/{path.name}", "written_at": _written_at(path)}
    if channel != "email":
        doc = json.loads(path.read_text("utf-8"))
        return {**base, "subject": None, **doc}
    mail = message_from_bytes(path.read_bytes(), policy=policy.default)
    assert isinstance(mail, EmailMessage)
    text, html = mail.get_body(("plain",)), mail.get_body(("html",))
    return {
        **base,
        "to": str(mail["To"] or ""),
        "subject": str(mail["Subject"] or ""),
        "language": str(mail["Content-Language"] or "") or None,
        "request_id": str(mail["X-Hotline-Request-Id"] or "") or None,
        "headers": {h: str(mail[h]) for h in SHOWN_HEADERS if mail[h] is not None},
        "body": _lf(text.get_content()) if text is not None else None,  # type: ignore[attr-defined]
        "html": _lf(html.get_content()) if html is not None else None,  # type: ignore[attr-defined]
    }


def _lf(text: str) -> str:
    # The file has the wire's CRLF line ends; a reader wants the text as written.
    return text.replace("\r\n", "\n")


def summary(message: dict[str, Any]) -> dict[str, Any]:
    keep = ("id", "channel", "to", "subject", "language", "request_id", "written_at", "file")
    out = {k: message.get(k) for k in keep}
    body = message.get("body") or ""
    out["preview"] = body if len(body) <= 160 else body[:157] + "…"
    return out


def listing(root: Path, *, channel: str | None = None, ids: set[str] | None = None, limit: int = 100) -> tuple[int, list[dict[str, Any]]]:
    """(how many messages match, the newest ``limit`` of them, summarised)."""
    files = [p for p in _files(root, channel) if ids is None or _id_of(p) in ids]
    return len(files), [summary(read(p)) for p in files[:limit]]


# ------------------------------------------------------------------------ erasure


def erase_messages(root: Path, subjects: list[str]) -> int:
    """Crypto-shredding reaches the outbox too: the messages of the erased streams
    (notification ids among ``subjects``) keep their file, id, channel, time and request,
    but their recipient and text read ``[erased]``. Returns how many files were rewritten."""
    wanted = set(subjects)
    done = 0
    for channel in CHANNELS:
        folder = root / channel
        if not folder.is_dir():
            continue
        for path in folder.glob(f"*-*{SUFFIX[channel]}"):
            if _id_of(path) not in wanted:
                continue
            if channel == "email":
                mail = message_from_bytes(path.read_bytes(), policy=policy.default)
                redacted = EmailMessage(policy=policy.SMTP)
                for header in ("From", "Date", "Message-ID", "Content-Language", "X-Hotline-Request-Id"):
                    if mail[header] is not None:
                        redacted[header] = str(mail[header])
                redacted["To"] = ERASED
                redacted["Subject"] = ERASED
                redacted.set_content(ERASED)
                data = redacted.as_bytes(policy=policy.SMTP)
            else:
                doc = json.loads(path.read_text("utf-8"))
                doc.update(to=ERASED, body=ERASED)
                data = json.dumps(doc, ensure_ascii=False, indent=2).encode("utf-8")
            tmp = folder / f".{path.name}.tmp"
            tmp.write_bytes(data)
            os.replace(tmp, path)
            done += 1
    return done
