"""What to send: the messages a request event causes, rendered from the templates.

Pure: :func:`messages_for` turns one request event into message specs; the notifier
(``consumers/notifications.py``) queues them as :class:`~domain.notifications.aggregate.Notification`
aggregates and sends them. Templates per language (zh, ar right-to-left, it, en) live in
``infra/data/templates``; :func:`render` picks the citizen's language and falls back to English.
"""

from __future__ import annotations

import string
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from domain.base import NotFound, event_type_name
from domain.notifications.aggregate import REPLY_CHANNEL_TO_CHANNEL, RTL_LANGUAGES
from domain.requests.aggregate import ServiceRequest


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
# Keyed by the events' public type names, derived from their classes.
CITIZEN_PURPOSES = {
    event_type_name(ServiceRequest.InterimReplied): "interim_reply",
    event_type_name(ServiceRequest.FinalReplied): "final_reply",
    event_type_name(ServiceRequest.SatisfactionCallbackDue): "satisfaction_callback",
}
DEPARTMENT_PURPOSES = {
    event_type_name(ServiceRequest.DeadlineApproaching): "deadline_approaching",
    event_type_name(ServiceRequest.DeadlineMissed): "deadline_missed",
    event_type_name(ServiceRequest.ReminderSent): "reminder",
    event_type_name(ServiceRequest.InterimReplyDue): "interim_reply_due",
    event_type_name(ServiceRequest.Escalated): "escalated",
}
ESCALATED = event_type_name(ServiceRequest.Escalated)


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
    name = envelope.type
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
        to = control_office_address if name == ESCALATED else department_address
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
