"""Liveness and lag: how far each projection is behind the event store; Prometheus metrics."""

from __future__ import annotations

import hmac

from fastapi import APIRouter, Depends, Request, Response

from api.auth import OPEN
from api.deps import get_hotline
from api.errors import Unauthenticated
from api.schemas import Health
from infra.metrics import CONTENT_TYPE_LATEST, ProjectionPositions, exposition
from infra.runtime import Hotline

router = APIRouter(tags=["health"])


@router.get("/healthz", response_model=Health)
def healthz(response: Response, hotline: Hotline = Depends(get_hotline), _: None = OPEN) -> Health:
    try:
        position = hotline.store.max_position()
        applied = hotline.read_store.positions()
    except Exception as exc:
        response.status_code = 503
        return Health(status=f"unavailable: {exc}", mode=hotline.settings.mode, event_store="unreachable", position=0, projections={})
    return Health(
        status="ok",
        mode=hotline.settings.mode,
        event_store="postgresql" if hotline.store.is_postgres else "sqlite",
        position=position,
        projections={
            p.name: {"position": applied.get(p.name, 0), "lag": max(0, position - applied.get(p.name, 0))}
            for p in hotline.read_store.projections
        },
    )


@router.get("/metrics", include_in_schema=False)
def metrics(request: Request, hotline: Hotline = Depends(get_hotline), _: None = OPEN) -> Response:
    """Prometheus text format: commands, group commit, HTTP latency, and each projection's
    position and lag read from the stores now. With ``HOTLINE_METRICS_TOKEN`` set, the
    scraper sends it as a bearer token."""
    expected = hotline.settings.metrics_token
    if expected and not hmac.compare_digest(request.headers.get("authorization", ""), f"Bearer {expected}"):
        raise Unauthenticated("/metrics wants 'Authorization: Bearer <HOTLINE_METRICS_TOKEN>'")

    def positions() -> tuple[int, dict[str, int], list[str]]:
        return hotline.store.max_position(), hotline.read_store.positions(), [p.name for p in hotline.read_store.projections]

    return Response(exposition(ProjectionPositions(positions)), media_type=CONTENT_TYPE_LATEST)
