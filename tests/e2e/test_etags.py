"""Every read of one aggregate carries its true version (body and ETag), and If-Match with
that ETag makes the aggregate's commands conditional, over HTTP on both stores.

Each test: read → a command with ``If-Match: <the ETag>`` succeeds → the same ETag again
is 409 (someone wrote in between) → the new read's ETag is the aggregate's version in the
event store. Oracle: the highest version among the aggregate's events, read from
``hotline.store`` (not from the read models or the aggregate objects the API uses).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from fastapi.testclient import TestClient

from api.app import create_app
from domain.calendars.aggregate import calendar_id
from domain.catalogue.aggregate import catalogue_id
from infra.runtime import Hotline
from tests.auth import SignedInClient, actor, bearer

AGENT = actor("op-anna", "agent")
SUP = actor("sup-li", "supervisor")
ROADS = actor("dept-transport", "department", departments=["transport"])
CALENDARS = Path(__file__).resolve().parents[2] / "infra" / "data" / "calendars.yaml"


@pytest.fixture
def client(hotline: Hotline) -> Iterator[TestClient]:
    with SignedInClient(create_app(hotline=hotline)) as c:
        yield c


def admin(hotline: Hotline) -> dict[str, str]:
    return bearer(hotline.settings, "admin-ada", "administrator")


def ok(r: Any, status: int = 200) -> Any:
    assert r.status_code == status, f"{r.request.method} {r.request.url}: {r.status_code} {r.text}"
    return r.json()


def store_version(hotline: Hotline, aggregate_id: Any) -> int:
    """The oracle: the aggregate's last version as the event store holds it."""
    versions = [e.version for e in hotline.store.iter_envelopes() if e.aggregate_id == str(aggregate_id)]
    assert versions, f"no events of {aggregate_id} in the store"
    return max(versions)


def check_conditional(
    client: TestClient,
    hotline: Hotline,
    *,
    url: str,
    read_headers: dict[str, str],
    write: Callable[[dict[str, str]], Any],
    second_write: Callable[[dict[str, str]], Any],
    aggregate_id: Any,
) -> None:
    """The contract of item 4, for one read and the commands of its aggregate."""
    read = client.get(url, headers=read_headers)
    body = ok(read)
    tag = read.headers.get("ETag")
    assert tag == f'"{body["version"]}"' == f'"{store_version(hotline, aggregate_id)}"', (tag, body.get("version"))
    ok(write({"If-Match": tag}))
    # Refused for its version (not for its content: the second write alone would succeed,
    # as the end of this check shows), and nothing written.
    before = store_version(hotline, aggregate_id)
    stale = second_write({"If-Match": tag})
    assert stale.status_code == 409 and stale.json()["error"]["code"] == "version_conflict", stale.text
    assert store_version(hotline, aggregate_id) == before
    again = client.get(url, headers=read_headers)
    ok(again)
    assert again.headers["ETag"] == f'"{again.json()["version"]}"' == f'"{store_version(hotline, aggregate_id)}"'
    assert again.headers["ETag"] != tag
    # The new ETag is good for the next change (a weak form, as a proxy may send it, too).
    ok(second_write({"If-Match": f"W/{again.headers['ETag']}"}))


# ------------------------------------------------------------------------ citizens
def test_citizen_read_has_its_true_version(client: TestClient, hotline: Hotline) -> None:
    body = {
        "kind": "information",
        "subtype": "consultation",
        "channel": "phone",
        "description": "Opening hours of the registry office",
        "contact": {"name": "Mario Rossi", "phone": "+39 06 1234 5678"},
    }
    citizen_id = ok(client.post("/requests", json=body, headers=AGENT), 201)["citizen_id"]
    assert citizen_id
    # A second contact of the same citizen adds an identifier: an event of the citizen's
    # stream the read model's counters do not show, and which must still move its version.
    body2 = {**body, "contact": {"name": "Mario Rossi", "phone": "+39 06 1234 5678", "email": "mario@example.it"}}
    assert ok(client.post("/requests", json=body2, headers=AGENT), 201)["citizen_id"] == citizen_id
    assert store_version(hotline, citizen_id) >= 2
    url = f"/citizens/{citizen_id}"
    check_conditional(
        client,
        hotline,
        url=url,
        read_headers=SUP,
        write=lambda h: client.post(url, json={"language": "en"}, headers={**SUP, **h}),
        second_write=lambda h: client.post(url, json={"language": "zh"}, headers={**SUP, **h}),
        aggregate_id=citizen_id,
    )


# ------------------------------------------------------------------------ work orders
def test_work_order_read_has_its_true_version(client: TestClient, hotline: Hotline) -> None:
    body = {
        "kind": "action",
        "subtype": "complaint",
        "channel": "phone",
        "description": "Pothole in Via Appia",
        "urgency": "normal",
        "problem_code": "pothole",
        "contact": {"name": "Mario Rossi", "phone": "+39 06 1234 5678"},
    }
    ref = ok(client.post("/requests", json=body, headers=AGENT), 201)["reference"]
    ok(client.post(f"/requests/{ref}/dispatch", json={}, headers=AGENT))
    ok(client.post(f"/requests/{ref}/accept", json={"department_id": "transport"}, headers=ROADS))
    wo = ok(client.post(f"/requests/{ref}/work-order", headers=SUP), 201)
    url = f"/work-orders/{wo['id']}"
    check_conditional(
        client,
        hotline,
        url=url,
        read_headers=SUP,
        write=lambda h: client.post(f"{url}/start", json={}, headers={**ROADS, **h}),
        second_write=lambda h: client.post(f"{url}/tasks", json={"task_index": 0}, headers={**ROADS, **h}),
        aggregate_id=wo["id"],
    )


