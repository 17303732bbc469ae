"""Call recordings: search, metadata, a playback link, the audio, and queues' policies.

Who may see and play a recording (``recordings.read`` / ``recordings.play``,
``domain/access.py``): an agent (or expert) the calls they handled; supervisors, the
control office and auditors all; a department only recordings linked to a case
dispatched to it; citizens none. A list is filtered to what the caller may see; one
recording outside the caller's scope is 403.

Playback is two steps. ``POST /recordings/{id}/playback`` checks the rule on the
recording and records a ``playback_granted`` event (who, why, until when): every
playback is audited in the event store, and the personal-data read log
(``api/read_log.py``) has a line too. It answers a link, ``/recordings/{id}/audio?token=…``,
that works for the same signed-in user for ``HOTLINE_RECORDINGS_LINK_SECONDS``
(the event holds the token's hash only; a longer ``seconds`` is refused, 422), so a media
player's range requests need no new grant: one byte range (``Range: bytes=0-99``) is
answered 206 with ``Content-Range``, one beyond the end 416, several ranges the whole file.
The audio is served from the attachment store (``infra/recordings.py``).

Recording on demand: ``POST /contacts/{id}/recording`` (``RecordCall``) lets the agent on a
live call (or a supervisor for them) have it recorded, as the queue's policy allows; the
demand is an event on the contact, and the PBX adapter records the call's bridge.
"""

from __future__ import annotations

import hashlib
import logging
import re
import secrets
import uuid
from collections.abc import Iterator
from datetime import datetime
from typing import Any, Literal

from fastapi import Body, Depends, Header, Query
from fastapi.responses import JSONResponse, Response, StreamingResponse
from pydantic import Field

from api.auth import allow
from api.deps import CommandRoute, add_command_routes, get_hotline
from api.errors import error_body
from api.read_log import PersonalDataRead, personal_data_read
from api.responses import CommandAnswer, PlaybackLink, RecordingPage, RecordingPolicyView, RecordingView
from api.routing import HotlineRouter
from domain.access import Access, Action, Scope, authorize, scope
from domain.base import Actor, Forbidden, InvalidCommand, NotFound
from domain.contact_center.contacts import Contact
from domain.recordings import commands as c
from domain.recordings.aggregate import Recording, RecordingPolicy, policy_id, recording_uuid
from domain.requests.aggregate import ServiceRequest, request_id_for
from infra.runtime import Hotline
from projections import recordings as rm

log = logging.getLogger("hotline.recordings")
router = HotlineRouter(tags=["recordings"])

add_command_routes(
    router,
    "/recordings/policies/{queue_id}",
    [CommandRoute("", c.SetRecordingPolicy, "Set a queue's recording policy (all, none, sample, on demand) and its announcement")],
)


class RecordingDemand(CommandAnswer):
    """A demand to record a live call, recorded on the contact: the PBX adapter now plays the
    announcement and records the call (reason ``agent_demand``)."""

    contact_id: str = Field(description="The contact (the live call) to record")
    agent_id: str = Field(description="The agent on the call the recording is for")
    requested_by: str = Field(description="Who asked: the agent, or the supervisor acting for them")
    queue_id: str = Field(description="The contact's queue, whose recording policy allowed it")
    mode: str = Field(description="That queue's recording policy: on_demand or sample")
    announcement: str | None = Field(description="The prompt played to the call before recording")
    requested_at: str = Field(description="When it was asked (ISO 8601)")


# 202: the demand is recorded; the recording itself starts on the PBX a moment later.
# Refusals (409, JSON): not_connected, not_on_contact, recording_not_allowed (the queue's
# policy is none), already_recording (by the queue's policy, or an earlier demand).
add_command_routes(
    router,
    "/contacts/{contact_id}",
    [
        CommandRoute(
            "recording",
            c.RecordCall,
            "Record this live call (the agent on it, or a supervisor for them), as the queue's policy allows",
            name="record_call",
            status_code=202,
            body_optional=True,
        )
    ],
    response_model=RecordingDemand,
)


