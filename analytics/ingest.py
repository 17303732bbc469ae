"""Events into DuckDB: idempotent, batched, one writer; analysts read snapshots.

Two entry points share one SQL path:

* :meth:`AnalyticsStore.ingest_envelopes` takes :class:`domain.envelope.Envelope` batches
  (the embedded mode: :class:`InProcessAnalytics` follows the event store's log like the
  in-process projector does);
* :meth:`AnalyticsStore.ingest_cloudevents` takes raw CloudEvents JSON documents (the
  distributed mode: ``consumers/analytics_ingest.py`` reads them from Kafka); DuckDB
  parses them, Python never touches the fields.

Idempotency: in one DuckDB transaction a batch (1) drops events whose ``event_id``
(aggregate id/version) is already stored, looking only at the stored events in the
batch's position range so the check costs a few row groups, not the table, (2) inserts
the new ones into ``events`` and the typed tables, (3) records the position reached
(the store's global position, or the Kafka offset per partition). A crash between
batches redelivers at most one batch, which step (1) ignores.

Reading while ingest runs: DuckDB lets one process open a file read-write, and then no
other process may open it at all. So ingest owns ``analytics.duckdb`` and publishes a
*snapshot*: after a checkpoint it copies the file to ``analytics.snapshot.duckdb`` by an
atomic rename (at most every ``snapshot_interval`` seconds). Analysts, reports, the API
and the CLI open the snapshot read-only, as many at a time as they like; a reader that
has the old snapshot open keeps reading it undisturbed. ``export_parquet`` also writes
the fact views as Parquet files for tools that prefer them.
"""

from __future__ import annotations

import json
import os
import shutil
import threading
import time as _time
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa

from analytics.schema import FACT_VIEWS, create_schema
from domain.envelope import Envelope

WHOLE_LOG = -1
CHECKPOINT_THRESHOLD = "1GB"
STORE_SOURCE = "store"

_INCOMING_SCHEMA = pa.schema(
    [
        ("event_id", pa.string()),
        ("position", pa.int64()),
        ("type", pa.string()),
        ("aggregate_id", pa.string()),
        ("version", pa.int64()),
        ("time", pa.timestamp("us", tz="UTC")),
        ("data", pa.string()),
        ("actor_id", pa.string()),
        ("actor_role", pa.string()),
        ("correlation_id", pa.string()),
        ("causation_id", pa.string()),
    ]
)

_CE_SHAPE = json.dumps(
    {
        "id": "VARCHAR",
        "type": "VARCHAR",
        "subject": "VARCHAR",
        "time": "VARCHAR",
        "sequence": "BIGINT",
        "aggregateversion": "BIGINT",
        "hotlinemeta": {"actor_id": "VARCHAR", "actor_role": "VARCHAR", "correlation_id": "VARCHAR", "causation_id": "VARCHAR"},
        "data": "JSON",
    }
)

_CONTACT_SHAPE = json.dumps(
    {
        "channel": "VARCHAR",
        "direction": "VARCHAR",
        "language": "VARCHAR",
        "priority": "INTEGER",
        "queue_id": "VARCHAR",
        "to_queue_id": "VARCHAR",
        "agent_id": "VARCHAR",
        "to_agent_id": "VARCHAR",
        "mode": "VARCHAR",
        "wait_seconds": "DOUBLE",
        "talk_seconds": "DOUBLE",
        "hold_seconds": "DOUBLE",
        "wrap_seconds": "DOUBLE",
        "disposition": "VARCHAR",
        "request_id": "VARCHAR",
        "citizen_id": "VARCHAR",
        "personal": {"phone": "VARCHAR", "email": "VARCHAR", "caller_id": "VARCHAR", "address": "VARCHAR"},
    }
)
_REQUEST_SHAPE = json.dumps(
    {
        "reference": "VARCHAR",
        "kind": "VARCHAR",
        "subtype": "VARCHAR",
        "channel": "VARCHAR",
        "urgency": "VARCHAR",
        "citizen_id": "VARCHAR",
        "language": "VARCHAR",
        "contact_id": "VARCHAR",
        "problem_code": "VARCHAR",
        "category_id": "VARCHAR",
        "provider_id": "VARCHAR",
        "department_id": "VARCHAR",
        "due_at": "VARCHAR",
        "on_time": "BOOLEAN",
        "score": "INTEGER",
        "status": "VARCHAR",
    }
)
_AGENT_SHAPE = json.dumps({"state": "VARCHAR", "reason": "VARCHAR", "status": "VARCHAR"})
_KNOWLEDGE_SHAPE = json.dumps({"query": "VARCHAR", "language": "VARCHAR", "results": "INTEGER", "answered": "BOOLEAN"})


