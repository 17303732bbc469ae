"""Work orders as events for the nearby read model, and a brute-force oracle."""

from __future__ import annotations

import math
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from domain.base import event_type_name
from domain.envelope import Envelope
from domain.work_orders.aggregate import WorkOrder as WO
from tests.conftest import START

# The oracle's own sphere and formula, written apart from projections/nearby.py.
R = 6_371_008.771415059


def great_circle_m(a: tuple[float, float], b: tuple[float, float]) -> float:
    (lat1, lon1), (lat2, lon2) = a, b
    phi1, phi2 = math.radians(lat1), math.radians(lat2)
    s = math.sin((phi2 - phi1) / 2) ** 2 + math.cos(phi1) * math.cos(phi2) * math.sin(math.radians(lon2 - lon1) / 2) ** 2
    return 2 * R * math.asin(min(1.0, math.sqrt(s)))


@dataclass
class Order:
    id: str
    problem_code: str
    department_id: str
    lat: float | None
    lon: float | None
    created_at: datetime
    open: bool = True


def envelopes(orders: Sequence[Order], first_position: int = 1) -> list[Envelope]:
    """Each order's stream: created, and started then completed or cancelled when not open."""
    out: list[Envelope] = []
    position = first_position

    def env(cls: type, order: Order, version: int, at: datetime, data: dict[str, Any]) -> None:
        nonlocal position
        out.append(Envelope(event_type_name(cls), "workorder", order.id, version, position, at, data, {}))
        position += 1

    for n, o in enumerate(orders):
        location = None if o.lat is None else {"lat": o.lat, "lon": o.lon, "address": f"Street {n}"}
        env(
            WO.Created,
            o,
            1,
            o.created_at,
            {
                "problem_code": o.problem_code,
                "department_id": o.department_id,
                "provider_id": None,
                "template": {},
                "details": {},
                "location": location,
                "request_id": str(uuid.uuid5(uuid.NAMESPACE_URL, o.id)),
            },
        )
        if not o.open:
            env(WO.Started, o, 2, o.created_at + timedelta(minutes=1), {"crew": None})
            if n % 2:
                env(WO.Completed, o, 3, o.created_at + timedelta(minutes=2), {"outcome": "fixed"})
            else:
                env(WO.Cancelled, o, 3, o.created_at + timedelta(minutes=2), {"reason": "no"})
    return out


def oracle(
    orders: Iterable[Order], code: str, here: tuple[float, float], radius: float, department: str | None = None
) -> list[tuple[str, float]]:
    """Every open order of the code within the radius, by brute force: nearest, oldest, id."""
    found = []
    for o in orders:
        if not o.open or o.problem_code != code or o.lat is None or o.lon is None:
            continue
        if department is not None and o.department_id != department:
            continue
        d = great_circle_m(here, (o.lat, o.lon))
        if d <= radius:
            found.append((d, o.created_at, o.id))
    found.sort()
    return [(i, d) for d, _, i in found]


def at(minutes: int) -> datetime:
    return START + timedelta(minutes=minutes)
