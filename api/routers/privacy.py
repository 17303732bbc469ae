"""/citizens/{id}/erasure: a citizen's right to erasure (crypto-shredding, domain/privacy)."""

from __future__ import annotations

from typing import Any

from fastapi import Depends, Request, Response

from api.auth import allow
from api.deps import get_hotline
from api.responses import ErasureAnswer
from api.routing import HotlineRouter
from domain.access import Action
from domain.base import Actor
from domain.privacy.commands import EraseCitizen
from infra.privacy import erase_citizen
from infra.runtime import Hotline

router = HotlineRouter(prefix="/citizens", tags=["privacy"])


@router.post(
    "/{citizen_id}/erasure",
    response_model=ErasureAnswer,
    summary="Erase a citizen's personal data: their keys are destroyed, the history stays",
)
def erase(
    citizen_id: str,
    cmd: EraseCitizen,
    request: Request,
    response: Response,
    hotline: Hotline = Depends(get_hotline),
    actor: Actor = allow(Action.PRIVACY_ERASE),
) -> dict[str, Any]:
    """The erasure is an event (who, why, which streams it covered); then every key of the
    citizen is destroyed, in every process within a second, and every read model blanks
    what it had copied. ``subjects`` in the body is ignored: the key store says them."""
    result = erase_citizen(hotline, citizen_id, cmd.reason, actor, correlation_id=request.headers.get("x-correlation-id"))
    response.headers["X-Event-Position"] = str(result["position"])
    return result
