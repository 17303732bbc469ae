"""Idempotent commands: a retried command (same ``Idempotency-Key``) has no second effect.

The record's id derives from the key, and it is saved in the same transaction as the
command's own events. A retry therefore either finds the record (and gets the first
response back) or conflicts on insert with a concurrent first attempt: never both run.
"""

from __future__ import annotations

import hashlib
import uuid
from typing import Any

from domain.base import Context, HotlineAggregate, derived_id


def idempotency_id(key: str, scope: str) -> uuid.UUID:
    return derived_id("idempotency", f"{scope}\n{key}")


def fingerprint(payload: Any) -> str:
    return hashlib.sha256(repr(payload).encode()).hexdigest()


class IdempotencyRecord(HotlineAggregate):
    STREAM = "idempotency"
    PUBLISHED = False

    class Recorded(HotlineAggregate.Created):
        scope: str
        fingerprint: str
        response: dict[str, Any]

    def __init__(self, scope: str, fingerprint: str, response: dict[str, Any]) -> None:
        self.scope = scope
        self.fingerprint = fingerprint
        self.response = response

    @classmethod
    def record(cls, key: str, scope: str, payload_fingerprint: str, response: dict[str, Any], ctx: Context) -> IdempotencyRecord:
        return cls._start(cls.Recorded, idempotency_id(key, scope), ctx, scope=scope, fingerprint=payload_fingerprint, response=response)
