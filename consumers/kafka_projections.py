"""``hotline consume projections``: the read models fed from Kafka (distributed mode).

One consumer group; each process owns some of the partitions. For each polled batch,
the events of every partition are applied to every projection in ONE database
transaction together with the position each projection reached in that partition
(``projection_positions(name, feed, position)``). Kafka offsets are committed after that
transaction. A process killed in between gets the events again and skips them: their
positions are at or below what its transaction recorded.

Personal data arrives masked (the topics are also read by integrators); events that
carry a ``personal`` field are completed from the event store, which stays the only
place personal data lives (so that it can be crypto-shredded).
"""

from __future__ import annotations

import contextlib
import heapq
import json
import logging
import os
import re
import signal
import socket
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from kafka import KafkaConsumer, TopicPartition
from kafka.consumer.subscription_state import ConsumerRebalanceListener
from kafka.errors import KafkaError
from kafka.structs import OffsetAndMetadata
from sqlalchemy.engine import Connection

from consumers.kafka_contract import (
    applied_frontier,
    create_tables_safely,
    feed_id,
    is_applied,
    prune_routes,
    public_streams,
    record_lag,
    relay_md,
    topic_for,
)
from domain.envelope import Envelope
from infra.eventstore import EventStore
from infra.live_feed import notify
from infra.metrics import (
    CONSUMER_APPLY_SECONDS,
    CONSUMER_BATCH,
    CONSUMER_COMMITS,
    CONSUMER_EVENTS,
    CONSUMER_LAG,
    ProjectionPositions,
    start_process_metrics,
)
from infra.read_store import (
    _DELETED,
    WHOLE_LOG,
    ReadStore,
    SqlRows,
    _upsert,
    lock_projections,
    make_engine,
    positions,
    projection_lock_key,
)
from infra.runtime import tune_gc
from infra.settings import Settings
from projections.base import Projection

log = logging.getLogger("hotline.consumer")

try:  # orjson parses the CloudEvents about twice as fast
    from orjson import OPT_NON_STR_KEYS as _NON_STR_KEYS
    from orjson import dumps as _orjson_dumps
    from orjson import loads as _loads
except ImportError:  # pragma: no cover
    _loads = json.loads  # type: ignore[assignment]
    _orjson_dumps = None  # type: ignore[assignment]
    _NON_STR_KEYS = 0


def ensure_position_rows(conn: Connection, names: Sequence[str], feeds: Sequence[int]) -> None:
    """Position rows exist before anyone applies, so ``FOR UPDATE`` always has a row to lock."""
    if not feeds:
        return
    insert: Any
    if conn.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert
    from consumers.kafka_contract import now

    stmt = insert(positions).on_conflict_do_nothing(index_elements=["name", "partition"])
    conn.execute(stmt, [{"name": n, "partition": f, "position": 0, "updated_at": now()} for n in names for f in feeds])


