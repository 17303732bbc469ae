"""Events into DuckDB: idempotent, batched, one writer; analysts read snapshots.

Two entry points share one SQL path:

* :meth:`AnalyticsStore.ingest_envelopes` takes :class:`domain.envelope.Envelope` batches
  (the embedded mode: :class:`InProcessAnalytics` follows the event store's log like the
  in-process projector does);
* :meth:`AnalyticsStore.ingest_cloudevents` takes raw CloudEvents JSON documents (the
  distributed mode: ``consumers/analytics_ingest.py`` reads them from Kafka); DuckDB
  parses them, Python never touches the fields.

Idempotency: in one DuckDB transaction a batch (1) drops events whose ``event_id``
(aggregate id/version) is already stored, (2) inserts the new ones into ``events`` and
the typed tables and brings the fact tables up to date for the contacts and requests
the batch touched (:func:`analytics.schema.refresh_facts`), (3) records the position
reached (the store's global position, or the Kafka offset per partition). A crash
between batches redelivers at most one batch, which step (1) ignores.

Step (1) is cheap in the common case: the writer knows the highest position stored (the
*watermark*); an event above it cannot be stored yet, so only events at or below it
(redeliveries, Kafka partitions interleaving) are looked up, among the stored events in
their position range (a few row groups), never the whole table.

Reading while ingest runs: DuckDB lets one process open a file read-write, and then no
other process may open it at all. So ingest owns ``analytics.duckdb`` and publishes a
*snapshot*: after a checkpoint it copies the file to ``analytics.snapshot.duckdb`` by an
atomic rename (at most every ``snapshot_interval`` seconds). Analysts, reports, the API
and the CLI open the snapshot read-only, as many at a time as they like; a reader that
has the old snapshot open keeps reading it undisturbed. ``export_parquet`` also writes
the fact views as Parquet files for tools that prefer them.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import itertools
import json
import os
import threading
import time as _time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import orjson
import pyarrow as pa

from analytics.schema import CONTACT_FACTS, FACT_VIEWS, REQUEST_FACTS, create_schema, refresh_facts
from domain.base import HotlineAggregate
from domain.contact_center.agents import Agent
from domain.contact_center.contacts import Contact
from domain.envelope import Envelope
from domain.events import EVENT_CLASSES, events_of, published_aggregates, stream_and_name
from domain.knowledge.aggregate import KnowledgeSearch
from domain.requests.aggregate import ServiceRequest

WHOLE_LOG = -1
# The writer checkpoints itself (with every core) once the WAL reaches this size; DuckDB's
# own automatic checkpoint (single-threaded here, inside a commit) is only a backstop.
CHECKPOINT_BYTES = 1 << 30
CHECKPOINT_THRESHOLD = "4GB"
WRITER_THREADS = 1
# Events per transaction when catching up with the log. Each batch costs about 25 short
# statements and a commit: measured 64,000 events/s with 5,000 a batch, 118,000 with 50,000.
DEFAULT_BATCH = 50_000
STORE_SOURCE = "store"

# ------------------------------------------------------------------ which events go where
# Every event lands in ``events``, the analysts' audit trail (with its stream and short
# name, both from its class). The events of these aggregates are also copied, their fields
# extracted, to the typed table the KPIs read (``name = 'arrived'`` in contact_events …):
TYPED_TABLES: dict[type[HotlineAggregate], str] = {
    Contact: "contact_events",
    ServiceRequest: "request_events",
    Agent: "agent_events",
    KnowledgeSearch: "knowledge_events",
}
# Every other published aggregate's events reach analysts too, without a line here: each
# stream gets a view ``<stream>_events`` over ``events`` whose columns are its events'
# fields, generated from the classes (:func:`stream_views`): ``workorder_events``,
# ``queue_events``, ``knowledge_article_events`` …


@dataclass(frozen=True)
class AwaitedEvent:
    """An event the analytics SQL reads before the domain has its class (its aggregate is
    being built): spelt out here, ingested like a mapped one until the class exists."""

    type: str  # hotline.<stream>.<name>.v1
    stream: str
    name: str
    table: str


# None at the moment (the knowledge base's searches were awaited here until
# KnowledgeSearch landed). tests/analytics/test_event_names.py fails once an awaited
# stream has its aggregate: map its classes above and remove the entry.
AWAITING_AGGREGATE: tuple[AwaitedEvent, ...] = ()

# The ingest mapping, by event class: the typed table of every event that has one.
EVENT_TABLES: dict[type, str] = {cls: table for aggregate, table in TYPED_TABLES.items() for cls in events_of(aggregate)}


def _event_types() -> dict[str, tuple[str, str, str | None]]:
    """Public type name -> (stream, name, typed table or None), from the classes."""
    out: dict[str, tuple[str, str, str | None]] = {}
    for type_name, cls in EVENT_CLASSES.items():
        stream, name = stream_and_name(type_name) or ("", type_name)  # (always known here)
        out[type_name] = (stream, name, EVENT_TABLES.get(cls))
    for awaited in AWAITING_AGGREGATE:
        out.setdefault(awaited.type, (awaited.stream, awaited.name, awaited.table))
    return out


# A type this version does not know (a newer producer's) is kept in ``events`` with its
# whole type as its name (and, from CloudEvents, no stream), and reaches no typed table.
@functools.cache
def event_types() -> dict[str, tuple[str, str, str | None]]:
    import infra.wiring  # noqa: F401  (every bounded context: every aggregate class is defined)

    return _event_types()


@functools.cache
def _event_types_table() -> pa.Table:
    types = event_types()
    return pa.table(
        {
            "type": list(types),
            "stream": [v[0] for v in types.values()],
            "name": [v[1] for v in types.values()],
            "typed": [v[2] for v in types.values()],
        },
        schema=pa.schema([("type", pa.string()), ("stream", pa.string()), ("name", pa.string()), ("typed", pa.string())]),
    )


# Columns every stream view has; an event field of the same name is ``data_<field>``.
_VIEW_COLUMNS = (
    "event_id",
    "position",
    "aggregate_id",
    "version",
    "time",
    "name",
    "actor_id",
    "actor_role",
    "correlation_id",
    "causation_id",
)
_BOOKKEEPING = {"originator_id", "originator_version", "timestamp", "originator_topic", "meta", "personal"}


def stream_views() -> dict[str, str]:
    """``CREATE VIEW`` per published stream without a typed table: its events' fields as
    text columns (JSON for nested values) over ``events``, generated from the classes."""
    import infra.wiring  # noqa: F401  (every bounded context: every aggregate class is defined)

    typed = {aggregate.STREAM for aggregate in TYPED_TABLES}
    views: dict[str, str] = {}
    for aggregate in published_aggregates():
        if aggregate.STREAM in typed:
            continue
        fields = sorted({f.name for cls in events_of(aggregate) for f in dataclasses.fields(cls)} - _BOOKKEEPING)
        columns = [*_VIEW_COLUMNS]
        columns += [f"json_extract_string(data, '$.{f}') AS {'data_' + f if f in _VIEW_COLUMNS else f}" for f in fields]
        name = f"{aggregate.STREAM}_events"
        views[name] = f"CREATE OR REPLACE VIEW {name} AS SELECT {', '.join(columns)} FROM events WHERE stream = '{aggregate.STREAM}'"
    return views


_FRESH_SCHEMA = pa.schema(
    [
        ("event_id", pa.string()),
        ("position", pa.int64()),
        ("type", pa.string()),
        ("stream", pa.string()),
        ("name", pa.string()),
        ("typed", pa.string()),
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
        # Envelope 2: a zero-padded string; envelope 1: an integer (read as its text).
        "sequence": "VARCHAR",
        "aggregateversion": "BIGINT",
        "hotlineactor": "VARCHAR",
        "hotlinerole": "VARCHAR",
        "correlationid": "VARCHAR",
        "causationid": "VARCHAR",
        # Envelope 1 (messages published before the change, still on the topics).
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
_AGENT_SHAPE = json.dumps({"state": "VARCHAR", "reason": "VARCHAR", "status": "VARCHAR", "agent_id": "VARCHAR"})
# A search's fields (search_performed) and its outcomes' (article_opened, used_to_answer,
# deflected: article_id, revision, rank, request_id); ``shown`` stays in ``events``.
_KNOWLEDGE_SHAPE = json.dumps(
    {
        "query": "VARCHAR",
        "language": "VARCHAR",
        "results": "INTEGER",
        "answered": "BOOLEAN",
        "channel": "VARCHAR",
        "trigger": "VARCHAR",
        "article_id": "VARCHAR",
        "revision": "INTEGER",
        "rank": "INTEGER",
        "contact_id": "VARCHAR",
        "request_id": "VARCHAR",
    }
)


# Identifiers a caller is recognised by: kept as a one-way pseudonym (for the repeat-caller
# KPIs), never as given; every other personal value is masked as on Kafka.
_PSEUDONYMOUS = ("phone", "email", "caller_id")


def mask_personal(envelope: Envelope) -> Envelope:
    """Personal data never lands in DuckDB, whatever feeds it (the event store gives it in
    clear, Kafka masked): names and addresses become ``***``, identifiers the pseudonym the
    typed tables' ``citizen_key`` keeps (``md5:<digest>``, the MD5 :func:`_pseudonym` takes)."""
    texts = _citizen_text(envelope.type)
    if texts and any(isinstance(envelope.data.get(f), str) and envelope.data[f] for f in texts):
        # The citizen's own words (a description, a message) are theirs too: never kept here,
        # so an erasure has nothing to reach in DuckDB; their length is no KPI either.
        envelope = replace(envelope, data={**envelope.data, **{f: "***" for f in texts if envelope.data.get(f)}})
    personal = envelope.data.get("personal")
    if not isinstance(personal, dict):
        return envelope
    masked = {
        k: v
        if v is None or (isinstance(v, str) and v.startswith("***"))
        else ("md5:" + hashlib.md5(str(v).encode()).hexdigest() if k in _PSEUDONYMOUS and v != "[erased]" else "***")
        for k, v in personal.items()
    }
    return replace(envelope, data={**envelope.data, "personal": masked})


