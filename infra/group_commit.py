"""Group commit: many concurrent commands' events in one event-store transaction.

eventsourcing's PostgreSQL recorder takes a table lock for every insert, so only one
inserting transaction runs at a time and each pays a full fsync. Throughput therefore
comes from putting the events of every command that is waiting into one transaction.
A single committer thread drains the queue: under load, batches grow by themselves;
with one client, a batch is one command and nothing waits.

If a batch fails on a conflict (two commands changed the same aggregate), each command
of the batch is committed on its own, so only the loser gets the conflict.
"""

from __future__ import annotations

import queue
import threading
import time
from concurrent.futures import Future
from typing import Any

from eventsourcing.persistence import IntegrityError, Recording

from infra.eventstore import EventStore

_STOP = object()


class GroupCommitter:
    def __init__(self, store: EventStore, max_batch: int = 500, max_wait_ms: float = 0.0) -> None:
        self.store = store
        self.max_batch = max_batch
        self.max_wait = max_wait_ms / 1000
        self._queue: queue.Queue[Any] = queue.Queue()
        self._thread = threading.Thread(target=self._run, name="group-commit", daemon=True)
        self._thread.start()
        self.batches = 0
        self.commands = 0

    def commit(self, events: list[Any]) -> list[Recording[Any]]:
        """Blocks until the events are durably stored; returns their recordings."""
        if not events:
            return []
        future: Future[list[Recording[Any]]] = Future()
        self._queue.put((events, future))
        return future.result()

    def close(self) -> None:
        self._queue.put(_STOP)
        self._thread.join(timeout=10)

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            if item is _STOP:
                return
            batch = [item]
            deadline = time.monotonic() + self.max_wait
            while len(batch) < self.max_batch:
                try:
                    timeout = deadline - time.monotonic()
                    nxt = self._queue.get(timeout=timeout) if timeout > 0 else self._queue.get_nowait()
                except queue.Empty:
                    break
                if nxt is _STOP:
                    self._queue.put(_STOP)
                    break
                batch.append(nxt)
            self._commit_batch(batch)

    def _commit_batch(self, batch: list[tuple[list[Any], Future[Any]]]) -> None:
        self.batches += 1
        self.commands += len(batch)
        try:
            recordings = self.store.save(*[e for events, _ in batch for e in events])
        except IntegrityError as exc:
            if len(batch) == 1:
                batch[0][1].set_exception(exc)
                return
            for events, future in batch:
                try:
                    future.set_result(self.store.save(*events))
                except Exception as one_exc:
                    future.set_exception(one_exc)
            return
        except BaseException as exc:
            for _, future in batch:
                future.set_exception(exc)
            return
        start = 0
        for events, future in batch:
            future.set_result(recordings[start : start + len(events)])
            start += len(events)
