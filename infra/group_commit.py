"""Group commit: many concurrent commands' events in one event-store transaction.

eventsourcing's PostgreSQL recorder takes a table lock for every insert, so only one
inserting transaction runs at a time and each pays a full fsync. Throughput therefore
comes from putting the events of every command that is waiting into one transaction.
A single committer thread drains the queue: under load, batches grow by themselves;
with one client, a batch is one command and nothing waits.

If a batch fails on a conflict (two commands changed the same aggregate), only the
commands that wrote the conflicting key get the conflict; the rest commit together.
"""

from __future__ import annotations

import re
import threading
import time
import uuid
from typing import Any

from eventsourcing.persistence import IntegrityError, Recording

from infra.batching import BatchingThread, Reply
from infra.eventstore import EventStore
from infra.metrics import GROUP_COMMIT_BATCH, GROUP_COMMIT_SECONDS


class GroupCommitter(BatchingThread):
    def __init__(self, store: EventStore, max_batch: int = 500, max_wait_ms: float = 6.0) -> None:
        self.store = store
        self.batches = 0
        self.commands = 0
        self.seconds = 0.0  # spent committing batches (what the chain adds shows here)
        # Commands being prepared (handler running) that will commit soon: while there
        # are some, the committer waits up to max_wait for them to join its batch.
        self._preparing = 0
        self._preparing_lock = threading.Lock()
        super().__init__("group-commit", max_batch, max_wait_ms)

    def preparing(self, delta: int) -> None:
        """The bus says a command started (+1) or stopped (-1) preparing its events."""
        with self._preparing_lock:
            self._preparing += delta

    def commit(self, events: list[Any], *, was_preparing: bool = False) -> list[Recording[Any]]:
        """Blocks until the events are durably stored; returns their recordings.
        ``was_preparing``: the command had said ``preparing(+1)``; it is done preparing
        once its events are queued (not before, or the batch could close without them)."""
        future: Reply[list[Recording[Any]]] = Reply()
        if events:
            self._queue.put((events, future))
        if was_preparing:
            self.preparing(-1)
        if not events:
            return []
        return future.result()

    def _started(self) -> None:
        hold = getattr(self.store.recorder, "hold_connection", None)
        if hold is not None:  # PostgreSQL: the committer keeps one connection (see HeldConnection)
            hold()

    def _stopping(self) -> None:
        release = getattr(self.store.recorder, "release_connection", None)
        if release is not None:
            release()

    def _keep_waiting(self) -> bool:
        return self._preparing > 0

    def _handle(self, batch: list[Any]) -> None:
        started = time.perf_counter()
        self._commit_batch(batch)
        spent = time.perf_counter() - started
        self.seconds += spent
        GROUP_COMMIT_SECONDS.observe(spent)
        GROUP_COMMIT_BATCH.observe(len(batch))

    def _commit_batch(self, batch: list[tuple[list[Any], Reply[Any]]]) -> None:
        self.batches += 1
        self.commands += len(batch)
        # Two commands of one batch that wrote the same version of an aggregate cannot
        # both win: the later one loses now, without a round trip (the bus retries it).
        batch = self._refuse_duplicates(batch)
        # A conflict with what is already stored names the key that lost; only the
        # commands that wrote it fail, and the rest are committed again together, so one
        # stale command does not cost a transaction per command of its batch.
        while batch:
            try:
                recordings = self.store.save(*[e for events, _ in batch for e in events])
            except IntegrityError as exc:
                losers = _conflicting(batch, exc)
                if not losers:  # the error did not say which: settle each on its own
                    for events, future in batch:
                        self._commit_one(events, future)
                    return
                for _events, future in losers:
                    future.set_exception(exc)
                batch = [item for item in batch if item not in losers]
                continue
            except Exception as exc:
                if len(batch) > 1:
                    # One command's events could not be stored (a value JSON cannot hold…):
                    # settle each on its own, so that it fails alone and its neighbours commit.
                    for events, future in batch:
                        self._commit_one(events, future)
                    return
                batch[0][1].set_exception(exc)
                return
            except BaseException as exc:
                for _, future in batch:
                    future.set_exception(exc)
                return
            start = 0
            for events, future in batch:
                future.set_result(recordings[start : start + len(events)])
                start += len(events)
            return

    def _commit_one(self, events: list[Any], future: Reply[Any]) -> None:
        try:
            future.set_result(self.store.save(*events))
        except BaseException as exc:
            future.set_exception(exc)

    @staticmethod
    def _refuse_duplicates(batch: list[tuple[list[Any], Reply[Any]]]) -> list[tuple[list[Any], Reply[Any]]]:
        if len(batch) == 1:
            return batch
        taken: set[tuple[Any, int]] = set()
        kept = []
        for events, future in batch:
            keys = {(e.originator_id, e.originator_version) for e in events}
            if keys & taken:
                future.set_exception(IntegrityError("another command of the same transaction changed this aggregate first"))
                continue
            taken |= keys
            kept.append((events, future))
        return kept


_KEY = re.compile(r"\(originator_id, originator_version\)=\(([0-9a-fA-F-]{36}), (\d+)\)")


def _conflicting(batch: list[tuple[list[Any], Reply[Any]]], exc: IntegrityError) -> list[tuple[list[Any], Reply[Any]]]:
    """The commands of the batch that wrote the key PostgreSQL's error names."""
    match = _KEY.search(str(exc))
    if match is None:
        return []
    key = (uuid.UUID(match.group(1)), int(match.group(2)))
    return [item for item in batch if any((e.originator_id, e.originator_version) == key for e in item[0])]
