"""Erasure and retention as the hotline runs them: the key store says what belongs to
the citizen, the command records the erasure (an event, with who, why and what it
covered), then the keys are destroyed and the caches that held the data dropped.

The event is committed first: an erasure nobody can audit never happens. The keys go
right after, then the outbox's copies and the citizen's files (attachments and raw
emails, :func:`erase_blobs`); if the process dies in between, running the erasure again
(it is idempotent: the keys, links and files already gone stay gone) finishes it.
When all is done a second event says so (``CarriedOut``); :func:`resume_erasures`
(``hotline privacy resume``, and the retention loop) finds erasures without it and
finishes them. The erasure's event also
releases the citizen's phone and email claims (domain/privacy/handlers.py), and every
read model blanks what it copied, the citizen's own words included.
"""

from __future__ import annotations

import contextlib
import logging
import uuid
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from eventsourcing.utils import get_topic

from domain.attachments.aggregate import Attachment
from domain.base import SYSTEM, Actor, InvalidTransition
from domain.privacy.aggregate import PersonalDataErasure, erasure_id
from domain.privacy.commands import ApplyRetention, EraseCitizen, RecordErasureCarriedOut, RetentionCandidate
from domain.recordings.aggregate import Recording
from domain.requests.aggregate import ServiceRequest
from infra.outbox import erase_messages, outbox_root
from infra.runtime import Hotline
from projections import attachments, request_status

log = logging.getLogger("hotline.privacy")


def _after_erasure(hotline: Hotline, citizen_id: str, subjects: list[str], *, settle: bool = True) -> int:
    destroyed = hotline.store.keys.destroy(subjects)
    hotline.store.forget_personal_data()
    erase_messages(outbox_root(hotline.settings), subjects)
    deleted = erase_blobs(hotline, citizen_id, subjects)
    if settle:
        settle_files(hotline)
    with contextlib.suppress(InvalidTransition):  # another process finished it first
        hotline.bus.execute(RecordErasureCarriedOut(citizen_id=citizen_id, keys_destroyed=destroyed, files_deleted=deleted), SYSTEM)
    return destroyed


ERASURE_TOPICS = (get_topic(PersonalDataErasure.Erased), get_topic(PersonalDataErasure.CarriedOut))


def half_done_erasures(hotline: Hotline, after: int = 0) -> tuple[dict[str, list[str]], int]:
    """Erasures whose event committed but whose ``CarriedOut`` did not (the process stopped
    in between): citizen id -> the subjects the erasure covered; and the last position read.
    Reads only the two event types from the log (the store filters by topic)."""
    erased: dict[str, int] = {}
    carried: dict[str, int] = {}
    subjects: dict[str, list[str]] = {}
    position = after
    recorder: Any = hotline.store.recorder
    while True:
        page = recorder.select_notifications(position + 1, 1000, topics=ERASURE_TOPICS)
        if not page:
            break
        for notification in page:
            event: Any = hotline.store.mapper.to_domain_event(notification)
            if isinstance(event, PersonalDataErasure.Erased):
                erased[event.citizen_id] = erased.get(event.citizen_id, 0) + 1
                subjects[event.citizen_id] = list(event.subjects)
            else:
                citizen = str(hotline.store.reference(event.originator_id).citizen_id)
                carried[citizen] = carried.get(citizen, 0) + 1
        position = page[-1].id
    return {c: subjects[c] for c, n in erased.items() if n > carried.get(c, 0)}, position


def resume_erasures(hotline: Hotline) -> list[str]:
    """Finishes every half-done erasure (see :func:`half_done_erasures`); returns the citizens."""
    pending, _ = half_done_erasures(hotline)
    for citizen_id, subjects in pending.items():
        destroyed = _after_erasure(hotline, citizen_id, subjects)
        log.warning("half-done erasure finished", extra={"citizen_id": citizen_id, "keys": destroyed})
    return list(pending)


def citizen_blobs(hotline: Hotline, citizen_id: str, subjects: list[str]) -> set[str]:
    """The SHA-256 of every file the citizen's streams name: their attachments (a raw
    email kept as ``message.eml`` is one) and the raw messages of their email replies
    (``CitizenWrote.raw_message_sha256``). Read from the events, not a read model."""
    found: set[str] = set()
    for subject in subjects:
        try:
            stream = uuid.UUID(subject)
        except ValueError:
            continue
        for event in hotline.store.events.get(stream):
            if isinstance(event, Attachment.Attached) and event.sha256 and event.citizen_id == citizen_id:
                found.add(event.sha256)
            elif isinstance(event, ServiceRequest.CitizenWrote) and event.raw_message_sha256:
                found.add(event.raw_message_sha256)
            elif isinstance(event, Recording.Completed):  # a call recording's audio (domain/recordings)
                found.add(event.sha256)
    return found


def _still_used(hotline: Hotline, citizen_id: str, shas: set[str]) -> set[str]:
    """Of these blobs, those an attachment of somebody not erased uses too (the store keeps
    one copy of equal bytes): a work order's photo, another citizen's identical file."""
    t = attachments.ATTACHMENTS
    with hotline.read_store.engine.connect() as conn:
        rows = conn.execute(
            sa.select(t.c.sha256, t.c.citizen_id).where(
                t.c.sha256.in_(sorted(shas)), sa.or_(t.c.citizen_id.is_(None), t.c.citizen_id != citizen_id)
            )
        ).all()
    used: set[str] = set()
    for sha, owner in rows:
        if owner is None or not _erased(hotline, str(owner)):
            used.add(sha)
    return used


