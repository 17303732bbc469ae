"""IVR flow commands: publish a flow document as its next version."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from domain.access import Action
from domain.handling import Command


class PublishFlow(Command):
    """Checks the document (its JSON Schema, then references, languages and loops) and
    publishes it as the flow's next version; the same document as the current version
    changes nothing. The flow is named by the document's ``flow_id``."""

    action = Action.IVR_PUBLISH

    document: dict[str, Any] = Field(description="The flow (telephony_adapter/ivr/flow.schema.json)")
    note: str | None = Field(default=None, max_length=2000, description="What changed, for the audit trail")
