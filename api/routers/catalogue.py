"""/catalogue: Department > Provider > Service category > Service problem code."""

from __future__ import annotations

from typing import Any

from fastapi import Depends, Response

from api.auth import allow
from api.deps import CommandRoute, add_command_routes, get_hotline, set_etag
from api.responses import CatalogueTree, ProblemCodeView
from api.routing import HotlineRouter
from api.schemas import Accepted
from domain.access import Action
from domain.base import Actor, NotFound
from domain.catalogue import commands as c
from domain.catalogue.aggregate import Catalogue, catalogue_id
from infra.runtime import Hotline

router = HotlineRouter(prefix="/catalogue", tags=["catalogue"])


def _catalogue(hotline: Hotline) -> Catalogue:
    # The cached copy unless the store holds newer events: its version is the stored one
    # (the ETag), whichever API node wrote last.
    key = catalogue_id(hotline.settings.jurisdiction)
    cat = hotline.store.read_reference(key, hotline.store.reference(key))
    if not isinstance(cat, Catalogue):
        raise NotFound("the catalogue has not been loaded", code="catalogue_missing")
    return cat


@router.get("", response_model=CatalogueTree, summary="The whole catalogue as a tree, names in zh, ar, it, en")
def tree(
    hotline: Hotline = Depends(get_hotline),
    _: Actor = allow(Action.CATALOGUE_READ),
    response: Response = None,  # type: ignore[assignment]  # None when the consoles call this (api/console/)
) -> dict[str, Any]:
    cat = _catalogue(hotline)
    if response is not None:
        set_etag(response, cat.version)
    return {"jurisdiction": cat.jurisdiction, "version": cat.version, "departments": cat.as_tree()}


@router.get("/problem-codes/{code}", response_model=ProblemCodeView, summary="One problem code: fields to collect, template, deadlines")
def problem_code(
    code: str,
    hotline: Hotline = Depends(get_hotline),
    _: Actor = allow(Action.CATALOGUE_READ),
    response: Response = None,  # type: ignore[assignment]  # None when the consoles call this (api/console/)
) -> dict[str, Any]:
    cat = _catalogue(hotline)
    answer = {"code": code, **cat.problem_code(code), "route": cat.route_of(code)}
    # One catalogue aggregate holds every entry: its version is the one a change of this
    # code (POST /catalogue/problem-codes/{code}/revision) names in If-Match.
    if response is not None:
        set_etag(response, cat.version)
    return {**answer, "version": cat.version}


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
