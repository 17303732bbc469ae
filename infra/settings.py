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

from pydantic import BeforeValidator
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
    # The relay gathers commits for this long after a wake-up before reading the log: fewer,
    # fuller cycles (each costs a log read, a produce request and a bookkeeping write).
    relay_gather_ms: float = 4.0
    jurisdiction: str = "default"
    allow_anonymous: bool = False
    # Where phone numbers without a country code are read (ISO 3166: IT, CN …). Unset: the
    # jurisdiction's (domain/requests/intake.py PHONE_REGIONS; the demo's is IT).
    default_region: str | None = None
    default_language: str = "it"
    # Where the hotline is: the console shows dates and times in this zone.
    time_zone: str = "Europe/Rome"
    group_commit_max_batch: int = 500
    # How long a batch may wait for commands that are still being prepared (their handlers
    # running) to join it; with nothing in preparation it never waits. 0 = batch what is queued.
    # 6 ms: about the time the commands answered by one batch take to prepare their next one
    # (measured with 32 clients: fuller batches, fewer commits, and the best throughput).
    group_commit_max_wait_ms: float = 6.0
    pg_pool_size: int = 16
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
    cors_origins: list[str] = []  # browsers' origins allowed to call the API (none by default)
    # Abuse limits ("limits" rate-limit strings) on the public endpoints, per client
    # address and per subject; shared between processes through PostgreSQL when it is the store.
    rate_limit_public: str = "60/minute"  # registrations, searches, feedback by one address
    rate_limit_sign_in: str = "10/minute"  # password and code attempts by one address
    rate_limit_codes: str = "5/hour"  # sign-in codes sent to one phone or email
    # Development only: also log citizens' sign-in codes (there is no SMS gateway on a laptop).
    log_sign_in_codes: bool = False
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


def _sqlalchemy_pg(url: str) -> str:
    for prefix in ("postgresql+psycopg://", "postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    raise ValueError(f"HOTLINE_DATABASE_URL must be a postgresql:// URL, not {url!r}")


@lru_cache
def get_settings() -> Settings:
    return Settings()