def _pseudonym(expr: str) -> str:
    """A stable key for the caller without the personal data (masked values give none)."""
    return f"CASE WHEN {expr} IS NULL OR {expr} = '' OR {expr} LIKE '%***%' THEN NULL ELSE md5({expr}) END"


# From ``incoming`` (deduplicated into ``fresh``) to the tables. ``name`` is the event
# name without stream and version: hotline.contact.arrived.v1 → arrived.
_INSERTS = f"""
INSERT INTO events
SELECT event_id, position, type, split_part(type, '.', 2), split_part(type, '.', 3), aggregate_id, version, time,
    CASE WHEN contains(data, '"personal"') THEN json_merge_patch(data, '{{"personal":null}}') ELSE data END,
    actor_id, actor_role, correlation_id, causation_id, now()::TIMESTAMP
FROM fresh;

INSERT INTO contact_events
SELECT event_id, position, aggregate_id, version, time, split_part(type, '.', 3),
    d.channel, d.direction, d.language, d.priority, d.queue_id, d.to_queue_id, d.agent_id, d.to_agent_id, d.mode,
    d.wait_seconds, d.talk_seconds, d.hold_seconds, d.wrap_seconds, d.disposition, d.request_id,
    coalesce(d.citizen_id, {_pseudonym("d.personal.phone")}, {_pseudonym("d.personal.caller_id")},
             {_pseudonym("d.personal.email")})
FROM (SELECT *, json_transform(data, '{_CONTACT_SHAPE}') AS d FROM fresh WHERE type LIKE 'hotline.contact.%');

INSERT INTO request_events
SELECT event_id, position, aggregate_id, version, time, split_part(type, '.', 3),
    d.reference, d.kind, d.subtype, d.channel, d.urgency, d.citizen_id, d.language, d.contact_id,
    d.problem_code, d.category_id, d.provider_id, d.department_id,
    CAST(CAST(d.due_at AS TIMESTAMPTZ) AS TIMESTAMP), d.on_time, d.score, d.status
FROM (SELECT *, json_transform(data, '{_REQUEST_SHAPE}') AS d FROM fresh WHERE type LIKE 'hotline.request.%');

INSERT INTO agent_events
SELECT event_id, position, aggregate_id, version, time, split_part(type, '.', 3), coalesce(d.state, d.status), d.reason
FROM (SELECT *, json_transform(data, '{_AGENT_SHAPE}') AS d FROM fresh WHERE type LIKE 'hotline.agent.%');

INSERT INTO knowledge_events
SELECT event_id, position, aggregate_id, time, split_part(type, '.', 3), d.query, d.language, d.results, d.answered
FROM (SELECT *, json_transform(data, '{_KNOWLEDGE_SHAPE}') AS d FROM fresh WHERE type LIKE 'hotline.knowledge.%');
"""

_DEDUPE = """
CREATE OR REPLACE TEMP TABLE fresh AS
SELECT * FROM (SELECT DISTINCT ON (event_id) * FROM incoming ORDER BY event_id) i
WHERE NOT EXISTS (
    SELECT 1 FROM events e
    WHERE e.position BETWEEN $lo AND $hi AND e.event_id = i.event_id
)
ORDER BY position;
"""


