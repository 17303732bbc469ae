"""Recording commands: a queue's policy, a recording started and completed by the PBX
adapter, a playback granted (and audited), and the retention rule."""

from __future__ import annotations

from typing import Literal

from pydantic import AwareDatetime, Field
from pydantic.json_schema import SkipJsonSchema

from domain.access import Action
from domain.handling import Command, Target
from domain.recordings.policy import Mode, Reason


class SetRecordingPolicy(Command):
    """What a queue records: all, none, a sample of N % (deterministic by contact id), or
    on the agent's demand; and the prompt that announces it to the caller."""

    action = Action.RECORDINGS_MANAGE
    queue_id: Target = ""
    mode: Mode
    sample_percent: float | None = Field(default=None, gt=0, le=100, description="For mode sample: the share of calls recorded")
    announcement: str | None = Field(
        default=None, max_length=200, description="The prompt played before recording (an ARI media URI, e.g. sound:hotline/call-recorded)"
    )


class StartRecording(Command):
    """The PBX started recording a call (bridged to an agent) or a voicemail. The policy of
    the contact's queue is checked: a reason it does not allow is refused."""

    action = Action.RECORDINGS_CAPTURE
    recording_id: str = Field(min_length=1, max_length=200, description="The PBX's recording name (or a UUID)")
    contact_id: str = Field(min_length=1, max_length=200, description="The contact's id, or the PBX channel id it arrived with")
    agent_id: str | None = Field(default=None, max_length=100)
    queue_id: str | None = Field(default=None, max_length=100, description="Default: the contact's queue")
    reason: Reason
    started_at: AwareDatetime


class CompleteRecording(Command):
    """The recording's file is stored (bytes first: ``infra/recordings.py`` ``store_audio``)."""

    action = Action.RECORDINGS_CAPTURE
    recording_id: str = Field(min_length=1, max_length=200)
    duration_s: float = Field(ge=0, le=86_400)
    location: str = Field(min_length=1, max_length=300)
    sha256: str = Field(min_length=64, max_length=64)
    size_bytes: int = Field(ge=1)
    content_type: str | None = Field(default=None, max_length=100)


class PlayRecording(Command):
    """A playback link for the acting user: who may play it is checked on the recording
    (an agent their own calls, a department a recording of its case), and the grant is an
    event: every playback is audited."""

    action = Action.RECORDINGS_PLAY
    recording_id: Target = ""
    purpose: str = Field(default="quality review", min_length=3, max_length=200, description="Why the recording is played (recorded)")
    # Set by the API from a fresh random token (the link carries the token, the event its hash).
    token_sha256: SkipJsonSchema[str] = Field(default="", max_length=64)
    seconds: int = Field(
        default=300,
        ge=1,
        le=3600,
        description="How long the link works: at most HOTLINE_RECORDINGS_LINK_SECONDS (300 by default), its default; "
        "a longer one is refused (422, code link_too_long, naming the maximum)",
    )


class ApplyRecordingRetention(Command):
    """Deletes the recordings completed before ``cutoff`` among ``recording_ids``, except
    those of a case under supervision or disputed (checked here, on the cases)."""

    action = Action.RECORDINGS_RETENTION
    cutoff: AwareDatetime
    recording_ids: list[str] = Field(default_factory=list, max_length=500)


class DeleteRecording(Command):
    """The erasure of a citizen (or a ruling) removes the recording's bytes."""

    action = Action.RECORDINGS_RETENTION
    recording_id: str
    reason: str = Field(min_length=3, max_length=500)
    basis: Literal["erasure", "manual"] = "erasure"


class RecordCall(Command):
    """Record this live call: the agent on it asks (a supervisor may ask for them). The
    queue's policy decides: ``none`` forbids it, a call the policy records already needs no
    demand. The demand is an event on the contact (who asked, when); the PBX adapter then
    plays the queue's announcement and records the call's bridge, reason ``agent_demand``."""

    action = Action.RECORDINGS_DEMAND
    contact_id: Target = ""
    agent_id: str | None = Field(
        default=None, max_length=100, description="The agent on the call: default the agent acting, or for a supervisor the contact's agent"
    )
