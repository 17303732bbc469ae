"""What the screens name: departments, categories and problem codes from the catalogue, in
every language, read as reference data (the event store's cache, checked against the store
every 2 s), never rebuilt from the catalogue's events for each page; queues and agents
from the wallboard's read model; staff from theirs."""

from __future__ import annotations

import json
from typing import Any

import sqlalchemy as sa

from domain.catalogue.aggregate import catalogue_id
from infra.runtime import Hotline
from projections import staff, wallboard


def catalogue(hotline: Hotline) -> Any:
    """The jurisdiction's catalogue, or None before one is loaded."""
    return hotline.store.reference(catalogue_id(hotline.settings.jurisdiction))


def departments(hotline: Hotline) -> dict[str, dict[str, Any]]:
    """Department id → what the catalogue says of it (names, control office or not)."""
    cat = catalogue(hotline)
    return dict(cat.departments) if cat is not None else {}


def department_names(hotline: Hotline) -> dict[str, dict[str, str]]:
    """Department id → its names in every language (its id where it has none)."""
    return {dep: dict(info.get("names") or {"en": dep}) for dep, info in departments(hotline).items()}


def problem_names(hotline: Hotline) -> dict[str, dict[str, str]]:
    """Problem code → its names in every language (the lists show names, not codes)."""
    cat = catalogue(hotline)
    return {code: dict(info.get("names") or {}) for code, info in (cat.problem_codes.items() if cat is not None else [])}


def category_names(hotline: Hotline) -> dict[str, dict[str, str]]:
    """Category id → its names in every language."""
    cat = catalogue(hotline)
    return {cid: dict(info.get("names") or {}) for cid, info in (cat.categories.items() if cat is not None else [])}


def queue_names(hotline: Hotline) -> dict[str, dict[str, str]]:
    """Queue id → its names in every language (the wallboard's read model), by queue id."""
    q = wallboard.QUEUES
    with hotline.read_store.engine.connect() as conn:
        rows = conn.execute(sa.select(q.c.queue_id, q.c.names).order_by(q.c.queue_id)).all()
    return {queue_id: json.loads(names or "{}") for queue_id, names in rows}


def agent_names(hotline: Hotline) -> dict[str, str]:
    """Agent id → the name people know them by (the wallboard's read model)."""
    with hotline.read_store.engine.connect() as conn:
        rows = conn.execute(sa.select(wallboard.AGENTS.c.agent_id, wallboard.AGENTS.c.name)).all()
    return {agent_id: name for agent_id, name in rows if name}


def staff_names(hotline: Hotline) -> dict[str, str]:
    """Staff username → their name (the staff read model): who took a step of a case."""
    with hotline.read_store.engine.connect() as conn:
        rows = conn.execute(sa.select(staff.STAFF.c.username, staff.STAFF.c.name)).all()
    return {username: name for username, name in rows if name}
