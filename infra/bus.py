"""The command bus: runs a command as one atomic, idempotent unit of work.

For each command: find its handler by the command's class (``infra/wiring.py``),
build the context (actor, injected time, correlation, the jurisdiction's configuration),
run the handler against a fresh unit of work, commit all its events through the group committer, and
tell the read side the new position. A write that lost a race is retried from a fresh
load, unless the client named the version it expected (then it gets the 409).

While a command runs, its name, correlation and causation ids and actor are bound to
structlog's context variables of the calling thread: every log line of its work carries
them (``infra/logging.py``). Each command's outcome and duration go to the Prometheus
registry (``infra/metrics.py``).
"""

from __future__ import annotations

import logging
import random
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from eventsourcing.application import AggregateNotFoundError
from eventsourcing.persistence import IntegrityError
from structlog.contextvars import bind_contextvars, reset_contextvars

from domain.access import authorize
from domain.base import Actor, Clock, ConcurrencyConflict, Context, DomainError, InvalidCommand
from domain.config import Deps
from domain.handling import Command, CommandHandlers
from domain.idempotency import IdempotencyRecord, fingerprint, idempotency_id
from infra.eventstore import EventStore
from infra.group_commit import GroupCommitter
from infra.metrics import observe_command
from infra.unit_of_work import EventStoreUnitOfWork

log = logging.getLogger("hotline.bus")


@dataclass
class CommandResult:
    result: dict[str, Any]
    position: int  # global position of the command's last event: read-your-writes
    replayed: bool = False  # answered from the idempotency record, nothing done again


class CommandBus:
    def __init__(
        self,
        store: EventStore,
        committer: GroupCommitter,
        deps: Deps,
        clock: Clock,
        handlers: CommandHandlers,
        after_commit: Callable[[int], object] | None = None,
        retries: int = 30,
    ) -> None:
        self.store = store
        self.committer = committer
        self.deps = deps
        self.clock = clock
        self.after_commit = after_commit
        self.retries = retries
        self.handlers = handlers

    def execute(
        self,
        cmd: Command,
        actor: Actor,
        *,
        idempotency_key: str | None = None,
        idempotency_scope: str | None = None,
        correlation_id: str | None = None,
        causation_id: str | None = None,
    ) -> CommandResult:
        """Runs ``cmd`` as ``actor``: its handler is the one registered for its class."""
        name = type(cmd).__name__
        # One correlation and causation id for every attempt: the log lines of a command
        # that is retried after a lost race belong together.
        correlation_given = correlation_id is not None
        correlation_id = correlation_id or _new_id()
        causation_id = causation_id or _new_id()
        # Bound in this thread only (the group committer's thread has its own context),
        # and reset afterwards to what the caller had bound.
        tokens = bind_contextvars(
            command=name, correlation_id=correlation_id, causation_id=causation_id, actor_id=actor.id, actor_role=actor.role
        )
        started = time.perf_counter()
        outcome = "error"
        try:
            # The role may take this action at all (domain/access.py); the handler checks
            # the scope once it has loaded what the command acts on.
            authorize(actor, type(cmd).action)
            answer = self._execute(cmd, name, actor, idempotency_key, idempotency_scope, correlation_id, causation_id, correlation_given)
            outcome = "replayed" if answer.replayed else "ok"
            if log.isEnabledFor(logging.DEBUG):
                log.debug("command done: position %d%s", answer.position, " (replayed)" if answer.replayed else "")
            return answer
        except ConcurrencyConflict as exc:
            outcome = "conflict"
            log.debug("command conflict: %s", exc)
            raise
        except DomainError as exc:
            outcome = "refused"
            log.debug("command refused (%s): %s", exc.code, exc)
            raise
        except Exception:
            log.exception("command failed")
            raise
        finally:
            observe_command(name, outcome, time.perf_counter() - started)
            reset_contextvars(**tokens)

    def _execute(
        self,
        cmd: Command,
        name: str,
        actor: Actor,
        idempotency_key: str | None,
        idempotency_scope: str | None,
        correlation_id: str,
        causation_id: str,
        correlation_given: bool = True,
    ) -> CommandResult:
        handler = self.handlers.for_command(cmd)
        scope = idempotency_scope or name
        # Only an idempotent command needs its payload's fingerprint (a dump and a hash).
        payload_print = fingerprint((name, cmd.model_dump(mode="json"))) if idempotency_key else ""
        if idempotency_key:
            earlier = self._earlier(idempotency_key, scope, payload_print)
            if earlier is not None:
                return earlier
        expects_version = cmd.expected_version is not None
        for attempt in range(self.retries):
            ctx = Context(
                actor=actor,
                now=self.clock.now(),
                correlation_id=correlation_id,
                causation_id=causation_id,
                correlation_given=correlation_given,
                deps=self.deps,
            )
            uow = EventStoreUnitOfWork(self.store)
            self.committer.preparing(+1)
            try:
                result = handler(uow, ctx, cmd)
                events = uow.collect_events(correlation_given)
                if idempotency_key:
                    record = IdempotencyRecord.record(idempotency_key, scope, payload_print, result, ctx)
                    events.extend(record.collect_events())
            except DomainError:
                self.committer.preparing(-1)
                # Refused on cached copies: refuse only what the stored state refuses.
                # (What the handler checked out is dropped, possibly half changed.)
                if attempt > 0 or not uow.seen:
                    # Refused on the stored state: what the handler left unchanged goes
                    # back into the cache (else the next command rebuilds it, and an
                    # agent's stream holds a whole day of contacts).
                    self.store.remember([a for a in uow.seen.values() if not a._pending_events])
                    raise
                continue
            except BaseException:
                self.committer.preparing(-1)
                raise
            try:
                recordings = self.committer.commit(events, was_preparing=True)
            except IntegrityError:
                # A cached copy was stale (or another writer won the race): what the
                # command checked out is dropped, and the rerun loads from the store.
                # Somebody else may have created what we thought absent: reference data
                # is checked against the store before the retry reads it.
                self.store.reference_cache.expire()
                if idempotency_key:
                    earlier = self._earlier(idempotency_key, scope, payload_print)
                    if earlier is not None:
                        return earlier
                if expects_version:
                    raise ConcurrencyConflict("the aggregate was changed by someone else: reload and retry") from None
                # Jittered backoff so that writers racing for one hot aggregate spread out.
                time.sleep(random.uniform(0, 0.002 * (attempt + 1)))
                continue
            self.store.remember(uow.seen.values())
            position = recordings[-1].notification.id if recordings else 0
            result = dict(result)
            if self.after_commit and position:
                self.after_commit(position)
            return CommandResult(result, position)
        raise ConcurrencyConflict("too many concurrent changes to the same records: retry")

    def _earlier(self, key: str, scope: str, payload_print: str) -> CommandResult | None:
        try:
            record: IdempotencyRecord = self.store.repository.get(idempotency_id(key, scope))
        except AggregateNotFoundError:
            return None
        if record.fingerprint != payload_print:
            raise InvalidCommand(
                "this Idempotency-Key was already used for a different request",
                code="idempotency_key_reused",
            )
        # The first answer, and a position to read it at: the log's head now (at or after
        # the first commit), so a client retrying because it lost that answer can still
        # ask for min_position and see what it did.
        return CommandResult(dict(record.response), position=self.store.max_position(), replayed=True)


def _new_id() -> str:
    """A random (version 4) UUID for correlation and causation: these only tell commands
    apart, so the fast generator will do (``uuid4`` asks the kernel, twice per command)."""
    return str(uuid.UUID(int=random.getrandbits(128), version=4))