@functools.lru_cache(maxsize=1024)
def _citizen_text(event_type: str) -> tuple[str, ...]:
    """The free-text fields the citizen wrote, of the event type (``CITIZEN_TEXT``)."""
    try:
        cls = _event_class(event_type)
    except KeyError:
        return ()
    return tuple(getattr(cls, "CITIZEN_TEXT", ()))


def _event_class(event_type: str) -> type:
    from domain.envelope import _events

    return _events().event_class(event_type)


def _pseudonym(expr: str) -> str:
    """A stable key for the caller without the personal data (masked values give none)."""
    return (
        f"CASE WHEN {expr} IS NULL OR {expr} = '' OR {expr} LIKE '%***%' THEN NULL "
        f"WHEN starts_with({expr}, 'md5:') THEN substr({expr}, 5) ELSE md5({expr}) END"
    )


# From ``fresh`` (new events of the batch, or of a chunk of it, in position order) to the
# tables. ``name`` is the event's short name and ``typed`` its typed table, both from its
# class (:func:`event_types`): hotline.contact.arrived.v1 → arrived, contact_events. A
# typed table's statement runs only when the chunk has events for it.
# Typed contact and request rows are staged in temp tables (``_STAGING``) and moved to
# their tables once per batch (``_FINISH``): the fact tables are refreshed from them.
_CHUNK_INSERTS: dict[str | None, str] = {
    None: """
INSERT INTO events
SELECT event_id, position, type, stream, name, aggregate_id, version, time,
    CASE WHEN contains(data, '"personal"') THEN json_merge_patch(data, '{"personal":null}') ELSE data END,
    actor_id, actor_role, correlation_id, causation_id, now()::TIMESTAMP
FROM fresh""",
    "contact_events": f"""
INSERT INTO new_contact_events
SELECT event_id, position, aggregate_id AS contact_id, version, time, name,
    d.channel, d.direction, d.language, d.priority, d.queue_id, d.to_queue_id, d.agent_id, d.to_agent_id, d.mode,
    d.wait_seconds, d.talk_seconds, d.hold_seconds, d.wrap_seconds, d.disposition, d.request_id,
    coalesce(d.citizen_id, {_pseudonym("d.personal.phone")}, {_pseudonym("d.personal.caller_id")},
             {_pseudonym("d.personal.email")}) AS citizen_key
FROM (SELECT *, json_transform(data, '{_CONTACT_SHAPE}') AS d FROM fresh WHERE typed = 'contact_events')""",
    "request_events": f"""
INSERT INTO new_request_events
SELECT event_id, position, aggregate_id AS request_id, version, time, name,
    d.reference, d.kind, d.subtype, d.channel, d.urgency, d.citizen_id, d.language, d.contact_id,
    d.problem_code, d.category_id, d.provider_id, d.department_id,
    CAST(CAST(d.due_at AS TIMESTAMPTZ) AS TIMESTAMP) AS due_at, d.on_time, d.score, d.status
FROM (SELECT *, json_transform(data, '{_REQUEST_SHAPE}') AS d FROM fresh WHERE typed = 'request_events')""",
    "agent_events": f"""
INSERT INTO agent_events
SELECT event_id, position, aggregate_id, version, time, name, coalesce(d.state, d.status), d.reason,
    coalesce(d.agent_id, aggregate_id)
FROM (SELECT *, json_transform(data, '{_AGENT_SHAPE}') AS d FROM fresh WHERE typed = 'agent_events')""",
    "knowledge_events": f"""
INSERT INTO knowledge_events (event_id, position, aggregate_id, time, name, query, language, results, answered,
    version, channel, trigger, article_id, revision, rank, contact_id, request_id)
SELECT event_id, position, aggregate_id, time, name, d.query, d.language, d.results, d.answered,
    version, d.channel, d.trigger, d.article_id, d.revision, d.rank, d.contact_id, d.request_id
FROM (SELECT *, json_transform(data, '{_KNOWLEDGE_SHAPE}') AS d FROM fresh WHERE typed = 'knowledge_events')""",
}
_STAGING = (
    "CREATE OR REPLACE TEMP TABLE new_contact_events AS SELECT * FROM contact_events LIMIT 0",
    "CREATE OR REPLACE TEMP TABLE new_request_events AS SELECT * FROM request_events LIMIT 0",
)
_FINISH = {
    "contact_events": ("INSERT INTO contact_events SELECT * FROM new_contact_events", CONTACT_FACTS, "new_contact_events"),
    "request_events": ("INSERT INTO request_events SELECT * FROM new_request_events", REQUEST_FACTS, "new_request_events"),
}

