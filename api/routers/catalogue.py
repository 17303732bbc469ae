"""/catalogue: Department > Provider > Service category > Service problem code."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends

from api.auth import allow
from api.deps import CommandRoute, add_command_routes, get_hotline
from api.schemas import Accepted
from domain.access import Action
from domain.base import Actor, NotFound
from domain.catalogue import commands as c
from domain.catalogue.aggregate import Catalogue, catalogue_id
from infra.runtime import Hotline

router = APIRouter(prefix="/catalogue", tags=["catalogue"])


def _catalogue(hotline: Hotline) -> Catalogue:
    from eventsourcing.application import AggregateNotFoundError

    try:
        cat: Catalogue = hotline.store.repository.get(catalogue_id(hotline.settings.jurisdiction))
    except AggregateNotFoundError:
        raise NotFound("the catalogue has not been loaded", code="catalogue_missing") from None
    return cat


@router.get("", summary="The whole catalogue as a tree, names in zh, ar, it, en")
def tree(hotline: Hotline = Depends(get_hotline), _: Actor = allow(Action.CATALOGUE_READ)) -> dict[str, Any]:
    cat = _catalogue(hotline)
    return {"jurisdiction": cat.jurisdiction, "version": cat.version, "departments": cat.as_tree()}


@router.get("/problem-codes/{code}", summary="One problem code: fields to collect, template, deadlines")
def problem_code(code: str, hotline: Hotline = Depends(get_hotline), _: Actor = allow(Action.CATALOGUE_READ)) -> dict[str, Any]:
    cat = _catalogue(hotline)
    return {"code": code, **cat.problem_code(code), "route": cat.route_of(code)}


add_command_routes(
    router,
    "",
    [
        CommandRoute("departments", c.AddDepartment, "Add a department", status_code=201),
        CommandRoute("providers", c.AddProvider, "Add a provider", status_code=201),
        CommandRoute("categories", c.AddCategory, "Add a service category", status_code=201),
        CommandRoute("problem-codes", c.AddProblemCode, "Add a service problem code", status_code=201),
        CommandRoute("problem-codes/{code}/revision", c.ReviseProblemCode, "Revise template, fields or deadlines", name="revise"),
        CommandRoute("{level}/{entry_id}/names", c.RenameEntry, "Rename an entry", name="rename"),
        CommandRoute("{level}/{entry_id}/retirement", c.RetireEntry, "Retire an entry", name="retire"),
    ],
    response_model=Accepted,
)
