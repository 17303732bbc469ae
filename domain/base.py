"""What every aggregate and event of the hotline shares.

* Every event carries ``meta``: who did it (actor id and role), the correlation id (the
  whole case or conversation) and the causation id (the command or event that caused it).
  Auditors replay by these; authorisation checks them.
* Time is injected: a command receives a :class:`Context` whose ``now`` becomes the
  event's ``timestamp``. Domain code never reads the wall clock.
* Citizen personal data lives only in event fields named ``personal`` (a dict), so it can
  be encrypted per citizen, erased by destroying the key, and masked for integrators.
* Every event has a stable public type name, ``hotline.<stream>.<event>.v<n>``, used on
  Kafka, in JSON Schemas and by projections; the Python class path is a storage detail.
"""

from __future__ import annotations

import functools
import re
import sys
import uuid
from dataclasses import dataclass, field, fields, replace
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, ClassVar, Protocol, TypeVar

from eventsourcing.domain import Aggregate

if TYPE_CHECKING:
    from domain.config import Deps

# Namespace for ids derived from natural keys (reference numbers, phone numbers,
# idempotency keys): deriving the id makes "create if absent" an atomic insert that
# conflicts in the event store instead of a read-then-write race.
HOTLINE_NS = uuid.UUID("6f1d3c1e-2f7a-4c55-9a51-1a0c8e6b5d21")


@functools.lru_cache(maxsize=4096)
def derived_id(kind: str, natural_key: str) -> uuid.UUID:
    # Cached: a name-based UUID costs a SHA-1, and every command asks for the
    # catalogue's and the calendar's.
    return uuid.uuid5(HOTLINE_NS, f"{kind}:{natural_key}")


# ---------------------------------------------------------------------------- errors
class DomainError(Exception):
    """A command was refused. ``code`` is stable and machine-readable; how each kind of
    refusal is answered over HTTP is decided in ``api/errors.py``."""

    code = "invalid_command"

    def __init__(self, message: str, *, code: str | None = None, **details: Any) -> None:
        super().__init__(message)
        self.message = message
        if code:
            self.code = code
        self.details = details


class InvalidCommand(DomainError):
    """The command's content is wrong whatever the state."""


class InvalidTransition(DomainError):
    """The command makes no sense in the aggregate's current state."""

    code = "invalid_state"


class Forbidden(DomainError):
    """The acting user's role or scope does not allow this."""

    code = "forbidden"


class NotFound(DomainError):
    code = "not_found"


class ConcurrencyConflict(DomainError):
    """Somebody else changed the aggregate first: reload and retry."""

    code = "version_conflict"


# ---------------------------------------------------------------------------- actors
ROLES = (
    "citizen",
    "agent",
    "expert",
    "supervisor",
    "department",
    "control_office",
    "analyst",
    "auditor",
    "integrator",
    "administrator",
    "system",
)


@dataclass(frozen=True)
class Actor:
    """Who acts: a signed-in user, an API key, a citizen, or a process of the hotline.

    ``role`` is recorded on every event; ``roles`` are all the roles the sign-in carries
    (the policy in domain/access.py allows what any of them allows).
    """

    id: str
    role: str
    name: str | None = None
    roles: tuple[str, ...] = ()  # default: (role,)
    departments: tuple[str, ...] = ()  # a department user's departments
    citizen_id: str | None = None  # a signed-in citizen's own record
    # An API key's scope: the actions it may take (None: all its role may).
    allowed_actions: frozenset[str] | None = None
    via: str | None = None  # how they signed in: "token", "api_key:<id>", "gateway"

    def __post_init__(self) -> None:
        if not self.roles:
            object.__setattr__(self, "roles", (self.role,))
        for role in (self.role, *self.roles):
            if role not in ROLES:
                raise InvalidCommand(f"unknown actor role {role!r}", roles=list(ROLES))
        if self.role not in self.roles:
            raise InvalidCommand(f"role {self.role!r} is not among the actor's roles {list(self.roles)}")


SYSTEM = Actor(id="system", role="system", name="Hotline")


# How far behind an aggregate's last event a command's time may be and still be applied
# (at the aggregate's time): clock skew between API nodes, the router and the timers.
MAX_CLOCK_SKEW = timedelta(seconds=30)


class Clock(Protocol):
    def now(self) -> datetime: ...


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)


@dataclass
class FixedClock:
    """A clock tests and the simulator move by hand."""

    current: datetime

    def now(self) -> datetime:
        return self.current

    def advance(self, **delta: float) -> datetime:
        self.current = self.current + timedelta(**delta)
        return self.current


def _default_deps() -> Deps:
    from domain.config import Deps

    return Deps()


@dataclass(frozen=True)
class Context:
    """Who issues a command, when, as part of what, and in which jurisdiction."""

    actor: Actor
    now: datetime
    correlation_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    causation_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    # Given by the caller (an X-Correlation-Id header, the event a consumer reacts to): the
    # command's events carry it. Otherwise they continue the case they act on (see
    # HotlineAggregate.CASE and infra/unit_of_work.py).
    correlation_given: bool = True
    # The jurisdiction's configuration the handlers need (intake policy, calendar, SLA).
    deps: Deps = field(default_factory=_default_deps, compare=False, repr=False)

    def __post_init__(self) -> None:
        if self.now.tzinfo is None:
            raise InvalidCommand("time must be timezone-aware")

    def meta(self) -> dict[str, Any]:
        return {
            "actor_id": self.actor.id,
            "actor_role": self.actor.role,
            "actor_name": self.actor.name,
            "correlation_id": self.correlation_id,
            "causation_id": self.causation_id,
        }

    def caused_by(self, causation_id: str) -> Context:
        return replace(self, causation_id=causation_id)


