"""A store that cannot answer (PostgreSQL down or at its connection limit, a pool exhausted,
SQLite locked) is a 503 with Retry-After and the error body, documented on every operation;
a bug is a 500 with the same body, not Starlette's plain text. Seen under load: two API
workers with large pools hit PostgreSQL's "too many clients" and answered plain-text 500s."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager

import eventsourcing.persistence
import psycopg
import psycopg_pool
import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from api.errors import STORE_UNAVAILABLE, store_unavailable
from infra.read_store import make_engine
from infra.runtime import Hotline
from tests.auth import SignedInClient

SUP = {"X-Actor-Id": "sup-li", "X-Actor-Role": "supervisor"}


@pytest.fixture
def client(hotline: Hotline) -> Iterator[TestClient]:
    with SignedInClient(create_app(hotline=hotline), raise_server_exceptions=False) as c:
        yield c


@contextmanager
def read_store_unreachable(hotline: Hotline) -> Iterator[None]:
    """The read store moved to a PostgreSQL that refuses connections (nothing listens on port 1)."""
    working = hotline.read_store.engine
    hotline.read_store.engine = make_engine("postgresql://postgres@127.0.0.1:1/nothing", 1)
    try:
        yield
    finally:
        hotline.read_store.engine.dispose()
        hotline.read_store.engine = working


@pytest.fixture
def unreachable_read_store(hotline: Hotline) -> Iterator[None]:
    with read_store_unreachable(hotline):
        yield


def test_an_unreachable_store_is_a_503_with_retry_after(client: TestClient, unreachable_read_store: None) -> None:
    answer = client.get("/requests", headers=SUP)
    assert answer.status_code == 503, answer.text
    assert answer.headers["Retry-After"] == "1"
    assert answer.json()["error"]["code"] == "store_unavailable"


def test_open311_answers_it_in_its_own_format(client: TestClient, unreachable_read_store: None) -> None:
    answer = client.get("/open311/v2/requests.json", headers=SUP)
    assert answer.status_code == 503, answer.text
    assert answer.headers["Retry-After"] == "1"
    assert answer.json()[0]["code"] == 503


def test_the_api_answers_again_once_the_store_is_back(client: TestClient, hotline: Hotline) -> None:
    with read_store_unreachable(hotline):
        assert client.get("/requests", headers=SUP).status_code == 503
    assert client.get("/requests", headers=SUP).status_code == 200


def test_a_bug_is_a_500_with_the_error_body(hotline: Hotline) -> None:
    app = create_app(hotline=hotline)

    @app.get("/test-only/broken", include_in_schema=False)
    def broken() -> None:
        raise RuntimeError("a bug")

    with TestClient(app, raise_server_exceptions=False) as c:
        answer = c.get("/test-only/broken")
    assert answer.status_code == 500
    assert answer.json()["error"]["code"] == "internal_error"


def test_a_wrong_query_on_sqlite_is_a_bug_not_an_unavailable_store(hotline: Hotline) -> None:
    """SQLite raises OperationalError for a syntax error too: that is a 500, not a 503."""
    app = create_app(hotline=hotline)

    @app.get("/test-only/wrong-query", include_in_schema=False)
    def wrong_query() -> None:
        with make_engine("sqlite://", 1).connect() as conn:
            conn.exec_driver_sql("SELEKT 1")

    with TestClient(app, raise_server_exceptions=False) as c:
        answer = c.get("/test-only/wrong-query")
    assert answer.status_code == 500
    assert answer.json()["error"]["code"] == "internal_error"


def test_every_operation_documents_the_503(client: TestClient) -> None:
    document = client.get("/openapi.json").json()
    missing = [
        f"{method.upper()} {path}"
        for path, operations in document["paths"].items()
        for method, operation in operations.items()
        if method in ("get", "post", "put", "patch", "delete") and "503" not in operation["responses"] and path != "/healthz"
    ]
    assert not missing, missing
    # The liveness probe reports a store's failure in its 200; /readyz's own 503 has no Retry-After.
    assert "503" not in document["paths"]["/healthz"]["get"]["responses"]
    assert "Retry-After" not in document["paths"]["/readyz"]["get"]["responses"]["503"].get("headers", {})


def _raised_from(cause: BaseException, wrapper: type[Exception]) -> Exception:
    try:
        try:
            raise cause
        except BaseException as exc:
            raise wrapper("the store failed") from exc
    except Exception as wrapped:
        return wrapped


@pytest.mark.parametrize(
    ("error", "unavailable"),
    [
        (psycopg.errors.DeadlockDetected(), True),
        (psycopg.errors.TooManyConnections(), True),
        (psycopg.errors.AdminShutdown(), True),
        (psycopg.OperationalError("connection refused"), True),  # no SQLSTATE: the client's side
        (psycopg.errors.ProgramLimitExceeded(), False),  # a query too big: a bug
        (sqlite3.OperationalError("database is locked"), True),
        (sqlite3.OperationalError("no such table: rm_requests"), False),
        (_raised_from(psycopg.errors.TooManyConnections(), eventsourcing.persistence.OperationalError), True),
        (_raised_from(sqlite3.OperationalError('near "SELEKT": syntax error'), eventsourcing.persistence.OperationalError), False),
        (psycopg_pool.PoolTimeout("pool initialization incomplete"), True),
    ],
)
def test_what_counts_as_an_unavailable_store(error: Exception, unavailable: bool) -> None:
    """The event store's recorders wrap the driver's error (eventsourcing's own classes, the
    driver's as __cause__); the SQLSTATE says whether waiting can help."""
    assert isinstance(error, STORE_UNAVAILABLE)
    assert store_unavailable(error) is unavailable
