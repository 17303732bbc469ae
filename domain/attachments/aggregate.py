"""Attachments: photos and documents on requests and work orders.

``Attachment`` (stream ``attachment``): one file attached to one subject, a request (by
id, with its reference) or a work order; ``attached`` records what the bytes are
(SHA-256, type sniffed from the content, size), where they came from (``source``: the
console, the API, Open311, email, SMS, voicemail) and, for an Open311 ``media_url``
kept by reference, the URL (no bytes then: it is not fetched). The bytes themselves are
content-addressed outside the event store (``infra/attachments.py``), written before
this event commits. ``removed`` takes the attachment off its subject.

Personal data: the file's name may name the citizen, so it travels in ``personal`` (the
field the per-citizen key will encrypt); ``citizen_id`` says whose key that is, and
whose blobs erasure removes.
"""

from __future__ import annotations

import re
import uuid
from typing import Any

from domain.base import Context, HotlineAggregate, InvalidCommand, InvalidTransition

SOURCES = ("console", "api", "open311", "email", "sms", "voicemail")
_SHA256 = re.compile(r"[0-9a-f]{64}")


class TooLarge(InvalidCommand):
    """An attachment over the size limit (HTTP 413, ``api/errors.py``)."""

    code = "attachment_too_large"


class Attachment(HotlineAggregate):
    STREAM = "attachment"
    CASE = True  # its events carry its case's correlation id

    class Attached(HotlineAggregate.Created):
        """A file was attached to a request or a work order (an upload, an email's attachment or its raw message)."""

        request_id: str | None
        request_ref: str | None
        work_order_id: str | None
        sha256: str | None
        content_type: str | None
        size: int | None
        source: str
        url: str | None
        citizen_id: str | None
        personal: dict[str, Any]
        """The file's name as it came (``{"filename": …}``): personal data, since it may name the citizen."""

    class Removed(HotlineAggregate.Event):
        """An attachment was removed from its case (the reason says why)."""

        reason: str

        def apply(self, a: Attachment) -> None:
            a.removed = True

    def __init__(
        self,
        request_id: str | None,
        request_ref: str | None,
        work_order_id: str | None,
        sha256: str | None,
        content_type: str | None,
        size: int | None,
        source: str,
        url: str | None,
        citizen_id: str | None,
        personal: dict[str, Any],
    ) -> None:
        self.request_id = request_id
        self.request_ref = request_ref
        self.work_order_id = work_order_id
        self.sha256 = sha256
        self.content_type = content_type
        self.size = size
        self.source = source
        self.url = url
        self.citizen_id = citizen_id
        self.personal = dict(personal)
        self.removed = False

    @classmethod
    def attach(
        cls,
        *,
        request: tuple[uuid.UUID, str] | None,
        work_order_id: uuid.UUID | None,
        sha256: str | None,
        content_type: str | None,
        size: int | None,
        filename: str | None,
        source: str,
        url: str | None,
        citizen_id: str | None,
        ctx: Context,
    ) -> Attachment:
        if (request is None) == (work_order_id is None):
            raise InvalidCommand("attach to one request or to one work order", field="request_ref")
        if source not in SOURCES:
            raise InvalidCommand(f"unknown source {source!r}", field="source", sources=list(SOURCES))
        if sha256 is None:
            if not url:
                raise InvalidCommand("an attachment needs its content (sha256) or a url", field="sha256")
            if content_type is not None or size is not None:
                raise InvalidCommand("an attachment kept by url has no content type or size of ours", field="url")
        else:
            if not _SHA256.fullmatch(sha256):
                raise InvalidCommand("sha256 must be 64 lowercase hex digits", field="sha256")
            if not content_type or size is None or size <= 0:
                raise InvalidCommand("stored content needs its content type and its size", field="content_type")
        if url is not None and not re.match(r"https?://", url):
            raise InvalidCommand("url must be an http or https URL", field="url")
        return cls._start(
            cls.Attached,
            uuid.uuid4(),
            ctx,
            request_id=str(request[0]) if request else None,
            request_ref=request[1] if request else None,
            work_order_id=str(work_order_id) if work_order_id else None,
            sha256=sha256,
            content_type=content_type,
            size=size,
            source=source,
            url=url,
            citizen_id=citizen_id,
            personal={"filename": filename},
        )

    def remove(self, reason: str, ctx: Context) -> None:
        if self.removed:
            raise InvalidTransition(f"attachment {self.id} is already removed")
        if not reason.strip():
            raise InvalidCommand("say why the attachment is removed", field="reason")
        self._record(self.Removed, ctx, reason=reason)

    def summary(self) -> dict[str, Any]:
        return {
            "id": str(self.id),
            "request_id": self.request_id,
            "request_ref": self.request_ref,
            "work_order_id": self.work_order_id,
            "sha256": self.sha256,
            "content_type": self.content_type,
            "size": self.size,
            "filename": self.personal.get("filename"),
            "source": self.source,
            "url": self.url,
            "removed": self.removed,
            "version": self.version,
        }
