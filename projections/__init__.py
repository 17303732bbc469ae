"""Read models: one module per read model, each defining ``projection`` (projections/base.py)
and the query functions the API calls. Which of them the hotline keeps is listed in
``infra/wiring.py`` (``PROJECTIONS``)."""
