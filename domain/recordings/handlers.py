"""Recording handlers: the queue's policy is checked when a recording starts; who may
play a recording is checked on it and on the cases it belongs to."""

from __future__ import annotations

import contextlib
import uuid
from typing import Any

from domain.access import Access, authorize
from domain.base import Context, InvalidCommand, InvalidTransition, NotFound
from domain.contact_center.handlers import acting_as, agent_on, load_contact, load_queue
from domain.handling import Handlers, UnitOfWork, parse_id
from domain.privacy.aggregate import PersonalDataErasure, erasure_id
from domain.recordings import commands as c
from domain.recordings.aggregate import Recording, RecordingPolicy, held_by, policy_id, recording_uuid
from domain.recordings.policy import NOT_RECORDED, QueuePolicy, allows, reason_to_record
from domain.requests.aggregate import ServiceRequest

handles = Handlers("recordings")


def queue_policy(uow: UnitOfWork, queue_id: str) -> QueuePolicy:
    found = uow.read(RecordingPolicy, policy_id(queue_id))
    return found.policy if found is not None else NOT_RECORDED


def load_recording(uow: UnitOfWork, recording_id: str) -> Recording:
    recording = uow.find(Recording, recording_uuid(recording_id))
    if recording is None:
        raise NotFound(f"no recording {recording_id}", code="recording_not_found")
    return recording


def linked_requests(uow: UnitOfWork, recording: Recording) -> list[ServiceRequest]:
    """The cases the recorded contact is linked to: those the recording named when it
    started and those linked to the contact since."""
    ids = list(recording.request_ids)
    with contextlib.suppress(NotFound):  # a contact not in this store: what the recording named
        ids += load_contact(uow, recording.contact_id).request_ids
    found = []
    for rid in dict.fromkeys(ids):
        try:
            request = uow.read(ServiceRequest, uuid.UUID(rid))
        except ValueError:
            continue
        if request is not None:
            found.append(request)
    return found


def recording_access(uow: UnitOfWork, recording: Recording) -> Access:
    """The agent of the call, its citizen, and the departments its cases are dispatched to."""
    departments = frozenset(r.department_id for r in linked_requests(uow, recording) if r.department_id)
    return Access(departments=departments, citizen_id=recording.citizen_id, assignee=recording.agent_id)


@handles(c.SetRecordingPolicy)
def set_recording_policy(uow: UnitOfWork, ctx: Context, cmd: c.SetRecordingPolicy) -> dict[str, Any]:
    load_queue(uow, cmd.queue_id)  # a policy for a queue that exists
    policy = uow.find(RecordingPolicy, policy_id(cmd.queue_id))
    if policy is None:
        policy = RecordingPolicy.define(cmd.queue_id, ctx)
        uow.add(policy)
    policy.expect_version(cmd.expected_version)
    policy.set(cmd.mode, cmd.sample_percent, cmd.announcement, ctx)
    return policy.summary()


@handles(c.StartRecording, issued_by=("telephony_adapter.recorder",))
def start_recording(uow: UnitOfWork, ctx: Context, cmd: c.StartRecording) -> dict[str, Any]:
    existing = uow.find(Recording, recording_uuid(cmd.recording_id))
    if existing is not None:  # a re-delivered start
        return {**existing.summary(), "duplicate": True}
    contact = load_contact(uow, cmd.contact_id)
    queue_id = cmd.queue_id or contact.queue_id
    policy = queue_policy(uow, queue_id)
    if not allows(policy, str(contact.id), cmd.reason):
        raise InvalidTransition(
            f"queue {queue_id} records {policy.mode}: not this call for {cmd.reason}",
            code="recording_not_allowed",
            mode=policy.mode,
            reason=cmd.reason,
        )
    agent_id = cmd.agent_id or contact.agent_id
    if cmd.reason == "agent_demand" and agent_id is None:
        raise InvalidCommand("a recording on demand names the agent who asked", field="agent_id")
    recording = Recording.start(
        name=cmd.recording_id,
        contact_id=str(contact.id),
        agent_id=agent_id,
        queue_id=queue_id,
        reason=cmd.reason,
        announcement=policy.announcement,
        started_at=cmd.started_at,
        citizen_id=contact.citizen_id,
        request_ids=list(contact.request_ids),
        phone=(contact.personal or {}).get("phone"),
        ctx=ctx,
    )
    uow.add(recording)
    return recording.summary()