class _PgTable:
    """Plain SQL of one read-model table for psycopg, with SQLAlchemy's value conversions.

    The consumer's statements go straight to psycopg so that a whole batch needs a few
    round trips (pipeline mode) and no per-statement SQLAlchemy compilation. Values are
    converted as SQLAlchemy would: ``UtcDateTime`` both ways, JSON wrapped (``None`` is the
    JSON ``null`` unless the column says ``none_as_null``, as in SQLAlchemy)."""

    def __init__(self, table: sa.Table, dialect: Any) -> None:
        from psycopg.types.json import Json

        self.table = table
        self.columns = [c.name for c in table.columns]
        self.pk = [c.name for c in table.primary_key.columns]
        q = [f'"{c}"' for c in self.columns]
        pk = [f'"{c}"' for c in self.pk]
        rest = [c for c in self.columns if c not in self.pk]
        conflict = "DO UPDATE SET " + ", ".join(f'"{c}" = EXCLUDED."{c}"' for c in rest) if rest else "DO NOTHING"
        # Set-based forms: one statement per table and batch, whatever the number of rows
        # (a statement per row cost PostgreSQL more than the rows' work itself). The rows
        # arrive as one array per column; the batch holds each key once (a dict), so an
        # upsert never touches a row twice. Arrays go in binary (%b): psycopg's text-format
        # array dumper escapes every element with a regular expression, in Python.
        # An array's element type has no collation (``TEXT COLLATE "C"[]`` is not SQL): the
        # column's own collation applies when the values are stored and compared.
        all_types = [c.type.compile(dialect=dialect).split(" COLLATE ")[0] for c in table.columns]
        pk_types = [c.type.compile(dialect=dialect).split(" COLLATE ")[0] for c in table.primary_key.columns]
        self.upsert_many_sql = (
            f'INSERT INTO "{table.name}" ({", ".join(q)}) SELECT * FROM unnest({", ".join(f"%b::{t}[]" for t in all_types)}) '
            f"ON CONFLICT ({', '.join(pk)}) {conflict}"
        )
        keys_in = f"({', '.join(pk)}) IN (SELECT * FROM unnest({', '.join(f'%b::{t}[]' for t in pk_types)}))"
        self.delete_many_sql = f'DELETE FROM "{table.name}" WHERE {keys_in}'
        if len(pk) == 1:
            self.select_sql = f'SELECT {", ".join(q)} FROM "{table.name}" WHERE {pk[0]} = ANY(%b)'
        else:
            self.select_sql = f'SELECT {", ".join(q)} FROM "{table.name}" WHERE {keys_in}'
        self.binds: list[tuple[int, Callable[[Any], Any]]] = []
        self.results: list[tuple[int, Callable[[Any], Any]]] = []
        for i, c in enumerate(table.columns):
            if isinstance(c.type, sa.JSON):
                none_as_null = c.type.none_as_null
                self.binds.append((i, _json_bind(none_as_null, Json)))
            elif isinstance(c.type, sa.types.TypeDecorator):
                bind = c.type.bind_processor(dialect)
                result = c.type.result_processor(dialect, None)
                if bind is not None:
                    self.binds.append((i, bind))
                if result is not None:
                    self.results.append((i, result))
        self.key_index = [self.columns.index(c) for c in self.pk]

    def bind_row(self, row: dict[str, Any]) -> list[Any]:
        values = [row.get(c) for c in self.columns]
        for i, f in self.binds:
            values[i] = f(values[i])
        return values

    def bind_key(self, key: tuple[Any, ...]) -> list[Any]:
        # Keys are compared as stored: convert them like the columns they belong to.
        values = list(key)
        binds = dict(self.binds)
        for j, i in enumerate(self.key_index):
            f = binds.get(i)
            if f is not None:
                values[j] = f(values[j])
        return values

    def select_params(self, keys: list[tuple[Any, ...]]) -> tuple[Any, ...]:
        if len(self.pk) == 1:
            return ([k[0] for k in keys],)
        return tuple(list(col) for col in zip(*[self.bind_key(k) for k in keys], strict=True))

    def load_row(self, values: tuple[Any, ...]) -> tuple[tuple[Any, ...], dict[str, Any]]:
        out = list(values)
        for i, f in self.results:
            out[i] = f(out[i])
        return tuple([out[i] for i in self.key_index]), dict(zip(self.columns, out, strict=True))


def _json_bind(none_as_null: bool, wrap: Callable[..., Any]) -> Callable[[Any], Any]:
    def bind(value: Any) -> Any:
        return None if value is None and none_as_null else wrap(value, dumps=_dumps_json)

    return bind


def _dumps_json(value: Any) -> bytes | str:
    """JSON columns as orjson writes them (several times faster than the standard library);
    what orjson refuses (an integer beyond 64 bits …) the standard way."""
    if _orjson_dumps is not None:
        try:
            return _orjson_dumps(value, option=_NON_STR_KEYS)
        except TypeError:
            pass
    return json.dumps(value)


_PG_TABLES: dict[sa.Table, _PgTable] = {}
_STRING_KEYED: dict[str, list[str]] = {}  # projection name -> its tables keyed by one string


def _string_keyed(projection: Projection) -> list[str]:
    """The projection's tables whose primary key is one string column (read by aggregate id)."""
    found = _STRING_KEYED.get(projection.name)
    if found is None:
        found = _STRING_KEYED[projection.name] = [
            name
            for name, table in projection.tables.items()
            if len(pk := list(table.primary_key.columns)) == 1 and isinstance(pk[0].type, sa.String)
        ]
    return found


def _pg_table(table: sa.Table, dialect: Any) -> _PgTable:
    found = _PG_TABLES.get(table)
    if found is None:
        found = _PG_TABLES[table] = _PgTable(table, dialect)
    return found


