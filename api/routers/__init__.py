"""API routers, one module per area. Add a module's name here to serve it."""

ROUTERS: list[str] = [
    "health",
    "catalogue",
    "requests",
    "work_orders",
    "citizens",
    "supervision",
    "reports",
    "integrators",
    "sla",
    "contact_center",
]
