"""/citizens: one citizen across channels and their whole history (CRM)."""

from __future__ import annotations

from typing import Any

from fastapi import Depends, Response

from api.auth import allow
from api.deps import CommandRoute, ReadYourWrites, add_command_routes, get_hotline, set_etag
from api.read_log import PersonalDataRead, personal_data_read
from api.routing import HotlineRouter
from api.schemas import Accepted, CitizenDetail, CitizenView, HistoryEntry
from domain.access import Access, Action, allows, authorize
from domain.base import Actor, NotFound
from domain.citizens import commands as c
from domain.citizens.aggregate import normalise_email, normalise_phone
from infra.runtime import Hotline
from projections import citizen_history

router = HotlineRouter(prefix="/citizens", tags=["citizens"])


@router.get("", response_model=list[CitizenView], summary="Find a citizen by phone number or email")
def find(
    hotline: Hotline = Depends(get_hotline),
    actor: Actor = allow(Action.CITIZENS_READ),
    phone: str | None = None,
    email: str | None = None,
    read: PersonalDataRead = personal_data_read("identify a caller"),
) -> list[dict[str, Any]]:
    if not phone and not email:
        from domain.base import InvalidCommand

        raise InvalidCommand("give a phone number or an email to look a citizen up")
    with hotline.read_store.engine.connect() as conn:
        found = citizen_history.find(
            conn,
            phone=normalise_phone(phone, hotline.bus.deps.policy.default_region) if phone else None,
            email=normalise_email(email) if email else None,
        )
    shown = [row for row in found if allows(actor, Action.CITIZENS_READ, Access(citizen_id=row["id"]))]
    if shown:
        read.record(actor, what="citizen lookup", citizen_ids=[row["id"] for row in shown], count=len(shown))
    return shown


@router.get("/{citizen_id}", response_model=CitizenDetail, summary="A citizen and their history")
def get_citizen(
    citizen_id: str,
    response: Response,
    hotline: Hotline = Depends(get_hotline),
    actor: Actor = allow(Action.CITIZENS_READ),
    _ryw: None = ReadYourWrites,
    read: PersonalDataRead = personal_data_read("case handling"),
) -> dict[str, Any]:
    authorize(actor, Action.CITIZENS_READ, Access(citizen_id=citizen_id))
    with hotline.read_store.engine.connect() as conn:
        row = citizen_history.get(conn, citizen_id)
        if row is None:
            raise NotFound(f"no citizen {citizen_id}")
        row["history"] = [HistoryEntry(**h) for h in citizen_history.history(conn, citizen_id)]
    set_etag(response, row["version"])  # If-Match on POST /citizens/{id}
    read.record(actor, what="citizen", subject=citizen_id, citizen_ids=[citizen_id])
    return row


add_command_routes(
    router,
    "/{citizen_id}",
    [CommandRoute("", c.UpdateCitizen, "Change contact details or language", name="update")],
    response_model=Accepted,
)