class PrefetchRows(SqlRows):
    """SqlRows that loads the rows a batch will read in a few set-based queries instead of
    one query per ``get``: per-statement round trips were the consumer's main cost (each
    one several ms on a busy machine).

    1. Rows of tables keyed by one string column are loaded for the aggregate ids of the
       envelopes their projection handles.
    2. A *dry run* of the handlers over the batch (on a scratch overlay: nothing is
       written) records the keys they read that are not loaded yet (a request's timers,
       the citizen a request belongs to …); those are loaded, one query per table.
       A second dry run catches keys that depend on rows loaded by the first.
    The real pass then runs on the cache; a key the dry runs missed is read one by one,
    as before. Handlers are pure, so a dry run is only a hint and can never change rows.

    On PostgreSQL the queries of one step go out together in psycopg's pipeline mode (one
    round trip), and ``flush`` sends every write of the batch in one pipeline too.
    """

    def __init__(self, conn: Connection, tables: dict[str, sa.Table]) -> None:
        super().__init__(conn, tables)
        self.pg = conn.dialect.name == "postgresql"
        self.pk_names = {n: [c.name for c in t.primary_key.columns] for n, t in tables.items()}

    def raw(self) -> Any:
        raw = self.conn.connection.driver_connection
        assert raw is not None
        return raw

    def aggregate_keys(self, projections: Sequence[Projection], envelopes: Sequence[Envelope]) -> dict[str, list[tuple[Any, ...]]]:
        """What to load first: each projection's tables keyed by one string, for the
        aggregate ids of the envelopes it handles. Not every table for every id of the
        batch: with sixteen read models, most of a batch's events concern a few of them,
        and each needless SELECT was PostgreSQL's work on the path of every event's lag."""
        wanted: dict[str, list[tuple[Any, ...]]] = {}
        for p in projections:
            handled = p.handlers
            ids = sorted({env.aggregate_id for env in envelopes if env.type in handled})
            if not ids:
                continue
            keys = [(i,) for i in ids]
            for name in _string_keyed(p):
                wanted[name] = keys
        return wanted

    def load(self, wanted: dict[str, list[tuple[Any, ...]]], extra: Callable[[Any], None] | None = None) -> None:
        """Loads the rows of the given primary keys into the cache (absent ones as None);
        on PostgreSQL in one pipeline, together with ``extra(raw connection)``'s queries."""
        todo = {n: [k for k in dict.fromkeys(keys) if (n, k) not in self.cache] for n, keys in wanted.items()}
        todo = {n: keys for n, keys in todo.items() if keys}
        if not self.pg:
            if extra is not None:
                extra(None)
            for name, keys in todo.items():
                self._load_sa(name, keys)
            return
        raw = self.raw()
        sent = []
        with raw.pipeline():
            if extra is not None:
                extra(raw)
            for name, keys in todo.items():
                spec = _pg_table(self.tables[name], self.conn.dialect)
                for i in range(0, len(keys), 5000):
                    chunk = keys[i : i + 5000]
                    cur = raw.cursor()
                    cur.execute(spec.select_sql, spec.select_params(chunk))
                    sent.append((name, spec, cur, chunk))
        for name, spec, cur, chunk in sent:
            found = dict(spec.load_row(r) for r in cur.fetchall())
            for key in chunk:
                self.cache.setdefault((name, key), found.get(key))

    def _load_sa(self, name: str, keys: list[tuple[Any, ...]]) -> None:
        table = self.tables[name]
        pk = list(table.primary_key.columns)
        found: dict[tuple[Any, ...], dict[str, Any]] = {}
        names = [c.name for c in pk]
        for i in range(0, len(keys), 1000):
            chunk = keys[i : i + 1000]
            where = pk[0].in_([k[0] for k in chunk]) if len(pk) == 1 else sa.tuple_(*pk).in_(chunk)
            for row in self.conn.execute(sa.select(table).where(where)).mappings():
                found[tuple([row[n] for n in names])] = dict(row)
        for key in keys:
            self.cache.setdefault((name, key), found.get(key))

    def rehearse(self, plans: Sequence[tuple[Projection, Sequence[Envelope]]], topics: set[str] | None, rounds: int = 2) -> set[str]:
        """Runs each projection's handlers over its envelopes on a scratch overlay of the
        cached rows, to learn (and load) the keys they read that are not loaded yet.

        A run that read only cached rows and raised nothing already is the real pass (the
        handlers are pure: the same rows give the same writes), so its writes and live
        topics are kept and its projection is done: the handlers run once, not twice. The
        others have their missing keys loaded, and are tried again (keys may depend on rows
        loaded by the first round); what is still not done after ``rounds`` runs for real
        afterwards, reading a key the rehearsals missed one by one. Returns the names done."""
        done: set[str] = set()
        todo = [(p, envs) for p, envs in plans if envs]
        done.update(p.name for p, envs in plans if not envs)
        for _ in range(rounds):
            missing: dict[tuple[str, Any], None] = {}
            again = []
            for p, envs in todo:
                # One overlay per projection: projections never read each other's tables.
                probe = _Probe(self.cache, self.pk_names)
                touched: list[str] = []
                failed = False
                handlers = p.handlers
                for env in envs:
                    try:
                        handlers[env.type](env, probe)
                        if topics is not None and not probe.missing:
                            touched.extend(p.topics(env, probe))
                    except Exception:
                        failed = True  # the real pass raises it, or finds the row it lacked
                if probe.missing or failed:
                    missing.update(probe.missing)
                    again.append((p, envs))
                    continue
                self.adopt(probe)
                if topics is not None:
                    topics.update(touched)
                done.add(p.name)
            if not missing:
                break
            by_table: dict[str, list[tuple[Any, ...]]] = {}
            for name, key in missing:
                by_table.setdefault(name, []).append(key)
            self.load(by_table)
            todo = again
        return done

    def adopt(self, probe: _Probe) -> None:
        """A complete rehearsal's writes as the batch's own."""
        for ck, row in probe.overlay.items():
            self.cache[ck] = self.dirty[ck] = _DELETED if row is None else row

    def flush_with(self, position_rows: list[dict[str, Any]]) -> None:
        """Writes the dirty rows and the positions; on PostgreSQL in one pipeline."""
        if not self.pg:
            self.flush()
            if position_rows:
                _upsert(self.conn, positions, position_rows)
            return
        deletes: dict[str, list[list[Any]]] = {}
        upserts: dict[str, list[list[Any]]] = {}
        dialect = self.conn.dialect
        for (table, key), row in self.dirty.items():
            spec = _pg_table(self.tables[table], dialect)
            if row is _DELETED:
                deletes.setdefault(table, []).append(spec.bind_key(key))
            else:
                upserts.setdefault(table, []).append(spec.bind_row(row))
        if position_rows:
            spec = _pg_table(positions, dialect)
            upserts.setdefault(positions.name, []).extend(spec.bind_row(r) for r in position_rows)
        raw = self.raw()
        with raw.pipeline(), raw.cursor() as cur:
            for table, values in deletes.items():
                cur.execute(_pg_table(self.tables[table], dialect).delete_many_sql, _columns(values))
            for table, values in upserts.items():
                t = positions if table == positions.name else self.tables[table]
                cur.execute(_pg_table(t, dialect).upsert_many_sql, _columns(values))
        self.dirty.clear()


