"""/catalogue: Department > Provider > Service category > Service problem code."""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, Depends, Request, Response

from api.deps import get_actor, get_hotline, run_command
from api.schemas import Accepted
from domain import commands as c
from domain import services as s
from domain.base import Actor, NotFound
from domain.catalogue import Catalogue, catalogue_id
from infra.runtime import Hotline

router = APIRouter(prefix="/catalogue", tags=["catalogue"])
Level = Literal["department", "provider", "category", "problem_code"]


def _catalogue(hotline: Hotline) -> Catalogue:
    from eventsourcing.application import AggregateNotFoundError

    try:
        cat: Catalogue = hotline.store.repository.get(catalogue_id(hotline.settings.jurisdiction))
    except AggregateNotFoundError:
        raise NotFound("the catalogue has not been loaded", code="catalogue_missing") from None
    return cat


@router.get("", summary="The whole catalogue as a tree, names in zh, ar, it, en")
def tree(hotline: Hotline = Depends(get_hotline)) -> dict[str, Any]:
    cat = _catalogue(hotline)
    return {"jurisdiction": cat.jurisdiction, "version": cat.version, "departments": cat.as_tree()}


@router.get("/problem-codes/{code}", summary="One problem code: fields to collect, template, deadlines")
def problem_code(code: str, hotline: Hotline = Depends(get_hotline)) -> dict[str, Any]:
    cat = _catalogue(hotline)
    return {"code": code, **cat.problem_code(code), "route": cat.route_of(code)}


def _post(path: str, handler: Any, model: type, summary: str) -> None:
    def endpoint(
        cmd: Any, request: Request, response: Response, hotline: Hotline = Depends(get_hotline), actor: Actor = Depends(get_actor)
    ) -> dict[str, Any]:
        return run_command(hotline, handler, actor, cmd, request=request, response=response)

    endpoint.__annotations__["cmd"] = model
    endpoint.__name__ = handler.__name__
    router.add_api_route(path, endpoint, methods=["POST"], status_code=201, response_model=Accepted, summary=summary)


_post("/departments", s.add_department, c.AddDepartment, "Add a department")
_post("/providers", s.add_provider, c.AddProvider, "Add a provider")
_post("/categories", s.add_category, c.AddCategory, "Add a service category")
_post("/problem-codes", s.add_problem_code, c.AddProblemCode, "Add a service problem code")


@router.post("/problem-codes/{code}/revision", response_model=Accepted, summary="Revise template, fields or deadlines")
def revise(
    code: str,
    cmd: c.ReviseProblemCode,
    request: Request,
    response: Response,
    hotline: Hotline = Depends(get_hotline),
    actor: Actor = Depends(get_actor),
) -> dict[str, Any]:
    return run_command(hotline, s.revise_problem_code, actor, code, cmd, request=request, response=response)


@router.post("/{level}/{entry_id}/names", response_model=Accepted, summary="Rename an entry")
def rename(
    level: Level,
    entry_id: str,
    cmd: c.RenameEntry,
    request: Request,
    response: Response,
    hotline: Hotline = Depends(get_hotline),
    actor: Actor = Depends(get_actor),
) -> dict[str, Any]:
    return run_command(hotline, s.rename_entry, actor, level, entry_id, cmd, request=request, response=response)


@router.post("/{level}/{entry_id}/retirement", response_model=Accepted, summary="Retire an entry")
def retire(
    level: Level,
    entry_id: str,
    cmd: c.RetireEntry,
    request: Request,
    response: Response,
    hotline: Hotline = Depends(get_hotline),
    actor: Actor = Depends(get_actor),
) -> dict[str, Any]:
    return run_command(hotline, s.retire_entry, actor, level, entry_id, cmd, request=request, response=response)
