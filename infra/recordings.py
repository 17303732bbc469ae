"""Recordings' audio and its life: stored like attachments, deleted by retention and erasure.

The audio bytes go to the attachment store (``infra/attachments.py``: content-addressed,
files or PostgreSQL large objects) before ``CompleteRecording`` names them: bytes first,
event second, as for every file. Its type is sniffed from the content and must be audio;
the attachments' own type list and size limit are for citizens' uploads, not the PBX's.

Retention (``hotline recordings retention``): recordings completed more than
``HOTLINE_RECORDINGS_RETENTION_DAYS`` ago are deleted, unless one of their cases is under
supervision (督办) or disputed (``domain/recordings/aggregate.py`` ``held_by``): the
command records the deletion (an event), then the bytes go. Erasure of a citizen deletes
their recordings' audio through ``infra/privacy.py`` (the recording's stream belongs to
the citizen's key scope); :func:`erase_recordings` also records the deletion.
"""

from __future__ import annotations

import hashlib
import logging
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa

from domain.base import SYSTEM, InvalidCommand
from domain.recordings.aggregate import Recording
from domain.recordings.commands import ApplyRecordingRetention, DeleteRecording
from infra.attachments import AttachmentStore, sniff
from infra.runtime import Hotline
from projections import attachments as attachment_index
from projections import recordings as rm

log = logging.getLogger("hotline.recordings")
LOCATION_PREFIX = "attachments:"


@dataclass(frozen=True)
class StoredAudio:
    location: str
    sha256: str
    size_bytes: int
    content_type: str


def store_audio(store: AttachmentStore, data: bytes, max_bytes: int = 200 * 1024 * 1024) -> StoredAudio:
    """Keeps a recording's bytes in the attachment store; refuses what is not audio."""
    if not data:
        raise InvalidCommand("the recording is empty", field="audio")
    if len(data) > max_bytes:
        raise InvalidCommand(f"the recording is too large: {len(data)} bytes, the limit is {max_bytes}", field="audio")
    content_type = sniff(data)
    if not content_type.startswith("audio/"):
        raise InvalidCommand(f"a recording must be audio, not {content_type}", field="audio", detected_type=content_type)
    sha = hashlib.sha256(data).hexdigest()
    store.blobs.write(sha, data)
    return StoredAudio(f"{LOCATION_PREFIX}{sha}", sha, len(data), content_type)


def _in_use_elsewhere(hotline: Hotline, sha: str, recording_id: str) -> bool:
    """Equal bytes are stored once: keep them while an attachment or another recording
    that is not deleted names them."""
    with hotline.read_store.engine.connect() as conn:
        t = rm.RECORDINGS
        other = conn.execute(
            sa.select(t.c.id)
            .where(t.c.sha256 == sha, t.c.id != recording_id, t.c.status != "deleted", t.c.audio_erased.is_(False))
            .limit(1)
        ).first()
        a = attachment_index.ATTACHMENTS
        attached = conn.execute(sa.select(a.c.id).where(a.c.sha256 == sha, a.c.removed.is_(False)).limit(1)).first()
    return other is not None or attached is not None


def delete_audio(hotline: Hotline, recording_id: str, sha: str | None) -> bool:
    if not sha or _in_use_elsewhere(hotline, sha, recording_id):
        return False
    return bool(hotline.attachments.delete(sha))


def apply_recording_retention(
    hotline: Hotline, days: float | None = None, *, now: datetime | None = None, batch: int = 200
) -> dict[str, Any]:
    """Deletes the recordings completed more than ``days`` ago (the setting by default),
    but those of a supervised or disputed case; the event first, then the bytes."""
    days = hotline.settings.recordings_retention_days if days is None else days
    now = now or hotline.clock.now()
    cutoff = now - timedelta(days=days)
    with hotline.read_store.engine.connect() as conn:
        candidates = rm.completed_before(conn, cutoff)
    deleted: list[str] = []
    kept: list[dict[str, str]] = []
    bytes_deleted = 0
    for start in range(0, len(candidates), batch):
        chunk = candidates[start : start + batch]
        outcome = hotline.bus.execute(ApplyRecordingRetention(cutoff=cutoff, recording_ids=chunk), SYSTEM)
        for item in outcome.result["deleted"]:
            if delete_audio(hotline, item["id"], item["sha256"]):
                bytes_deleted += 1
            deleted.append(item["id"])
        kept += outcome.result["kept"]
    log.info("recording retention applied", extra={"cutoff": cutoff.isoformat(), "deleted": len(deleted), "kept": len(kept)})
    return {"cutoff": cutoff.isoformat(), "deleted": deleted, "kept": kept, "audio_deleted": bytes_deleted}


def erase_recordings(hotline: Hotline, subjects: list[str], reason: str = "erasure of the citizen") -> int:
    """After a citizen's erasure: their recordings (streams among ``subjects``) are marked
    deleted and their audio goes. Idempotent. Returns how many were deleted now."""
    done = 0
    for subject in subjects:
        try:
            found = hotline.store.read_reference(uuid.UUID(subject))
        except ValueError:
            continue
        if not isinstance(found, Recording):
            continue
        outcome = hotline.bus.execute(DeleteRecording(recording_id=str(found.id), reason=reason, basis="erasure"), SYSTEM)
        if found.sha256:
            hotline.attachments.delete(found.sha256)
        done += int(bool(outcome.result["changed"]))
    return done


def run_recording_retention(hotline: Hotline, stop: Any, poll_seconds: float) -> None:
    """The background loop (with the privacy retention: ``HOTLINE_RETENTION_INPROCESS``):
    once at start, then every ``HOTLINE_RETENTION_INTERVAL_HOURS``."""
    while not stop.is_set():
        try:
            apply_recording_retention(hotline)
        except Exception:
            log.exception("recording retention failed; next run at the next interval")
        stop.wait(poll_seconds)