def _columns(rows: list[list[Any]]) -> list[list[Any]]:
    """Rows to one list per column (the arrays of an ``unnest``)."""
    return [list(col) for col in zip(*rows, strict=True)]


class _Probe:
    """The Rows of a dry run: reads the cache, records misses, keeps writes to itself."""

    def __init__(self, cache: dict[tuple[str, Any], Any], keys: dict[str, list[str]]) -> None:
        self.cache = cache
        self.keys = keys  # primary-key column names per table
        self.overlay: dict[tuple[str, Any], Any] = {}
        self.missing: dict[tuple[str, Any], None] = {}

    def get(self, table: str, *key: Any) -> dict[str, Any] | None:
        ck = (table, key)
        if ck in self.overlay:
            row = self.overlay[ck]
        elif ck in self.cache:
            row = self.cache[ck]
        else:
            self.missing[ck] = None
            return None
        return dict(row) if isinstance(row, dict) else None

    def read_ahead(self, table: str, keys: Iterable[tuple[Any, ...]]) -> None:
        pass  # the misses its gets record are read in one round trip anyway

    def put(self, table: str, row: dict[str, Any]) -> None:
        # Later reads of this key see the write, as in the real pass. A copy, as SqlRows
        # keeps: a complete rehearsal's overlay becomes the batch's writes.
        self.overlay[(table, tuple([row[k] for k in self.keys[table]]))] = dict(row)

    def delete(self, table: str, *key: Any) -> None:
        self.overlay[(table, key)] = None


