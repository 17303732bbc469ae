"""The shipped IVR: the hotline's staffed hours and its voice menus, for the demo.

``infra/data/ivr/hours.yaml`` holds the staffed hours as a calendar of the calendars
context (``hotline``); every ``infra/data/ivr/*.json`` is a flow document, published as
its next version (unchanged documents publish nothing). A flow is refused when a queue it
hands callers to does not exist, so the queues the shipped flows name are defined first
when they are missing (a fresh store; the demo's own traffic defines them with its
settings before). The demo (``api/demo.py``)
calls :func:`publish_demo_flows` as one of its hooks; ``hotline ivr publish FILE`` does
the same for one flow on any store.
"""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Any

import yaml

from domain.base import SYSTEM, FixedClock
from domain.calendars import commands as calc
from domain.contact_center import commands as cc
from domain.contact_center.queues import Queue, queue_uuid
from domain.ivr import commands as ic
from domain.ivr.flow import queues_named
from infra.runtime import Hotline

IVR_DATA = Path(__file__).resolve().parents[2] / "infra" / "data" / "ivr"


def publish_demo_flows(
    hotline: Hotline, clock: FixedClock | None = None, now: datetime | None = None, console: Any = None
) -> list[dict[str, Any]]:
    """Defines the staffed-hours calendars and publishes the shipped flows; their results."""
    hours = yaml.safe_load((IVR_DATA / "hours.yaml").read_text("utf-8"))
    for jurisdiction, definition in (hours.get("calendars") or {}).items():
        hotline.bus.execute(
            calc.ChangeCalendar(jurisdiction=jurisdiction, definition=definition, reason="the hotline's staffed hours"), SYSTEM
        )
    published = []
    for path in sorted(IVR_DATA.glob("*.json")):
        document = json.loads(path.read_text("utf-8"))
        for queue_id in dict.fromkeys(q for _, q in queues_named(document)):
            if not isinstance(hotline.store.read_reference(queue_uuid(queue_id)), Queue):
                hotline.bus.execute(cc.DefineQueue(queue_id=queue_id, media="voice"), SYSTEM)
        published.append(hotline.bus.execute(ic.PublishFlow(document=document, note=f"shipped with Hotline ({path.name})"), SYSTEM).result)
    if console:
        flows = [(p["flow_id"], p["flow_version"]) for p in published]
        console.print(f"demo: IVR flows {flows}, staffed hours {sorted(hours.get('calendars') or {})}")
    return published
