"""API routers, one module per area, each defining ``router``. Which are served, in which
order, is listed in ``infra/wiring.py`` (``ROUTERS``)."""
