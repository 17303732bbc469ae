"""How the hotline handles a command: one handler per command class, one shape for all.

A handler is ``handler(uow, ctx, cmd) -> dict``: it loads aggregates through the unit of
work, calls their methods (where the rules live) and returns what the caller needs to
know. It does no I/O itself. Each bounded context keeps its handlers in its
``handlers.py`` and registers each against its command class with that context's
:class:`Handlers` (``@handles(Dispatch)``); ``infra/wiring.py`` lists the contexts, and the
command bus dispatches on ``type(cmd)``.

A command is complete: the aggregate it targets is one of its fields. Fields declared
as :data:`Target` come from the URL path (``/requests/{ref}/dispatch`` sets ``ref``), so
they are left out of the request body's schema.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Annotated, Any, ClassVar, Protocol, TypeVar

from pydantic import BaseModel, ConfigDict, Field
from pydantic.json_schema import SkipJsonSchema

from domain.access import Action, access_of, authorize
from domain.base import Context, HotlineAggregate, NotFound

A = TypeVar("A", bound=HotlineAggregate)


class _FromPath:
    """Marks a command field that the URL path fills (``/requests/{ref}/…`` → ``ref``)."""


FROM_PATH = _FromPath()
# A field set from the URL path, not from the body (hidden from the body's JSON Schema).
Target = Annotated[str, SkipJsonSchema(), FROM_PATH]


class Command(BaseModel):
    """What a user asks the hotline to do: typed, validated, transport-free.

    ``action`` names the permission it needs (domain/access.py): the command bus checks
    the actor's role before the handler runs; the handler checks the scope (own
    department, own case, assigned) once it has loaded what the command acts on.
    """

    model_config = ConfigDict(extra="forbid")
    action: ClassVar[Action]
    expected_version: int | None = Field(default=None, ge=1, description="Refuse with 409 unless the aggregate is at this version")

    @classmethod
    def targets(cls) -> tuple[str, ...]:
        """The fields that name the aggregate and come from the URL path."""
        return tuple(name for name, f in cls.model_fields.items() if _is_target(f))


def _is_target(field: Any) -> bool:
    return FROM_PATH in field.metadata


class UnitOfWork(Protocol):
    """The aggregates one command loads and adds; committed together (infra/unit_of_work.py)."""

    def get(self, cls: type[A], id: uuid.UUID) -> A:
        """The aggregate, or :class:`~domain.base.NotFound`."""
        ...

    def find(self, cls: type[A], id: uuid.UUID) -> A | None: ...

    def read(self, cls: type[A], id: uuid.UUID) -> A | None:
        """For reference data the command does not change (it must not be mutated)."""
        ...

    def add(self, aggregate: HotlineAggregate) -> None: ...

    def continue_case(self, aggregate: HotlineAggregate) -> None:
        """The command acts within this aggregate's case (its correlation id): for a case
        the handler only reads, such as the call a request is registered during."""
        ...


C = TypeVar("C", bound=Command)
Handler = Callable[[UnitOfWork, Context, Any], dict[str, Any]]
TypedHandler = Callable[[UnitOfWork, Context, C], dict[str, Any]]


@dataclass(frozen=True)
class Registration:
    command: type[Command]
    handler: Handler
    context: str
    # Who issues a command that no HTTP route takes (a background process, the CLI):
    # the module that builds it. tests/unit/test_wiring.py checks it really does.
    issued_by: tuple[str, ...] = ()


class Handlers:
    """One bounded context's command handlers, registered by command class."""

    def __init__(self, context: str) -> None:
        self.context = context
        self._by_command: dict[type[Command], Registration] = {}

    def __call__(self, command: type[C], *, issued_by: tuple[str, ...] = ()) -> Callable[[TypedHandler[C]], TypedHandler[C]]:
        def register(handler: TypedHandler[C]) -> TypedHandler[C]:
            if command in self._by_command:
                raise ValueError(f"{command.__name__} already handled by {self._by_command[command].handler.__name__}")
            self._by_command[command] = Registration(command, handler, self.context, issued_by)
            return handler

        return register

    def __iter__(self) -> Iterator[Registration]:
        return iter(self._by_command.values())

    def __len__(self) -> int:
        return len(self._by_command)


class CommandHandlers:
    """Every context's handlers together: what the command bus dispatches on."""

    def __init__(self, *contexts: Handlers) -> None:
        self._by_command: dict[type[Command], Registration] = {}
        for handlers in contexts:
            for registration in handlers:
                if registration.command in self._by_command:
                    raise ValueError(f"{registration.command.__name__} is handled in two contexts")
                self._by_command[registration.command] = registration

    def for_command(self, cmd: Command) -> Handler:
        return self.registration(type(cmd)).handler

    def registration(self, command: type[Command]) -> Registration:
        try:
            return self._by_command[command]
        except KeyError:
            raise TypeError(f"no handler for {command.__name__}: register one with @handles in its context") from None

    def __iter__(self) -> Iterator[Registration]:
        return iter(self._by_command.values())

    def __contains__(self, command: type[Command]) -> bool:
        return command in self._by_command


Agg = TypeVar("Agg", bound=HotlineAggregate)
AggregateAction = Callable[[UnitOfWork, Context, Agg, C], None]


def on_aggregate(
    load: Callable[[UnitOfWork, Any], Agg],
    summary: Callable[[Agg], dict[str, Any]],
    after: Callable[[UnitOfWork, Context, Agg], None] | None = None,
) -> Callable[[AggregateAction[Agg, C]], TypedHandler[C]]:
    """A decorator that makes a handler of an action on one aggregate: load the aggregate
    the command names, check the version it expects, act, do what always follows
    (``after``: a request replans its timers), and answer with the summary."""

    def decorate(action: AggregateAction[Agg, C]) -> TypedHandler[C]:
        def handler(uow: UnitOfWork, ctx: Context, cmd: C) -> dict[str, Any]:
            aggregate = load(uow, cmd)
            authorize(ctx.actor, cmd.action, access_of(aggregate))
            aggregate.expect_version(cmd.expected_version)
            action(uow, ctx, aggregate, cmd)
            if after is not None:
                after(uow, ctx, aggregate)
            return summary(aggregate)

        handler.__name__ = handler.__qualname__ = action.__name__
        handler.__doc__ = action.__doc__
        return handler

    return decorate


def parse_id(value: str, what: str) -> uuid.UUID:
    """An aggregate id from a path or a body; a malformed one names nothing (404)."""
    try:
        return uuid.UUID(value)
    except ValueError:
        raise NotFound(f"no {what} {value}") from None
