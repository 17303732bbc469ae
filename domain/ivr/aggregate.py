"""IVR flows: the voice menus callers meet, as documents, each published version an event.

``IvrFlow`` (stream ``ivr_flow``, one aggregate per flow id): ``registered`` when its
first version is published, then ``version_published`` for each version N (1, 2, …) with
the whole document and its SHA-256 (canonical JSON, ``domain/ivr/flow.py``). The auditor
replays which document was live when: a call names the flow id and version it met
(``Contact.IvrSessionRecorded``), and this stream holds that version's exact text.
Publishing a document identical to the current version records nothing.
"""

from __future__ import annotations

from typing import Any

from domain.base import Context, HotlineAggregate, InvalidCommand, derived_id
from domain.ivr.flow import check_flow, flow_hash


def flow_uuid(flow_id: str) -> Any:
    """The aggregate id from the flow's name: two first publications conflict, not duplicate."""
    return derived_id("ivr_flow", flow_id)


class IvrFlow(HotlineAggregate):
    STREAM = "ivr_flow"  # topic hotline.ivr_flows, types hotline.ivr_flow.<event>.v1

    class Registered(HotlineAggregate.Created):
        """An IVR flow (a voice menu) was registered under its name, with its first version."""

        flow_id: str
        """The flow's name (its document's ``flow_id``)."""

    class VersionPublished(HotlineAggregate.Event):
        """A new version of the flow was published: calls from now on go through it."""

        flow_id: str
        """The flow's name."""
        flow_version: int
        """The version number, 1, 2, … per flow: what a call's ``ivr_session_recorded`` names."""
        document: dict[str, Any]
        """The flow document as published (``telephony_adapter/ivr/flow.schema.json``)."""
        sha256: str
        """SHA-256 of the document's canonical JSON (sorted keys, no spaces, UTF-8)."""
        note: str | None
        """What changed, as the publisher said."""

        def apply(self, f: IvrFlow) -> None:
            f.current = self.flow_version
            f.sha256 = self.sha256
            f.document = self.document
            f.hashes.append(self.sha256)

    def __init__(self, flow_id: str) -> None:
        self.flow_id = flow_id
        self.current = 0
        self.sha256: str | None = None
        self.document: dict[str, Any] | None = None
        self.hashes: list[str] = []

    @classmethod
    def register(cls, flow_id: str, ctx: Context) -> IvrFlow:
        return cls._start(cls.Registered, flow_uuid(flow_id), ctx, flow_id=flow_id)

    def publish(self, document: dict[str, Any], note: str | None, ctx: Context) -> bool:
        """Publishes the document as the next version; False when it is the current one."""
        check_flow(document)
        if document["flow_id"] != self.flow_id:
            raise InvalidCommand(f"the document is flow {document['flow_id']!r}, not {self.flow_id!r}", field="document/flow_id")
        digest = flow_hash(document)
        if digest == self.sha256:
            return False
        self._record(
            self.VersionPublished,
            ctx,
            flow_id=self.flow_id,
            flow_version=self.current + 1,
            document=document,
            sha256=digest,
            note=note,
        )
        return True

    def summary(self) -> dict[str, Any]:
        return {"flow_id": self.flow_id, "flow_version": self.current, "sha256": self.sha256, "version": self.version}