# CloudEvents batches are parsed in DuckDB (``incoming``); the same watermark rule as for
# envelopes: only events at or below it are looked up, in their position range. (An
# event without a position cannot be bounded: it is looked up in the whole table.)
_DEDUPE = """
CREATE OR REPLACE TEMP TABLE fresh AS
SELECT event_id, position, i.type, coalesce(t.stream, '') AS stream, coalesce(t.name, i.type) AS name, t.typed,
    aggregate_id, version, time, data, actor_id, actor_role, correlation_id, causation_id
FROM (SELECT DISTINCT ON (event_id) * FROM incoming ORDER BY event_id) i LEFT JOIN event_types t ON t.type = i.type
WHERE i.position > $wm OR NOT EXISTS (
    SELECT 1 FROM events e WHERE e.position BETWEEN $lo AND $wm AND e.event_id = i.event_id
)
ORDER BY position;
"""
_DEDUPE_UNBOUNDED = """
CREATE OR REPLACE TEMP TABLE fresh AS
SELECT event_id, position, i.type, coalesce(t.stream, '') AS stream, coalesce(t.name, i.type) AS name, t.typed,
    aggregate_id, version, time, data, actor_id, actor_role, correlation_id, causation_id
FROM (SELECT DISTINCT ON (event_id) * FROM incoming ORDER BY event_id) i LEFT JOIN event_types t ON t.type = i.type
WHERE NOT EXISTS (SELECT 1 FROM events e WHERE e.event_id = i.event_id)
ORDER BY position;
"""