# ------------------------------------------------------------------------ who may
def _recording(hotline: Hotline, recording_id: str) -> Recording:
    try:
        rid = recording_uuid(recording_id)
    except ValueError:
        raise NotFound(f"no recording {recording_id}") from None
    found = hotline.store.read_reference(rid)  # the store, not a read model: no lag on who may see it
    if not isinstance(found, Recording):
        raise NotFound(f"no recording {recording_id}")
    return found


def _stream_id(value: str, what: str, recording: Recording) -> uuid.UUID | None:
    """A linked id as a stream id; None (logged) for one that is not a UUID: a bad link
    (written before links were checked) must not make the recording unreadable (a 500)
    for everyone. It grants nothing: the rule is then decided without it."""
    try:
        return uuid.UUID(value)
    except (ValueError, TypeError, AttributeError):
        log.warning("recording %s: its %s id %r is not a UUID; skipped when deciding who may see it", recording.id, what, value)
        return None


def recording_access(hotline: Hotline, recording: Recording) -> Access:
    """As the handlers decide it (domain/recordings/handlers.py): the call's agent, its
    citizen, the departments of the cases linked to it."""
    ids = list(recording.request_ids)
    contact_id = _stream_id(recording.contact_id, "contact", recording)
    contact = hotline.store.read_reference(contact_id) if contact_id is not None else None
    if isinstance(contact, Contact):
        ids += contact.request_ids
    departments = set()
    for rid in dict.fromkeys(ids):
        request_id = _stream_id(rid, "request", recording)
        request = hotline.store.read_reference(request_id) if request_id is not None else None
        if isinstance(request, ServiceRequest) and request.department_id:
            departments.add(request.department_id)
    return Access(departments=frozenset(departments), citizen_id=recording.citizen_id, assignee=recording.agent_id)


def _request_id(ref: str) -> str:
    try:
        return str(uuid.UUID(ref))
    except ValueError:
        return str(request_id_for(ref))


# ------------------------------------------------------------------------ search
@router.get(
    "/recordings",
    response_model=RecordingPage,
    response_model_exclude_unset=True,
    summary="Search recordings by date, agent, queue, citizen, request (paginated)",
)
def search_recordings(
    hotline: Hotline = Depends(get_hotline),
    actor: Actor = allow(Action.RECORDINGS_READ),
    read: PersonalDataRead = personal_data_read("recordings search"),
    since: datetime | None = Query(None, description="Started at or after (ISO 8601 with a zone)"),
    until: datetime | None = Query(None, description="Started before"),
    agent_id: str | None = Query(None, max_length=100),
    queue_id: str | None = Query(None, max_length=100),
    citizen_id: str | None = Query(None, max_length=36),
    request: str | None = Query(None, max_length=64, description="A request's reference or id"),
    include_deleted: bool = False,
    limit: int = Query(50, ge=1, le=200),
    offset: int = Query(0, ge=0, le=1_000_000),
) -> dict[str, Any]:
    for name, value in (("since", since), ("until", until)):
        if value is not None and value.tzinfo is None:
            raise InvalidCommand(f"{name} needs a time zone (e.g. 2026-11-16T09:00:00+01:00)", field=name)
    department: str | None = None
    granted = scope(actor, Action.RECORDINGS_READ)
    if granted is Scope.ASSIGNED:  # an agent: their own calls
        if agent_id is not None and agent_id != actor.id:
            raise Forbidden(f"{actor.id} reads only their own calls' recordings", permission=Action.RECORDINGS_READ.value)
        agent_id = actor.id
    elif granted is Scope.OWN_DEPARTMENT:  # a department: recordings linked to its cases
        department = actor.departments[0] if len(actor.departments) == 1 else None
        if department is None:
            raise Forbidden("name one department to read its cases' recordings", permission=Action.RECORDINGS_READ.value)
    with hotline.read_store.engine.connect() as conn:
        items, total = rm.search(
            conn,
            since=since,
            until=until,
            agent_id=agent_id,
            queue_id=queue_id,
            citizen_id=citizen_id,
            request_id=_request_id(request) if request else None,
            department=department,
            include_deleted=include_deleted,
            limit=limit,
            offset=offset,
        )
    read.record(actor, what="recordings", citizen_ids=[i["citizen_id"] for i in items], count=len(items))
    return {"items": items, "total": total, "limit": limit, "offset": offset}


