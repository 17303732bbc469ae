"""Attachment commands: a file attached to a request or a work order, or taken off it."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from domain.access import Action
from domain.handling import Command, Target

Source = Literal["console", "api", "open311", "email", "sms", "voicemail"]


class AttachFile(Command):
    """Records an attachment whose bytes are already stored (``hotline.attachments.put``
    answers the sha256, content type and size), or an Open311 ``media_url`` kept by
    reference (``url`` without ``sha256``). Name one subject."""

    action = Action.ATTACHMENTS_ADD

    request_ref: str | None = Field(default=None, description="The request's reference (or id)")
    work_order_id: str | None = Field(default=None, description="The work order's id")
    sha256: str | None = Field(default=None, min_length=64, max_length=64, description="The stored content's SHA-256, hex")
    content_type: str | None = Field(default=None, max_length=200, description="As sniffed from the content")
    size: int | None = Field(default=None, ge=1, description="Bytes")
    filename: str | None = Field(default=None, max_length=255)
    source: Source = "api"
    url: str | None = Field(default=None, max_length=2000, description="A remote media URL kept by reference, not fetched")


class RemoveAttachment(Command):
    action = Action.ATTACHMENTS_REMOVE

    attachment_id: Target = ""
    reason: str = Field(min_length=1, max_length=2000)
