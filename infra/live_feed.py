""" "This changed", from the read models to whoever shows them live.

The read store calls :meth:`LiveFeed.publish` after each applied batch commits, with the
topics it touched: a read model's name and its keys (``agent_desk:agent-7``,
``request_status:department-transport``; ``Projection.signals`` names the keys). Server
push (the console's SSE connection, the API's ``/live/*`` feeds) waits on a
:class:`Subscriber` instead of polling the database. A signal carries no data.
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from infra.runtime import Hotline

log = logging.getLogger(__name__)
# The distributed mode's projections run in other processes: they announce their changes
# with PostgreSQL's NOTIFY on this channel, inside the transaction that applies them (so
# a signal goes out only for what committed), and each API process LISTENs.
CHANNEL = "hotline_live"
PAYLOAD_BYTES = 7000  # NOTIFY's payload must stay under 8000 bytes


class Subscriber:
    def __init__(self, topics: frozenset[str]) -> None:
        self.topics = topics
        self.pending: set[str] = set()  # the read models' names that changed since the last take
        self.wake = asyncio.Event()

    async def changed(self, timeout: float) -> set[str]:
        """What changed since the last call, waiting up to ``timeout`` (empty: nothing did)."""
        try:
            await asyncio.wait_for(self.wake.wait(), timeout)
        except TimeoutError:
            return set()
        self.wake.clear()
        taken, self.pending = self.pending, set()
        return taken


class LiveFeed:
    """Fan-out of "this changed" to the subscribers of one process (one event loop)."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.by_topic: dict[str, set[Subscriber]] = {}

    def publish(self, topics: Iterable[str]) -> None:
        """From any thread (the projector's, a listener's): handed to the event loop."""
        changed = frozenset(topics)
        if changed and not self.loop.is_closed():
            self.loop.call_soon_threadsafe(self._deliver, changed)

    def _deliver(self, topics: frozenset[str]) -> None:
        for topic in topics:
            for subscriber in self.by_topic.get(topic, ()):
                subscriber.pending.add(topic.partition(":")[0])
                subscriber.wake.set()

    def subscribe(self, topics: Iterable[str]) -> Subscriber:
        subscriber = Subscriber(frozenset(topics))
        for topic in subscriber.topics:
            self.by_topic.setdefault(topic, set()).add(subscriber)
        return subscriber

    def unsubscribe(self, subscriber: Subscriber) -> None:
        for topic in subscriber.topics:
            watchers = self.by_topic.get(topic)
            if watchers is not None:
                watchers.discard(subscriber)
                if not watchers:
                    del self.by_topic[topic]

    @property
    def connections(self) -> int:
        return len({s for subs in self.by_topic.values() for s in subs})

    @classmethod
    def of(cls, hotline: Hotline) -> LiveFeed:
        """The process's feed, made on the first subscription (on the server's event loop)
        and fed by its read store."""
        feed: LiveFeed | None = hotline.extras.get("live_feed")
        if feed is None:
            feed = hotline.extras.setdefault("live_feed", cls(asyncio.get_running_loop()))
            hotline.read_store.listeners.append(feed.publish)
            engine = hotline.read_store.engine
            if hotline.projector is None and engine.dialect.name == "postgresql":
                stop = threading.Event()
                hotline.extras["live_feed_stop"] = stop
                url = engine.url.set(drivername="postgresql").render_as_string(hide_password=False)
                threading.Thread(target=listen, args=(feed, url, stop), name="live-feed-listen", daemon=True).start()
        return feed


def notify_payloads(topics: Iterable[str]) -> Iterator[str]:
    """The topics as JSON lists, each small enough for one NOTIFY."""
    chunk: list[str] = []
    size = 2
    for topic in sorted(topics):
        if chunk and size + len(topic) + 3 > PAYLOAD_BYTES:
            yield json.dumps(chunk)
            chunk, size = [], 2
        chunk.append(topic)
        size += len(topic.encode()) + 3
    if chunk:
        yield json.dumps(chunk)


def notify(conn: Any, topics: Iterable[str]) -> None:
    """Inside the applying transaction (a SQLAlchemy connection on PostgreSQL)."""
    for payload in notify_payloads(topics):
        conn.exec_driver_sql("SELECT pg_notify(%s, %s)", (CHANNEL, payload))


def listen(feed: LiveFeed, url: str, stop: threading.Event) -> None:
    """LISTENs on the channel and hands each signal to the feed, reconnecting after a
    failure (the read store's server restarting), until ``stop``."""
    import psycopg

    while not stop.is_set():
        try:
            with psycopg.connect(url, autocommit=True) as conn:
                conn.execute(f"LISTEN {CHANNEL}")
                while not stop.is_set():
                    for note in conn.notifies(timeout=1.0):
                        feed.publish(json.loads(note.payload))
        except Exception as exc:
            log.warning("live feed: listening on PostgreSQL failed (%s); again in 2 s", exc)
            stop.wait(2.0)
