"""Catalogue handlers: the jurisdiction's departments, providers, categories and problem codes."""

from __future__ import annotations

from typing import Any

from domain.base import Context, NotFound
from domain.catalogue import commands as c
from domain.catalogue.aggregate import Catalogue, catalogue_id
from domain.config import Deps
from domain.handling import Command, Handlers, UnitOfWork

handles = Handlers("catalogue")


def load_catalogue(uow: UnitOfWork, deps: Deps) -> Catalogue:
    """The catalogue as reference data: read, never changed, by request commands."""
    cat = uow.read(Catalogue, catalogue_id(deps.jurisdiction))
    if cat is None:
        raise NotFound("the catalogue has not been loaded", code="catalogue_missing")
    return cat


def _catalogue_for_change(uow: UnitOfWork, ctx: Context, cmd: Command) -> Catalogue:
    jurisdiction = ctx.deps.jurisdiction
    cat = uow.find(Catalogue, catalogue_id(jurisdiction))
    if cat is None:
        cat = Catalogue.open(jurisdiction, ctx)
        uow.add(cat)
    cat.expect_version(cmd.expected_version)
    return cat


@handles(c.AddDepartment)
def add_department(uow: UnitOfWork, ctx: Context, cmd: c.AddDepartment) -> dict[str, Any]:
    cat = _catalogue_for_change(uow, ctx, cmd)
    cat.add_department(cmd.id, cmd.names.model_dump(), ctx, is_control_office=cmd.is_control_office)
    return {"id": cmd.id, "version": cat.version}


@handles(c.AddProvider)
def add_provider(uow: UnitOfWork, ctx: Context, cmd: c.AddProvider) -> dict[str, Any]:
    cat = _catalogue_for_change(uow, ctx, cmd)
    cat.add_provider(cmd.id, cmd.department_id, cmd.names.model_dump(), ctx)
    return {"id": cmd.id, "version": cat.version}


@handles(c.AddCategory)
def add_category(uow: UnitOfWork, ctx: Context, cmd: c.AddCategory) -> dict[str, Any]:
    cat = _catalogue_for_change(uow, ctx, cmd)
    cat.add_category(cmd.id, cmd.provider_id, cmd.names.model_dump(), ctx)
    return {"id": cmd.id, "version": cat.version}


@handles(c.AddProblemCode)
def add_problem_code(uow: UnitOfWork, ctx: Context, cmd: c.AddProblemCode) -> dict[str, Any]:
    cat = _catalogue_for_change(uow, ctx, cmd)
    cat.add_problem_code(
        cmd.code,
        cmd.category_id,
        cmd.names.model_dump(),
        cmd.work_order_template,
        ctx,
        fields_to_collect=cmd.fields_to_collect,
        deadlines=cmd.deadlines,
        duplicate_radius_m=cmd.duplicate_radius_m,
    )
    return {"id": cmd.code, "version": cat.version}


@handles(c.ReviseProblemCode)
def revise_problem_code(uow: UnitOfWork, ctx: Context, cmd: c.ReviseProblemCode) -> dict[str, Any]:
    cat = _catalogue_for_change(uow, ctx, cmd)
    cat.revise_problem_code(cmd.code, ctx, **cmd.model_dump(exclude={"expected_version", "code"}))
    return {"id": cmd.code, "version": cat.version}


@handles(c.RenameEntry)
def rename_entry(uow: UnitOfWork, ctx: Context, cmd: c.RenameEntry) -> dict[str, Any]:
    cat = _catalogue_for_change(uow, ctx, cmd)
    cat.rename(cmd.level, cmd.entry_id, cmd.names.model_dump(), ctx)
    return {"id": cmd.entry_id, "version": cat.version}


@handles(c.RetireEntry)
def retire_entry(uow: UnitOfWork, ctx: Context, cmd: c.RetireEntry) -> dict[str, Any]:
    cat = _catalogue_for_change(uow, ctx, cmd)
    cat.retire(cmd.level, cmd.entry_id, cmd.reason, ctx)
    return {"id": cmd.entry_id, "version": cat.version}


@handles(c.ImportCatalogue, issued_by=("api.cli.catalogue", "api.demo"))
def import_catalogue(uow: UnitOfWork, ctx: Context, cmd: c.ImportCatalogue) -> dict[str, Any]:
    """Loads a catalogue file (see ``infra/data/catalogue.yaml``). Entries already present
    are left alone, so loading the same file twice changes nothing."""
    cat = _catalogue_for_change(uow, ctx, cmd)
    document = cmd.document
    added = 0
    for dep in document.get("departments", []):
        if dep["id"] not in cat.departments:
            cat.add_department(dep["id"], dep["names"], ctx, is_control_office=bool(dep.get("control_office")))
            added += 1
        for prov in dep.get("providers", []):
            if prov["id"] not in cat.providers:
                cat.add_provider(prov["id"], dep["id"], prov["names"], ctx)
                added += 1
            for categ in prov.get("categories", []):
                if categ["id"] not in cat.categories:
                    cat.add_category(categ["id"], prov["id"], categ["names"], ctx)
                    added += 1
                for pc in categ.get("problem_codes", []):
                    if pc["code"] not in cat.problem_codes:
                        cat.add_problem_code(
                            pc["code"],
                            categ["id"],
                            pc["names"],
                            pc["work_order_template"],
                            ctx,
                            fields_to_collect=pc.get("fields_to_collect"),
                            deadlines=pc.get("deadlines"),
                            duplicate_radius_m=pc.get("duplicate_radius_m"),
                        )
                        added += 1
    return {"added": added, "version": cat.version}
