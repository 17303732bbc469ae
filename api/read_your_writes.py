"""Read-your-writes waits that hold no worker thread.

A query with ``min_position=P`` waits until the read models have applied event position P
(a command's answer carries its ``position``). Waiting used to sleep in the request's
worker thread, polling the database every 10 ms: 40 waiters filled the thread pool and
commands queued behind them. Now each waiter is a future on the server's event loop, and
one :class:`PositionWaiters` per process (per event loop) reads the visible frontier once
for all of them, on its own thread, whenever

* a waiter arrives (arrivals during a read are served by the next read: one read, many waiters),
* the live feed says a read-model batch committed (``infra/live_feed.py``: in-process,
  and PostgreSQL NOTIFY from the projection consumers in the distributed mode),
* :data:`POLL` passes while anyone waits (the relay recording its position, or a batch
  that touched no read model, sends no signal).

A position beyond the end of the event store is refused at once (:class:`PositionBeyondEnd`,
422): no command has been answered with it, so no wait can help. Embedded mode with the
in-process projector: a position it has applied returns at once; otherwise the projector
catches up in a pool thread, as before (bounded work, no waiting on other processes).
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import itertools
import logging
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING

from prometheus_client import Counter, Gauge
from starlette.concurrency import run_in_threadpool

from api.errors import PositionBeyondEnd, ProjectionLagging
from infra.metrics import REGISTRY

if TYPE_CHECKING:
    from infra.live_feed import Subscriber
    from infra.runtime import Hotline

log = logging.getLogger("hotline.read_your_writes")
POLL = 0.025  # seconds between frontier reads while anyone waits and nothing signals

WAITING = Gauge("hotline_read_your_writes_waiting", "Queries waiting for the read models to apply their min_position", registry=REGISTRY)
WAITS = Counter(
    "hotline_read_your_writes",
    "Queries with a min_position still to apply, by outcome (visible, lagging: 504, beyond_end: 422)",
    ["outcome"],
    registry=REGISTRY,
)
FRONTIER_READS = Counter(
    "hotline_read_your_writes_frontier_reads", "Reads of the visible position (one serves every waiter)", registry=REGISTRY
)


class PositionWaiters:
    """The read-your-writes waiters of one process on one event loop."""

    def __init__(self, hotline: Hotline, loop: asyncio.AbstractEventLoop) -> None:
        self.hotline = hotline
        self.loop = loop
        self.frontier = 0  # the highest visible position at the last read
        self.head = 0  # the highest position known to be stored (only grows)
        self.reads = 0  # frontier reads done (a test counts them)
        self._waiting: list[tuple[int, int, asyncio.Future[None]]] = []  # heap by position
        self._given_up = 0
        self._seq = itertools.count()
        self._wake = asyncio.Event()
        self._head_read: asyncio.Future[None] | None = None
        # One thread for this process's frontier and head reads: they never queue behind
        # the request thread pool, and never run more than one at a time.
        self._executor = ThreadPoolExecutor(1, thread_name_prefix="read-your-writes")
        self._tasks = [loop.create_task(self._serve(), name="read-your-writes")]
        # Distributed mode only: embedded, the projector applies in the waiter's call, and a
        # live-feed listener would make every in-process apply collect topics.
        subscriber = self._subscribe() if hotline.projector is None else None
        if subscriber is not None:
            self._tasks.append(loop.create_task(self._signals(subscriber), name="read-your-writes-signals"))

    @classmethod
    def of(cls, hotline: Hotline) -> PositionWaiters:
        """The process's waiters, made on the first wait on the running loop (a test's
        client may run several loops one after another: each gets its own)."""
        loop = asyncio.get_running_loop()
        waiters: PositionWaiters | None = hotline.extras.get("position_waiters")
        if waiters is None or waiters.loop is not loop:
            if waiters is not None:
                waiters.close()
            waiters = hotline.extras["position_waiters"] = cls(hotline, loop)
        return waiters

    # ------------------------------------------------------------------ waiting
    async def wait(self, position: int, timeout: float) -> None:
        """Returns once ``position`` is visible; :class:`ProjectionLagging` after ``timeout``
        seconds; :class:`PositionBeyondEnd` at once if the store has no such position."""
        await self._check_stored(position)
        future: asyncio.Future[None] = self.loop.create_future()
        heapq.heappush(self._waiting, (position, next(self._seq), future))
        self._wake.set()
        WAITING.inc()
        try:
            await asyncio.wait_for(future, timeout)
            WAITS.labels("visible").inc()
        except TimeoutError:
            WAITS.labels("lagging").inc()
            raise ProjectionLagging(
                f"the read models have applied position {self.frontier}, not yet {position}; retry shortly",
                applied_position=self.frontier,
                wanted_position=position,
            ) from None
        finally:
            WAITING.dec()
            if not future.done():
                future.cancel()  # the client went away
            if future.cancelled():
                self._forget_given_up()

    async def _check_stored(self, position: int) -> None:
        if position <= self.head:
            return
        # A read already under way may have started before this position was committed:
        # after it, read again once (both reads are shared by everyone arriving meanwhile).
        for _ in range(2):
            if self._head_read is None:
                self._head_read = self.loop.create_task(self._read_head())
            await asyncio.shield(self._head_read)
            if position <= self.head:
                return
        WAITS.labels("beyond_end").inc()
        raise PositionBeyondEnd(
            f"min_position {position} is beyond the end of the event store (position {self.head}): "
            "pass the position a command answered with",
            field="min_position",
            store_position=self.head,
        )

    async def _read_head(self) -> None:
        try:
            head = await self.loop.run_in_executor(self._executor, self.hotline.store.max_position)
            self.head = max(self.head, head)
        finally:
            self._head_read = None

    def _forget_given_up(self) -> None:
        """Drops timed-out waiters from the heap once they are most of it (a long outage)."""
        self._given_up += 1
        if self._given_up > 64 and self._given_up * 2 > len(self._waiting):
            self._waiting = [w for w in self._waiting if not w[2].done()]
            heapq.heapify(self._waiting)
            self._given_up = 0

    # ------------------------------------------------------------------ the reader
    def _read_frontier(self) -> int:
        hotline = self.hotline
        if hotline.settings.kafka_bootstrap_servers:
            # Kafka: per-partition positions and the relay's routes (one SQL statement).
            from consumers.kafka_projections import visible_position

            return visible_position(hotline.read_store)
        return hotline.read_store.applied_position()

    async def _serve(self) -> None:
        while True:
            if self._waiting:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), POLL)
            else:
                await self._wake.wait()
            self._wake.clear()
            if not self._waiting:
                continue
            try:
                frontier = await self.loop.run_in_executor(self._executor, self._read_frontier)
            except Exception as exc:  # the read store away: the waiters time out, then 504
                log.warning("read-your-writes: reading the frontier failed: %s", exc)
                await asyncio.sleep(POLL)
                continue
            self.reads += 1
            FRONTIER_READS.inc()
            self.frontier = frontier
            self.head = max(self.head, frontier)
            while self._waiting and self._waiting[0][0] <= frontier:
                _, _, future = heapq.heappop(self._waiting)
                if not future.done():
                    future.set_result(None)

    def _subscribe(self) -> Subscriber | None:
        """Every read model's topic on the process's live feed, when it runs on this loop."""
        from infra.live_feed import LiveFeed

        feed = LiveFeed.of(self.hotline)
        if feed.loop is not self.loop:
            return None  # a feed made on an earlier loop: polling alone
        return feed.subscribe(p.name for p in self.hotline.read_store.projections)

    async def _signals(self, subscriber: Subscriber) -> None:
        while True:
            if await subscriber.changed(timeout=3600):
                self._wake.set()

    def close(self) -> None:
        for task in self._tasks:
            if not self.loop.is_closed():
                self.loop.call_soon_threadsafe(task.cancel)
        self._executor.shutdown(wait=False, cancel_futures=True)

    async def aclose(self) -> None:
        """On its own loop (the server's shutdown): the tasks cancelled and awaited, so the
        loop does not close over pending ones."""
        tasks = [*self._tasks, *([self._head_read] if self._head_read is not None else [])]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._executor.shutdown(wait=False, cancel_futures=True)


async def close_waiters(hotline: Hotline) -> None:
    """The process's waiters closed at shutdown (if any wait ever happened)."""
    waiters: PositionWaiters | None = hotline.extras.pop("position_waiters", None)
    if waiters is None:
        return
    if waiters.loop is asyncio.get_running_loop():
        await waiters.aclose()
    else:
        waiters.close()


async def wait_for_position(hotline: Hotline, position: int | None, timeout: float | None = None) -> None:
    """Read-your-writes: returns when the read models have applied ``position`` (see the
    module); 504 after ``timeout`` seconds (``HOTLINE_READ_YOUR_WRITES_TIMEOUT``, 5)."""
    if not position:
        return
    if timeout is None:
        timeout = hotline.settings.read_your_writes_timeout
    projector = hotline.projector
    if projector is not None:
        if position <= projector.applied_position:
            return
        waiters = PositionWaiters.of(hotline)
        await waiters._check_stored(position)
        await run_in_threadpool(projector.catch_up, position)
        return
    await PositionWaiters.of(hotline).wait(position, timeout)