def _json_column(rows: Sequence[Any]) -> pa.Array:
    """The events' data as JSON text. orjson is ten times faster than ``json.dumps`` (and
    writes NaN as null, valid JSON); its UTF-8 bytes become Arrow strings without a copy."""
    dumps, option = orjson.dumps, orjson.OPT_NON_STR_KEYS
    try:
        out = [dumps(data, default=str, option=option) for data in rows]
    except TypeError:  # e.g. an integer beyond 64 bits: json.dumps for that one
        out = [_dumps_any(data) for data in rows]
    return pa.array(out, pa.binary()).view(pa.string())


def _dumps_any(data: Any) -> bytes:
    try:
        return orjson.dumps(data, default=str, option=orjson.OPT_NON_STR_KEYS)
    except TypeError:
        return json.dumps(data, ensure_ascii=False, default=str).encode()


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)


def _micros(envelopes: Sequence[Envelope]) -> list[int]:
    """Event times as microseconds since the epoch (exact; a third faster than letting
    Arrow convert aware datetimes). Naive times are UTC."""
    try:
        return [(e.time - _EPOCH) // _MICROSECOND for e in envelopes]
    except TypeError:  # some naive
        return [((e.time if e.time.tzinfo else e.time.replace(tzinfo=UTC)) - _EPOCH) // _MICROSECOND for e in envelopes]


def _envelope_table(new: Sequence[Envelope], ids: Sequence[str], positions: Sequence[int]) -> pa.Table:
    types = event_types()
    known = [types.get(e.type) for e in new]
    return pa.table(
        [
            pa.array(ids, pa.string()),
            pa.array(positions, pa.int64()),
            [e.type for e in new],
            [e.stream for e in new],
            [k[1] if k is not None else e.type for k, e in zip(known, new, strict=True)],
            pa.array([k[2] if k is not None else None for k in known], pa.string()),
            [e.aggregate_id for e in new],
            [e.version for e in new],
            pa.array(_micros(new), pa.timestamp("us", tz="UTC")),
            _json_column([e.data for e in new]),
            *_meta_columns(new),
        ],
        schema=_FRESH_SCHEMA,
    )


def _meta_columns(envelopes: Sequence[Envelope]) -> list[pa.Array]:
    metas = [e.meta for e in envelopes]

    def col(key: str) -> pa.Array:
        values = [m.get(key) for m in metas]
        try:
            return pa.array(values, pa.string())
        except (pa.ArrowTypeError, pa.ArrowInvalid):  # not all strings (a UUID, a number)
            return pa.array([None if v is None else str(v) for v in values], pa.string())

    return [col("actor_id"), col("actor_role"), col("correlation_id"), col("causation_id")]


def snapshot_path_for(path: Path) -> Path:
    return path.with_name(path.stem + ".snapshot" + path.suffix)


def connect_writer(path: Path) -> duckdb.DuckDBPyConnection:
    path.parent.mkdir(parents=True, exist_ok=True)
    conn = duckdb.connect(str(path))
    conn.execute("SET TimeZone = 'UTC'")
    # Checkpoint rarely: small checkpoints after every batch rewrite and recompress the
    # same row groups again and again (measured: 5x slower ingest; still 30% slower with
    # the fact tables). Commits go to the WAL; AnalyticsStore checkpoints every
    # CHECKPOINT_BYTES of it, and snapshots and close() checkpoint.
    conn.execute(f"SET checkpoint_threshold = '{CHECKPOINT_THRESHOLD}'")
    create_schema(conn)  # (a migration aggregates whole tables: with every thread)
    for view in stream_views().values():
        conn.execute(view)
    conn.register("event_types_arrow", _event_types_table())
    conn.execute("CREATE OR REPLACE TEMP TABLE event_types AS SELECT * FROM event_types_arrow")
    conn.unregister("event_types_arrow")
    # A batch is less than a row group (122,880 rows): its statements barely run in
    # parallel and a second thread mostly adds coordination. Measured on 2 cores: 12-15%
    # less CPU per event with one thread, and readers (other processes) keep the cores.
    conn.execute(f"SET threads = {WRITER_THREADS}")
    return conn


class AnalyticsStore:
    """The one writer of the analytics database."""

    def __init__(self, path: Path | str, snapshot_interval: float = 5.0) -> None:
        self.path = Path(path)
        self.snapshot_path = snapshot_path_for(self.path)
        self.snapshot_interval = snapshot_interval
        self.conn = connect_writer(self.path)
        # Snapshots are copied through this descriptor, open as long as the connection is.
        # DuckDB's lock on the file is a POSIX record lock, which a process loses when it
        # closes *any* descriptor of the file: copying it by path (open, read, close)
        # dropped it, a CLI report beside the server then wrote the file too, and a
        # snapshot came out corrupt.
        self._source = os.open(self.path, os.O_RDONLY)
        self._lock = threading.RLock()
        self._last_snapshot = 0.0
        self._dirty = False
        self._max_position: int | None = None  # the watermark, read on first use

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
        envelopes = [mask_personal(e) for e in envelopes]
        last = max(e.position for e in envelopes)

        def store(c: duckdb.DuckDBPyConnection) -> tuple[int, int | None, set[str]]:
            new, ids, positions = self._new_envelopes(c, envelopes)
            if not new:
                return 0, None, set()
            table = _envelope_table(new, ids, positions)
            tables = set(table.column("typed").unique().to_pylist())
            for statement in _STAGING:
                c.execute(statement)
            c.register("fresh", table)
            try:
                self._insert_fresh(c, tables)
            finally:
                c.unregister("fresh")
            return len(new), positions[-1], tables

        return self._ingest(store, {(source, WHOLE_LOG): last})

    def _new_envelopes(self, c: duckdb.DuckDBPyConnection, envelopes: Sequence[Envelope]) -> tuple[list[Envelope], list[str], list[int]]:
        """The batch's events not stored yet (the first of each id) in position order,
        with their ids and positions."""
        new, ids = list(envelopes), [e.event_id for e in envelopes]
        if len(set(ids)) < len(ids):
            first: dict[str, Envelope] = {}
            for i, e in zip(ids, envelopes, strict=True):
                first.setdefault(i, e)
            new, ids = list(first.values()), list(first)
        positions = [e.position for e in new]
        mark = self._watermark(c)
        if min(positions) <= mark:  # redelivered, or interleaved sources
            maybe = [e for e, p in zip(new, positions, strict=True) if p <= mark]
            stored = self._stored_ids(c, maybe, mark)
            if stored:
                keep = [i not in stored for i in ids]
                new = [e for e, k in zip(new, keep, strict=True) if k]
                ids = [i for i, k in zip(ids, keep, strict=True) if k]
                positions = [p for p, k in zip(positions, keep, strict=True) if k]
        if any(a > b for a, b in itertools.pairwise(positions)):
            order = sorted(range(len(new)), key=positions.__getitem__)
            new, ids, positions = [new[i] for i in order], [ids[i] for i in order], [positions[i] for i in order]
        return new, ids, positions

    @staticmethod
    def _insert_fresh(c: duckdb.DuckDBPyConnection, tables: set[str]) -> None:
        for table, statement in _CHUNK_INSERTS.items():
            if table is None or table in tables:
                c.execute(statement)

    def ingest_cloudevents(self, documents: Sequence[str | bytes], offsets: dict[tuple[str, int], int] | None = None) -> int:
        """Stores CloudEvents JSON documents (as produced by ``Envelope.to_cloudevent``).

        ``offsets`` ((topic, partition) → last offset of the batch) are recorded in the
        same transaction, so a consumer restarting from them never applies a message twice.
        """
        if not documents:
            if offsets:
                self._ingest(None, offsets)
            return 0
        values = [d.decode() if isinstance(d, bytes | bytearray) else d for d in documents]
        batch = pa.table([values], names=["doc"])
        load = f"""
        CREATE OR REPLACE TEMP TABLE incoming AS
        SELECT coalesce(c.id, c.subject || '/' || c.aggregateversion) AS event_id,
               CAST(c.sequence AS BIGINT) AS position, c.type,
               c.subject AS aggregate_id, c.aggregateversion AS version,
               CAST(CAST(c.time AS TIMESTAMPTZ) AS TIMESTAMP) AS time,
               CAST(c.data AS VARCHAR) AS data,
               coalesce(c.hotlineactor, c.hotlinemeta.actor_id) AS actor_id,
               coalesce(c.hotlinerole, c.hotlinemeta.actor_role) AS actor_role,
               coalesce(c.correlationid, c.hotlinemeta.correlation_id) AS correlation_id,
               coalesce(c.causationid, c.hotlinemeta.causation_id) AS causation_id
        FROM (SELECT from_json(doc, '{_CE_SHAPE}') AS c FROM batch)
        """

        def store(c: duckdb.DuckDBPyConnection) -> tuple[int, int | None, set[str]]:
            c.register("batch", batch)
            try:
                c.execute(load)
            finally:
                c.unregister("batch")
            lo, unpositioned = c.execute("SELECT min(position), count(*) - count(position) FROM incoming").fetchall()[0]
            if unpositioned:
                c.execute(_DEDUPE_UNBOUNDED)
            else:
                c.execute(_DEDUPE, {"lo": lo if lo is not None else 0, "wm": self._watermark(c)})
            try:
                added, top = c.execute("SELECT count(*), max(position) FROM fresh").fetchall()[0]
                tables = {r[0] for r in c.execute("SELECT DISTINCT typed FROM fresh WHERE typed IS NOT NULL").fetchall()}
                if added:
                    for statement in _STAGING:
                        c.execute(statement)
                    self._insert_fresh(c, tables)
            finally:
                c.execute("DROP TABLE IF EXISTS fresh")
            return int(added), top, tables

        return self._ingest(store, offsets or {})

    def _watermark(self, c: duckdb.DuckDBPyConnection) -> int:
        """The highest position stored (-1 when none): events above it are new."""
        if self._max_position is None:
            self._max_position = int(c.execute("SELECT coalesce(max(position), -1) FROM events").fetchall()[0][0])
        return self._max_position

    def _stored_ids(self, c: duckdb.DuckDBPyConnection, candidates: list[Envelope], mark: int) -> set[str]:
        """Which of ``candidates`` are stored: looked up in their position range only."""
        ids = pa.table([[e.event_id for e in candidates]], names=["event_id"])
        lo = min(e.position for e in candidates)
        c.register("candidate_ids", ids)
        try:
            sql = f"""SELECT event_id FROM events WHERE position BETWEEN {int(lo)} AND {int(mark)}
                      AND event_id IN (SELECT event_id FROM candidate_ids)"""
            rows = c.execute(sql).fetchall()
        finally:
            c.unregister("candidate_ids")
        return {r[0] for r in rows}

    def _ingest(
        self,
        store: Callable[[duckdb.DuckDBPyConnection], tuple[int, int | None, set[str]]] | None,
        positions: dict[tuple[str, int], int],
    ) -> int:
        """One transaction: ``store`` inserts the batch's new events (and stages their
        typed contact and request rows), returning how many, the highest position and
        the typed tables they go to; then the typed rows, the facts and the positions."""
        with self._lock:
            c = self.conn
            c.execute("BEGIN TRANSACTION")
            try:
                added, top, tables = store(c) if store is not None else (0, None, set())
                if added:
                    for table, (move, facts, staged) in _FINISH.items():
                        if table in tables:
                            c.execute(move)
                            refresh_facts(c, facts, staged)
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
                self._max_position = None  # read it again from what is stored
                raise
            if added:
                self._dirty = True
                if top is not None and self._max_position is not None:
                    self._max_position = max(self._max_position, int(top))
                self._checkpoint_if_due()
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
            self._checkpoint()
            version = f"{self.path.stem}.snapshot-{_time.time_ns()}{self.path.suffix}"
            target = self.path.with_name(version)
            tmp = target.with_name(target.name + ".tmp")
            self._copy_to(tmp)
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

    def _copy_to(self, target: Path) -> None:
        """The checkpointed file's bytes to ``target``, read through the descriptor kept
        open (never by opening and closing the file: see ``__init__``)."""
        size = os.fstat(self._source).st_size
        out = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        try:
            offset = 0
            while offset < size:
                sent = os.sendfile(out, self._source, offset, size - offset)
                if sent == 0:
                    break  # the file shrank: what was there is copied
                offset += sent
        finally:
            os.close(out)

    def _checkpoint(self) -> None:
        self.conn.execute("RESET threads")  # a checkpoint compresses whole row groups: every core
        try:
            self.conn.execute("CHECKPOINT")
        finally:
            self.conn.execute(f"SET threads = {WRITER_THREADS}")

    def _checkpoint_if_due(self) -> None:
        try:
            wal = os.stat(f"{self.path}.wal").st_size
        except FileNotFoundError:
            return
        if wal >= CHECKPOINT_BYTES:
            self._checkpoint()

    def _prune_snapshots(self, keep: int) -> None:
        # Readers that still have an old version open keep reading it (the inode lives on).
        versions = sorted(self.path.parent.glob(f"{self.path.stem}.snapshot-*{self.path.suffix}"))
        for old in versions[:-keep]:
            old.unlink(missing_ok=True)

    def export_parquet(self, directory: Path | str, progress: Callable[[str, int, int], None] | None = None) -> list[Path]:
        """Writes the fact views (and the typed event tables) as Parquet files."""
        out = Path(directory)
        out.mkdir(parents=True, exist_ok=True)
        names = [*FACT_VIEWS, "contact_events", "request_events", "agent_events", "knowledge_events"]
        written = []
        with self._lock:
            self.conn.execute("RESET threads")  # whole tables: every core
            try:
                for i, name in enumerate(names):
                    target = out / f"{name}.parquet"
                    tmp = out / f".{name}.parquet.tmp"
                    self.conn.execute(f"COPY (SELECT * FROM {name}) TO '{tmp}' (FORMAT parquet, COMPRESSION zstd)")
                    os.replace(tmp, target)
                    written.append(target)
                    if progress:
                        progress(name, i + 1, len(names))
            finally:
                self.conn.execute(f"SET threads = {WRITER_THREADS}")
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
                os.close(self._source)  # after the connection: its lock is gone with it


class InProcessAnalytics:
    """The embedded mode's analytics: follows the event store log into DuckDB.

    ``catch_up()`` may run after each commit (it returns at once when nothing is new) or
    on a timer; a restart continues from the position recorded in DuckDB.
    """

    def __init__(
        self,
        store: Any,
        duckdb_path: Path | str,
        batch: int = DEFAULT_BATCH,
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
            # Up to what is committed now, not what commits while this runs: under a steady
            # load that chased each commit in a transaction of its own (DuckDB's cost is
            # per transaction: 35 for 500 commands, a core at 100 commands/s).
            target = self.store.max_position()
            while position < target:
                envelopes = self.store.envelopes(position, self.batch, stop=target)
                if not envelopes:
                    break
                self.analytics.ingest_envelopes(envelopes)
                position = envelopes[-1].position
                if progress:
                    progress(position, target)
            self.applied_position = max(position, self.applied_position)
            self.analytics.publish_snapshot()
            return self.applied_position

    def lag(self) -> int:
        return max(0, self.store.max_position() - self.applied_position)

    def close(self) -> None:
        self.analytics.close()


def start_background(store: Any, duckdb_path: Path | str, interval: float = 2.0, gather: float = 0.0) -> Callable[[], None]:
    """Embedded mode: a thread that catches up whenever the event store has new events
    (or every ``interval`` seconds) so commits never wait for DuckDB, at most once per
    ``gather`` seconds (the commits of that time make one transaction). Returns ``stop``.

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
            if gather:
                stop_event.wait(gather)
            if ingest.lag():
                continue  # committed meanwhile: their wake-up has passed already
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


def ingest_envelopes_once(path: Path | str, envelopes: Iterable[Envelope], batch: int = DEFAULT_BATCH) -> int:
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
