"""/ivr: the IVR's flows. An administrator publishes a flow document (checked against
``telephony_adapter/ivr/flow.schema.json`` and the rules between its parts; a problem is a
422 naming where it is); supervisors, administrators and auditors read the flows, every
published version and its document."""

from __future__ import annotations

from typing import Any

from fastapi import Depends, Path, Response

from api.auth import allow
from api.deps import CommandRoute, add_command_routes, get_hotline, set_etag
from api.responses import IvrFlowDetail, IvrFlowSchema, IvrFlowSummary, IvrFlowVersion
from api.routing import HotlineRouter
from domain.access import Action
from domain.base import Actor, NotFound
from domain.ivr import commands as c
from domain.ivr.flow import schema
from infra.runtime import Hotline
from projections import ivr as rm

router = HotlineRouter(tags=["ivr"])

add_command_routes(router, "/ivr/flows", [CommandRoute("", c.PublishFlow, "Publish a flow as its next version", status_code=201)])

FLOW_ID = Path(..., pattern=r"^[a-z0-9][a-z0-9_-]{0,63}$", description="The flow's id (its document's flow_id)")


@router.get("/ivr/schema", response_model=IvrFlowSchema, summary="The JSON Schema of a flow document")
def flow_schema(_: Actor = allow(Action.IVR_READ)) -> dict[str, Any]:
    return schema()


@router.get("/ivr/flows", response_model=list[IvrFlowSummary], summary="The flows and their current versions")
def list_flows(hotline: Hotline = Depends(get_hotline), _: Actor = allow(Action.IVR_READ)) -> list[dict[str, Any]]:
    with hotline.read_store.engine.connect() as conn:
        return rm.flows(conn)


@router.get("/ivr/flows/{flow_id}", response_model=IvrFlowDetail, summary="A flow: its current version and every version published")
def get_flow(
    response: Response, flow_id: str = FLOW_ID, hotline: Hotline = Depends(get_hotline), _: Actor = allow(Action.IVR_READ)
) -> dict[str, Any]:
    with hotline.read_store.engine.connect() as conn:
        row = rm.flow(conn, flow_id)
        if row is None:
            raise NotFound(f"no IVR flow {flow_id}", code="ivr_flow_not_found")
        set_etag(response, row["version"])
        return {**row, "versions": rm.versions(conn, flow_id)}


@router.get(
    "/ivr/flows/{flow_id}/versions/{flow_version}",
    response_model=IvrFlowVersion,
    summary="One published version of a flow, with its document",
)
def get_version(
    flow_id: str = FLOW_ID,
    flow_version: int = Path(..., ge=1, le=1_000_000),
    hotline: Hotline = Depends(get_hotline),
    _: Actor = allow(Action.IVR_READ),
) -> dict[str, Any]:
    with hotline.read_store.engine.connect() as conn:
        row = rm.version(conn, flow_id, flow_version)
    if row is None:
        raise NotFound(f"no version {flow_version} of IVR flow {flow_id}", code="ivr_flow_not_found")
    return row
