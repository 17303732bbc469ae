"""A citizen signs in without a password: a one-time code sent to their phone or email.

One stream per phone number or email (its id derives from the identifier). A code lives
ten minutes and is good once; a new code replaces the old; wrong codes count, and the
fifth locks the identifier out for a quarter of an hour. Only the code's hash is kept,
and the stream is never published.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

from domain.base import Context, DomainError, HotlineAggregate, derived_id

CODE_TTL = timedelta(minutes=10)
RESEND_AFTER = timedelta(seconds=60)
MAX_FAILURES = 5
LOCKOUT = timedelta(minutes=15)


class TooManyAttempts(DomainError):
    """Slow down: a lockout or a resend too soon (HTTP 429 with Retry-After)."""

    code = "too_many_attempts"


def sign_in_id(identifier: str) -> uuid.UUID:
    return derived_id("citizen-sign-in", identifier)


class CitizenSignIn(HotlineAggregate):
    STREAM = "citizen_sign_in"
    PUBLISHED = False

    class Started(HotlineAggregate.Created):
        identifier_kind: str

    class CodeIssued(HotlineAggregate.Event):
        code_hash: str
        expires_at: datetime

        def apply(self, s: CitizenSignIn) -> None:
            s.code_hash, s.expires_at, s.failures, s.issued_at = self.code_hash, self.expires_at, 0, self.timestamp

    class CodeRejected(HotlineAggregate.Event):
        failures: int

        def apply(self, s: CitizenSignIn) -> None:
            s.failures = self.failures

    class LockedOut(HotlineAggregate.Event):
        until: datetime

        def apply(self, s: CitizenSignIn) -> None:
            s.locked_until, s.code_hash = self.until, None

    class CodeAccepted(HotlineAggregate.Event):
        def apply(self, s: CitizenSignIn) -> None:
            s.code_hash = None

    def __init__(self, identifier_kind: str) -> None:
        self.identifier_kind = identifier_kind
        self.code_hash: str | None = None
        self.expires_at: datetime | None = None
        self.issued_at: datetime | None = None
        self.failures = 0
        self.locked_until: datetime | None = None

    @classmethod
    def start(cls, identifier: str, ctx: Context) -> CitizenSignIn:
        return cls._start(cls.Started, sign_in_id(identifier), ctx, identifier_kind=identifier.split(":", 1)[0])

    def _check_not_locked(self, now: datetime) -> None:
        if self.locked_until is not None and now < self.locked_until:
            raise TooManyAttempts("too many wrong codes: try again later", retry_after=int((self.locked_until - now).total_seconds()) + 1)

    def issue_code(self, code_hash: str, ctx: Context) -> None:
        self._check_not_locked(ctx.now)
        if self.issued_at is not None and self.code_hash is not None and ctx.now < self.issued_at + RESEND_AFTER:
            wait = int((self.issued_at + RESEND_AFTER - ctx.now).total_seconds()) + 1
            raise TooManyAttempts("a code was sent a moment ago: wait before asking for another", retry_after=wait)
        self._record(self.CodeIssued, ctx, code_hash=code_hash, expires_at=ctx.now + CODE_TTL)

    def verify(self, matches: bool, ctx: Context) -> str | None:
        """Why the code is refused (recorded: wrong codes count), or None when accepted."""
        self._check_not_locked(ctx.now)
        if self.code_hash is None or self.expires_at is None:
            return "no code is waiting: ask for a new one"
        if ctx.now >= self.expires_at:
            return "the code has expired: ask for a new one"
        if not matches:
            failures = self.failures + 1
            self._record(self.CodeRejected, ctx, failures=failures)
            if failures >= MAX_FAILURES:
                self._record(self.LockedOut, ctx, until=ctx.now + LOCKOUT)
                return "wrong code; too many wrong codes: locked for a while"
            return "wrong code"
        self._record(self.CodeAccepted, ctx)
        return None
