"""Schemathesis over the whole OpenAPI document, in-process against the ASGI app.

The embedded hotline (SQLite) holds a day of the demo's life; every operation of
``/openapi.json`` is called with generated input (valid and invalid), signed in as a
supervisor, and every answer goes through all of schemathesis' checks: no server error,
a status the document declares for the operation, the declared media type, a body that
conforms to the declared schema, the declared headers, invalid input refused… Path
parameters are half the time an id the demo made (a request's reference, a work order,
an agent …), so the calls reach real things and not only 404s.

``HOTLINE_FUZZ_EXAMPLES`` sets the examples per operation (default below: the whole run
stays within about three minutes on the project's two-core machine).
"""

from __future__ import annotations

import os
import re
import sqlite3
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from fastapi import FastAPI
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.python import asgi
from schemathesis.specs.openapi.checks import positive_data_acceptance

from api.app import create_app
from api.demo import load_demo
from infra.runtime import Hotline
from infra.settings import Settings
from tests.auth import bearer

EXAMPLES = int(os.environ.get("HOTLINE_FUZZ_EXAMPLES", "2"))
ONLY = os.environ.get("HOTLINE_FUZZ_ONLY")  # a regular expression on "METHOD /path": fuzz only those
# Server-sent event streams never end by themselves: schemathesis reads a few events.
SUPERVISOR = "fuzz-supervisor"

pytestmark = pytest.mark.slow

# Path parameter -> ids of real things in the demo (filled once the demo is loaded).
KNOWN: dict[str, list[str]] = {}


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Hotline, FastAPI]]:
    data = tmp_path_factory.mktemp("fuzz")
    started = time.perf_counter()
    load_demo(Settings(data_dir=data), only_if_empty=False, days=0.25, seed=7)  # six hours
    print(f"demo loaded in {time.perf_counter() - started:.1f} s")
    hotline = Hotline.start(Settings(data_dir=data))
    app = create_app(hotline=hotline)
    with TestClient(app) as client:
        KNOWN.update(known_ids(client, hotline))
    yield hotline, app
    asgi.shutdown_lifespans()  # schemathesis keeps the app's lifespan (its background work) running until told
    hotline.close()


@pytest.fixture(scope="module")
def api_schema(demo: tuple[Hotline, FastAPI]) -> Any:
    _, app = demo
    return schemathesis.openapi.from_asgi("/openapi.json", app)


@pytest.fixture(scope="module")
def auth(demo: tuple[Hotline, FastAPI]) -> dict[str, str]:
    hotline, _ = demo
    return bearer(hotline.settings, SUPERVISOR, "supervisor")


def known_ids(client: TestClient, hotline: Hotline) -> dict[str, list[str]]:
    """Ids of real things, read through the API itself (and the store's stream ids)."""
    h = bearer(hotline.settings, SUPERVISOR, "supervisor")

    def get(path: str) -> Any:
        r = client.get(path, headers=h)
        assert r.status_code == 200, f"{path}: {r.status_code} {r.text[:300]}"
        return r.json()

    requests = get("/requests?limit=50")["items"]
    orders = get("/work-orders")
    agents = get("/agents")
    staff = get("/staff")
    catalogue = get("/catalogue")
    codes = [pc["code"] for d in catalogue["departments"] for p in d["providers"] for c in p["categories"] for pc in c["problem_codes"]]
    articles = [a["id"] for a in get("/knowledge/search?q=rubbish")["results"]]
    reports = [r["name"] for r in get("/reports")]
    with sqlite3.connect(Path(hotline.settings.data_dir) / "events.sqlite") as db:
        streams: dict[str, list[str]] = {}
        for originator, topic in db.execute("SELECT DISTINCT originator_id, topic FROM stored_events WHERE originator_version = 1"):
            streams.setdefault(topic.rsplit(":", 1)[-1].split(".")[0], []).append(str(uuid.UUID(str(originator))))
    return {
        "ref": [r["reference"] for r in requests],
        "order_id": [o["id"] for o in orders],
        "citizen_id": sorted({r["citizen_id"] for r in requests if r.get("citizen_id")}),
        "agent_id": [a["agent_id"] for a in agents],
        "username": [s["username"] for s in staff if s["username"] != "admin"],
        "code": codes,
        "service_code": codes,
        "article_id": articles,
        "name": reports,
        "jurisdiction": ["default"],
        "fmt": ["json", "xml"],
        "queue_id": ["general", "environment", "chat", "urgent", "tax"],
        "contact_id": streams.get("Contact", [])[:50],
        "notification_id": streams.get("Notification", [])[:50],
        "search_id": streams.get("KnowledgeSearch", [])[:50],
        "attachment_id": streams.get("Attachment", [])[:50],
        "key": [r["reference"] for r in requests],
        "stream": ["request", "contact", "workorder", "citizen"],
    }


