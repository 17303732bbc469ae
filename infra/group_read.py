"""Group reads: the aggregates many concurrent commands look up, in one query.

Every registration asks "is this phone number (or email) known?", which is a query for
the events of its identity claim: a round trip, a pooled connection and the driver's
per-query work, for an answer that is usually "no". Like the group committer, one reader
thread takes every lookup that is waiting and asks PostgreSQL for all of them at once
(``originator_id = ANY(...)``); under load one query answers dozens of commands, and with
one client a batch is one lookup and nothing waits.
"""

from __future__ import annotations

from typing import Any

from eventsourcing.persistence import StoredEvent
from psycopg.rows import tuple_row
from psycopg.sql import SQL, Identifier

from infra.batching import BatchingThread, Reply
from infra.pg_recorder import HeldConnection


class GroupReader(BatchingThread):
    def __init__(self, recorder: Any, max_batch: int = 500) -> None:
        self.recorder = recorder
        self.statement = SQL(
            "SELECT originator_id, originator_version, topic, state FROM {schema}.{table} "
            "WHERE originator_id = ANY(%b::uuid[]) ORDER BY originator_id, originator_version"
        ).format(schema=Identifier(recorder.datastore.schema), table=Identifier(recorder.events_table_name))
        self.held = HeldConnection(recorder.datastore)
        self.queries = 0
        self.lookups = 0
        super().__init__("group-read", max_batch)

    def _stopping(self) -> None:
        self.held.release()

    def stored_events(self, aggregate_id: Any) -> list[StoredEvent]:
        """The aggregate's stored events, in order (empty if it does not exist)."""
        future: Reply[list[StoredEvent]] = Reply()
        self._queue.put((aggregate_id, future))
        return future.result()

    def _handle(self, batch: list[Any]) -> None:
        self._read(batch)

    def _read(self, batch: list[tuple[Any, Reply[list[StoredEvent]]]]) -> None:
        self.queries += 1
        self.lookups += len(batch)
        try:
            found: dict[Any, list[StoredEvent]] = {}
            with self.held.connection() as conn, conn.cursor(row_factory=tuple_row) as curs:
                curs.execute(self.statement, ([aggregate_id for aggregate_id, _ in batch],), prepare=True)
                for originator_id, version, topic, state in curs.fetchall():
                    found.setdefault(originator_id, []).append(StoredEvent(originator_id, version, topic, bytes(state)))
        except BaseException as exc:
            for _, future in batch:
                future.set_exception(exc)
            return
        for aggregate_id, future in batch:
            future.set_result(found.get(aggregate_id, []))
