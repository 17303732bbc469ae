"""Call recordings: each queue's recording policy, and one recording per recorded call.

``RecordingPolicy`` (stream ``recording_policy``, id derived from the queue id): what a
queue records (``domain/recordings/policy.py``) and the prompt that announces it.

``Recording`` (stream ``recording``): ``started`` when the PBX starts recording a call
bridged to an agent (or a voicemail), with the contact, agent, queue, citizen, the
requests linked to the contact so far, why it is recorded and the announcement played;
``completed`` when the file is stored: duration, where its bytes are (the attachment
store, content-addressed: ``location``), SHA-256 and size. ``playback_granted`` is the
audit of every playback: who, why, until when (the link's token is kept only as a hash).
``deleted`` when retention or an erasure removed the bytes (the metadata events stay).

Personal data: the caller's number is in ``personal`` (sealed with the citizen's key,
``infra/transcoder.py``); ``citizen_id`` names whose key, so the recording's stream
belongs to the citizen and an erasure covers it (its audio is then deleted,
``infra/recordings.py``). The hash and location stay clear: they name bytes, not a
person, and erasure needs them to find the bytes to delete.
"""

from __future__ import annotations

import re
import uuid
from datetime import datetime, timedelta
from typing import Any

from domain.access import Access
from domain.base import Context, HotlineAggregate, InvalidCommand, InvalidTransition, derived_id
from domain.recordings.policy import MODES, REASONS, QueuePolicy

_SHA256 = re.compile(r"[0-9a-f]{64}")
# Request states in which the case is disputed: its ownership is contested (returned by a
# department, or waiting for the control office's ruling).
DISPUTED_STATES = ("returned", "awaiting_ruling")
MAX_GRANT_SECONDS = 3600


def policy_id(queue_id: str) -> uuid.UUID:
    return derived_id("recording_policy", queue_id)


def recording_uuid(recording_id: str) -> uuid.UUID:
    """The aggregate id of a recording named by the PBX (its recording name), or the id itself."""
    try:
        return uuid.UUID(recording_id)
    except ValueError:
        return derived_id("recording", recording_id)


class RecordingPolicy(HotlineAggregate):
    STREAM = "recording_policy"

    class Defined(HotlineAggregate.Created):
        queue_id: str

    class PolicySet(HotlineAggregate.Event):
        mode: str
        sample_percent: float
        announcement: str | None

        def apply(self, p: RecordingPolicy) -> None:
            p.mode, p.sample_percent, p.announcement = self.mode, self.sample_percent, self.announcement

    def __init__(self, queue_id: str) -> None:
        self.queue_id = queue_id
        self.mode = "none"
        self.sample_percent = 0.0
        self.announcement: str | None = None

    @classmethod
    def define(cls, queue_id: str, ctx: Context) -> RecordingPolicy:
        return cls._start(cls.Defined, policy_id(queue_id), ctx, queue_id=queue_id)

    def set(self, mode: str, sample_percent: float | None, announcement: str | None, ctx: Context) -> None:
        if mode not in MODES:
            raise InvalidCommand(f"mode is one of {list(MODES)}", field="mode")
        if mode == "sample":
            if sample_percent is None or not 0 < sample_percent <= 100:
                raise InvalidCommand("a sample needs sample_percent above 0 and at most 100", field="sample_percent")
        elif sample_percent not in (None, 0):
            raise InvalidCommand("sample_percent is for mode sample only", field="sample_percent")
        if mode == "none":
            if announcement:
                raise InvalidCommand("a queue that records nothing announces nothing", field="announcement")
        elif not announcement or not announcement.strip():
            # The caller is told before anything is recorded (the seed: recordings are announced).
            raise InvalidCommand("a queue that records calls names the prompt that announces it", field="announcement")
        self._record(
            self.PolicySet,
            ctx,
            mode=mode,
            sample_percent=float(sample_percent or 0.0),
            announcement=announcement.strip() if announcement else None,
        )

    @property
    def policy(self) -> QueuePolicy:
        return QueuePolicy(mode=self.mode, sample_percent=self.sample_percent, announcement=self.announcement)  # type: ignore[arg-type]

    def summary(self) -> dict[str, Any]:
        return {
            "queue_id": self.queue_id,
            "mode": self.mode,
            "sample_percent": self.sample_percent,
            "announcement": self.announcement,
            "version": self.version,
        }


