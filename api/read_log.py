"""Every read of citizens' personal data is recorded: who read it, what, and why.

An endpoint that returns personal data (a citizen's record, a request's contact details,
a caller's screen pop, the auditor's views) declares ``read: PersonalDataRead =
personal_data_read("the endpoint's purpose")`` and calls ``read.record(actor, ...)`` once
it knows what it returns. The caller may say why it reads (``X-Purpose`` header or a
``purpose`` query parameter); otherwise the endpoint's own purpose is recorded.

The record is one log line through the project's logging (``infra/logging.py``: JSON on
stderr, shipped with every other line), logger ``hotline.audit.personal_data``, event
``personal data read``. Not an event in the store: a read changes nothing, and a GET on
the write path would cost every screen a commit. The line names the citizen by id only,
never by their data.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import structlog
from fastapi import Depends, Header, Query, Request

from domain.base import Actor

log = structlog.get_logger("hotline.audit.personal_data")
PURPOSE_MAX = 200


@dataclass(frozen=True)
class PersonalDataRead:
    """One request's record of what personal data it read, and why."""

    endpoint: str  # GET /citizens/{citizen_id}
    purpose: str
    purpose_given: bool  # the caller said why (else: the endpoint's default purpose)
    client: str | None = None

    def record(
        self,
        actor: Actor,
        *,
        what: str,
        subject: str | None = None,
        citizen_ids: Iterable[str | None] = (),
        count: int | None = None,
    ) -> None:
        """Logs the read: ``what`` kind of record (``citizen``, ``request``, ``caller``),
        ``subject`` its id or reference, the citizens whose data it held."""
        citizens = sorted({c for c in citizen_ids if c})
        fields: dict[str, Any] = {
            "actor_id": actor.id,
            "actor_role": actor.role,
            "via": actor.via,
            "what": what,
            "subject": subject,
            "citizen_ids": citizens,
            "purpose": self.purpose,
            "purpose_given": self.purpose_given,
            "endpoint": self.endpoint,
            "client": self.client,
        }
        if count is not None:
            fields["count"] = count
        log.info("personal data read", **fields)


def personal_data_read(default_purpose: str) -> Any:
    """The endpoint's dependency: who asks is the route's ``allow`` rule; this adds why."""

    async def dependency(  # async: no work worth a hand-off to a worker thread and back
        request: Request,
        x_purpose: str | None = Header(None, alias="X-Purpose", max_length=PURPOSE_MAX, description="Why personal data is read (recorded)"),
        purpose: str | None = Query(None, max_length=PURPOSE_MAX, description="Why personal data is read (recorded); or X-Purpose"),
    ) -> PersonalDataRead:
        given = (x_purpose or purpose or "").strip()
        route = request.scope.get("route")
        path = getattr(route, "path_format", None) or request.url.path
        client = request.client.host if request.client else None
        return PersonalDataRead(
            endpoint=f"{request.method} {path}", purpose=given or default_purpose, purpose_given=bool(given), client=client
        )

    dependency.__name__ = "personal_data_read"
    return Depends(dependency)


def record_read(
    actor: Actor,
    *,
    endpoint: str,
    purpose: str,
    what: str,
    subject: str | None = None,
    citizen_ids: Iterable[str | None] = (),
    count: int | None = None,
) -> None:
    """The same record from outside an HTTP route (the CLI, a console page)."""
    PersonalDataRead(endpoint=endpoint, purpose=purpose, purpose_given=False).record(
        actor, what=what, subject=subject, citizen_ids=citizen_ids, count=count
    )
