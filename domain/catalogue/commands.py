"""Catalogue commands: departments > providers > categories > problem codes (names in zh, ar, it, en)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field
from pydantic.json_schema import SkipJsonSchema

from domain.access import Action
from domain.handling import FROM_PATH, Command, Target
from domain.limits import NAME_MAX, SHORT_TEXT_MAX

Level = Literal["department", "provider", "category", "problem_code"]


class Names(BaseModel):
    model_config = ConfigDict(extra="forbid")
    zh: str = Field(max_length=NAME_MAX)
    ar: str = Field(max_length=NAME_MAX)
    it: str = Field(max_length=NAME_MAX)
    en: str = Field(max_length=NAME_MAX)


class AddDepartment(Command):
    action = Action.CATALOGUE_MANAGE

    id: str
    names: Names
    is_control_office: bool = False


class AddProvider(Command):
    action = Action.CATALOGUE_MANAGE

    id: str
    department_id: str
    names: Names


class AddCategory(Command):
    action = Action.CATALOGUE_MANAGE

    id: str
    provider_id: str
    names: Names


class AddProblemCode(Command):
    action = Action.CATALOGUE_MANAGE

    code: str
    category_id: str
    names: Names
    work_order_template: dict[str, Any]
    fields_to_collect: list[dict[str, Any]] = Field(default_factory=list, max_length=100)
    deadlines: dict[str, Any] | None = None
    duplicate_radius_m: float | None = Field(
        default=None, gt=0, le=10_000, description="Nearby duplicates: metres (default: the hotline's setting)"
    )


class ReviseProblemCode(Command):
    action = Action.CATALOGUE_MANAGE

    code: Target = ""
    work_order_template: dict[str, Any] | None = None
    fields_to_collect: list[dict[str, Any]] | None = Field(default=None, max_length=100)
    deadlines: dict[str, Any] | None = None
    duplicate_radius_m: float | None = Field(default=None, gt=0, le=10_000, description="Nearby duplicates: metres")


class EntryCommand(Command):
    """A command on one catalogue entry: its level (departments, providers, categories,
    problem-codes) and its id."""

    action = Action.CATALOGUE_MANAGE

    level: Annotated[Level, SkipJsonSchema(), FROM_PATH] = "department"
    entry_id: Target = ""


class RenameEntry(EntryCommand):
    names: Names


class RetireEntry(EntryCommand):
    reason: str = Field(min_length=1, max_length=SHORT_TEXT_MAX)


class ImportCatalogue(Command):
    """Loads a catalogue file (``infra/data/catalogue.yaml``); entries already present are kept."""

    action = Action.CATALOGUE_MANAGE

    document: dict[str, Any]
