"""What a PBX adapter calls to record calls (the ARI adapter; ``domain/recordings``).

* :meth:`Recorder.decide`: when a call is bridged to an agent, whether to record it and
  why (the queue's policy, ``domain/recordings/policy.py``), and :meth:`announcement`,
  the prompt to play before bridging.
* :meth:`Recorder.started`: ``StartRecording`` once the PBX records (ARI
  ``POST /bridges/{id}/record``).
* :meth:`Recorder.finished`: on ``RecordingFinished``, the file's bytes (ARI
  ``GET /recordings/stored/{name}/file``) go to the attachment store, then
  ``CompleteRecording`` names them: bytes first, event second.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from domain.base import Actor
from domain.contact_center.contacts import contact_uuid_for
from domain.recordings.aggregate import RecordingPolicy, policy_id
from domain.recordings.commands import CompleteRecording, StartRecording
from domain.recordings.policy import NOT_RECORDED, QueuePolicy, Reason, reason_to_record
from infra.attachments import AttachmentStore
from infra.bus import CommandBus
from infra.recordings import store_audio

RECORDER_ACTOR = Actor("pbx-recorder", "system", "PBX call recorder")


@dataclass
class Recorder:
    bus: CommandBus
    attachments: AttachmentStore
    actor: Actor = RECORDER_ACTOR
    max_bytes: int = 200 * 1024 * 1024

    def policy(self, queue_id: str) -> QueuePolicy:
        found = self.bus.store.reference(policy_id(queue_id))
        return found.policy if isinstance(found, RecordingPolicy) else NOT_RECORDED

    def decide(self, queue_id: str, contact_id: str, agent_demand: bool = False) -> Reason | None:
        """Why this call is recorded (None: it is not). ``contact_id`` is the contact's id
        or the PBX channel id it arrived with."""
        try:
            cid = str(uuid.UUID(contact_id))
        except ValueError:
            cid = str(contact_uuid_for(contact_id))
        return reason_to_record(self.policy(queue_id), cid, agent_demand)

    def announcement(self, queue_id: str) -> str | None:
        return self.policy(queue_id).announcement

    def started(
        self, recording_id: str, contact_id: str, agent_id: str | None, queue_id: str | None, reason: Reason, started_at: datetime
    ) -> dict[str, Any]:
        cmd = StartRecording(
            recording_id=recording_id, contact_id=contact_id, agent_id=agent_id, queue_id=queue_id, reason=reason, started_at=started_at
        )
        return self.bus.execute(cmd, self.actor).result

    def finished(self, recording_id: str, audio: bytes, duration_s: float) -> dict[str, Any]:
        stored = store_audio(self.attachments, audio, self.max_bytes)
        cmd = CompleteRecording(
            recording_id=recording_id,
            duration_s=duration_s,
            location=stored.location,
            sha256=stored.sha256,
            size_bytes=stored.size_bytes,
            content_type=stored.content_type,
        )
        return self.bus.execute(cmd, self.actor).result