class Recording(HotlineAggregate):
    STREAM = "recording"
    CASE = True  # its events carry its call's correlation id

    class Started(HotlineAggregate.Created):
        name: str  # the PBX's name for it (ARI recording name)
        contact_id: str
        agent_id: str | None
        queue_id: str
        reason: str  # policy / sample / agent_demand / voicemail
        announcement: str | None  # the prompt played before recording
        started_at: datetime
        citizen_id: str | None
        request_ids: list[str]  # linked to the contact when the recording started
        personal: dict[str, Any]  # {"phone": the caller's number}

    class Completed(HotlineAggregate.Event):
        duration_s: float
        location: str  # where the bytes are: "attachments:<sha256>"
        sha256: str
        size_bytes: int
        content_type: str | None

        def apply(self, r: Recording) -> None:
            r.status = "completed"
            r.duration_s, r.location, r.sha256, r.size_bytes = self.duration_s, self.location, self.sha256, self.size_bytes
            r.completed_at, r.content_type = self.timestamp, self.content_type

    class PlaybackGranted(HotlineAggregate.Event):
        grantee: str  # the actor id the link is for
        token_sha256: str  # the link's token, hashed: the event never holds a usable link
        expires_at: datetime
        purpose: str

        def apply(self, r: Recording) -> None:
            r.grants[self.token_sha256] = (self.grantee, self.expires_at)
            r.plays += 1

    class Deleted(HotlineAggregate.Event):
        reason: str
        basis: str  # retention / erasure / manual

        def apply(self, r: Recording) -> None:
            r.status = "deleted"
            r.grants.clear()

    def __init__(
        self,
        name: str,
        contact_id: str,
        agent_id: str | None,
        queue_id: str,
        reason: str,
        announcement: str | None,
        started_at: datetime,
        citizen_id: str | None,
        request_ids: list[str],
        personal: dict[str, Any],
    ) -> None:
        self.name, self.contact_id, self.agent_id, self.queue_id = name, contact_id, agent_id, queue_id
        self.reason, self.announcement, self.started_at = reason, announcement, started_at
        self.citizen_id, self.request_ids, self.personal = citizen_id, list(request_ids), dict(personal)
        self.status = "recording"
        self.duration_s: float | None = None
        self.location: str | None = None
        self.sha256: str | None = None
        self.size_bytes: int | None = None
        self.completed_at: datetime | None = None
        self.content_type: str | None = None
        self.grants: dict[str, tuple[str, datetime]] = {}
        self.plays = 0

    @classmethod
    def start(
        cls,
        *,
        name: str,
        contact_id: str,
        agent_id: str | None,
        queue_id: str,
        reason: str,
        announcement: str | None,
        started_at: datetime,
        citizen_id: str | None,
        request_ids: list[str],
        phone: str | None,
        ctx: Context,
    ) -> Recording:
        if reason not in REASONS:
            raise InvalidCommand(f"reason is one of {list(REASONS)}", field="reason")
        if started_at.tzinfo is None:
            raise InvalidCommand("started_at needs a time zone", field="started_at")
        if started_at > ctx.now + timedelta(seconds=30):
            raise InvalidCommand("a recording cannot start in the future", field="started_at")
        if reason != "voicemail" and not announcement:
            raise InvalidCommand("a call is recorded only after the caller was told", field="reason")
        return cls._start(
            cls.Started,
            recording_uuid(name),
            ctx,
            name=name,
            contact_id=contact_id,
            agent_id=agent_id,
            queue_id=queue_id,
            reason=reason,
            announcement=announcement,
            started_at=started_at,
            citizen_id=citizen_id,
            request_ids=list(request_ids),
            personal={"phone": phone},
        )

    def complete(self, duration_s: float, location: str, sha256: str, size_bytes: int, content_type: str | None, ctx: Context) -> bool:
        """Records the stored file. The same file again is a no-op (a re-delivered
        RecordingFinished); another one is refused."""
        if not _SHA256.fullmatch(sha256):
            raise InvalidCommand("sha256 must be 64 lowercase hex digits", field="sha256")
        if size_bytes <= 0:
            raise InvalidCommand("a stored recording has bytes", field="size_bytes")
        if duration_s < 0:
            raise InvalidCommand("duration_s cannot be negative", field="duration_s")
        if not location.strip():
            raise InvalidCommand("say where the bytes are", field="location")
        if self.status == "completed" and self.sha256 == sha256:
            return False
        if self.status != "recording":
            raise InvalidTransition(f"recording {self.name} is {self.status}")
        self._record(
            self.Completed,
            ctx,
            duration_s=round(duration_s, 3),
            location=location,
            sha256=sha256,
            size_bytes=size_bytes,
            content_type=content_type,
        )
        return True

    def grant_playback(self, grantee: str, token_sha256: str, seconds: int, purpose: str, ctx: Context) -> datetime:
        if self.status != "completed":
            raise InvalidTransition(f"recording {self.name} is {self.status}: nothing to play", status=self.status)
        if not 0 < seconds <= MAX_GRANT_SECONDS:
            raise InvalidCommand(f"a playback link lasts 1 to {MAX_GRANT_SECONDS} seconds", field="seconds")
        if not _SHA256.fullmatch(token_sha256):
            raise InvalidCommand("the token's hash must be 64 lowercase hex digits", field="token_sha256")
        expires_at = ctx.now + timedelta(seconds=seconds)
        self._record(self.PlaybackGranted, ctx, grantee=grantee, token_sha256=token_sha256, expires_at=expires_at, purpose=purpose)
        return expires_at

    def grant_valid(self, token_sha256: str, actor_id: str, now: datetime) -> bool:
        grant = self.grants.get(token_sha256)
        return self.status == "completed" and grant is not None and grant[0] == actor_id and now < grant[1]

    def delete(self, reason: str, basis: str, ctx: Context) -> bool:
        """The bytes are to go (retention, erasure). Idempotent: False when already deleted."""
        if self.status == "deleted":
            return False
        if not reason.strip():
            raise InvalidCommand("say why the recording is deleted", field="reason")
        self._record(self.Deleted, ctx, reason=reason, basis=basis)
        return True

    def access(self) -> Access:
        """For the policy: the agent whose call it is (scope ``assigned``), the citizen.
        The departments of the linked cases are added by who loads those cases."""
        return Access(citizen_id=self.citizen_id, assignee=self.agent_id)

    def summary(self) -> dict[str, Any]:
        return {
            "id": str(self.id),
            "name": self.name,
            "contact_id": self.contact_id,
            "agent_id": self.agent_id,
            "queue_id": self.queue_id,
            "reason": self.reason,
            "status": self.status,
            "started_at": self.started_at.isoformat(),
            "duration_s": self.duration_s,
            "sha256": self.sha256,
            "size_bytes": self.size_bytes,
            "version": self.version,
        }


def held_by(request: Any) -> str | None:
    """Why a linked case keeps its recordings past retention: under supervision (督办), or
    disputed (ownership contested: returned, or awaiting the control office's ruling).
    None when nothing holds it. ``request`` is a ``ServiceRequest``."""
    if getattr(request, "supervised", False):
        return "supervised"
    if getattr(request, "status", None) in DISPUTED_STATES:
        return "disputed"
    return None