@router.get("/recordings/policies/{queue_id}", response_model=RecordingPolicyView, summary="A queue's recording policy")
def recording_policy(
    queue_id: str, hotline: Hotline = Depends(get_hotline), actor: Actor = allow(Action.RECORDINGS_READ)
) -> dict[str, Any]:
    found = hotline.store.read_reference(policy_id(queue_id))
    if not isinstance(found, RecordingPolicy):
        return {"queue_id": queue_id, "mode": "none", "sample_percent": 0.0, "announcement": None, "version": 0}
    return found.summary()


@router.get(
    "/recordings/{recording_id}",
    response_model=RecordingView,
    response_model_exclude_unset=True,  # a recording not projected yet: its summary's fields only
    summary="A recording's metadata (who may: see the module)",
)
def recording_metadata(
    recording_id: str,
    hotline: Hotline = Depends(get_hotline),
    actor: Actor = allow(Action.RECORDINGS_READ),
    read: PersonalDataRead = personal_data_read("recording metadata"),
) -> dict[str, Any]:
    recording = _recording(hotline, recording_id)
    authorize(actor, Action.RECORDINGS_READ, recording_access(hotline, recording))
    with hotline.read_store.engine.connect() as conn:
        row = rm.get(conn, str(recording.id))
    if row is None:  # not projected yet: the aggregate's own summary
        return recording.summary()
    read.record(actor, what="recording", subject=str(recording.id), citizen_ids=[recording.citizen_id])
    return rm.view(row)


# ------------------------------------------------------------------------ playback
@router.post(
    "/recordings/{recording_id}/playback",
    response_model=PlaybackLink,
    summary="A short-lived playback link for the caller (audited)",
)
def playback_link(
    recording_id: str,
    hotline: Hotline = Depends(get_hotline),
    actor: Actor = allow(Action.RECORDINGS_PLAY),
    read: PersonalDataRead = personal_data_read("recording playback"),
    cmd: c.PlayRecording | None = Body(None),
) -> dict[str, Any]:
    token = secrets.token_urlsafe(32)
    base = cmd or c.PlayRecording()
    longest = hotline.settings.recordings_link_seconds
    if "seconds" not in base.model_fields_set:
        base = base.model_copy(update={"seconds": longest})
    elif base.seconds > longest:  # the link is short-lived by rule (the module): asking longer is refused
        raise InvalidCommand(
            f"a playback link lasts at most {longest} seconds (HOTLINE_RECORDINGS_LINK_SECONDS), not {base.seconds}",
            field="seconds",
            code="link_too_long",
            maximum=longest,
        )
    command = base.model_copy(update={"recording_id": recording_id, "token_sha256": hashlib.sha256(token.encode()).hexdigest()})
    outcome = hotline.bus.execute(command, actor)
    result = outcome.result
    read.record(actor, what="recording playback", subject=result["id"], citizen_ids=[result.get("citizen_id")])
    return {
        "recording_id": result["id"],
        "url": f"/recordings/{result['id']}/audio?token={token}",
        "expires_at": result["expires_at"],
        "position": outcome.position,
    }


BYTE_RANGE = re.compile(r"bytes=(\d*)-(\d*)")


