"""ASGI entry point: ``uvicorn api.main:app`` (what ``hotline serve`` runs, in each worker)."""

from api.app import create_app
from infra.logging import configure_logging
from infra.settings import get_settings

configure_logging(get_settings())  # a worker process starts here, not in the CLI
app = create_app()
