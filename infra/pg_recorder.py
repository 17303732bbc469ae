"""The PostgreSQL application recorder with a one-round-trip append.

The library's recorder inserts in a pipelined transaction: BEGIN, SET LOCAL lock_timeout,
LOCK TABLE, NOTIFY, INSERT ... RETURNING, a sync to surface conflicts, COMMIT. Under group
commit the committer thread runs that for every batch, and each exchange with the server
hands the GIL back to 32 busy client threads and waits to get it again. Here the same
steps run inside one server-side function, called in autocommit mode as one prepared
statement with four binary arrays: one round trip, one commit, the same guarantees (the
EXCLUSIVE table lock still makes commit order equal notification order, so readers of the
notification log never pass over a gap that fills in later).

The table and its indexes are the library's own, plus the audit chain's three columns and
head table (``infra/audit_chain.py``): the chained function hashes each event onto its
stream and onto the global order inside the same call, under the same lock. The reads are
the library's queries, composed once.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

import psycopg
from eventsourcing import persistence
from eventsourcing.persistence import StoredEvent
from eventsourcing.postgres import PostgresApplicationRecorder, PostgresDatastore
from psycopg import pq
from psycopg.rows import tuple_row
from psycopg.sql import SQL, Identifier, Literal

from infra.audit_chain import HEAD_TABLE

# psycopg's errors as the library's (what its get_connection raises), most specific first.
_ERRORS: list[tuple[type[Exception], type[Exception]]] = [
    (psycopg.IntegrityError, persistence.IntegrityError),
    (psycopg.OperationalError, persistence.OperationalError),
    (psycopg.InterfaceError, persistence.InterfaceError),
    (psycopg.DataError, persistence.DataError),
    (psycopg.InternalError, persistence.InternalError),
    (psycopg.ProgrammingError, persistence.ProgrammingError),
    (psycopg.NotSupportedError, persistence.NotSupportedError),
    (psycopg.DatabaseError, persistence.DatabaseError),
    (psycopg.Error, persistence.PersistenceError),
]


class HeldConnection:
    """One pooled connection kept by one long-lived thread (the group committer, the group
    reader), which queries hundreds of times a second: checking a connection out of the
    pool and back in, with the library's context managers around it, cost more of that
    thread's time than building the query. A broken connection goes back to the pool
    (which replaces it) and the next query takes another."""

    def __init__(self, datastore: PostgresDatastore) -> None:
        self.datastore = datastore
        self._conn: Any = None

    @contextmanager
    def connection(self) -> Iterator[Any]:
        if self._conn is None:
            self.datastore.pool.open(True, self.datastore.pool_open_timeout or 30.0)
            self._conn = self.datastore.pool.getconn()
        conn = self._conn
        try:
            yield conn
        except psycopg.Error as exc:
            # A lost server connection is not always marked broken yet ("terminating
            # connection due to administrator command" arrives as an error result).
            lost = isinstance(exc, psycopg.OperationalError | psycopg.InterfaceError) or conn.broken or conn.closed
            if lost or conn.info.transaction_status != pq.TransactionStatus.IDLE:
                self.release()
            if lost:
                # The server went away for the pool's idle connections too: have the pool
                # test and replace them now, not one failed command each.
                self.datastore.pool.check()
            for theirs, ours in _ERRORS:
                if isinstance(exc, theirs):
                    raise ours(str(exc)) from exc
            raise

    def release(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            self.datastore.pool.putconn(conn)  # the pool resets or replaces it


# The citizen keys and links a batch staged (infra/citizen_keys.py), written by the append
# function in the events' own transaction, after the table lock (so no other append can
# hold a key row this one waits for). The tables are the key store's, found on the
# session's search path as it finds them.
KEYS_SQL = (
    "  IF cardinality(key_ids) > 0 THEN "
    "    INSERT INTO citizen_keys (key_id, subject_id, key_material, created_at) "
    "      SELECT k, s, m, keys_created FROM unnest(key_ids, key_subjects, key_materials) AS n(k, s, m); "
    "  END IF; "
    "  IF cardinality(link_subjects) > 0 THEN "
    "    INSERT INTO citizen_key_links (subject_id, citizen_id) "
    "      SELECT DISTINCT ON (s) s, c FROM unnest(link_subjects, link_citizens) AS l(s, c) ON CONFLICT (subject_id) DO NOTHING; "
    "  END IF; "
)


def staged_rows(staged: Any) -> tuple[list[str], list[str], list[bytes], list[str], list[str], str]:
    """The append function's key arguments: (key ids, subjects, materials, link subjects,
    link citizens, creation stamp); empty when the batch staged nothing."""
    if staged is None:
        return [], [], [], [], [], ""
    links = dict(staged.links)
    return (
        [k for k, _, _ in staged.keys],
        [s for _, s, _ in staged.keys],
        [m for _, _, m in staged.keys],
        list(links),
        list(links.values()),
        datetime.now(UTC).isoformat(),
    )


class HotlinePostgresRecorder(PostgresApplicationRecorder):
    # Chained: the append function also writes the audit chain (infra/audit_chain.py).
    chained = True

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        schema = Identifier(self.datastore.schema)
        table = Identifier(self.events_table_name)
        head = Identifier(HEAD_TABLE)
        function = Identifier(f"{self.events_table_name}_append")
        chained_function = Identifier(f"{self.events_table_name}_append_chained")
        names = {
            "schema": schema,
            "table": table,
            "head": head,
            "channel": Identifier(self.channel_name),
            "lock_timeout": self.datastore.lock_timeout,
        }
        # An existing store gets the chain's columns in _create_table (its old rows stay
        # unchained: the chain starts at the first event written after) and the head table.
        self.add_chain_columns = SQL(
            "ALTER TABLE {schema}.{table} ADD COLUMN IF NOT EXISTS chain_stream bytea, "
            "ADD COLUMN IF NOT EXISTS chain_global bytea, ADD COLUMN IF NOT EXISTS chain_prev bigint"
        ).format(**names)
        self.sql_create_statements.append(
            SQL(
                "CREATE TABLE IF NOT EXISTS {schema}.{head} "
                "(id integer PRIMARY KEY CHECK (id = 1), position bigint NOT NULL, hash bytea NOT NULL)"
            ).format(**names)
        )
        self.sql_create_statements.append(
            SQL(
                "CREATE OR REPLACE FUNCTION {schema}.{function}("
                "  ids uuid[], versions integer[], topics text[], states bytea[], "
                "  key_ids text[], key_subjects text[], key_materials bytea[], link_subjects text[], link_citizens text[], "
                "  keys_created text) "
                "RETURNS SETOF bigint LANGUAGE plpgsql AS $BODY$ "
                "BEGIN "
                "  SET LOCAL lock_timeout = '{lock_timeout}s'; "
                "  LOCK TABLE {schema}.{table} IN EXCLUSIVE MODE; "
                "  NOTIFY {channel}; " + KEYS_SQL + "  RETURN QUERY "
                "    INSERT INTO {schema}.{table} (originator_id, originator_version, topic, state) "
                "    SELECT * FROM unnest(ids, versions, topics, states) "
                "    RETURNING notification_id; "
                "END; $BODY$"
            ).format(function=function, **names)
        )
        # The chained append: under the table lock (commit order = position order) it reads
        # the head, takes the positions from the sequence, hashes each event onto its
        # stream's previous hash (stored, or earlier in this batch) and onto the global
        # chain, inserts, and moves the head: one round trip, one transaction. The hashes
        # are the ones of infra/audit_chain.py (stream_hash, global_hash), byte for byte.
        # PL/pgSQL's loop (a few statements an event) measured cheaper than set-based
        # variants (a recursive CTE, joins within the batch) for batches of tens of events.
        self.sql_create_statements.append(
            SQL(
                "CREATE OR REPLACE FUNCTION {schema}.{function}("
                "  ids uuid[], versions integer[], topics text[], states bytea[], "
                "  key_ids text[], key_subjects text[], key_materials bytea[], link_subjects text[], link_citizens text[], "
                "  keys_created text) "
                "RETURNS SETOF bigint LANGUAGE plpgsql AS $BODY$ "
                "DECLARE "
                "  n integer := cardinality(ids); "
                "  genesis bytea := decode(repeat('00', 32), 'hex'); "
                "  positions bigint[]; previous_hashes bytea[]; "
                "  stream_hashes bytea[] := '{{}}'; global_hashes bytea[] := '{{}}'; "
                "  head_position bigint; head_hash bytea; prev bytea; t bytea; j integer; "
                "  seq regclass := pg_get_serial_sequence({qualified}, 'notification_id')::regclass; "
                "BEGIN "
                "  SET LOCAL lock_timeout = '{lock_timeout}s'; "
                # The predecessors' lookup below is planned once per session (PL/pgSQL caches
                # it): planned on a small table it would scan the table on every call.
                "  SET LOCAL enable_seqscan = off; "
                "  LOCK TABLE {schema}.{table} IN EXCLUSIVE MODE; "
                "  NOTIFY {channel}; "
                + KEYS_SQL
                + "  SELECT h.position, h.hash INTO head_position, head_hash FROM {schema}.{head} h WHERE h.id = 1; "
                "  IF NOT FOUND THEN head_position := 0; head_hash := genesis; END IF; "
                "  positions := ARRAY(SELECT nextval(seq) FROM generate_series(1, n)); "
                # The stored predecessor's hash (NULL: none, or an unchained row: the genesis).
                "  previous_hashes := ARRAY(SELECT p.chain_stream FROM unnest(ids, versions) WITH ORDINALITY AS u(id, v, i) "
                "    LEFT JOIN {schema}.{table} p ON p.originator_id = u.id AND p.originator_version = u.v - 1 ORDER BY u.i); "
                "  FOR i IN 1..n LOOP "
                "    prev := previous_hashes[i]; "
                "    IF prev IS NULL AND versions[i] > 1 THEN "  # the predecessor may be earlier in this batch
                "      FOR j IN REVERSE i - 1..1 LOOP "
                "        IF ids[j] = ids[i] AND versions[j] = versions[i] - 1 THEN prev := stream_hashes[j]; EXIT; END IF; "
                "      END LOOP; "
                "    END IF; "
                "    t := convert_to(topics[i], 'UTF8'); "
                "    prev := sha256(coalesce(prev, genesis) || uuid_send(ids[i]) || int8send(versions[i]::bigint) "
                "                   || int4send(octet_length(t)) || t || states[i]); "
                "    stream_hashes[i] := prev; "
                "    head_hash := sha256(head_hash || int8send(positions[i]) || prev); "
                "    global_hashes[i] := head_hash; "
                "  END LOOP; "
                "  INSERT INTO {schema}.{table} "
                "    (notification_id, originator_id, originator_version, topic, state, chain_stream, chain_global, chain_prev) "
                "    SELECT * FROM unnest(positions, ids, versions, topics, states, stream_hashes, global_hashes, "
                "                         head_position || positions[1:n - 1]); "
                "  INSERT INTO {schema}.{head} AS h (id, position, hash) VALUES (1, positions[n], head_hash) "
                "    ON CONFLICT (id) DO UPDATE SET position = EXCLUDED.position, hash = EXCLUDED.hash; "
                "  RETURN QUERY SELECT unnest(positions); "
                "END; $BODY$"
            ).format(
                function=chained_function,
                qualified=Literal(f"{self.datastore.schema}.{self.events_table_name}"),
                **names,
            )
        )
        self._held = threading.local()  # per thread: a HeldConnection, see hold_connection
        self._selects: dict[tuple[bool, bool, bool, bool], bytes] = {}
        self.select_events_statement = SQL("SELECT originator_version, topic, state FROM {schema}.{table} WHERE originator_id = %s").format(
            schema=schema, table=table
        )
        self.append_statement = SQL(
            "SELECT * FROM {schema}.{function}(%b::uuid[], %b::integer[], %b::text[], %b::bytea[], "
            "%b::text[], %b::text[], %b::bytea[], %b::text[], %b::text[], %b::text)"
        ).format(schema=schema, function=chained_function if self.chained else function)
        self.citizen_keys: Any = None  # the store's CitizenKeys, whose staged keys an append writes

    def _create_table(self, curs: Any) -> None:
        # Several processes (API workers, consumers) start at once: CREATE OR REPLACE
        # FUNCTION run concurrently fails with "tuple concurrently updated", so the
        # schema statements take turns under a transaction-scoped advisory lock.
        curs.execute(SQL("SELECT pg_advisory_xact_lock(hashtext({name}))").format(name=self.events_table_name), prepare=False)
        # The table first (a new store), then the chain's columns (an existing one: ALTER
        # only when they are missing, as it waits for every reader of the table), then the
        # rest (the head table, the functions, which name the columns).
        statements = self.sql_create_statements
        table_at = self.create_table_statement_index
        try:
            self.sql_create_statements = statements[: table_at + 1]
            super()._create_table(curs)
            curs.execute(
                "SELECT count(*) AS n FROM information_schema.columns "
                "WHERE table_schema = %s AND table_name = %s AND column_name IN ('chain_stream', 'chain_global', 'chain_prev')",
                (self.datastore.schema, self.events_table_name),
                prepare=False,
            )
            row = curs.fetchone()
            if row is None or row["n"] < 3:
                curs.execute(self.add_chain_columns, prepare=False)
            self.sql_create_statements = statements[table_at + 1 :]
            super()._create_table(curs)
        finally:
            self.sql_create_statements = statements

    def select_events(
        self,
        originator_id: UUID | str,
        *,
        gt: int | None = None,
        lte: int | None = None,
        desc: bool = False,
        limit: int | None = None,
    ) -> Sequence[StoredEvent]:
        """The library's query, composed once per shape instead of on every call (every
        load of an aggregate not cached, every "is this phone number known?")."""
        shape = (gt is not None, lte is not None, desc, limit is not None)
        statement = self._selects.get(shape)
        if statement is None:
            sql = self.select_events_statement
            if gt is not None:
                sql += SQL(" AND originator_version > %s")
            if lte is not None:
                sql += SQL(" AND originator_version <= %s")
            sql += SQL(" ORDER BY originator_version DESC" if desc else " ORDER BY originator_version ASC")
            if limit is not None:
                sql += SQL(" LIMIT %s")
            statement = self._selects[shape] = sql.as_bytes(None)
        params = [originator_id, *(p for p in (gt, lte, limit) if p is not None)]
        oid = originator_id if isinstance(originator_id, UUID) else UUID(originator_id)
        with self.datastore.get_connection() as conn, conn.cursor(row_factory=tuple_row) as curs:
            curs.execute(statement, params, prepare=True)
            return [StoredEvent(oid, version, topic, bytes(state)) for version, topic, state in curs.fetchall()]

    def insert_events(self, stored_events: Sequence[StoredEvent], **kwargs: Any) -> Sequence[int] | None:
        if not stored_events:
            return []
        keys = self.citizen_keys
        staged = keys.take_staged() if keys is not None else None
        params = (
            [e.originator_id for e in stored_events],
            [e.originator_version for e in stored_events],
            [e.topic for e in stored_events],
            [e.state for e in stored_events],
            *staged_rows(staged),
        )
        # Both turn psycopg's errors into the library's (IntegrityError for a version
        # somebody else wrote first), which the group committer and the bus handle.
        held: HeldConnection | None = getattr(self._held, "connection", None)
        connection = held.connection() if held is not None else self.datastore.get_connection()
        with connection as conn, conn.cursor(row_factory=tuple_row) as curs:
            curs.execute(self.append_statement, params, prepare=True)
            positions = [row[0] for row in curs.fetchall()]
        if staged is not None:
            keys.committed(staged)
        return positions

    def hold_connection(self) -> None:
        """The calling thread (the group committer) keeps one pooled connection for its inserts."""
        self._held.connection = HeldConnection(self.datastore)

    def release_connection(self) -> None:
        held: HeldConnection | None = getattr(self._held, "connection", None)
        if held is not None:
            held.release()
            self._held.connection = None


class UnchainedPostgresRecorder(HotlinePostgresRecorder):
    """Events without chain links (``HOTLINE_AUDIT_CHAIN=false``): for measuring what the
    chain costs. ``verify`` reports such events once a chain has begun."""

    chained = False
