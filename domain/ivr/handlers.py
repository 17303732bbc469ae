"""IVR flow handlers."""

from __future__ import annotations

from typing import Any

from domain.base import Context
from domain.handling import Handlers, UnitOfWork
from domain.ivr import commands as c
from domain.ivr.aggregate import IvrFlow, flow_uuid
from domain.ivr.flow import check_flow

handles = Handlers("ivr")


@handles(c.PublishFlow)
def publish_flow(uow: UnitOfWork, ctx: Context, cmd: c.PublishFlow) -> dict[str, Any]:
    check_flow(cmd.document)  # before anything is created: a bad first version registers nothing
    flow_id = cmd.document["flow_id"]
    flow = uow.find(IvrFlow, flow_uuid(flow_id))
    if flow is None:
        flow = IvrFlow.register(flow_id, ctx)
        uow.add(flow)
    flow.expect_version(cmd.expected_version)
    published = flow.publish(cmd.document, cmd.note, ctx)
    return {**flow.summary(), "published": published}