def apply_feeds(
    read_store: ReadStore, batches: dict[int, list[Envelope]], projections: Sequence[Projection] | None = None
) -> dict[int, int]:
    """Applies each feed's envelopes in one transaction; returns the positions reached per feed.

    Envelopes of all feeds are applied in global order (a merge by position), so a batch
    that holds a citizen's registration and that citizen's request applies them in the
    order they happened. An envelope at or below what a projection recorded for its feed
    (or below the floor a replay set, partition -1) is skipped: redelivery changes nothing.

    On PostgreSQL a batch costs about four round trips whatever its size: (1) the
    projections' shared advisory locks, the position rows (locked), the replay floors and
    the rows of the batch's aggregates, in one pipeline; (2) the rows the dry run found
    missing; (3) every write and the new positions, in one pipeline; (4) the commit.
    """
    projections = list(projections or read_store.projections)
    names = [p.name for p in projections]
    merged = list(heapq.merge(*([(env.position, feed, env) for env in envs] for feed, envs in batches.items()), key=lambda t: t[0]))
    envelopes = [env for _, _, env in merged]
    feeds = sorted(batches)
    reached: dict[int, int] = {}
    with read_store.engine.begin() as conn:
        rows = PrefetchRows(conn, read_store.tables)
        found: dict[str, Any] = {}

        def bookkeeping(raw: Any) -> None:
            if raw is None:  # SQLite
                lock_projections(conn, names)
                found["floors"] = conn.execute(
                    sa.select(positions.c.name, positions.c.position).where(positions.c.name.in_(names), positions.c.partition == WHOLE_LOG)
                ).all()
                found["recorded"] = conn.execute(
                    sa.select(positions.c.name, positions.c.partition, positions.c.position).where(
                        positions.c.name.in_(names), positions.c.partition.in_(feeds)
                    )
                ).all()
                return
            keys = [projection_lock_key(n) for n in sorted(names)]
            # Locks taken left to right in one fixed order, then every (projection, feed)
            # row of the batch, locked in a fixed order too.
            # Exclusive: projections read and write rows that events of several partitions
            # share (a department's counters, a queue's statistics), so two consumers must
            # not apply the same projection at once or one's update would be lost. Several
            # consumers still share polling and decoding; the apply is serialised.
            raw.execute("SELECT " + ", ".join(f"pg_advisory_xact_lock({k})" for k in keys))
            found["recorded"] = raw.cursor()
            found["recorded"].execute(
                "SELECT name, partition, position FROM projection_positions WHERE name = ANY(%s) AND partition = ANY(%s) "
                "ORDER BY name, partition FOR UPDATE",
                (names, feeds),
            )
            found["floors"] = raw.cursor()
            found["floors"].execute(
                "SELECT name, position FROM projection_positions WHERE name = ANY(%s) AND partition = %s",
                (names, WHOLE_LOG),
            )

        rows.load(rows.aggregate_keys(projections, envelopes), extra=bookkeeping)
        recorded_rows = found["recorded"] if isinstance(found["recorded"], list) else found["recorded"].fetchall()
        floor_rows = found["floors"] if isinstance(found["floors"], list) else found["floors"].fetchall()
        recorded = {(n, int(f)): int(pos) for n, f, pos in recorded_rows}
        floors = {n: int(pos) for n, pos in floor_rows}
        changed = []
        stamp = datetime.now(UTC)
        # What changed, announced to live screens on commit (PostgreSQL's NOTIFY).
        topics: set[str] | None = set() if conn.dialect.name == "postgresql" else None
        plans: list[tuple[Projection, list[Envelope]]] = []
        for p in projections:
            floor = floors.get(p.name, 0)
            last = {f: max(recorded.get((p.name, f), 0), floor) for f in feeds}
            handlers = p.handlers
            todo = []
            for position, feed, env in merged:
                if position <= last[feed]:
                    continue  # already applied: redelivery changes nothing
                if env.type in handlers:
                    todo.append(env)
                last[feed] = position
            plans.append((p, todo))
            for f in feeds:
                if last[f] > recorded.get((p.name, f), 0):
                    changed.append({"name": p.name, "partition": f, "position": last[f], "updated_at": stamp})
                reached[f] = max(reached.get(f, 0), last[f])
        done = rows.rehearse(plans, topics)
        for p, todo in plans:
            if p.name in done:
                continue
            handlers = p.handlers
            for env in todo:
                handlers[env.type](env, rows)
                if topics is not None:
                    topics.update(p.topics(env, rows))
        rows.flush_with(changed)
        if topics:
            notify(conn, topics)
    return reached


PERSONAL_STREAMS = ("citizen", "request")


class PersonalData:
    """Completes masked ``personal`` fields from the event store (by global position)."""

    def __init__(self, store: EventStore | None) -> None:
        self.store = store

    def restore(self, envelopes: list[Envelope]) -> list[Envelope]:
        """The batch's personal events completed from the store: one read of the log per
        stretch of positions they span, and the citizens' keys fetched together (one query
        for the keys the process has not seen), not one read and one key lookup per event,
        which at 500 commands/s left the consumer seconds behind."""
        if self.store is None:
            return envelopes
        # The citizen read model shows personal data, and staff search requests by the
        # caller's name and phone (a request's registration); other events stay masked,
        # which saves reading them. The citizen's own text (a request's description, their
        # messages) is masked too where the jurisdiction treats it as personal.
        wanted: dict[int, list[str]] = {}
        for i, env in enumerate(envelopes):
            texts = [f for f in env.citizen_text_fields if env.data.get(f) == "***"]
            if env.stream in PERSONAL_STREAMS and (env.data.get("personal") is not None or texts):
                wanted[i] = texts
        if not wanted:
            return envelopes
        stored = self._stored({envelopes[i].position for i in wanted})
        self.store.keys.preload(key_ids_in(n.state for n in stored.values()))
        out = list(envelopes)
        for i, texts in wanted.items():
            env = envelopes[i]
            found = stored.get(env.position)
            if found is not None:
                original = self.store.to_envelope(found)
                restored = {f: original.data.get(f) for f in ("personal", *texts) if f in env.data}
                out[i] = Envelope(**{**env.__dict__, "data": {**env.data, **restored}})
        return out

    def _stored(self, positions: set[int]) -> dict[int, Any]:
        """The stored events at these positions, read as stretches of the log (a batch's
        positions are close together: partitions interleave one stretch of commits)."""
        assert self.store is not None
        found: dict[int, Any] = {}
        ordered = sorted(positions)
        start = 0
        while start < len(ordered):
            end = start
            while end + 1 < len(ordered) and ordered[end + 1] - ordered[start] < RESTORE_STRETCH:
                end += 1
            low, high = ordered[start], ordered[end]
            for n in self.store.notifications(low - 1, high - low + 1):
                if n.id in positions:
                    found[n.id] = n
            start = end + 1
        return found


