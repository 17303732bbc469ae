"""The service catalogue: Department > Provider > Service category > Service problem code.

A problem code names the exact problem, what must be collected from the citizen, the
standard work-order template, and the deadline for each urgency. A problem code is
required to create a work order. The catalogue is one aggregate per jurisdiction: it is
small, changes rarely, and its rules (a provider belongs to an existing department …)
span the whole tree.
"""

from __future__ import annotations

import re
from typing import Any

from domain.base import (
    Context,
    HotlineAggregate,
    InvalidCommand,
    InvalidTransition,
    NotFound,
    derived_id,
)

LANGUAGES = ("zh", "ar", "it", "en")
URGENCIES = ("urgent", "control", "normal")
DEADLINE_BASES = ("clock", "working")
# Defaults from the Italian procedure: urgent within 24 h, control within 48 h.
DEFAULT_DEADLINES: dict[str, dict[str, Any]] = {
    "urgent": {"hours": 24, "basis": "clock"},
    "control": {"hours": 48, "basis": "clock"},
    "normal": {"hours": 120, "basis": "clock"},
}
_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
FIELD_TYPES = ("text", "number", "date", "choice", "boolean", "photo", "location")
# How far apart two reports of one problem may be and still be the same defect (nearby
# duplicates): a code may set its own distance; the hotline's default applies otherwise.
MAX_DUPLICATE_RADIUS_M = 10_000.0


def catalogue_id(jurisdiction: str = "default"):  # type: ignore[no-untyped-def]
    return derived_id("catalogue", jurisdiction)


def check_names(names: Any, what: str) -> dict[str, str]:
    if not isinstance(names, dict):
        raise InvalidCommand(f"{what}: names must be an object of language → text")
    missing = [lang for lang in LANGUAGES if not str(names.get(lang) or "").strip()]
    if missing:
        raise InvalidCommand(f"{what}: names missing for languages {missing}", required=list(LANGUAGES))
    unknown = sorted(set(names) - set(LANGUAGES))
    if unknown:
        raise InvalidCommand(f"{what}: unsupported languages {unknown}", supported=list(LANGUAGES))
    return {lang: str(names[lang]).strip() for lang in LANGUAGES}


def check_id(value: str, what: str) -> str:
    if not isinstance(value, str) or not _ID.match(value):
        raise InvalidCommand(f"{what} id {value!r} must be 1-64 letters, digits, '_', '-' or '.'")
    return value


def check_deadlines(deadlines: Any) -> dict[str, dict[str, Any]]:
    result = {k: dict(v) for k, v in DEFAULT_DEADLINES.items()}
    if deadlines is None:
        return result
    if not isinstance(deadlines, dict):
        raise InvalidCommand("deadlines must be an object urgency → {hours, basis}")
    for urgency, rule in deadlines.items():
        if urgency not in URGENCIES:
            raise InvalidCommand(f"unknown urgency {urgency!r}", urgencies=list(URGENCIES))
        if isinstance(rule, int | float):
            rule = {"hours": rule}
        hours = rule.get("hours")
        if not isinstance(hours, int | float) or not 0 < hours <= 24 * 365:
            raise InvalidCommand(f"deadline for {urgency!r}: hours must be between 0 and 8760")
        basis = rule.get("basis", "clock")
        if basis not in DEADLINE_BASES:
            raise InvalidCommand(f"deadline basis {basis!r} must be one of {list(DEADLINE_BASES)}")
        result[urgency] = {"hours": float(hours), "basis": basis}
    return result


def check_fields(items: Any) -> list[dict[str, Any]]:
    if items is None:
        return []
    if not isinstance(items, list):
        raise InvalidCommand("fields to collect must be a list")
    out = []
    seen = set()
    for item in items:
        name = check_id(item.get("name", ""), "field")
        if name in seen:
            raise InvalidCommand(f"field {name!r} listed twice")
        seen.add(name)
        ftype = item.get("type", "text")
        if ftype not in FIELD_TYPES:
            raise InvalidCommand(f"field {name!r}: type {ftype!r} must be one of {list(FIELD_TYPES)}")
        out.append(
            {
                "name": name,
                "type": ftype,
                "required": bool(item.get("required", False)),
                "labels": check_names(item.get("labels"), f"field {name}"),
                "choices": list(item.get("choices") or []),
            }
        )
    return out