def _meta_columns(envelopes: Sequence[Envelope]) -> list[list[str | None]]:
    def col(key: str) -> list[str | None]:
        return [None if (v := e.meta.get(key)) is None else str(v) for e in envelopes]

    return [col("actor_id"), col("actor_role"), col("correlation_id"), col("causation_id")]


def snapshot_path_for(path: Path) -> Path:
    return path.with_name(path.stem + ".snapshot" + path.suffix)


def connect_writer(path: Path) -> duckdb.DuckDBPyConnection:
    path.parent.mkdir(parents=True, exist_ok=True)
    conn = duckdb.connect(str(path))
    conn.execute("SET TimeZone = 'UTC'")
    # Checkpoint rarely: small checkpoints after every batch rewrite and recompress the
    # same row groups again and again (measured: 5x slower ingest). Commits still go to
    # the WAL; snapshots and close() checkpoint.
    conn.execute(f"SET checkpoint_threshold = '{CHECKPOINT_THRESHOLD}'")
    create_schema(conn)
    return conn


class AnalyticsStore:
    """The one writer of the analytics database."""

    def __init__(self, path: Path | str, snapshot_interval: float = 5.0) -> None:
        self.path = Path(path)
        self.snapshot_path = snapshot_path_for(self.path)
        self.snapshot_interval = snapshot_interval
        self.conn = connect_writer(self.path)
        self._lock = threading.RLock()
        self._last_snapshot = 0.0
        self._dirty = False

    # ------------------------------------------------------------------ positions
    def positions(self, source: str | None = None) -> dict[tuple[str, int], int]:
        with self._lock:
            sql = "SELECT source, partition, position FROM ingest_positions"
            rows = self.conn.execute(sql + (" WHERE source = ?" if source else ""), [source] if source else []).fetchall()
        return {(s, p): pos for s, p, pos in rows}

    def position(self, source: str = STORE_SOURCE, partition: int = WHOLE_LOG) -> int:
        return self.positions(source).get((source, partition), 0)

    # ------------------------------------------------------------------ ingest
    def ingest_envelopes(self, envelopes: Sequence[Envelope], *, source: str = STORE_SOURCE) -> int:
        """Stores a batch of envelopes; records the last position for ``source``. Returns how many were new."""
        if not envelopes:
            return 0
        batch = pa.table(
            [
                [e.event_id for e in envelopes],
                [e.position for e in envelopes],
                [e.type for e in envelopes],
                [e.aggregate_id for e in envelopes],
                [e.version for e in envelopes],
                [e.time if e.time.tzinfo else e.time.replace(tzinfo=UTC) for e in envelopes],
                [json.dumps(e.data, ensure_ascii=False, default=str) for e in envelopes],
                *_meta_columns(envelopes),
            ],
            schema=_INCOMING_SCHEMA,
        )
        last = max(e.position for e in envelopes)
        return self._ingest(
            lambda c: c.execute("CREATE OR REPLACE TEMP TABLE incoming AS SELECT * FROM batch"),
            batch,
            {(source, WHOLE_LOG): last},
        )

    def ingest_cloudevents(self, documents: Sequence[str | bytes], offsets: dict[tuple[str, int], int] | None = None) -> int:
        """Stores CloudEvents JSON documents (as produced by ``Envelope.to_cloudevent``).

        ``offsets`` ((topic, partition) → last offset of the batch) are recorded in the
        same transaction, so a consumer restarting from them never applies a message twice.
        """
        if not documents:
            if offsets:
                self._ingest(None, None, offsets)
            return 0
        values = [d.decode() if isinstance(d, bytes | bytearray) else d for d in documents]
        batch = pa.table([values], names=["doc"])
        load = f"""
        CREATE OR REPLACE TEMP TABLE incoming AS
        SELECT coalesce(c.id, c.subject || '/' || c.aggregateversion) AS event_id, c.sequence AS position, c.type,
               c.subject AS aggregate_id, c.aggregateversion AS version,
               CAST(CAST(c.time AS TIMESTAMPTZ) AS TIMESTAMP) AS time,
               CAST(c.data AS VARCHAR) AS data, c.hotlinemeta.actor_id, c.hotlinemeta.actor_role,
               c.hotlinemeta.correlation_id, c.hotlinemeta.causation_id
        FROM (SELECT from_json(doc, '{_CE_SHAPE}') AS c FROM batch)
        """
        return self._ingest(lambda c: c.execute(load), batch, offsets or {})

    def _ingest(
        self,
        load: Callable[[duckdb.DuckDBPyConnection], Any] | None,
        batch: pa.Table | None,
        positions: dict[tuple[str, int], int],
    ) -> int:
        with self._lock:
            c = self.conn
            c.execute("BEGIN TRANSACTION")
            try:
                added = 0
                if load is not None and batch is not None:
                    c.register("batch", batch)
                    try:
                        load(c)
                    finally:
                        c.unregister("batch")
                    lo, hi = c.execute("SELECT min(position), max(position) FROM incoming").fetchone() or (None, None)
                    c.execute(_DEDUPE, {"lo": lo if lo is not None else 0, "hi": hi if hi is not None else 0})
                    added = c.execute("SELECT count(*) FROM fresh").fetchone()[0]  # type: ignore[index]
                    if added:
                        c.execute(_INSERTS)
                for (source, partition), position in positions.items():
                    c.execute(
                        """INSERT INTO ingest_positions VALUES (?, ?, ?, now()::TIMESTAMP)
                           ON CONFLICT (source, partition) DO UPDATE
                           SET position = greatest(ingest_positions.position, excluded.position),
                               updated_at = excluded.updated_at""",
                        [source, partition, position],
                    )
                c.execute("COMMIT")
            except BaseException:
                c.execute("ROLLBACK")
                raise
            if added:
                self._dirty = True
            return int(added)

    # ------------------------------------------------------------------ readers
    def publish_snapshot(self, force: bool = False) -> bool:
        """Publishes a consistent copy for readers: checkpoint, copy to a new versioned
        file, then atomically repoint the ``analytics.snapshot.duckdb`` symlink at it.

        A fresh file name per version matters: DuckDB caches open databases by path
        within a process, so reusing one name would hand a reader a stale instance.
        """
        with self._lock:
            now = _time.monotonic()
            exists = self.snapshot_path.exists()
            if not force and exists and (not self._dirty or now - self._last_snapshot < self.snapshot_interval):
                return False
            self.conn.execute("CHECKPOINT")
            version = f"{self.path.stem}.snapshot-{_time.time_ns()}{self.path.suffix}"
            target = self.path.with_name(version)
            tmp = target.with_name(target.name + ".tmp")
            shutil.copyfile(self.path, tmp)
            os.replace(tmp, target)
            link_tmp = self.snapshot_path.with_name(self.snapshot_path.name + f".{os.getpid()}.lnk")
            if link_tmp.is_symlink() or link_tmp.exists():
                link_tmp.unlink()
            os.symlink(version, link_tmp)
            os.replace(link_tmp, self.snapshot_path)
            self._prune_snapshots(keep=3)
            self._last_snapshot = now
            self._dirty = False
            return True

    def _prune_snapshots(self, keep: int) -> None:
        # Readers that still have an old version open keep reading it (the inode lives on).
        versions = sorted(self.path.parent.glob(f"{self.path.stem}.snapshot-*{self.path.suffix}"))
        for old in versions[:-keep]:
            old.unlink(missing_ok=True)

    def export_parquet(self, directory: Path | str, progress: Callable[[str, int, int], None] | None = None) -> list[Path]:
        """Writes the fact views (and the typed event tables) as Parquet files."""
        out = Path(directory)
        out.mkdir(parents=True, exist_ok=True)
        names = [*FACT_VIEWS, "contact_events", "request_events", "agent_events"]
        written = []
        with self._lock:
            for i, name in enumerate(names):
                target = out / f"{name}.parquet"
                tmp = out / f".{name}.parquet.tmp"
                self.conn.execute(f"COPY (SELECT * FROM {name}) TO '{tmp}' (FORMAT parquet, COMPRESSION zstd)")
                os.replace(tmp, target)
                written.append(target)
                if progress:
                    progress(name, i + 1, len(names))
        return written

    def counts(self) -> dict[str, int]:
        with self._lock:
            return {
                t: self.conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0]  # type: ignore[index]
                for t in ("events", "contact_events", "request_events", "agent_events", "knowledge_events")
            }

    def close(self) -> None:
        with self._lock:
            try:
                if self._dirty:
                    self.publish_snapshot(force=True)
            finally:
                self.conn.close()


