"""Nearby duplicates: the open work orders of a problem code near a place (issue 16).

Read-only: an agent looks, and links a request to an order (``POST
/requests/{ref}/link-duplicate``) only if they decide it is the same defect. Listed before
``work_orders`` in ``infra/wiring.py`` so that ``/work-orders/nearby`` is not taken for a
work order's id.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fastapi import Depends, Query
from pydantic import BaseModel

from api.auth import allow, department_filter, row_access
from api.deps import ReadYourWrites, get_hotline
from api.routers.catalogue import _catalogue
from api.routing import HotlineRouter
from domain.access import Action, authorize
from domain.base import Actor, InvalidTransition, NotFound
from domain.catalogue.aggregate import MAX_DUPLICATE_RADIUS_M
from infra.runtime import Hotline
from projections import nearby, request_status

router = HotlineRouter(tags=["work orders"])


class Place(BaseModel):
    lat: float | None
    lon: float | None
    address: str | None = None
    district: str | None = None


class NearbyWorkOrder(BaseModel):
    id: str
    problem_code: str
    department_id: str | None
    provider_id: str | None
    status: str
    request_id: str | None  # the order's first request, whose place it has
    location: Place
    created_at: datetime
    distance_m: float


class NearbyWorkOrders(BaseModel):
    problem_code: str
    lat: float
    lon: float
    radius_m: float
    request: str | None = None  # the reference asked about, for the request's endpoint
    work_orders: list[NearbyWorkOrder]


def duplicate_radius(hotline: Hotline, problem_code: str) -> float:
    """The problem code's own distance, else the hotline's default (metres)."""
    code = _catalogue(hotline).problem_codes.get(problem_code)
    if code is None:
        raise NotFound(f"problem code {problem_code!r} is not in the catalogue")
    return float(code.get("duplicate_radius_m") or hotline.settings.duplicate_radius_m)


RADIUS = Query(None, gt=0, le=MAX_DUPLICATE_RADIUS_M, description="Metres (default: the problem code's, else the hotline's)")
LIMIT = Query(20, ge=1, le=100)


@router.get(
    "/work-orders/nearby",
    response_model=NearbyWorkOrders,
    summary="Open work orders of a problem code near a place",
    responses={404: {"description": "The problem code is not in the catalogue"}},
)
def nearby_work_orders(
    problem_code: str = Query(..., min_length=1, max_length=64),
    lat: float = Query(..., ge=-90, le=90),
    lon: float = Query(..., ge=-180, le=180),
    radius_m: float | None = RADIUS,
    department_id: str | None = None,
    limit: int = LIMIT,
    hotline: Hotline = Depends(get_hotline),
    actor: Actor = allow(Action.WORK_ORDERS_READ),
    _ryw: None = ReadYourWrites,
) -> dict[str, Any]:
    """Nearest first, then the older order first; each with its distance in metres."""
    department_id = department_filter(actor, Action.WORK_ORDERS_READ, department_id)
    radius = radius_m or duplicate_radius(hotline, problem_code)
    with hotline.read_store.engine.connect() as conn:
        found = nearby.nearby(conn, problem_code=problem_code, lat=lat, lon=lon, radius_m=radius, limit=limit, department_id=department_id)
    return {"problem_code": problem_code, "lat": lat, "lon": lon, "radius_m": radius, "work_orders": found}


@router.get(
    "/requests/{ref}/nearby-work-orders",
    response_model=NearbyWorkOrders,
    tags=["requests"],
    summary="Open work orders near a request, of its problem code: candidates to link it to as a duplicate",
    responses={409: {"description": "The request has no problem code yet (not_classified): classify it first"}},
)
def nearby_for_request(
    ref: str,
    radius_m: float | None = RADIUS,
    limit: int = LIMIT,
    hotline: Hotline = Depends(get_hotline),
    actor: Actor = allow(Action.WORK_ORDERS_READ),
    _ryw: None = ReadYourWrites,
) -> dict[str, Any]:
    """The request's place and problem code; the order it is already linked to is left out.
    Nothing is linked: that stays the operator's decision."""
    with hotline.read_store.engine.connect() as conn:
        row = request_status.by_reference(conn, ref) or request_status.get(conn, ref)
        if row is None:
            raise NotFound(f"no request {ref}")
        authorize(actor, Action.REQUESTS_READ, row_access(row))
        if not row["problem_code"]:
            raise InvalidTransition(f"request {row['reference']} has no problem code: classify it first", code="not_classified")
        point = nearby.coordinates(row["location"])
        if point is None:
            raise InvalidTransition(f"request {row['reference']} has no coordinates (lat, lon)", code="no_coordinates")
        radius = radius_m or duplicate_radius(hotline, row["problem_code"])
        found = nearby.nearby(
            conn,
            problem_code=row["problem_code"],
            lat=point[0],
            lon=point[1],
            radius_m=radius,
            limit=limit,
            department_id=department_filter(actor, Action.WORK_ORDERS_READ, None),
            exclude=[row["work_order_id"]] if row.get("work_order_id") else (),
        )
    return {
        "problem_code": row["problem_code"],
        "lat": point[0],
        "lon": point[1],
        "radius_m": radius,
        "request": row["reference"],
        "work_orders": found,
    }