# ------------------------------------------------------------------------ knowledge
def test_knowledge_article_read_has_the_aggregates_version_not_its_revision(client: TestClient, hotline: Hotline) -> None:
    draft = {"translations": {"en": {"title": "Registry office hours", "body": "Monday to Friday, 9 to 13."}}}
    article_id = ok(client.post("/knowledge/articles", json=draft, headers=SUP), 201)["id"]
    url = f"/knowledge/articles/{article_id}"
    ok(client.post(f"{url}/review", headers=SUP))
    ok(client.post(f"{url}/publish", headers=SUP))
    read = ok(client.get(url, headers=SUP))
    assert (read["revision"], read["version"]) == (1, 3)  # one revision, three events
    check_conditional(
        client,
        hotline,
        url=url,
        read_headers=SUP,
        write=lambda h: client.post(f"{url}/revise", json={"tags": ["registry"]}, headers={**SUP, **h}),
        second_write=lambda h: client.post(f"{url}/revise", json={"tags": ["hours"]}, headers={**SUP, **h}),
        aggregate_id=article_id,
    )
    # A past revision is read with the aggregate's current version (the one commands check).
    past = client.get(f"{url}/revisions/1", headers=SUP)
    assert ok(past)["revision"] == 1 and past.headers["ETag"] == f'"{store_version(hotline, article_id)}"'


# ------------------------------------------------------------------------ API keys
def test_a_revoke_with_a_stale_etag_is_refused(client: TestClient, hotline: Hotline) -> None:
    """A key has one command (revoke, once), so the stale ETag comes first here: an
    If-Match naming another version than the stored one is a 409 and the key stays usable."""
    spec = {"name": "Open311 gateway", "actions": ["requests.read"]}
    key_id = ok(client.post("/api-keys", json=spec, headers=admin(hotline)), 201)["id"]
    url = f"/api-keys/{key_id}"
    tag = client.get(url, headers=admin(hotline)).headers["ETag"]
    stale = client.post(
        f"{url}/revoke", json={"reason": "rotated"}, headers={**admin(hotline), "If-Match": f'"{int(tag.strip(chr(34))) + 1}"'}
    )
    assert stale.status_code == 409 and stale.json()["error"]["code"] == "version_conflict", stale.text
    assert ok(client.get(url, headers=admin(hotline)))["revoked"] is False


def test_api_key_read_has_its_etag(client: TestClient, hotline: Hotline) -> None:
    """What works whatever the handler: the ETag is the stored version before and after a change."""
    spec = {"name": "Open311 gateway", "actions": ["requests.read"]}
    key_id = ok(client.post("/api-keys", json=spec, headers=admin(hotline)), 201)["id"]
    url = f"/api-keys/{key_id}"
    read = client.get(url, headers=admin(hotline))
    assert read.headers["ETag"] == f'"{ok(read)["version"]}"' == f'"{store_version(hotline, key_id)}"'
    ok(client.post(f"{url}/revoke", json={"reason": "rotated"}, headers={**admin(hotline), "If-Match": read.headers["ETag"]}))
    again = client.get(url, headers=admin(hotline))
    assert again.headers["ETag"] == f'"{ok(again)["version"]}"' == f'"{store_version(hotline, key_id)}"' != read.headers["ETag"]
    assert client.get(f"/api-keys/{uuid.uuid4()}", headers=admin(hotline)).status_code == 404


# ------------------------------------------------------------------------ calendars
def test_calendar_read_has_its_true_version(client: TestClient, hotline: Hotline) -> None:
    rome = yaml.safe_load(CALENDARS.read_text("utf-8"))["calendars"]["rome"]
    url = "/calendars/testland"
    ok(client.post(url, json={"definition": rome, "reason": "new jurisdiction"}, headers=SUP))
    check_conditional(
        client,
        hotline,
        url=url,
        read_headers=SUP,
        write=lambda h: client.post(url, json={"declare_holidays": ["2026-12-07"], "reason": "strike"}, headers={**SUP, **h}),
        second_write=lambda h: client.post(url, json={"declare_holidays": ["2026-12-09"], "reason": "flood"}, headers={**SUP, **h}),
        aggregate_id=calendar_id("testland"),
    )
    # The days declared are the calendar's: from Friday 4 December 12:30 (Rome's Friday ends
    # at 13:00), an hour of working time skips the weekend, the 7th and 9th (declared) and the
    # 8th (Immacolata): Thursday 10th, 09:00.
    due = client.get(f"{url}/deadline", params={"start": "2026-12-04T12:30:00+01:00", "hours": 1}, headers=SUP)
    assert ok(due)["local_due_at"] == "2026-12-10T09:00:00+01:00", due.text


# ------------------------------------------------------------------------ catalogue
def test_problem_code_read_has_the_catalogues_version(client: TestClient, hotline: Hotline) -> None:
    url = "/catalogue/problem-codes/pothole"

    def revise(hours: int) -> Callable[[dict[str, str]], Any]:
        deadlines = {"normal": {"hours": hours, "basis": "working"}}
        return lambda h: client.post(f"{url}/revision", json={"deadlines": deadlines}, headers={**SUP, **h})

    check_conditional(
        client,
        hotline,
        url=url,
        read_headers=SUP,
        write=revise(16),
        second_write=revise(24),
        aggregate_id=catalogue_id(hotline.settings.jurisdiction),
    )
    tree = client.get("/catalogue", headers=SUP)
    assert tree.headers["ETag"] == f'"{ok(tree)["version"]}"' == f'"{store_version(hotline, catalogue_id(hotline.settings.jurisdiction))}"'