# ---------------------------------------------------------------------------- aggregates
def snake_case(name: str) -> str:
    """``ReturnToDispatcher`` → ``return_to_dispatcher`` (event names, route names)."""
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


T = TypeVar("T", bound="HotlineAggregate")


def aggregate_state(aggregate: Any) -> dict[str, Any]:
    """What the aggregate's events made it: its attributes without the library's pending
    events and without memos (``_memo_*``: answers derived from that state, kept to save
    work, and rebuilt when missing)."""
    return {k: v for k, v in vars(aggregate).items() if k != "_pending_events" and not k.startswith("_memo_")}


class HotlineAggregate(Aggregate):
    """Base aggregate: explicit event classes, injected time, metadata on every event.

    ``STREAM`` names the aggregate type publicly (Kafka topic ``hotline.<STREAM>s``
    and event types ``hotline.<STREAM>.<event>.v1``).
    """

    STREAM: ClassVar[str] = "aggregate"
    # False for the hotline's own bookkeeping (idempotency records, identity claims):
    # never published to Kafka or analytics.
    PUBLISHED: ClassVar[bool] = True
    # A part of one citizen's case (the call, the request, its work orders, the messages,
    # attachments): its events carry the correlation id it was created with, and what a
    # command creates while acting on it inherits that id, so one correlation id traces the
    # whole case across aggregates (GET /audit/trace/{correlation_id}).
    CASE: ClassVar[bool] = False
    # Every aggregate class of the domain, registered by its definition (domain/events.py).
    DEFINED: ClassVar[list[type[HotlineAggregate]]] = []

    def __init_subclass__(cls, **kw: Any) -> None:
        super().__init_subclass__(**kw)
        if cls.__module__.startswith("domain.") and "STREAM" in vars(cls):
            HotlineAggregate.DEFINED.append(cls)

    class Event(Aggregate.Event):
        meta: dict[str, Any]
        SCHEMA_VERSION: ClassVar[int] = 1

    class Created(Event, Aggregate.Created):
        def mutate(self, aggregate: Any) -> Any:
            created: Any = super().mutate(aggregate)
            created.correlation_id = self.meta.get("correlation_id")  # the case this aggregate belongs to
            return created

    @classmethod
    def _start(cls: type[T], event_class: type[Aggregate.Created], id: uuid.UUID, ctx: Context, **data: Any) -> T:
        return cls._create(event_class, id=id, meta=ctx.meta(), timestamp=ctx.now, **data)  # type: ignore[return-value,arg-type]

    def _record(self, event_class: type[Aggregate.Event], ctx: Context, **data: Any) -> None:
        at = ctx.now
        if at < self.modified_on:
            # Events of one aggregate never go back in time: deadlines and ageing rely on it.
            # A command a little behind the last event comes from a node whose clock lags
            # (or lost a race by a few milliseconds): it happens at the aggregate's time.
            # Far behind means a clock is wrong or the store holds events from the future.
            if self.modified_on - at > MAX_CLOCK_SKEW:
                raise InvalidCommand(
                    "command time is earlier than the aggregate's last event by more than the clock skew allowed",
                    last_event_at=self.modified_on.isoformat(),
                    command_time=at.isoformat(),
                    max_skew_seconds=MAX_CLOCK_SKEW.total_seconds(),
                )
            at = self.modified_on
        self.trigger_event(event_class, meta=ctx.meta(), timestamp=at, **data)

    def expect_version(self, expected: int | None) -> None:
        if expected is not None and expected != self.version:
            raise ConcurrencyConflict(
                f"{self.STREAM} {self.id} is at version {self.version}, not {expected}",
                current_version=self.version,
                expected_version=expected,
            )


def event_name(event_class: type) -> str:
    """The event's short name, its class name in snake case: ``registered`` for
    ``ServiceRequest.Registered`` (the middle of its public type name)."""
    return snake_case(event_class.__name__)


def event_type_name(event_class: type) -> str:
    """Public, stable type name: ``hotline.request.registered.v1``."""
    owner = _owner_of(event_class)
    version = getattr(event_class, "SCHEMA_VERSION", 1)
    return f"hotline.{owner.STREAM}.{event_name(event_class)}.v{version}"


def stream_topic(aggregate_class: type[HotlineAggregate]) -> str:
    return f"hotline.{aggregate_class.STREAM}s"


def _owner_of(event_class: type) -> type[HotlineAggregate]:
    qual = event_class.__qualname__.split(".")
    module = sys.modules[event_class.__module__]  # the class's own module, already imported
    owner: Any = module
    for part in qual[:-1]:
        owner = getattr(owner, part)
    if not (isinstance(owner, type) and issubclass(owner, HotlineAggregate)):
        raise TypeError(f"{event_class} is not nested in a HotlineAggregate")
    return owner


def event_payload(event: Any) -> dict[str, Any]:
    """The event's own fields (not the library's bookkeeping ones)."""
    skip = {"originator_id", "originator_version", "timestamp", "originator_topic", "meta"}
    return {f.name: getattr(event, f.name) for f in fields(event) if f.name not in skip}


def event_classes(aggregate_class: type[HotlineAggregate]) -> list[type]:
    """Every concrete event class nested in an aggregate, its own creation event included
    (``WorkOrder.Created`` is published as ``hotline.workorder.created.v1``; the
    ``Created`` every aggregate inherits is not its own and is left out)."""
    found = []
    for name in dir(aggregate_class):
        value = getattr(aggregate_class, name)
        if (
            isinstance(value, type)
            and issubclass(value, HotlineAggregate.Event)
            and name != "Event"
            and value.__qualname__.startswith(aggregate_class.__qualname__ + ".")
        ):
            found.append(value)
    return found