def check_duplicate_radius(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 < value <= MAX_DUPLICATE_RADIUS_M:
        raise InvalidCommand(
            f"duplicate_radius_m must be a distance in metres, more than 0 and at most {MAX_DUPLICATE_RADIUS_M:g}",
            field="duplicate_radius_m",
        )
    return float(value)


def check_template(template: Any) -> dict[str, Any]:
    if not isinstance(template, dict):
        raise InvalidCommand("work_order_template must be an object with title and tasks")
    tasks = template.get("tasks") or []
    if not isinstance(tasks, list) or not all(isinstance(t, dict) for t in tasks):
        raise InvalidCommand("work_order_template.tasks must be a list of {names}")
    return {
        "title": check_names(template.get("title"), "work order title"),
        "instructions": check_names(template["instructions"], "work order instructions") if template.get("instructions") else None,
        "tasks": [check_names(t.get("names"), "work order task") for t in tasks],
        "crew_size": int(template.get("crew_size", 1)),
    }


class Catalogue(HotlineAggregate):
    STREAM = "catalogue"

    class Opened(HotlineAggregate.Created):
        """The jurisdiction's service catalogue was started (departments, providers, categories, problem codes)."""

        jurisdiction: str

    class DepartmentAdded(HotlineAggregate.Event):
        """A department was added to the catalogue."""

        department_id: str
        names: dict[str, str]
        is_control_office: bool

        def apply(self, c: Catalogue) -> None:
            c.departments[self.department_id] = {
                "names": self.names,
                "is_control_office": self.is_control_office,
                "active": True,
            }

    class ProviderAdded(HotlineAggregate.Event):
        """A service provider was added under a department."""

        provider_id: str
        department_id: str
        names: dict[str, str]

        def apply(self, c: Catalogue) -> None:
            c.providers[self.provider_id] = {"department_id": self.department_id, "names": self.names, "active": True}

    class CategoryAdded(HotlineAggregate.Event):
        """A category was added under a provider."""

        category_id: str
        provider_id: str
        names: dict[str, str]

        def apply(self, c: Catalogue) -> None:
            c.categories[self.category_id] = {"provider_id": self.provider_id, "names": self.names, "active": True}

    class ProblemCodeAdded(HotlineAggregate.Event):
        """A problem code was added under a category: what to collect, the work order template and the deadlines."""

        code: str
        category_id: str
        names: dict[str, str]
        fields_to_collect: list[dict[str, Any]]
        work_order_template: dict[str, Any]
        deadlines: dict[str, dict[str, Any]]
        # Metres; None: the hotline's default (Settings.duplicate_radius_m). Absent from
        # events recorded before it existed, which read as None.
        duplicate_radius_m: float | None = None

        def apply(self, c: Catalogue) -> None:
            c.problem_codes[self.code] = {
                "category_id": self.category_id,
                "names": self.names,
                "fields_to_collect": self.fields_to_collect,
                "work_order_template": self.work_order_template,
                "deadlines": self.deadlines,
                "duplicate_radius_m": self.duplicate_radius_m,
                "active": True,
            }

    class ProblemCodeRevised(HotlineAggregate.Event):
        """Some attributes of a problem code changed."""

        code: str
        changes: dict[str, Any]

        def apply(self, c: Catalogue) -> None:
            c.problem_codes[self.code].update(self.changes)

    class EntryRenamed(HotlineAggregate.Event):
        """A catalogue entry's display names changed."""

        level: str
        entry_id: str
        names: dict[str, str]

        def apply(self, c: Catalogue) -> None:
            c._level(self.level)[self.entry_id]["names"] = self.names

    class EntryRetired(HotlineAggregate.Event):
        """A catalogue entry was retired: no new case uses it."""

        level: str
        entry_id: str
        reason: str

        def apply(self, c: Catalogue) -> None:
            c._level(self.level)[self.entry_id]["active"] = False

    LEVELS = ("department", "provider", "category", "problem_code")

    def __init__(self, jurisdiction: str) -> None:
        self.jurisdiction = jurisdiction
        self.departments: dict[str, dict[str, Any]] = {}
        self.providers: dict[str, dict[str, Any]] = {}
        self.categories: dict[str, dict[str, Any]] = {}
        self.problem_codes: dict[str, dict[str, Any]] = {}

    @classmethod
    def open(cls, jurisdiction: str, ctx: Context) -> Catalogue:
        return cls._start(cls.Opened, catalogue_id(jurisdiction), ctx, jurisdiction=jurisdiction)

    def _level(self, level: str) -> dict[str, dict[str, Any]]:
        try:
            return {
                "department": self.departments,
                "provider": self.providers,
                "category": self.categories,
                "problem_code": self.problem_codes,
            }[level]
        except KeyError:
            raise InvalidCommand(f"unknown catalogue level {level!r}", levels=list(self.LEVELS)) from None

    def _require(self, level: str, entry_id: str, *, active: bool = True) -> dict[str, Any]:
        entry = self._level(level).get(entry_id)
        if entry is None:
            raise NotFound(f"{level} {entry_id!r} is not in the catalogue")
        if active and not entry["active"]:
            raise InvalidTransition(f"{level} {entry_id!r} is retired")
        return entry

    def _require_new(self, level: str, entry_id: str) -> None:
        if entry_id in self._level(level):
            raise InvalidTransition(f"{level} {entry_id!r} already exists", code="already_exists")

    # ---------------------------------------------------------------- commands
    def add_department(self, department_id: str, names: dict[str, str], ctx: Context, *, is_control_office: bool = False) -> None:
        check_id(department_id, "department")
        self._require_new("department", department_id)
        self._record(
            self.DepartmentAdded,
            ctx,
            department_id=department_id,
            names=check_names(names, f"department {department_id}"),
            is_control_office=is_control_office,
        )

    def add_provider(self, provider_id: str, department_id: str, names: dict[str, str], ctx: Context) -> None:
        check_id(provider_id, "provider")
        self._require_new("provider", provider_id)
        self._require("department", department_id)
        self._record(
            self.ProviderAdded,
            ctx,
            provider_id=provider_id,
            department_id=department_id,
            names=check_names(names, f"provider {provider_id}"),
        )

    def add_category(self, category_id: str, provider_id: str, names: dict[str, str], ctx: Context) -> None:
        check_id(category_id, "category")
        self._require_new("category", category_id)
        self._require("provider", provider_id)
        self._record(
            self.CategoryAdded, ctx, category_id=category_id, provider_id=provider_id, names=check_names(names, f"category {category_id}")
        )

    def add_problem_code(
        self,
        code: str,
        category_id: str,
        names: dict[str, str],
        work_order_template: dict[str, Any],
        ctx: Context,
        *,
        fields_to_collect: list[dict[str, Any]] | None = None,
        deadlines: dict[str, Any] | None = None,
        duplicate_radius_m: float | None = None,
    ) -> None:
        check_id(code, "problem code")
        self._require_new("problem_code", code)
        self._require("category", category_id)
        self._record(
            self.ProblemCodeAdded,
            ctx,
            code=code,
            category_id=category_id,
            names=check_names(names, f"problem code {code}"),
            fields_to_collect=check_fields(fields_to_collect),
            work_order_template=check_template(work_order_template),
            deadlines=check_deadlines(deadlines),
            duplicate_radius_m=None if duplicate_radius_m is None else check_duplicate_radius(duplicate_radius_m),
        )

    def revise_problem_code(self, code: str, ctx: Context, **changes: Any) -> None:
        self._require("problem_code", code)
        checked: dict[str, Any] = {}
        for key, value in changes.items():
            if value is None:
                continue
            if key == "deadlines":
                checked[key] = check_deadlines(value)
            elif key == "fields_to_collect":
                checked[key] = check_fields(value)
            elif key == "work_order_template":
                checked[key] = check_template(value)
            elif key == "duplicate_radius_m":
                checked[key] = check_duplicate_radius(value)
            else:
                raise InvalidCommand(f"problem code field {key!r} cannot be revised")
        if not checked:
            raise InvalidCommand("nothing to revise")
        self._record(self.ProblemCodeRevised, ctx, code=code, changes=checked)

    def rename(self, level: str, entry_id: str, names: dict[str, str], ctx: Context) -> None:
        self._require(level, entry_id, active=False)
        self._record(self.EntryRenamed, ctx, level=level, entry_id=entry_id, names=check_names(names, f"{level} {entry_id}"))

    def retire(self, level: str, entry_id: str, reason: str, ctx: Context) -> None:
        self._require(level, entry_id)
        if not reason.strip():
            raise InvalidCommand("retiring an entry needs a reason")
        self._record(self.EntryRetired, ctx, level=level, entry_id=entry_id, reason=reason)

    # ---------------------------------------------------------------- queries
    def problem_code(self, code: str) -> dict[str, Any]:
        return self._require("problem_code", code)

    def route_of(self, code: str) -> dict[str, str]:
        """Where a problem code is handled by default: its category, provider, department."""
        pc = self.problem_code(code)
        cat = self.categories[pc["category_id"]]
        prov = self.providers[cat["provider_id"]]
        return {"category_id": pc["category_id"], "provider_id": cat["provider_id"], "department_id": prov["department_id"]}

    def check_dispatch_target(self, department_id: str, provider_id: str | None) -> None:
        self._require("department", department_id)
        if provider_id is not None:
            prov = self._require("provider", provider_id)
            if prov["department_id"] != department_id:
                raise InvalidCommand(f"provider {provider_id!r} does not belong to department {department_id!r}")

    def control_offices(self) -> list[str]:
        return [d for d, v in self.departments.items() if v["is_control_office"] and v["active"]]

    def as_tree(self) -> list[dict[str, Any]]:
        tree = []
        for dep_id, dep in self.departments.items():
            providers = []
            for prov_id, prov in self.providers.items():
                if prov["department_id"] != dep_id:
                    continue
                cats = []
                for cat_id, cat in self.categories.items():
                    if cat["provider_id"] != prov_id:
                        continue
                    codes = [{"code": code, **pc} for code, pc in self.problem_codes.items() if pc["category_id"] == cat_id]
                    cats.append({"id": cat_id, **cat, "problem_codes": codes})
                providers.append({"id": prov_id, **prov, "categories": cats})
            tree.append({"id": dep_id, **dep, "providers": providers})
        return tree
