"""The console: the hotline's screens, served by ``hotline serve`` itself.

Server-rendered pages (Jinja2, ``templates/``) with a little JavaScript: htmx swaps
fragments and follows the live feed (Server-Sent Events, ``live.py``); forms post JSON
to the same API endpoints every other client uses (``static/console.js``), so the
console validates and refuses exactly as the API does. One module per screen area
(``desk.py``, ``supervisor.py`` …), each with its templates in ``templates/<area>/`` and
its labels in ``locales/<lang>/<area>.po``; ``infra/wiring.py`` lists the areas.
Every asset is served from the package (``static/``, vendored from npm by
``infra/console-assets.sh``): nothing is fetched from the internet.
"""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

from api.console.session import PUBLIC_PAGE, install_pages
from api.console.web import HERE
from api.routing import add_routes
from domain.base import Actor


def install(app: FastAPI) -> None:
    """Static files, the HTML refusal pages and the API docs served from here."""
    from infra.wiring import CONSOLE

    app.mount("/console/static", StaticFiles(directory=HERE / "static"), name="console-static")
    install_pages(app)

    @app.get("/docs", include_in_schema=False, response_class=HTMLResponse)
    async def docs(request: Request, _: Actor | None = PUBLIC_PAGE) -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url="/openapi.json",
            title="Hotline API",
            swagger_js_url="/console/static/vendor/swagger-ui-bundle.js",
            swagger_css_url="/console/static/vendor/swagger-ui.css",
            swagger_favicon_url="/console/static/vendor/favicon-32x32.png",
        )

    for module in CONSOLE:
        add_routes(app, module.router)
