"""Every console route declares its rule (``page(Action)`` or ``PUBLIC_PAGE``), as every
API endpoint does; sign-in, sessions and CSRF behave as a browser needs; the assets are
served from the package, none from elsewhere."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient

from api.app import create_app
from api.auth import rule_of
from infra.runtime import Hotline
from infra.wiring import CONSOLE
from tests.auth import token_for


def test_every_console_route_declares_its_rule() -> None:
    undeclared = []
    for module in CONSOLE:
        for route in module.router.routes:
            if isinstance(route, APIRoute) and not rule_of(route.dependant)[0]:
                undeclared.append(f"{module.__name__}: {sorted(route.methods or ())} {route.path}")
    assert not undeclared, "console routes without page(...) or PUBLIC_PAGE:\n" + "\n".join(undeclared)


@pytest.fixture
def hotline(sqlite_hotline: Hotline) -> Hotline:
    return sqlite_hotline


@pytest.fixture
def client(hotline: Hotline) -> Iterator[TestClient]:
    with TestClient(create_app(hotline=hotline), base_url="http://testserver") as c:
        yield c


def test_pages_send_a_visitor_to_sign_in_and_back(client: TestClient) -> None:
    answer = client.get("/console/wallboard", follow_redirects=False)
    assert answer.status_code == 303
    assert answer.headers["location"].startswith("/console/sign-in?next=/console/wallboard")
    form = client.get(answer.headers["location"])
    assert form.status_code == 200 and 'name="password"' in form.text


def test_sign_in_sets_an_httponly_strict_session(client: TestClient, hotline: Hotline) -> None:
    from api.demo import enrol_demo_staff

    enrol_demo_staff(hotline)
    wrong = client.post("/console/sign-in", data={"username": "sup-li", "password": "nope"}, follow_redirects=False)
    assert wrong.status_code == 401 and "hotline_session" not in wrong.cookies
    form = {"username": "sup-li", "password": "hotline-demo", "next": "//evil.example/x"}
    answer = client.post("/console/sign-in", data=form, follow_redirects=False)
    assert answer.status_code == 303 and answer.headers["location"] == "/console/wallboard"  # never an open redirect
    cookies = answer.headers.get_list("set-cookie")
    session = next(c for c in cookies if c.startswith("hotline_session="))
    assert "HttpOnly" in session and "SameSite=strict" in session
    assert client.get("/console/wallboard").status_code == 200


def test_a_change_through_the_session_needs_the_csrf_token(client: TestClient, hotline: Hotline) -> None:
    client.cookies.set("hotline_session", token_for(hotline.settings, "sup-1", "supervisor"))
    client.cookies.set("hotline_csrf", "the-page-token")
    body = {"channel": "phone", "queue_id": "general"}
    refused = client.post("/contacts", json=body)
    assert refused.status_code == 403 and refused.json()["error"]["code"] == "csrf"
    forged = client.post("/contacts", json=body, headers={"X-CSRF-Token": "guessed"})
    assert forged.status_code == 403
    # Reads need no token: a GET changes nothing.
    assert client.get("/wallboard").status_code == 200


def test_a_role_without_the_screen_gets_a_403_page(client: TestClient, hotline: Hotline) -> None:
    client.cookies.set("hotline_session", token_for(hotline.settings, "citizen:c-1", "citizen", citizen="c-1"))
    answer = client.get("/console/wallboard")
    assert answer.status_code == 403
    assert answer.headers["content-type"].startswith("text/html") and "contact_center.read" in answer.text


def test_assets_and_api_docs_come_from_here(client: TestClient) -> None:
    docs = client.get("/docs")
    assert docs.status_code == 200
    sources = re.findall(r'(?:src|href)="([^"]+)"', docs.text)
    assert sources and all(s.startswith("/") for s in sources), sources
    assert "cdn" not in docs.headers["content-security-policy"]
    for path in ("/console/static/vendor/htmx.min.js", "/console/static/vendor/swagger-ui-bundle.js", "/console/static/console.js"):
        asset = client.get(path)
        assert asset.status_code == 200 and "max-age" in asset.headers["cache-control"], path
    page = client.get("/console/sign-in")
    assert "script-src 'self';" in page.headers["content-security-policy"]
    assert page.headers["cache-control"] == "no-store"