class InProcessAnalytics:
    """The embedded mode's analytics: follows the event store log into DuckDB.

    ``catch_up()`` may run after each commit (it returns at once when nothing is new) or
    on a timer; a restart continues from the position recorded in DuckDB.
    """

    def __init__(
        self,
        store: Any,
        duckdb_path: Path | str,
        batch: int = 5000,
        snapshot_interval: float = 5.0,
    ) -> None:
        self.store = store
        self.analytics = AnalyticsStore(duckdb_path, snapshot_interval=snapshot_interval)
        self.batch = batch
        self._lock = threading.Lock()
        self.applied_position = self.analytics.position()

    def catch_up(self, until: int | None = None, progress: Callable[[int, int], None] | None = None) -> int:
        """Ingests everything committed so far; returns the position reached."""
        with self._lock:
            if until is not None and until <= self.applied_position:
                return self.applied_position
            position = self.analytics.position()
            target = self.store.max_position() if progress else 0
            while True:
                envelopes = self.store.envelopes(position, self.batch)
                if not envelopes:
                    break
                self.analytics.ingest_envelopes(envelopes)
                position = envelopes[-1].position
                if progress:
                    progress(position, max(target, position))
            self.applied_position = max(position, self.applied_position)
            self.analytics.publish_snapshot()
            return self.applied_position

    def lag(self) -> int:
        return max(0, self.store.max_position() - self.applied_position)

    def close(self) -> None:
        self.analytics.close()


