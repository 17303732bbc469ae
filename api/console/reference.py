"""What the screens name from the catalogue: departments and problem codes, in every
language. Read as reference data (the event store's cache, checked against the store
every 2 s), never rebuilt from the catalogue's events for each page."""

from __future__ import annotations

from typing import Any

from domain.catalogue.aggregate import catalogue_id
from infra.runtime import Hotline


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
