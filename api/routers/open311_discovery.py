"""/open311/discovery: Open311's service discovery, which GeoReport v2 requires of every
server (wiki.open311.org/Service_Discovery): one address, ending in ``/discovery``, that
tells a client where the GeoReport v2 endpoint is, in which formats, whom to contact, how
to get an API key, and a ``changeset`` that moves when the service definitions change
(the catalogue's last change: clients refresh what they cached then).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from fastapi import Depends, Request, Response

from api.auth import allow
from api.deps import get_hotline
from api.open311.formats import JSON_TYPE, XML_TYPE, answer
from api.routers.open311 import OPEN311_ANSWER, Open311Route, checked_format, published_catalogue
from api.routing import HotlineRouter
from domain.access import Action
from domain.base import Actor
from infra.runtime import Hotline

GEOREPORT_V2 = "http://wiki.open311.org/GeoReport_v2"

# The discovery document is one object (the router's other answers are lists).
DISCOVERY_ANSWER = {
    **OPEN311_ANSWER,
    200: {
        "description": "Service discovery in the format asked for: .json (one object) or .xml (<discovery>)",
        "content": {
            "application/json; charset=utf-8": {
                "schema": {
                    "type": "object",
                    "required": ["changeset", "contact", "key_service", "endpoints"],
                    "properties": {
                        "changeset": {"type": ["string", "null"]},
                        "contact": {"type": "string"},
                        "key_service": {"type": "string"},
                        "endpoints": {"type": "array", "items": {"type": "object"}},
                    },
                }
            },
            "text/xml; charset=utf-8": {"schema": {"type": "string"}},
        },
    },
}

router = HotlineRouter(
    prefix="/open311", tags=["open311"], route_class=Open311Route, responses=DISCOVERY_ANSWER, default_response_class=Response
)


@router.get("/discovery.{fmt}", summary="Open311: service discovery (where the GeoReport v2 endpoint is, its formats, contact, keys)")
def discovery(fmt: str, request: Request, hotline: Hotline = Depends(get_hotline), _: Actor = allow(Action.CATALOGUE_READ)) -> Response:
    fmt = checked_format(fmt)
    settings = hotline.settings
    catalogue = published_catalogue(hotline)
    changed = catalogue.modified_on if catalogue is not None else None
    changeset = _utc(changed) if changed is not None else None
    endpoint: dict[str, Any] = {
        "specification": GEOREPORT_V2,
        "url": str(request.base_url).rstrip("/") + "/open311/v2",
        "changeset": changeset,
        "type": "production",
        "formats": [XML_TYPE.split(";")[0], JSON_TYPE.split(";")[0]],
    }
    return answer(
        fmt,
        "discovery",
        {
            "changeset": changeset,
            "contact": settings.open311_contact or settings.mail_from,
            "key_service": settings.open311_key_service,
            "endpoints": [endpoint],
        },
    )


def _utc(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")  # as every date-time Open311 answers here