def byte_range(header: str | None, size: int) -> tuple[int, int] | Literal["unsatisfiable"] | None:
    """The one range ``Range: bytes=…`` asks of ``size`` bytes, as (first, last) inclusive.

    None: the whole file (no header, or one this server ignores as RFC 9110 allows: not
    ``bytes``, malformed, several ranges); ``"unsatisfiable"``: a range starting beyond
    the end (416). ``bytes=-N`` is the last N bytes; a last position beyond the end is cut."""
    if header is None:
        return None
    match = BYTE_RANGE.fullmatch(header.strip())
    if match is None or match.group(1) == match.group(2) == "":
        return None
    first_s, last_s = match.groups()
    if first_s == "":  # a suffix: the last N bytes
        suffix = int(last_s)
        return (max(size - suffix, 0), size - 1) if suffix > 0 and size > 0 else "unsatisfiable"
    first = int(first_s)
    last = min(int(last_s), size - 1) if last_s else size - 1
    if last_s and int(last_s) < first:
        return None  # invalid: ignored, the whole file
    if first >= size:
        return "unsatisfiable"
    return first, last


def _slice(chunks: Iterator[bytes], first: int, last: int) -> Iterator[bytes]:
    """Bytes first..last (inclusive, counted from the stream's own start) of a chunked stream."""
    at = 0
    for chunk in chunks:
        end = at + len(chunk)
        if end > first and at <= last:
            yield chunk[max(first - at, 0) : last - at + 1]
        if end > last:
            return
        at = end


@router.get(
    "/recordings/{recording_id}/audio",
    summary="A recording's audio, with a link from POST /recordings/{id}/playback (single byte ranges: 206)",
    response_class=StreamingResponse,
    responses={
        200: {"content": {"audio/wav": {}, "application/octet-stream": {}}},
        206: {"description": "The byte range asked for (Range: bytes=first-last), with Content-Range"},
        416: {"description": "The range starts beyond the end of the audio (Content-Range: bytes */size)"},
    },
)
def recording_audio(
    recording_id: str,
    token: str = Query(..., min_length=10, max_length=200, description="The playback link's token"),
    range_header: str | None = Header(
        None, alias="Range", max_length=200, description="One byte range (bytes=0-99, bytes=100-, bytes=-500): answered 206"
    ),
    hotline: Hotline = Depends(get_hotline),
    actor: Actor = allow(Action.RECORDINGS_PLAY),
    read: PersonalDataRead = personal_data_read("recording playback"),
) -> Response:
    recording = _recording(hotline, recording_id)
    if not recording.grant_valid(hashlib.sha256(token.encode()).hexdigest(), actor.id, hotline.clock.now()):
        raise Forbidden(
            "this playback link is not yours, has expired, or the recording was deleted", permission=Action.RECORDINGS_PLAY.value
        )
    assert recording.sha256 is not None  # a grant exists only for a completed recording
    size = int(recording.size_bytes or 0)
    headers = {
        "Accept-Ranges": "bytes",  # media players seek with ranges (Safari plays nothing without them)
        "X-Content-Type-Options": "nosniff",
        "Cache-Control": "private, no-store",
        "Content-Disposition": f'inline; filename="recording-{recording.id}"',
    }
    wanted = byte_range(range_header, size)
    if isinstance(wanted, str):  # "unsatisfiable"
        body = error_body(
            416, "range_not_satisfiable", f"the range {range_header!r} starts beyond the audio's {size} bytes", {"size": size}
        )
        return JSONResponse(body, status_code=416, headers={**headers, "Content-Range": f"bytes */{size}"})
    first, last = wanted if wanted is not None else (0, size - 1)
    # A range is read from its first byte, not from 0 (a player seeking near the end of a
    # long recording would otherwise read the whole file for its last seconds).
    chunks = hotline.attachments.open(recording.sha256, start=first)
    first_chunk = next(chunks, b"")  # deleted bytes are a 404 now, not a broken stream later
    read.record(actor, what="recording audio", subject=str(recording.id), citizen_ids=[recording.citizen_id])

    def stream() -> Iterator[bytes]:
        yield first_chunk
        yield from chunks

    media_type = recording.content_type or "application/octet-stream"
    if wanted is None:
        return StreamingResponse(stream(), media_type=media_type, headers={**headers, "Content-Length": str(size)})
    headers |= {"Content-Length": str(last - first + 1), "Content-Range": f"bytes {first}-{last}/{size}"}
    return StreamingResponse(_slice(stream(), 0, last - first), status_code=206, media_type=media_type, headers=headers)
