"""What the CLI's commands share: the operator at the shell as an actor, and a started
hotline closed when the command ends."""

from __future__ import annotations

import getpass
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from domain.base import Actor
from infra.settings import Settings


def shell_actor(role: str) -> Actor:
    """The operator running the command, in ``role`` (the actor its events record)."""
    try:
        user = getpass.getuser()
    except Exception:  # no user name in a container: still the role, named by the tool
        user = "unknown"
    return Actor(f"cli:{user}", role, name=user)


@contextmanager
def started_hotline(settings: Settings) -> Iterator[Any]:
    """The hotline of these settings' data folder (or database), closed when the command ends."""
    from infra.runtime import Hotline

    hotline = Hotline.start(settings)
    try:
        yield hotline
    finally:
        hotline.close()
