"""Abuse limits on the public endpoints (the ``limits`` library).

One process: counters in memory. Several (PostgreSQL is the store): counters in
PostgreSQL (infra/rate_limit_store.py), so a limit holds across the API processes.
A refusal is :class:`LimitExceeded`: 429 with ``Retry-After``.
"""

from __future__ import annotations

import time
from functools import lru_cache
from typing import TYPE_CHECKING

from limits import RateLimitItem, parse
from limits.storage import MemoryStorage, Storage
from limits.strategies import FixedWindowRateLimiter

from domain.base import DomainError

if TYPE_CHECKING:
    from infra.runtime import Hotline


class LimitExceeded(DomainError):
    """Too many requests from one address or subject (HTTP 429 with Retry-After)."""

    code = "rate_limited"


class RateLimits:
    def __init__(self, storage: Storage, *, shared: bool = False) -> None:
        self.limiter = FixedWindowRateLimiter(storage)
        self.shared = shared  # counters in a database: each hit is a round trip

    @classmethod
    def for_hotline(cls, hotline: Hotline) -> RateLimits:
        if hotline.settings.database_url:
            from infra.rate_limit_store import PostgresStorage

            return cls(PostgresStorage(hotline.read_store.engine), shared=True)
        return cls(MemoryStorage())

    def hit(self, name: str, limit: str, who: str) -> None:
        """Counts one; refuses (429) past ``limit`` (e.g. ``"10/minute"``) for ``who``."""
        item = _item(limit)
        if self.limiter.hit(item, name, who):
            return
        self._refuse(item, name, limit, who)

    def check(self, name: str, limit: str, who: str) -> None:
        """Refuses (429) while ``who`` is past ``limit``, counting nothing (what counts is
        hit later: a failure, say)."""
        item = _item(limit)
        if not self.limiter.test(item, name, who):
            self._refuse(item, name, limit, who)

    def _refuse(self, item: RateLimitItem, name: str, limit: str, who: str) -> None:
        reset = self.limiter.get_window_stats(item, name, who).reset_time
        raise LimitExceeded(
            f"more than {limit} for {name}: try again shortly", retry_after=max(1, int(reset - time.time()) + 1), limit=limit
        )


@lru_cache(maxsize=64)
def _item(limit: str) -> RateLimitItem:
    return parse(limit)
