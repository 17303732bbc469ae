"""Queues: where waiting contacts line up, with the rules the router applies to them."""

from __future__ import annotations

import functools
import uuid
from typing import Any

from domain.base import Context, HotlineAggregate, InvalidCommand, derived_id
from domain.contact_center.rules import QueueRules, queue_rules


@functools.lru_cache(maxsize=4096)
def queue_uuid(queue_id: str) -> uuid.UUID:
    # Cached: a name-based UUID costs a SHA-1, and routing asks for each decision.
    return derived_id("queue", queue_id)


class Queue(HotlineAggregate):
    STREAM = "queue"

    class Defined(HotlineAggregate.Created):
        """A contact-center queue was defined, with its names and configuration."""

        queue_id: str
        names: dict[str, str]
        config: dict[str, Any]

    class Reconfigured(HotlineAggregate.Event):
        """A queue's configuration changed (service level, overflow, opening hours, skills …)."""

        queue_id: str
        config: dict[str, Any]

        def apply(self, q: Queue) -> None:
            q.config = dict(self.config)

    def __init__(self, queue_id: str, names: dict[str, str], config: dict[str, Any]) -> None:
        self.queue_id = queue_id
        self.names = names
        self.config = dict(config)

    @property
    def rules(self) -> QueueRules:
        return queue_rules(self.queue_id, self.config)

    @classmethod
    def define(cls, queue_id: str, names: dict[str, str], config: dict[str, Any], ctx: Context) -> Queue:
        if not queue_id or not queue_id.replace("_", "").replace("-", "").isalnum():
            raise InvalidCommand("a queue id is letters, digits, '-' and '_'")
        rules = QueueRules.parse(queue_id, config)
        return cls._start(cls.Defined, queue_uuid(queue_id), ctx, queue_id=queue_id, names=names, config=rules.as_config())

    def reconfigure(self, changes: dict[str, Any], ctx: Context) -> None:
        merged = {**self.config, **changes}
        rules = QueueRules.parse(self.queue_id, merged)
        if rules.as_config() != self.config:
            self._record(self.Reconfigured, ctx, queue_id=self.queue_id, config=rules.as_config())
