"""Read models, registered here by module: each module defines ``projection``.

``PROJECTIONS`` is every read model the read store keeps, in the order they are applied.
Adding a read model means adding its module to the import and to the tuple.
"""

from __future__ import annotations

from projections import (
    agent_desk,
    citizen_history,
    department_workload,
    notifications,
    request_status,
    sla_breaches,
    sla_timers,
    wallboard,
)
from projections.base import Projection

# The request lifecycle's read models (what the demo and the end-to-end tests check first).
FOUNDATION: tuple[Projection, ...] = (
    request_status.projection,
    citizen_history.projection,
    department_workload.projection,
    sla_breaches.projection,
)

PROJECTIONS: tuple[Projection, ...] = (
    *FOUNDATION,
    sla_timers.projection,
    notifications.projection,
    wallboard.projection,
    agent_desk.projection,
)


def all_projections() -> list[Projection]:
    return list(PROJECTIONS)


def by_name(name: str) -> Projection:
    for p in PROJECTIONS:
        if p.name == name:
            return p
    raise KeyError(f"no projection {name!r}; known: {[p.name for p in PROJECTIONS]}")