def with_known_ids(case: Any) -> None:
    """Half the generated cases get real ids in their path (chosen from the generated
    values, so a case is reproducible)."""
    params = case.path_parameters or {}
    if not params or hash(repr(sorted(params.items()))) % 2:
        return
    for name, value in params.items():
        pool = KNOWN.get(name)
        if pool:
            params[name] = pool[hash(repr(value)) % len(pool)]


def schema_valid_input_accepted(ctx: Any, response: Any, case: Any) -> bool | None:
    """Schemathesis' positive_data_acceptance, less the refusals the domain makes of input
    the schema cannot judge (a state, the catalogue's contents, a rule across fields): those
    are 422s with the domain's own code. Input valid by the document that the API's own
    validation refuses (``invalid_request``) still fails, as does any other status the
    check does not expect. Open311 answers every refusal 400, as its spec says."""
    if response.status_code == 422 and error_code(response) not in (None, "invalid_request"):
        return None
    if response.status_code == 400 and case.operation.path.startswith("/open311/"):
        return None
    return positive_data_acceptance(ctx, response, case)


def error_code(response: Any) -> str | None:
    try:
        body = response.json()
    except ValueError:
        return None
    return body.get("error", {}).get("code") if isinstance(body, dict) else None


def explain(exc: BaseException) -> str:
    """The failure, with what a group holds (hypothesis' FlakyFailure hides the first error)."""
    text = f"{type(exc).__name__}: {str(exc)[:1500]}"
    for inner in getattr(exc, "exceptions", ())[:3]:
        text += "\n  - " + explain(inner).replace("\n", "\n    ")
    return text


def fuzz(operation: Any, auth: dict[str, str]) -> None:
    """``EXAMPLES`` valid and as many invalid cases of one operation (one hypothesis run:
    its start costs more than a case), every check on each answer; the first failure is
    raised, not shrunk (the run is bounded in time)."""
    # An operation with nothing to make invalid draws only valid cases (the other branch is filtered out).
    cases = operation.as_strategy(generation_mode=GenerationMode.POSITIVE) | operation.as_strategy(generation_mode=GenerationMode.NEGATIVE)

    @given(case=cases)
    @settings(
        max_examples=2 * EXAMPLES,
        deadline=None,
        suppress_health_check=list(HealthCheck),
        derandomize=True,
        phases=[Phase.explicit, Phase.generate],
        database=None,
    )
    def run(case: Any) -> None:
        with_known_ids(case)
        if operation.path.startswith("/live/"):
            # A live feed streams until the client leaves: ask for its first event only.
            case.query = {**(case.query or {}), "once": "true"}
        case.call_and_validate(headers=auth, excluded_checks=[positive_data_acceptance], additional_checks=[schema_valid_input_accepted])

    run()


def test_every_operation_answers_as_documented(api_schema: Any, auth: dict[str, str]) -> None:
    failures: list[str] = []
    timings: list[tuple[float, str]] = []
    operations = 0
    for result in api_schema.get_all_operations():
        operation = result.ok()
        if ONLY and not re.search(ONLY, operation.label):
            continue
        operations += 1
        started = time.perf_counter()
        try:
            fuzz(operation, auth)
        except Unsatisfiable:
            pass  # every case was filtered out (an operation with nothing to vary)
        except (Exception, BaseExceptionGroup) as exc:  # every operation is fuzzed; all failures are reported together
            failures.append(f"{operation.label}: {explain(exc)}")
        timings.append((time.perf_counter() - started, operation.label))
    slowest = sorted(timings, reverse=True)[:10]
    print(
        f"fuzzed {operations} operations in {sum(t for t, _ in timings):.1f} s; slowest: " + ", ".join(f"{n} {t:.1f} s" for t, n in slowest)
    )
    assert ONLY or operations > 100, f"only {operations} operations in the document"
    assert not failures, f"{len(failures)} failing operation runs of {operations} operations:\n\n" + "\n\n".join(failures)