def start_background(store: Any, duckdb_path: Path | str, interval: float = 2.0) -> Callable[[], None]:
    """Embedded mode: a thread that catches up whenever the event store has new events
    (or every ``interval`` seconds) so commits never wait for DuckDB. Returns ``stop``.

    Wire it as an API startup hook: ``STARTUP_HOOKS.append(lambda h: start_background(h.store, h.settings.duckdb_path))``.
    """
    ingest = InProcessAnalytics(store, duckdb_path)
    stop_event = threading.Event()

    def loop() -> None:
        while not stop_event.is_set():
            try:
                ingest.catch_up()
            except Exception:  # keep following the log; the next round retries the batch
                import logging

                logging.getLogger("hotline.analytics").exception("analytics catch-up failed")
                stop_event.wait(interval)
            if hasattr(store, "wait_for_events"):
                store.wait_for_events(interval)
            else:
                stop_event.wait(interval)

    thread = threading.Thread(target=loop, name="analytics-ingest", daemon=True)
    thread.start()

    def stop() -> None:
        stop_event.set()
        thread.join(timeout=30)
        ingest.close()

    stop.ingest = ingest  # type: ignore[attr-defined]
    return stop


def ingest_envelopes_once(path: Path | str, envelopes: Iterable[Envelope], batch: int = 5000) -> int:
    """Convenience for scripts and tests: ingest an iterable and publish a snapshot."""
    store = AnalyticsStore(path)
    try:
        added, chunk = 0, []
        for e in envelopes:
            chunk.append(e)
            if len(chunk) >= batch:
                added += store.ingest_envelopes(chunk)
                chunk = []
        added += store.ingest_envelopes(chunk)
        store.publish_snapshot(force=True)
        return added
    finally:
        store.close()


def utc_now() -> datetime:
    return datetime.now(UTC)