# The longest stretch of the log read at once to complete a batch (events, most not needed).
RESTORE_STRETCH = 2000
_KEY_ID = re.compile(rb'"k":"([0-9a-f]{32})"')


def key_ids_in(states: Iterable[bytes]) -> set[str]:
    """The citizen key ids the sealed fields of these stored events name (infra/citizen_keys.py
    ``Sealed.to_json``: ``{"k": key id, …}``), to fetch the keys in one query."""
    return {m.decode() for state in states for m in _KEY_ID.findall(bytes(state))}


class ProjectionConsumer:
    """A member of the projections consumer group."""

    def __init__(
        self,
        settings: Settings,
        *,
        group: str | None = None,
        projections: Sequence[Projection] | None = None,
        store: EventStore | None = None,
        max_records: int = 2000,
        poll_ms: int = 50,
        before_commit: Callable[[dict[TopicPartition, int]], None] | None = None,
        offset_commit_interval: float = 1.0,
    ) -> None:
        from infra.wiring import all_projections

        if not settings.kafka_bootstrap_servers:
            raise ValueError("the projection consumer needs HOTLINE_KAFKA_BOOTSTRAP_SERVERS")
        self.settings = settings
        self.group = group or settings.kafka_consumer_group
        self.read_store = ReadStore(make_engine(settings.read_store_url, 4), projections or all_projections())
        from infra.read_store import tracking_md

        create_tables_safely(self.read_store.engine, tracking_md, relay_md, *[p.metadata for p in self.read_store.projections])
        self.names = [p.name for p in self.read_store.projections]
        self.store = store if store is not None else (EventStore(settings) if settings.database_url else None)
        self.personal = PersonalData(self.store)
        self.max_records = max_records
        self.poll_ms = poll_ms
        self.before_commit = before_commit
        self.member = f"{socket.gethostname()}:{os.getpid()}"
        self.stopping = threading.Event()
        self.applied_events = 0
        self.batches = 0
        self.apply_seconds = 0.0
        self.known_feeds: set[int] = set()
        self.consumer = KafkaConsumer(
            bootstrap_servers=settings.kafka_bootstrap_servers,
            group_id=self.group,
            client_id=f"hotline-projections-{os.getpid()}",
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            max_poll_records=max_records,
            session_timeout_ms=10_000,
            heartbeat_interval_ms=1_000,
            metadata_max_age_ms=5_000,  # new topics are picked up quickly
            fetch_max_wait_ms=20,
            check_crcs=False,  # kafka-python checks CRCs in pure Python; TCP already does on loopback
        )
        # The topics are created first and subscribed by name: a pattern subscription that
        # sees topics appear in the middle of a group rebalance can stall kafka-python.
        from consumers.relay import ensure_topics

        self.topics = [topic_for(settings, s) for s in public_streams()]
        ensure_topics(settings, self.topics)
        self.consumer.subscribe(topics=self.topics, listener=_Listener(self))
        self._last_lag = 0.0
        self.offset_commit_interval = offset_commit_interval
        self._uncommitted: dict[TopicPartition, int] = {}
        self._last_commit = 0.0
        self._batch_metric = CONSUMER_BATCH.labels(self.group)
        self._apply_metric = CONSUMER_APPLY_SECONDS.labels(self.group)
        self._events_metric = CONSUMER_EVENTS.labels(self.group)

    # ----------------------------------------------------------------- one step
    def poll_once(self, gather_ms: float = 0.0) -> int:
        polled = self.consumer.poll(timeout_ms=self.poll_ms, max_records=self.max_records)
        if not polled:
            # Idle: commit what was applied (at most every offset_commit_interval, as a busy
            # consumer does: an empty poll between two batches is not worth a broker request),
            # or the group's committed offsets (which ``hotline kafka-status``, /readyz and
            # every Kafka tool read) stay behind until the next message, however long.
            self.commit_offsets()
            self._maybe_report()
            return 0
        # Take what else is already fetched (no waiting: a wait is added to every event's
        # lag). Batches still grow with the load: whatever arrives while one batch is being
        # applied makes the next one, so one transaction and one offset commit serve many.
        total = sum(len(r) for r in polled.values())
        until = time.monotonic() + gather_ms / 1000
        while total < self.max_records:
            more = self.consumer.poll(timeout_ms=0, max_records=self.max_records - total)
            if not more:
                if time.monotonic() >= until:
                    break
                time.sleep(0.002)
                continue
            for tp, records in more.items():
                polled.setdefault(tp, []).extend(records)
                total += len(records)
        batches: dict[int, list[Envelope]] = {}
        offsets: dict[TopicPartition, int] = {}
        count = 0
        decoded = {tp: [Envelope.from_cloudevent(_loads(r.value)) for r in records] for tp, records in polled.items()}
        # Personal data is completed for the whole poll at once: its partitions interleave
        # one stretch of the log, which one read covers (per partition, the same stretch was
        # read once for each of them).
        restored = iter(self.personal.restore([env for envelopes in decoded.values() for env in envelopes]))
        for tp, records in polled.items():
            batches[feed_id(tp.topic, tp.partition)] = [next(restored) for _ in decoded[tp]]
            offsets[tp] = records[-1].offset + 1
            count += len(records)
        new_feeds = [f for f in batches if f not in self.known_feeds]
        if new_feeds:
            with self.read_store.engine.begin() as conn:
                ensure_position_rows(conn, self.names, new_feeds)
            self.known_feeds.update(new_feeds)
        started = time.perf_counter()
        apply_feeds(self.read_store, batches)
        took = time.perf_counter() - started
        self.apply_seconds += took
        self.batches += 1
        self._batch_metric.observe(count)
        self._apply_metric.observe(took)
        self._events_metric.inc(count)
        if self.before_commit is not None:
            self.before_commit(offsets)  # tests: a crash between the transaction and the commit
        self._uncommitted.update(offsets)
        self.commit_offsets()
        self.applied_events += count
        self._maybe_report()
        return count

    def commit_offsets(self, force: bool = False) -> None:
        """Commits the offsets of applied batches, at most every ``offset_commit_interval``.

        The positions in the read-model transaction are what makes a redelivery harmless;
        the offsets only spare a restarted member re-reading (and skipping) what was applied.
        So they are committed asynchronously and not after every batch: each commit is a
        broker request, and on a 2-core machine the broker's CPU is the read models' too."""
        if not self._uncommitted or (not force and time.monotonic() - self._last_commit < self.offset_commit_interval):
            return
        CONSUMER_COMMITS.labels(self.group, "forced" if force else "interval").inc()
        offsets = {tp: OffsetAndMetadata(o, "", -1) for tp, o in self._uncommitted.items()}
        self._uncommitted = {}
        self._last_commit = time.monotonic()
        if force:
            self.consumer.commit(offsets, timeout_ms=5_000)
        else:
            self.consumer.commit_async(offsets, callback=_offsets_committed)

    def _maybe_report(self, every: float = 2.0) -> None:
        if time.monotonic() - self._last_lag < every:
            return
        self._last_lag = time.monotonic()
        if self.batches:
            log.info(
                "applied %d events in %d batches, %.1f ms a batch",
                self.applied_events,
                self.batches,
                1000 * self.apply_seconds / self.batches,
            )
        try:
            lags = self.lags()
            for (topic, partition), (lag, _) in lags.items():
                CONSUMER_LAG.labels(self.group, topic, str(partition)).set(lag)
            with self.read_store.engine.begin() as conn:
                record_lag(conn, self.group, self.member, lags)
                prune_routes(conn, self.names, [feed_id(t, p) for t, p in lags])
        except Exception:
            log.exception("lag report failed")

    def lags(self) -> dict[tuple[str, int], tuple[int, int]]:
        """Per owned partition: (messages behind the log end, next offset)."""
        assigned = list(self.consumer.assignment())
        if not assigned:
            return {}
        ends = self.consumer.end_offsets(assigned)
        out = {}
        for tp in assigned:
            pos = self.consumer.position(tp)
            out[(tp.topic, tp.partition)] = (max(0, ends.get(tp, 0) - pos), pos)
        return out

    def total_lag(self) -> int:
        return sum(lag for lag, _ in self.lags().values())

    def run(self, once: bool = False, idle_exit: float | None = None) -> None:
        idle_since = time.monotonic()
        backoff = 0.2
        while not self.stopping.is_set():
            try:
                n = self.poll_once()
                backoff = 0.2
            except KafkaError as exc:
                # Broker away, or the group rebalanced under us (offset commit refused): the
                # read models are consistent either way, and what was not committed comes
                # again and is skipped. Poll again: that rejoins the group.
                log.warning("Kafka: %s; retrying in %.1fs", exc, backoff)
                self.stopping.wait(backoff)
                backoff = min(backoff * 2, 5.0)
                continue
            if n:
                idle_since = time.monotonic()
            elif once and time.monotonic() - idle_since > (idle_exit or 3.0) and self.consumer.assignment():
                return

    def close(self) -> None:
        self.stopping.set()
        try:
            with contextlib.suppress(KafkaError):
                self.commit_offsets(force=True)
            self.consumer.close(autocommit=False)
        finally:
            self.read_store.engine.dispose()
            if self.store is not None:
                self.store.close()


