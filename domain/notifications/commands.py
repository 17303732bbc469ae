"""Notification commands: queue a message once, record each attempt and its outcome."""

from __future__ import annotations

from pydantic import Field

from domain.access import Action
from domain.handling import Command, Target
from domain.notifications.aggregate import RetryPolicy
from domain.notifications.messages import MessageSpec


class QueueNotification(Command):
    """Queue once: the id derives from the message's key, so a second queueing is a no-op."""

    action = Action.NOTIFICATIONS_DELIVER

    message: MessageSpec


class StartAttempt(Command):
    action = Action.NOTIFICATIONS_DELIVER

    notification_id: str


class RecordOutcome(Command):
    action = Action.NOTIFICATIONS_DELIVER

    notification_id: str
    delivered: bool
    detail: str | None = Field(default=None, description="Provider reference when delivered, error otherwise")
    permanent: bool = Field(default=False, description="A failure no retry will cure")
    retry: RetryPolicy = Field(default_factory=RetryPolicy)


class ResolveInDoubt(Command):
    """An attempt whose outcome is unknown (the notifier died while sending)."""

    action = Action.NOTIFICATIONS_DELIVER

    notification_id: str
    retry: RetryPolicy = Field(default_factory=RetryPolicy)


class RetryNotification(Command):
    """An operator sends a dead-lettered message again."""

    action = Action.NOTIFICATIONS_RETRY

    notification_id: Target = ""
    reason: str | None = Field(default=None, max_length=2000)
