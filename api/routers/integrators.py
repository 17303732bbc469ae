"""For integrators: the AsyncAPI document of the Kafka topics, and the relay's and
consumers' progress (how far behind the event store the Kafka side is)."""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from fastapi import Depends

from api.auth import OPEN, allow
from api.deps import get_hotline
from api.responses import AsyncApiDocument, KafkaStatus
from api.routing import HotlineRouter
from domain.access import Action
from domain.base import Actor
from infra.runtime import Hotline

router = HotlineRouter(tags=["integrators"])


@lru_cache(maxsize=1)
def _document() -> dict[str, Any]:
    from api.asyncapi import generate

    return generate()


@router.get("/asyncapi.json", response_model=AsyncApiDocument, summary="AsyncAPI 2.6 document of the Kafka topics (CloudEvents 1.0 JSON)")
def asyncapi_document(_: None = OPEN) -> dict[str, Any]:
    return _document()


@router.get("/kafka/status", response_model=KafkaStatus, summary="Relay position and consumer-group lag (distributed mode)")
def kafka_status(hotline: Hotline = Depends(get_hotline), _: Actor = allow(Action.OPERATIONS_READ)) -> dict[str, Any]:
    import sqlalchemy as sa

    from consumers.kafka_contract import create_relay_tables, lag_report, relay_positions

    head = hotline.store.max_position()
    if hotline.settings.kafka_bootstrap_servers is None:
        return {"mode": hotline.settings.mode, "event_store_position": head, "relays": {}, "consumer_groups": {}}
    create_relay_tables(hotline.read_store.engine)
    with hotline.read_store.engine.connect() as conn:
        relays = {r.name: {"position": r.position, "lag": max(0, head - r.position)} for r in conn.execute(sa.select(relay_positions))}
        groups = lag_report(conn)
    return {"mode": hotline.settings.mode, "event_store_position": head, "relays": relays, "consumer_groups": groups}
