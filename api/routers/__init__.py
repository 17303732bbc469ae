"""API routers, one module per area, served in this order (``api/app.py`` includes them)."""

from __future__ import annotations

from api.routers import (
    catalogue,
    citizens,
    contact_center,
    health,
    integrators,
    reports,
    requests,
    sla,
    supervision,
    work_orders,
)

ROUTERS = (health, catalogue, requests, work_orders, citizens, supervision, reports, integrators, sla, contact_center)