def _erased(hotline: Hotline, citizen_id: str) -> bool:
    record = hotline.store.reference(erasure_id(citizen_id))
    return isinstance(record, PersonalDataErasure) and record.erasures > 0


def erase_blobs(hotline: Hotline, citizen_id: str, subjects: list[str]) -> int:
    """Deletes the bytes of the citizen's files from the attachment store (files, or large
    objects), but for those another, not erased, attachment shares; returns how many went.
    Run after the erasure's event committed: the events keep the hashes, the bytes go.
    (The check reads the attachments read model: in the distributed mode an identical
    file attached in the last moments, not yet projected, could lose its bytes.)"""
    shas = citizen_blobs(hotline, citizen_id, subjects)
    if not shas:
        return 0
    keep = _still_used(hotline, citizen_id, shas)
    deleted = sum(1 for sha in sorted(shas - keep) if hotline.attachments.delete(sha))
    log.info("citizen's files deleted", extra={"citizen_id": citizen_id, "deleted": deleted, "kept_shared": len(keep)})
    return deleted


def settle_files(hotline: Hotline) -> None:
    """The embedded mode's SQLite read models keep what a row held before it was blanked
    in free pages, in the WAL and in the full-text index's segments until they are
    merged: a byte search of the file would still find it. After an erasure the search
    index is merged, the file rewritten (VACUUM) and the WAL emptied. (PostgreSQL: dead
    row versions go with the next VACUUM; the autovacuum daemon runs it.)"""
    if hotline.settings.database_url is not None:
        return
    with hotline.read_store.engine.connect() as conn:
        fts = request_status.FTS
        if conn.exec_driver_sql("SELECT 1 FROM sqlite_master WHERE name = ?", (fts,)).first():
            conn.exec_driver_sql(f'INSERT INTO "{fts}"("{fts}") VALUES (\'optimize\')')
            conn.commit()
    with hotline.read_store.engine.connect() as conn:
        raw = conn.connection.dbapi_connection
        assert raw is not None
        raw.execute("VACUUM")
        raw.execute("PRAGMA wal_checkpoint(TRUNCATE)")


def erase_citizen(hotline: Hotline, citizen_id: str, reason: str, actor: Actor, **execute: Any) -> dict[str, Any]:
    """``POST /citizens/{id}/erasure``: the event, then the keys."""
    subjects = hotline.store.keys.scope(citizen_id)
    outcome = hotline.bus.execute(EraseCitizen(citizen_id=citizen_id, reason=reason, subjects=subjects), actor, **execute)
    destroyed = _after_erasure(hotline, citizen_id, subjects)
    log.info("citizen erased", extra={"citizen_id": citizen_id, "subjects": len(subjects), "keys": destroyed})
    return {**outcome.result, "keys_destroyed": destroyed, "position": outcome.position}


def retention_candidates(hotline: Hotline, cutoff: datetime, limit: int = 10_000) -> list[str]:
    """Citizens whose requests (per the request status read model) are all closed, the
    last before ``cutoff``; the command checks the rule again on the requests themselves."""
    t = request_status.REQUESTS
    closed = sa.func.sum(sa.case((t.c.status == "closed", 1), else_=0))
    q = (
        sa.select(t.c.citizen_id)
        .where(t.c.citizen_id.is_not(None))
        .group_by(t.c.citizen_id)
        .having(sa.and_(closed == sa.func.count(), sa.func.max(t.c.closed_at) < cutoff))
        .limit(limit)
    )
    with hotline.read_store.engine.connect() as conn:
        return [str(c) for c in conn.execute(q).scalars()]


def apply_retention(hotline: Hotline, years: float | None = None, *, now: datetime | None = None, batch: int = 100) -> dict[str, Any]:
    """``hotline privacy retention``: erases every citizen whose requests all closed more
    than ``years`` ago (the setting by default) and whose keys are not destroyed yet."""
    years = hotline.settings.retention_years if years is None else years
    now = now or hotline.clock.now()
    cutoff = now - timedelta(days=365.25 * years)
    keys = hotline.store.keys
    candidates = [c for c in retention_candidates(hotline, cutoff) if keys.live(keys.scope(c))]
    erased: list[str] = []
    kept: list[str] = []
    for start in range(0, len(candidates), batch):
        chunk = [RetentionCandidate(citizen_id=c, subjects=keys.scope(c)) for c in candidates[start : start + batch]]
        outcome = hotline.bus.execute(ApplyRetention(cutoff=cutoff, candidates=chunk), SYSTEM)
        done = set(outcome.result["erased"])
        for candidate in chunk:
            if candidate.citizen_id in done:
                _after_erasure(hotline, candidate.citizen_id, candidate.subjects)
        erased += outcome.result["erased"]
        kept += outcome.result["kept"]
    log.info("retention applied", extra={"cutoff": cutoff.isoformat(), "erased": len(erased), "kept": len(kept)})
    return {"cutoff": cutoff.isoformat(), "erased": erased, "kept": kept}


def run_retention(hotline: Hotline, stop: Any, poll_seconds: float) -> None:
    """The background loop (``HOTLINE_RETENTION_INPROCESS``): once at start, then every
    ``HOTLINE_RETENTION_INTERVAL_HOURS``."""
    while not stop.is_set():
        try:
            resume_erasures(hotline)
            apply_retention(hotline)
        except Exception:
            log.exception("retention run failed; next run at the next interval")
        stop.wait(poll_seconds)