def _offsets_committed(offsets: dict[TopicPartition, OffsetAndMetadata], result: Any) -> None:
    if isinstance(result, Exception):  # e.g. a rebalance took the partitions: they are re-read and skipped
        log.warning("offset commit failed (%s): %s", result, sorted(offsets.items())[:3])


class _Listener(ConsumerRebalanceListener):
    def __init__(self, owner: ProjectionConsumer) -> None:
        self.owner = owner

    def on_partitions_revoked(self, revoked: Any) -> None:
        # Hand over what was applied, so the next owner does not re-read it.
        try:
            self.owner.commit_offsets(force=True)
        except KafkaError as exc:
            log.warning("offset commit on revocation failed: %s", exc)
        log.info("revoked %s", sorted((tp.topic, tp.partition) for tp in revoked))

    def on_partitions_assigned(self, assigned: Any) -> None:
        feeds = [feed_id(tp.topic, tp.partition) for tp in assigned]
        with self.owner.read_store.engine.begin() as conn:
            ensure_position_rows(conn, self.owner.names, feeds)
        self.owner.known_feeds.update(feeds)
        log.info("assigned %s", sorted((tp.topic, tp.partition) for tp in assigned))


# ------------------------------------------------------------------ read-your-writes
def position_visible(read_store: ReadStore, position: int) -> bool:
    """Read-your-writes: has every projection applied every event up to ``position``?"""
    with read_store.engine.connect() as conn:
        try:
            return is_applied(conn, position, [p.name for p in read_store.projections])
        except sa.exc.ProgrammingError:
            return False  # the relay has not created its tables yet: nothing is published


