"""/staff and /api-keys: accounts and keys, administered (who may sign in, as what).

Each change is a command and an event (domain/identity/): granting a role is as
auditable as dispatching a case.
"""

from __future__ import annotations

import secrets
import uuid
from datetime import datetime
from typing import Any

from fastapi import Depends, Query, Request, Response
from pydantic import BaseModel, ConfigDict, Field

from api.auth import allow
from api.deps import CommandRoute, ReadYourWrites, add_command_routes, get_hotline, set_etag
from api.responses import ApiKeyIssued, ApiKeyView, StaffAccount
from api.routing import HotlineRouter
from domain.access import Action
from domain.base import Actor, NotFound
from domain.identity import commands as c
from domain.identity.api_keys import ApiKey
from domain.identity.staff import StaffMember, staff_id
from infra.identity.secrets import api_key_hash
from infra.identity.service import API_KEY_PREFIX
from infra.runtime import Hotline
from projections import staff as staff_list

router = HotlineRouter(tags=["staff and keys"])


@router.get("/staff", response_model=list[StaffAccount], summary="Staff accounts (filter by role or department)")
def list_staff(
    hotline: Hotline = Depends(get_hotline),
    _: Actor = allow(Action.STAFF_READ),
    role: str | None = None,
    department: str | None = None,
    limit: int = Query(500, ge=1, le=5000),
    _ryw: None = ReadYourWrites,
) -> list[dict[str, Any]]:
    with hotline.read_store.engine.connect() as conn:
        return staff_list.listing(conn, role=role, department=department, limit=limit)


@router.get("/staff/{username}", response_model=StaffAccount, summary="A staff account: roles, departments, disabled")
def get_staff(
    username: str, response: Response, hotline: Hotline = Depends(get_hotline), _: Actor = allow(Action.STAFF_READ)
) -> dict[str, Any]:
    member = hotline.store.read_reference(staff_id(username))
    if not isinstance(member, StaffMember):
        raise NotFound(f"no staff member {username}")
    set_etag(response, member.version)  # from the event store itself: always the true version
    return member.summary()


add_command_routes(router, "/staff", [CommandRoute("", c.EnrollStaff, "Enrol a staff member", status_code=201)])
add_command_routes(
    router,
    "/staff/{username}",
    [
        CommandRoute("roles/grant", c.GrantRole, "Grant a role"),
        CommandRoute("roles/revoke", c.RevokeRole, "Revoke a role"),
        CommandRoute("departments", c.AssignDepartments, "Assign the departments a department user acts for"),
        CommandRoute("disable", c.DisableStaff, "Disable the account (its tokens stop working within seconds)"),
        CommandRoute("enable", c.EnableStaff, "Enable the account again"),
        CommandRoute("password", c.SetPassword, "Set the password"),
    ],
)


class ApiKeySpec(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1, max_length=200, description="Who uses it: 'Open311 gateway of the city portal'")
    role: str = Field("integrator", description="integrator, or system for the hotline's own adapters (a PBX)")
    actions: list[str] = Field(min_length=1, max_length=100, description="The actions it may take (domain/access.py)")
    jurisdiction: str | None = None
    expires_at: datetime | None = None


@router.post(
    "/api-keys",
    status_code=201,
    response_model=ApiKeyIssued,
    summary="Issue an API key: the key is in this answer only, never again",
)
def issue_api_key(
    spec: ApiKeySpec,
    request: Request,
    response: Response,
    hotline: Hotline = Depends(get_hotline),
    actor: Actor = allow(Action.API_KEYS_MANAGE),
) -> dict[str, Any]:
    secret = secrets.token_urlsafe(32)
    cmd = c.IssueApiKey(**spec.model_dump(), secret_hash=api_key_hash(secret))
    # No Idempotency-Key here: its record would keep the answer, and so the key.
    answer = hotline.bus.execute(cmd, actor).result
    answer["key"] = f"{API_KEY_PREFIX}{uuid.UUID(answer['id']).hex}_{secret}"
    response.headers["Location"] = f"/api-keys/{answer['id']}"
    return answer


@router.get("/api-keys/{key_id}", response_model=ApiKeyView, summary="An API key's name, role, actions and state (never the key)")
def get_api_key(
    key_id: str, response: Response, hotline: Hotline = Depends(get_hotline), _: Actor = allow(Action.API_KEYS_READ)
) -> dict[str, Any]:
    try:
        key = hotline.store.read_reference(uuid.UUID(key_id))
    except ValueError:
        key = None
    if not isinstance(key, ApiKey):
        raise NotFound(f"no API key {key_id}")
    set_etag(response, key.version)  # from the event store itself, as the body
    return key.summary()


add_command_routes(router, "/api-keys/{key_id}", [CommandRoute("revoke", c.RevokeApiKey, "Revoke the key (at once)")])
