"""Settings from the environment (``HOTLINE_*``) or a ``.env`` file.

The run mode is chosen here and nowhere else: with ``HOTLINE_DATABASE_URL`` the event
store and read models live in PostgreSQL; with ``HOTLINE_KAFKA_BOOTSTRAP_SERVERS`` the
projections are fed from Kafka. Without them everything runs embedded in one process,
on SQLite files under ``HOTLINE_DATA_DIR``.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BeforeValidator, Field
from pydantic_settings import BaseSettings, SettingsConfigDict


def _lower(value: Any) -> Any:
    return value.lower() if isinstance(value, str) else value


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="HOTLINE_", env_file=".env", extra="ignore")

    data_dir: Path = Path("data")
    database_url: str | None = None  # postgresql://user@host:port/db
    kafka_bootstrap_servers: str | None = None
    kafka_topic_partitions: int = 6
    kafka_topic_retention_ms: int = -1  # keep the log: integrators may replay from the start
    kafka_topic_prefix: str = "hotline"  # topics <prefix>.requests, <prefix>.workorders …
    kafka_consumer_group: str = "hotline-projections"
    # The analytics ingest's group (`hotline consume analytics`): a setting like the
    # projections', so two deployments sharing a Kafka (other topic prefixes) never share it.
    kafka_analytics_group: str = "hotline-analytics"
    # The relay gathers commits for this long after a wake-up before reading the log: fewer,
    # fuller cycles (each costs a log read, a produce request and a bookkeeping write).
    relay_gather_ms: float = 4.0
    # How long a query with min_position waits for the read models before its 504 (api/read_your_writes.py).
    read_your_writes_timeout: float = 5.0
    jurisdiction: str = "default"
    allow_anonymous: bool = False
    # Where phone numbers without a country code are read (ISO 3166: IT, CN …). Unset: the
    # jurisdiction's (domain/requests/intake.py PHONE_REGIONS; the demo's is IT).
    default_region: str | None = None
    default_language: str = "it"
    # Nearby duplicates: how far (metres) an open work order of the same problem code may be
    # from a new request, for problem codes that set no ``duplicate_radius_m`` of their own.
    duplicate_radius_m: float = 100.0
    # Where the hotline is: the console shows dates and times in this zone.
    time_zone: str = "Europe/Rome"
    group_commit_max_batch: int = 500
    # How long a batch may wait for commands that are still being prepared (their handlers
    # running) to join it; with nothing in preparation it never waits. 0 = batch what is queued.
    # 6 ms: about the time the commands answered by one batch take to prepare their next one
    # (measured with 32 clients: fuller batches, fewer commits, and the best throughput).
    group_commit_max_wait_ms: float = 6.0
    pg_pool_size: int = 16
    # Queries (GET routes) run at once per API process (api/routing.py); the rest wait on
    # the event loop. Default: SQLITE_READ_THREADS (2) on SQLite, where a query is Python
    # and SQLite bound by the GIL and more threads only contend for it; pg_pool_size on
    # PostgreSQL, where a query mostly waits on the server.
    read_threads: int | None = Field(default=None, ge=1, le=256)
    # Quick reads (api/routing.py ``quick_read``: one case, one desk, one summary) run on
    # the event loop itself instead of a read thread. Default: on SQLite, where the hand-off
    # to a thread and back cost about as much as the query; never worth it on PostgreSQL,
    # where the query would block the loop on the network.
    quick_reads_inline: bool | None = None
    # Audit chain (infra/audit_chain.py): every event hashed onto its stream and the global
    # order. Off only to measure what it costs (events written then are reported by verify).
    audit_chain: bool = True
    # A checkpoint (chain head: position and hash) is logged and appended to the file every
    # this many events (0: only on demand, `hotline audit checkpoint`).
    audit_checkpoint_every: int = 10_000
    audit_checkpoint_file: Path | None = None  # default: <data_dir>/audit-checkpoints.jsonl
    # Python's young-generation GC threshold (0: Python's default, 700). A command allocates
    # hundreds of objects, so at the default a collection ran every few commands; scanning
    # less often gave the write path 5% (the older generations are collected as before).
    gc_young_threshold: int = 50_000
    host: str = "127.0.0.1"
    port: int = 8000
    # Every process logs through infra/logging.py: one JSON object a line on stderr
    # (``console``: coloured key=value lines for a developer's terminal).
    log_level: Annotated[Literal["critical", "error", "warning", "info", "debug"], BeforeValidator(_lower)] = "info"
    log_format: Annotated[Literal["json", "console"], BeforeValidator(_lower)] = "json"
    # In-process projections after each commit (the embedded mode). With Kafka the
    # projection consumers do it instead.
    inprocess_projections: bool | None = None
    # SLA timers and notifications (consumers/timers.py, consumers/notifications.py)
    calendars_file: Path | None = None  # default: infra/data/calendars.yaml
    # What `hotline serve` runs beside the API (consumers/background.py; real clock only).
    timers_inprocess: bool = True  # the SLA timer process, in the embedded mode
    router_inprocess: bool = True  # the ACD router (with PostgreSQL, one active across processes)
    analytics_inprocess: bool = True  # DuckDB ingest from the event store, in the embedded mode
    # The embedded ingest waits this long after each round, so that the commits of that
    # time make one DuckDB transaction (its cost is mostly per transaction: one per few
    # commits took half the server's CPU under load); reports are at most this much later.
    analytics_gather_seconds: float = 1.0
    # Replies and alerts. Unset: on with SQLite (the embedded default), off with PostgreSQL or
    # Kafka, where `hotline notify` runs as its own process.
    notifier_inprocess: bool | None = None
    timers_poll_seconds: float = 1.0
    timers_batch: int = 1000
    sla_policy: dict[str, Any] = {}  # SlaPolicy fields: warning_points, reminders, escalate_after_working_days …
    smtp_host: str | None = None  # unset (and no smtp_port): email goes to the local outbox
    smtp_port: int = 25
    smtp_username: str | None = None
    smtp_password: str | None = None
    smtp_starttls: bool = False
    smtp_timeout: float = 10.0
    mail_from: str = "hotline@localhost"
    department_mail: str = "{department_id}@departments.hotline.local"  # alerts to departments
    sms_gateway_url: str | None = None  # HTTP provider for SMS, fax and voicemail
    sms_gateway_token: str | None = None
    sms_gateway_retries: int = 3
    sms_gateway_backoff_seconds: float = 0.5
    # Inbound SMS (POST /channels/sms/inbound): the provider signs each call with
    # HMAC-SHA256, under this shared secret, of "<timestamp>.<raw body>"; the timestamp
    # (Unix seconds) in its own header, refused when further than max-age from now.
    # Unset: no signature is accepted (every call is 401).
    sms_inbound_secret: str | None = None
    sms_inbound_signature_header: str = "X-Hotline-Signature"
    sms_inbound_timestamp_header: str = "X-Hotline-Timestamp"
    sms_inbound_max_age_seconds: int = 300
    # A text from a number whose citizen's name is unknown cannot be registered where the
    # intake policy wants a name: it goes to an agent as a contact of this (chat) queue.
    sms_inbound_queue: str = "chat"
    notify_max_attempts: int = 5
    notify_retry_seconds: float = 60.0  # first retry after this, doubling
    notify_poll_seconds: float = 1.0
    # Without an SMTP server or an SMS gateway, messages are written here (GET /outbox).
    outbox_dir: Path | None = None  # default: <data_dir>/outbox
    # Sign-in (api/auth.py, infra/identity/). Without an external issuer the hotline signs
    # its own tokens with keys in <data_dir>/identity/keys (share that folder between the
    # API processes of one deployment). With one, its tokens are accepted too.
    oidc_issuer: str | None = None  # e.g. http://127.0.0.1:58080/realms/hotline (Keycloak)
    oidc_audience: str = "hotline"
    oidc_jwks_url: str | None = None  # default: discovered from the issuer
    # Which claims of the external issuer's tokens hold what (dotted paths).
    oidc_subject_claim: str = "sub"
    oidc_roles_claim: str = "roles"  # Keycloak realm roles: realm_access.roles
    oidc_departments_claim: str = "departments"  # Keycloak user attribute mapper: department
    oidc_citizen_claim: str = "citizen_id"
    oidc_name_claim: str = "name"
    token_issuer: str = "urn:hotline"  # the iss of the hotline's own tokens
    token_ttl_seconds: int = 3600  # staff sign-in
    citizen_token_ttl_seconds: int = 1800  # citizens signed in by a code
    signing_keys_dir: Path | None = None  # default: <data_dir>/identity/keys
    # Behind an authenticating proxy only: trust X-Actor-Id / X-Actor-Role /
    # X-Actor-Departments / X-Actor-Citizen from it. Off: those headers confer nothing.
    trusted_gateway: bool = False
    metrics_token: str | None = None  # when set, /metrics wants "Authorization: Bearer <it>"
    # /metrics of the processes without the API (infra/metrics.py PROCESS_PORT_OFFSETS): each
    # serves on metrics_base_port + its offset (consume projections 1, consume analytics 2,
    # router 3, timers 4, notify 5, relay 6); HOTLINE_METRICS_PORT sets one process's port
    # (a second consumer on the same host needs its own); base port 0: none served.
    metrics_base_port: int = 9460
    metrics_port: int | None = None
    metrics_addr: str = "127.0.0.1"
    # /readyz (api/routers/health.py): 503 naming what is wrong when, in the distributed mode,
    # the relay or the projection consumers are more than this many events behind, or behind
    # and not moving for stall seconds, or Kafka does not answer within the timeout; or, with
    # PostgreSQL and readyz_router, no router holds the leader lock. Checks are cached this long.
    readyz_max_relay_lag: int = 10_000
    readyz_max_consumer_lag: int = 10_000
    readyz_stall_seconds: float = 10.0
    readyz_kafka_timeout_seconds: float = 2.0
    readyz_router: bool = True
    readyz_cache_seconds: float = 1.0
    cors_origins: list[str] = []  # browsers' origins allowed to call the API (none by default)
    # The largest request body the API reads (413 beyond; the attachment uploads have their
    # own limit, attachments_max_bytes). Bounds of fields and headers: domain/limits.py.
    max_body_bytes: int = 1024 * 1024
    # `hotline serve` on SIGTERM: requests in flight get shutdown_grace_seconds, then are
    # cancelled; whatever still runs (a background thread, a request's worker thread) is cut
    # short when shutdown_seconds have passed since the signal (api/main.py).
    shutdown_grace_seconds: int = 4
    # `hotline serve --workers N`: how long a worker may take to answer the parent's health
    # ping before it is killed and replaced. Its first answer comes after it has imported
    # the application, which took 30 s and more on a loaded 2-core machine (uvicorn's own
    # default, 5 s, then killed every worker before it could serve, for ever).
    worker_healthcheck_seconds: int = Field(default=60, ge=5, le=3600)
    shutdown_seconds: float = 9.0
    # Abuse limits ("limits" rate-limit strings) on the public endpoints, per client
    # address and per subject; shared between processes through PostgreSQL when it is the store.
    rate_limit_public: str = "60/minute"  # registrations, searches, feedback by one address
    # Sign-in: failed attempts by one address, and every attempt for one username (a
    # password guessed at); every attempt by one address under the second, wider limit, so
    # that a shift of agents behind one address (a call centre's NAT) all get in at the
    # change of shift while the password hashing an address can make the server do stays bounded.
    rate_limit_sign_in: str = "10/minute"
    rate_limit_sign_in_address: str = "300/minute"
    rate_limit_codes: str = "5/hour"  # sign-in codes sent to one phone or email
    # Development only: also log citizens' sign-in codes (there is no SMS gateway on a laptop).
    log_sign_in_codes: bool = False
    # Attachments (infra/attachments.py): size and types, checked on the content.
    attachments_max_bytes: int = 10 * 1024 * 1024
    attachments_allowed_types: list[str] = ["image/jpeg", "image/png", "image/webp", "image/heic", "application/pdf", "text/plain"]
    # Where their bytes go. Unset: <data_dir>/attachments, or PostgreSQL large objects
    # when HOTLINE_DATABASE_URL is set; set: this directory in either mode.
    attachments_dir: Path | None = None
    # Open311 GeoReport v2 (api/routers/open311.py): the jurisdiction_ids it answers to
    # (empty: the hotline's own jurisdiction; with several, clients must name one), the
    # results of a page (the spec's default and maximum, 1000) and the default window (90 days).
    open311_jurisdictions: list[str] = []
    open311_page_size: int = 1000
    open311_window_days: int = 90
    # Its service discovery (/open311/discovery.json|xml): whom integrators contact, and how
    # they get an API key (unset: the hotline's mail address; keys from its administrator).
    open311_contact: str | None = None
    open311_key_service: str = "API keys are issued by the hotline's administrator (POST /api-keys)"
    # Email in (consumers/email_in.py): an SMTP listener that registers citizens' email as
    # requests. `hotline email-in` runs it; `hotline serve` too when email_in_inprocess.
    email_in_inprocess: bool = False
    email_in_host: str = "127.0.0.1"
    email_in_port: int = 2525
    email_in_addresses: list[str] = []  # recipients taken (others: 550); empty: any (the MTA in front routes)
    email_in_max_bytes: int = 15 * 1024 * 1024  # a bigger message is refused (552) and bounced by the sender's MTA
    email_in_kind: Literal["information", "action", "feedback"] = "information"  # operators re-classify
    email_in_workers: int = 16  # messages worked on at once (their commands group-commit together)
    # Privacy (infra/citizen_keys.py, domain/privacy/): ``personal`` event fields encrypted with
    # a key per citizen (AES-GCM); erasure destroys the key. Retention: citizens whose requests
    # all closed more than this many years ago are erased (`hotline privacy retention`, or
    # in `hotline serve` when retention_inprocess, every retention_interval_hours).
    encrypt_personal: bool = True
    # The jurisdiction's policy on free text the citizen wrote (a request's description, their
    # messages): sealed with their key too, so an erasure takes it. On by default, as the
    # Italian default is strict about personal data (a description often names people).
    encrypt_citizen_text: bool = True
    retention_years: float = 5.0
    retention_inprocess: bool = False
    retention_interval_hours: float = 24.0
    # Call recordings (domain/recordings/, infra/recordings.py): their audio is kept in the
    # attachment store; deleted after this many days (`hotline recordings retention`) unless
    # the case is supervised or disputed. A playback link works for recordings_link_seconds.
    recordings_retention_days: float = 90.0
    recordings_max_bytes: int = 200 * 1024 * 1024
    recordings_link_seconds: int = 300
    # The AMI observer (telephony_adapter/ami.py, `hotline ami`): an Asterisk manager login,
    # and how app_queue's queue and member names map to the hotline's queue and agent ids
    # (unmapped: the name itself; a member "PJSIP/op-anna" is agent "op-anna").
    ami_host: str = "127.0.0.1"
    ami_port: int = 5038
    ami_username: str = "hotline"
    ami_secret: str | None = None
    ami_queue_map: dict[str, str] = {}
    ami_agent_map: dict[str, str] = {}
    # Asterisk ARI (`hotline telephony`, telephony_adapter/process.py): ARI's base URL (the
    # event WebSocket is <url>/events?app=<ari_app>), its user (ari.conf) and the Stasis app.
    ari_url: str = "http://127.0.0.1:8088/ari"
    ari_user: str = "hotline"
    ari_password: str | None = None
    ari_app: str = "hotline"
    ari_agent_endpoint: str = "PJSIP/{agent_id}"  # where an agent's (or supervisor's) phone is dialled
    ari_trunk_endpoint: str = "PJSIP/{number}@trunk"  # how a citizen is called back
    ari_default_queue: str = "general"  # a call entering Stasis without a queue argument
    ari_reconnect_max_seconds: float = 30.0  # the reconnection backoff doubles up to this
    ari_inprocess: bool = False  # `hotline serve` runs the adapter too (else `hotline telephony`)
    # How long a busy thread of `hotline telephony` keeps the GIL before the event loop may
    # take it (Python's default 0.005): a caller's keypress waits behind a command's work.
    telephony_switch_interval: float = Field(default=0.001, gt=0, le=0.1)
    # Fault injection for the email-in tests: the listener dies after committing, before its 250.
    fault_email_in_exit_after_commit: bool = False
    # Fault injection for the Kafka tests: the projection consumer dies before its Nth commit.
    fault_kill_before_commit: int = 0

    @property
    def mode(self) -> str:
        return "distributed" if self.kafka_bootstrap_servers else "embedded"

    @property
    def projections_inprocess(self) -> bool:
        if self.inprocess_projections is not None:
            return self.inprocess_projections
        return self.kafka_bootstrap_servers is None

    @property
    def inline_quick_reads(self) -> bool:
        if self.quick_reads_inline is not None:
            return self.quick_reads_inline
        return self.database_url is None

    @property
    def query_threads(self) -> int:
        if self.read_threads is not None:
            return self.read_threads
        return self.pg_pool_size if self.database_url else SQLITE_READ_THREADS

    @property
    def sqlite_events_path(self) -> Path:
        return self.data_dir / "events.sqlite"

    @property
    def read_store_url(self) -> str:
        if self.database_url:
            return _sqlalchemy_pg(self.database_url)
        return f"sqlite:///{self.data_dir / 'read_models.sqlite'}"

    @property
    def keys_dir(self) -> Path:
        return self.signing_keys_dir or self.data_dir / "identity" / "keys"

    @property
    def duckdb_path(self) -> Path:
        return self.data_dir / "analytics.duckdb"


SQLITE_READ_THREADS = 2


def _sqlalchemy_pg(url: str) -> str:
    for prefix in ("postgresql+psycopg://", "postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    raise ValueError(f"HOTLINE_DATABASE_URL must be a postgresql:// URL, not {url!r}")


@lru_cache
def get_settings() -> Settings:
    return Settings()