def visible_position(read_store: ReadStore) -> int:
    """The highest position that ``position_visible`` reports applied (one evaluation)."""
    with read_store.engine.connect() as conn:
        try:
            return applied_frontier(conn, [p.name for p in read_store.projections])
        except sa.exc.ProgrammingError:
            return 0


def wait_until_applied(read_store: ReadStore, position: int, timeout: float, poll: float = 0.01) -> tuple[bool, int]:
    """Blocks until every projection of ``read_store`` applied ``position`` (distributed mode)."""
    deadline = time.monotonic() + timeout
    while True:
        if position_visible(read_store, position):
            return True, position
        if time.monotonic() >= deadline:
            return False, read_store.applied_position()
        time.sleep(poll)


def projection_metrics(read_store: ReadStore, store: EventStore | None) -> ProjectionPositions:
    """Each projection's position and lag, read at scrape time (``ReadStore.positions``)."""

    def source() -> tuple[int, dict[str, int], list[str]]:
        head = store.max_position() if store is not None else 0
        return head, read_store.positions(), [p.name for p in read_store.projections]

    return ProjectionPositions(source)


def _fault_injection(settings: Settings) -> Callable[[dict[TopicPartition, int]], None] | None:
    """Tests set HOTLINE_FAULT_KILL_BEFORE_COMMIT=N: the process SIGKILLs itself after writing
    its N-th batch to the read models and before committing the Kafka offsets."""
    after = settings.fault_kill_before_commit
    if after <= 0:
        return None
    seen = [0]

    def hook(offsets: dict[TopicPartition, int]) -> None:
        seen[0] += 1
        if seen[0] >= after:
            log.warning("fault injection: killed before committing %s", offsets)
            os.kill(os.getpid(), signal.SIGKILL)

    return hook


def main(group: str | None = None, once: bool = False, settings: Settings | None = None, max_records: int = 2000) -> None:
    """The ``hotline consume projections`` process (the CLI has configured logging)."""
    from infra.settings import get_settings

    settings = settings or get_settings()
    consumer = ProjectionConsumer(settings, group=group, max_records=max_records, before_commit=_fault_injection(settings))
    tune_gc(consumer.settings)
    start_process_metrics(settings, "consumer", projection_metrics(consumer.read_store, consumer.store))
    signal.signal(signal.SIGTERM, lambda *_: consumer.stopping.set())
    try:
        consumer.run(once=once)
    except KeyboardInterrupt:
        pass
    finally:
        consumer.close()


__all__ = ["ProjectionConsumer", "_upsert", "apply_feeds", "wait_until_applied"]
