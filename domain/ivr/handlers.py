"""IVR flow handlers."""

from __future__ import annotations

from typing import Any

from domain.base import Context
from domain.contact_center.queues import Queue, queue_uuid
from domain.handling import Handlers, UnitOfWork
from domain.ivr import commands as c
from domain.ivr.aggregate import IvrFlow, flow_uuid
from domain.ivr.flow import check_flow, queues_named

handles = Handlers("ivr")


def defined_queues(uow: UnitOfWork, document: Any) -> dict[str, str]:
    """The queues the flow names that exist, id → media: a flow handing callers to a queue
    that does not exist would have them hung up at the hand-over."""
    found: dict[str, str] = {}
    for _, queue_id in queues_named(document):
        queue = uow.read(Queue, queue_uuid(queue_id)) if queue_id not in found else None
        if queue is not None:
            found[queue_id] = queue.rules.media
    return found


@handles(c.PublishFlow)
def publish_flow(uow: UnitOfWork, ctx: Context, cmd: c.PublishFlow) -> dict[str, Any]:
    # Before anything is created: a bad first version registers nothing.
    check_flow(cmd.document, queues=defined_queues(uow, cmd.document))
    flow_id = cmd.document["flow_id"]
    flow = uow.find(IvrFlow, flow_uuid(flow_id))
    if flow is None:
        flow = IvrFlow.register(flow_id, ctx)
        uow.add(flow)
    flow.expect_version(cmd.expected_version)
    published = flow.publish(cmd.document, cmd.note, ctx)
    return {**flow.summary(), "published": published}
