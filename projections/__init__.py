"""Read models. ``ALL`` lists every projection the read store keeps."""

from __future__ import annotations

from projections import citizen_history, department_workload, request_status, sla_breaches
from projections.base import Projection

FOUNDATION: list[Projection] = [
    request_status.projection,
    citizen_history.projection,
    department_workload.projection,
    sla_breaches.projection,
]


def all_projections() -> list[Projection]:
    """Every projection, found by module so later capabilities register by adding a module."""
    found = list(FOUNDATION)
    for module_name in _EXTRA:
        module = __import__(f"projections.{module_name}", fromlist=["projection"])
        found.append(module.projection)
    return found


# Projections of later capabilities (contact center, timers …) add their module name here.
_EXTRA: list[str] = ["sla_timers", "notifications", "wallboard", "agent_desk"]


def by_name(name: str) -> Projection:
    for p in all_projections():
        if p.name == name:
            return p
    raise KeyError(f"no projection {name!r}; known: {[p.name for p in all_projections()]}")
