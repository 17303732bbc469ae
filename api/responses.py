"""Typed answers of the operations api/schemas.py does not cover.

Models here describe answers as they are (the read models' rows, the handlers' results):
fields every answer has are typed and required, and ``extra="allow"`` keeps what a read
model adds later from breaking a client or the server. The fuzz test
(tests/fuzz/test_openapi_fuzz.py) checks every answer against them.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, PlainSerializer, WithJsonSchema


class Open(BaseModel):
    """An answer whose listed fields are typed; a read model may add more."""

    model_config = ConfigDict(extra="allow")


class CommandAnswer(Open):
    """What a command answers: what changed (ids, versions, state; the handler's result)
    and ``position``, the event position to pass as ``min_position`` to read your write."""

    model_config = ConfigDict(
        extra="allow",
        json_schema_extra={"examples": [{"id": "3b8e5c1a-4f0e-4a57-9a3c-0d3f7e1c2b44", "version": 4, "position": 1287}]},
    )

    position: int = Field(description="The position of the command's last event (0 when it changed nothing)", ge=0)
    id: str | None = Field(None, description="The aggregate acted on or created")
    version: int | None = Field(None, description="Its version after the command (its ETag)")


Names = dict[str, str]  # a name per language: zh, ar, it, en
# A moment: ISO 8601 in the answer, whether the read model holds a datetime or its text.
Moment = datetime | str
# An id: text in the answer, whether the read model holds a UUID or its text.
Ident = Annotated[str, BeforeValidator(lambda v: str(v) if isinstance(v, uuid.UUID) else v)]


# ------------------------------------------------------------------ sign-in and keys
class OpenIdConfiguration(Open):
    """OpenID Connect discovery (the fields this issuer fills)."""

    issuer: str
    jwks_uri: str
    token_endpoint: str
    grant_types_supported: list[str]
    id_token_signing_alg_values_supported: list[str]


class Jwks(Open):
    """A JSON Web Key Set (RFC 7517): the public keys that verify the hotline's tokens."""

    keys: list[dict[str, Any]]


class SignInCodeSent(Open):
    sent_to: str = Field(description="Where the code went, masked: +39••••••78, m•••@example.org")
    channel: str = Field(description="sms or email")
    expires_at: Moment


class StaffAccount(Open):
    username: str
    name: str | None = None
    roles: list[str]
    departments: list[str]
    disabled: bool
    has_password: bool | None = None


class ApiKeyView(Open):
    """An API key's settings and state (never the key itself)."""

    id: Ident
    name: str
    role: str
    actions: list[str]
    jurisdiction: str | None = None
    expires_at: Moment | None = None
    revoked: bool
    version: int


class ApiKeyIssued(ApiKeyView):
    key: str = Field(description="The key (hk_…): shown in this answer only, never again")


# ------------------------------------------------------------------ catalogue and calendars
class CatalogueTree(Open):
    jurisdiction: str
    version: int
    departments: list[dict[str, Any]] = Field(description="Departments with their providers, categories and problem codes")


class ProblemCodeView(Open):
    code: str
    category_id: str | None = None
    names: Names
    fields_to_collect: list[dict[str, Any]]
    version: int


class CalendarView(Open):
    jurisdiction: str
    version: int
    time_zone: str
    working_hours: dict[str, list[list[str]]]


class DeadlineAnswer(Open):
    start: Moment
    working_hours: float
    due_at: Moment
    local_due_at: Moment


# ------------------------------------------------------------------ SLA and notifications
class RequestSla(Open):
    reference: str
    status: str
    measures: dict[str, Any]
    timers: list[dict[str, Any]]


class Ageing(Open):
    as_of: Moment
    groups: list[dict[str, Any]] = Field(description="Per department and provider: open, overdue and due-soon counts, ageing buckets")


class TimersStatus(Open):
    table: dict[str, Any] = Field(description="Pending and fired timers, by kind; the next due")
    process: dict[str, Any] | None = Field(None, description="The timer process's counters, when it runs in this process")


class NotificationList(Open):
    counts: dict[str, int] = Field(description="Messages per status")
    messages: list[dict[str, Any]]


class RequestNotifications(NotificationList):
    request_id: Ident
    reference: str
    undelivered: int


class OutboxList(Open):
    folder: str
    total: int
    messages: list[dict[str, Any]]


# ------------------------------------------------------------------ contact center
class AgentView(Open):
    agent_id: Ident
    name: str | None = None
    state: str
    presence: str | None = None
    reason: str | None = None
    queues: list[str]
    skills: dict[str, int]
    languages: list[str]
    seconds_in_state: float | None = None


class Wallboard(Open):
    at: Moment | None = Field(None, description="As of when (absent on the live feed, which pushes changes only)")
    agents_by_state: dict[str, int]
    agents_logged_in: int
    queues: list[dict[str, Any]]


class WaitingContact(Open):
    contact_id: Ident
    position: int


class QueuePosition(Open):
    contact_id: Ident
    queue_id: str
    position: int


class Desk(Open):
    agent: dict[str, Any] | None
    offers: list[dict[str, Any]]
    contacts: list[dict[str, Any]]
    wrapping: list[dict[str, Any]]
    grabbable: list[dict[str, Any]]
    suggestions: list[dict[str, Any]] | None = Field(None, description="Articles for the contact in hand (not on the live feed)")


# ------------------------------------------------------------------ knowledge
class SearchResults(Open):
    results: list[dict[str, Any]] = Field(description="Articles found, best first: id, language, revision, title, snippet, score")
    search_id: Ident | None = Field(description="The recorded search: report what was opened or used against it")


class AgentSuggestions(SearchResults):
    agent_id: Ident
    contact_id: Ident | None


class Article(Open):
    id: Ident
    status: str
    revision: int
    published_revision: int | None = None
    latest_revision: int | None = None
    language: str | None = None
    languages: list[str]
    title: str | None = None
    body: str | None = None


class RevisionEntry(Open):
    revision: int
    note: str | None = None
    actor_id: str | None = None
    at: Moment


class ArticleUsage(Open):
    article_id: Ident
    opened: int
    used: int
    deflected: int


class UnansweredQuery(Open):
    language: str | None
    query: str | None
    searches: int


# ------------------------------------------------------------------ reports and staffing
class ReportInfo(Open):
    name: str
    title: str | None = None
    kind: str
    by: list[str] | None = None
    default_by: str | None = None


class Staffing(Open):
    """Erlang C: the agents needed for a service-level target, or the figures for a given number."""

    calls: float
    interval_seconds: float
    aht_seconds: float
    target_seconds: float
    traffic_erlangs: float
    agents: int
    scheduled_agents: int
    shrinkage: float
    probability_of_waiting: float
    service_level: float
    asa_seconds: float | None
    occupancy: float | None
    unstable: bool


class KafkaStatus(Open):
    mode: str = Field(description="embedded or distributed")
    event_store_position: int
    relays: dict[str, Any]
    consumer_groups: dict[str, Any]


class AsyncApiDocument(Open):
    """The AsyncAPI 2.6 document of the Kafka topics."""

    asyncapi: str
    info: dict[str, Any]
    channels: dict[str, Any]


# ------------------------------------------------------------------ attachments, channels, audit
class AttachmentView(Open):
    id: Ident
    name: str | None = None
    media_type: str | None = None
    size: int | None = None
    removed: bool | None = None
    content_url: str | None = Field(None, description="Where the bytes are served; None once removed")


class SmsInboundAnswer(Open):
    """What became of a text the provider delivered."""

    accepted: bool
    message_id: Ident
    duplicate: bool
    action: str | None = Field(None, description="registered, threaded, queued_for_agent, opted_out, opted_in, ignored")
    reference: str | None = None


class ErasureAnswer(CommandAnswer):
    keys_destroyed: int | list[str] | None = None


class CaseTrace(Open):
    key: str
    mode: str
    request_id: Ident | None
    correlation_ids: list[str]
    aggregates: list[dict[str, Any]]
    events: list[dict[str, Any]]


class ReadModelAsOf(Open):
    read_model: str
    as_of: Moment
    position: int


class AggregateHistory(Open):
    stream: str
    id: Ident
    aggregate: str
    versions: int
    as_of: dict[str, Any]
    state: dict[str, Any] | None
    history: list[dict[str, Any]]


class ReportSaved(Open):
    name: str
    columns: list[Any]
    sample_rows: int
    url: str


class OutboxMessage(Open):
    """One delivered message as its recipient got it."""

    id: Ident
    channel: str
    file: str
    subject: str | None


class ReportTable(Open):
    """A report as JSON (format=json): its table, and the sections some reports add."""

    report: str
    title: str | None
    params: dict[str, Any]
    columns: list[Any]
    rows: list[Any]
    sections: list[dict[str, Any]] | None = None


# ------------------------------------------------------------------ readiness, recordings, IVR
# A moment as the route's dict answered it before it had a model: ``isoformat()``
# (``+00:00``), not pydantic's ``Z``, so that typing these answers changes no byte of them.
IsoMoment = Annotated[
    datetime | str,
    PlainSerializer(lambda v: v.isoformat() if isinstance(v, datetime) else v, return_type=str),
    WithJsonSchema({"type": "string", "format": "date-time"}),
]


class ReadinessCheck(Open):
    """One check of ``/readyz`` (infra/readiness.py); besides ``ok`` and ``problem`` it
    carries only the figures its kind has."""

    ok: bool = Field(description="The check passed")
    problem: str | None = Field(description="What is wrong, for an operator; null when ok")
    position: int | None = Field(None, description="event_store: the store's head; relay: the last position it published")
    lag: int | None = Field(
        None, description="relay: events stored but not published; consumers: end offsets minus the group's committed offsets"
    )
    warning: str | None = Field(None, description="analytics: what is wrong that does not stop this process serving")
    group: str | None = Field(None, description="consumers, analytics: the Kafka consumer group")
    partitions_behind: list[dict[str, Any]] | None = Field(None, description="consumers: the partitions with a lag, and theirs")
    bootstrap_servers: str | None = Field(None, description="kafka: the brokers asked")
    answered_seconds_ago: float | None = Field(None, description="kafka: the age of the brokers' last answer")
    leader: bool | None = Field(None, description="router: some process holds the router's leader lock")


class ReadinessReport(Open):
    """What ``/readyz`` answers: 200 with ``status`` ready, else 503 with the problems."""

    model_config = ConfigDict(
        extra="allow",
        json_schema_extra={
            "examples": [
                {
                    "status": "ready",
                    "mode": "embedded",
                    "problems": [],
                    "warnings": [],
                    "checks": {"event_store": {"position": 1287, "problem": None, "ok": True}},
                }
            ]
        },
    )

    status: Literal["ready", "not ready"] = Field(description="ready (200) or not ready (503)")
    mode: str = Field(description="embedded or distributed")
    problems: list[str] = Field(description="'check: what is wrong' for each failed check; empty when ready")
    warnings: list[str] = Field(
        default_factory=list,
        description="'check: what is wrong' for what does not stop this process serving: the analytics consumers behind",
    )
    checks: dict[str, ReadinessCheck] = Field(
        description="By name: event_store always; relay, kafka, consumers and analytics in the distributed mode; router with PostgreSQL"
    )


class NotReady(ReadinessReport):
    """The 503 of ``/readyz``: the same report, naming each failed check."""

    model_config = ConfigDict(
        extra="allow",
        json_schema_extra={
            "examples": [
                {
                    "status": "not ready",
                    "mode": "distributed",
                    "problems": ["relay: 4000 events not published (bound 1000)"],
                    "checks": {
                        "event_store": {"position": 5287, "problem": None, "ok": True},
                        "relay": {"position": 1287, "lag": 4000, "problem": "4000 events not published (bound 1000)", "ok": False},
                    },
                }
            ]
        },
    )

    status: Literal["not ready"] = Field(description="not ready")  # type: ignore[assignment]
    problems: list[str] = Field(min_length=1, description="'check: what is wrong' for each failed check")


class RecordingView(Open):
    """A recording's metadata (never its storage location). Read from the read model; a
    recording not projected yet answers its aggregate's summary, the fields up to ``version``."""

    id: Ident = Field(description="The recording's id")
    name: str = Field(description="The PBX's name for it (ARI recording name)")
    contact_id: Ident = Field(description="The call recorded")
    agent_id: str | None = Field(description="The agent on the call (none for a voicemail)")
    queue_id: str = Field(description="The queue the call came through")
    reason: str = Field(description="Why it was recorded: policy, sample, agent_demand or voicemail")
    status: str = Field(description="recording, completed or deleted")
    started_at: IsoMoment = Field(description="When recording started")
    duration_s: float | None = Field(description="Its length in seconds, once completed")
    sha256: str | None = Field(description="The audio's SHA-256 (its key in the attachment store), once completed")
    size_bytes: int | None = Field(description="The audio's size, once completed")
    version: int = Field(description="The recording aggregate's version")
    citizen_id: Ident | None = Field(None, description="The caller, when known")
    announcement: str | None = Field(None, description="The prompt played before recording")
    phone: str | None = Field(None, description="The caller's number (personal data: blanked on erasure)")
    content_type: str | None = Field(None, description="The audio's media type")
    completed_at: IsoMoment | None = Field(None, description="When recording finished")
    deleted_at: IsoMoment | None = Field(None, description="When the audio was deleted (retention, erasure)")
    deleted_reason: str | None = Field(None, description="Why it was deleted")
    audio_erased: bool | None = Field(None, description="The audio bytes are gone")
    plays: int | None = Field(None, description="Playback links granted so far")
    last_played_at: IsoMoment | None = Field(None, description="When the last playback link was granted")
    request_ids: list[str] | None = Field(None, description="The requests (cases) linked to the call")
    playback_url: str | None = Field(None, description="Where to ask for a playback link; null when there is no audio to play")


class RecordingPage(Open):
    """A page of recordings, newest first."""

    items: list[RecordingView] = Field(description="The recordings on this page")
    total: int = Field(description="How many match the filters in all")
    limit: int = Field(description="The page size asked for")
    offset: int = Field(description="How many matches were skipped")


class RecordingPolicyView(Open):
    """A queue's recording policy (mode none, version 0 when never set)."""

    queue_id: str = Field(description="The queue")
    mode: str = Field(description="all, none, sample or on_demand")
    sample_percent: float = Field(description="The share of calls recorded in sample mode (0-100)")
    announcement: str | None = Field(description="The prompt played before recording")
    version: int = Field(description="The policy's version (0: never set)")


class PlaybackLink(Open):
    """A short-lived link to the audio, for the user who asked only."""

    recording_id: Ident = Field(description="The recording")
    url: str = Field(description="/recordings/{id}/audio?token=…: works for the same signed-in user until expires_at")
    expires_at: IsoMoment = Field(description="When the link stops working")
    position: int = Field(description="The position of the playback_granted event (pass as min_position to read it)")


class IvrFlowSchema(Open):
    """The JSON Schema (draft 2020-12) a flow document must satisfy."""

    schema_uri: str = Field(alias="$schema", description="The JSON Schema dialect")
    schema_id: str = Field(alias="$id", description="The schema's id")
    title: str
    type: str
    properties: dict[str, Any] = Field(description="A flow document's top-level fields")
    required: list[str]


class IvrFlowSummary(Open):
    """A flow and its current version (``current_version`` 0: registered, nothing published)."""

    flow_id: str = Field(description="The flow's id (its document's flow_id)")
    aggregate_id: Ident | None = Field(description="The flow aggregate's id")
    title: str | None = Field(description="The current version's title")
    languages: list[str] | None = Field(description="The current version's languages")
    current_version: int | None = Field(description="The version in use")
    sha256: str | None = Field(description="The current document's SHA-256")
    published_at: IsoMoment | None = Field(description="When the current version was published")
    published_by: str | None = Field(description="Who published it")
    version: int | None = Field(description="The aggregate's version: the ETag for If-Match")


class IvrFlowVersionInfo(Open):
    """A published version, without its document."""

    flow_id: str = Field(description="The flow")
    flow_version: int = Field(description="The version number (1, 2, …)")
    sha256: str | None = Field(description="The document's SHA-256")
    note: str | None = Field(description="The publisher's note")
    published_at: IsoMoment | None = Field(description="When it was published")
    published_by: str | None = Field(description="Who published it")
    published_by_role: str | None = Field(description="Their role")
    position: int | None = Field(description="The event position of its publication")


class IvrFlowVersion(IvrFlowVersionInfo):
    """A published version with its document."""

    document: dict[str, Any] = Field(description="The flow document (see GET /ivr/schema)")


class IvrFlowDetail(IvrFlowSummary):
    """A flow, its current version and every version published, newest first."""

    versions: list[IvrFlowVersionInfo] = Field(description="Every published version, newest first, without documents")