@handles(c.RecordCall)
def record_call(uow: UnitOfWork, ctx: Context, cmd: c.RecordCall) -> dict[str, Any]:
    """The demand is recorded on the contact (the case's stream: the auditor sees who asked
    and when); the PBX adapter reacts to it (``telephony_adapter/process.py``)."""
    contact = load_contact(uow, cmd.contact_id)
    agent_id = agent_on(ctx, contact, cmd.agent_id)
    acting_as(ctx, cmd.action, agent_id)  # an agent for themselves only
    policy = queue_policy(uow, contact.queue_id)
    recorded_anyway = reason_to_record(policy, str(contact.id), agent_demand=False) is not None
    contact.expect_version(cmd.expected_version)
    contact.demand_recording(agent_id, ctx.actor.id, policy.mode, recorded_anyway, policy.announcement, ctx)
    return {
        "id": str(contact.id),
        "contact_id": str(contact.id),
        "agent_id": agent_id,
        "requested_by": ctx.actor.id,
        "queue_id": contact.queue_id,
        "mode": policy.mode,
        "announcement": policy.announcement,
        "requested_at": ctx.now.isoformat(),
        "version": contact.version,
    }


@handles(c.CompleteRecording, issued_by=("telephony_adapter.recorder",))
def complete_recording(uow: UnitOfWork, ctx: Context, cmd: c.CompleteRecording) -> dict[str, Any]:
    recording = load_recording(uow, cmd.recording_id)
    recording.expect_version(cmd.expected_version)
    changed = recording.complete(cmd.duration_s, cmd.location, cmd.sha256, cmd.size_bytes, cmd.content_type, ctx)
    return {**recording.summary(), "duplicate": not changed}


@handles(c.PlayRecording)
def play_recording(uow: UnitOfWork, ctx: Context, cmd: c.PlayRecording) -> dict[str, Any]:
    recording = load_recording(uow, cmd.recording_id)
    authorize(ctx.actor, cmd.action, recording_access(uow, recording))
    if recording.citizen_id:  # an erased citizen's audio is gone, whatever the recording's own state says
        erasure = uow.read(PersonalDataErasure, erasure_id(recording.citizen_id))
        if erasure is not None and erasure.erasures > 0:
            raise InvalidTransition(
                f"recording {recording.name} belongs to an erased citizen: its audio is deleted", code="recording_erased"
            )
    expires_at = recording.grant_playback(ctx.actor.id, cmd.token_sha256, cmd.seconds, cmd.purpose, ctx)
    return {**recording.summary(), "expires_at": expires_at.isoformat(), "citizen_id": recording.citizen_id}


@handles(c.ApplyRecordingRetention, issued_by=("infra.recordings",))
def apply_recording_retention(uow: UnitOfWork, ctx: Context, cmd: c.ApplyRecordingRetention) -> dict[str, Any]:
    if cmd.cutoff.tzinfo is None:
        raise InvalidCommand("the cutoff needs a time zone", field="cutoff")
    if cmd.cutoff > ctx.now:
        raise InvalidCommand("the retention cutoff is in the future", field="cutoff")
    deleted: list[dict[str, str]] = []
    kept: list[dict[str, str]] = []
    for rid in cmd.recording_ids:
        try:
            recording = uow.get(Recording, parse_id(rid, "recording"))
        except NotFound:
            kept.append({"id": rid, "why": "not found"})
            continue
        if recording.status != "completed" or recording.completed_at is None or recording.completed_at >= cmd.cutoff:
            kept.append({"id": rid, "why": f"{recording.status}, not completed before the cutoff"})
            continue
        holds = [(r.reference, why) for r in linked_requests(uow, recording) if (why := held_by(r))]
        if holds:
            kept.append({"id": rid, "why": ", ".join(f"request {ref} {why}" for ref, why in holds)})
            continue
        recording.delete(f"retention: completed before {cmd.cutoff.date().isoformat()}", "retention", ctx)
        deleted.append({"id": rid, "sha256": recording.sha256 or ""})
    return {"deleted": deleted, "kept": kept, "cutoff": cmd.cutoff.isoformat()}


@handles(c.DeleteRecording, issued_by=("infra.recordings",))
def delete_recording(uow: UnitOfWork, ctx: Context, cmd: c.DeleteRecording) -> dict[str, Any]:
    recording = load_recording(uow, cmd.recording_id)
    changed = recording.delete(cmd.reason, cmd.basis, ctx)
    return {**recording.summary(), "changed": changed}
