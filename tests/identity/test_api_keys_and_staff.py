"""Staff accounts and API keys, administered over HTTP (domain/identity/).

* An administrator enrols a supervisor with a password; the password buys a token at
  ``POST /auth/token``; a disabled account's token stops working within seconds; role
  grants and revocations are events on the member's stream.
* An API key is shown once; it acts (as ``Authorization: Bearer hk_…`` or ``X-API-Key``)
  only within the actions it was issued for, every event it causes names it, and a
  revoked or garbled key is refused.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable
from typing import Any

from fastapi.testclient import TestClient

from infra.runtime import Hotline
from tests.auth import bearer
from tests.identity.conftest import pothole

PASSWORD = "correct horse battery staple"
Json = dict[str, Any]
REQUEST = pothole("web")
KEY_ACTIONS = ["requests.register", "requests.read", "catalogue.read"]


def admin(hotline: Hotline) -> dict[str, str]:
    return bearer(hotline.settings, "admin-ada", "administrator")


def ok(response: Any, status: int = 200) -> Json:
    assert response.status_code == status, f"{response.request.method} {response.request.url}: {response.status_code} {response.text}"
    body: Json = response.json()
    return body


def enrol(client: TestClient, hotline: Hotline, username: str, roles: list[str], password: str | None = PASSWORD, **extra: Any) -> Json:
    body: Json = {"username": username, "name": username.title(), "roles": roles, **extra}
    if password is not None:
        body["password"] = password
    return ok(client.post("/staff", json=body, headers=admin(hotline)), 201)


def sign_in(client: TestClient, username: str, password: str) -> Any:
    return client.post("/auth/token", json={"username": username, "password": password})


def as_bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def within(seconds: float, condition: Callable[[], bool]) -> float:
    """Polls ``condition`` until it holds; the time it took (fails after ``seconds``)."""
    started = time.monotonic()
    while not condition():
        assert time.monotonic() - started < seconds, f"not within {seconds} s"
        time.sleep(0.1)
    return time.monotonic() - started


def stored_events(hotline: Hotline, aggregate_id: str) -> list[Any]:
    return [e for e in hotline.store.iter_envelopes() if e.aggregate_id == aggregate_id]


def everything_stored(hotline: Hotline) -> str:
    return "\n".join(json.dumps([e.data, e.meta], default=str) for e in hotline.store.iter_envelopes())


# ---------------------------------------------------------------------- staff
def test_staff_sign_in_with_a_password(client: TestClient, hotline: Hotline) -> None:
    member = enrol(client, hotline, "sup-maria", ["supervisor"])
    assert member["roles"] == ["supervisor"] and member["has_password"] is True
    assert PASSWORD not in json.dumps(member) and PASSWORD not in everything_stored(hotline)

    answer = ok(sign_in(client, "sup-maria", PASSWORD))
    assert answer["token_type"] == "Bearer" and answer["subject"] == "sup-maria" and answer["roles"] == ["supervisor"]
    assert answer["expires_in"] == hotline.settings.token_ttl_seconds
    assert client.get("/requests", headers=as_bearer(answer["access_token"])).status_code == 200

    for username, password in (("sup-maria", "not the password"), ("nobody-here", PASSWORD)):
        r = sign_in(client, username, password)
        assert r.status_code == 401, r.text
        assert r.json()["error"]["code"] == "invalid_grant"
        assert r.json()["error"]["message"] == "unknown username or wrong password"  # the same either way

    ok(client.post("/staff/sup-maria/disable", json={"reason": "left the team"}, headers=admin(hotline)))
    r = sign_in(client, "sup-maria", PASSWORD)
    assert r.status_code == 401, r.text
    assert r.json()["error"]["code"] == "invalid_grant"


def test_a_disabled_accounts_token_stops_working_within_seconds(client: TestClient, hotline: Hotline) -> None:
    enrol(client, hotline, "sup-luca", ["supervisor"])
    # The token POST /auth/token answers, from the sign-in service itself (that endpoint
    # has its own test above).
    token, _ = hotline.identity.staff_sign_in("sup-luca", PASSWORD)
    assert client.get("/requests", headers=as_bearer(token)).status_code == 200

    ok(client.post("/staff/sup-luca/disable", json={"reason": "left the team"}, headers=admin(hotline)))
    took = within(6.5, lambda: client.get("/requests", headers=as_bearer(token)).status_code == 401)
    r = client.get("/requests", headers=as_bearer(token))
    assert r.status_code == 401 and "disabled" in r.json()["error"]["message"], r.text
    print(f"\na disabled account's token was refused after {took:.1f} s")


def test_a_revoked_role_or_department_stops_the_token_within_seconds(client: TestClient, hotline: Hotline) -> None:
    enrol(client, hotline, "sup-gino", ["supervisor", "analyst"])
    token, _ = hotline.identity.staff_sign_in("sup-gino", PASSWORD)
    assert client.get("/sla/breaches", headers=as_bearer(token)).status_code == 200
    ok(client.post("/staff/sup-gino/roles/revoke", json={"role": "supervisor"}, headers=admin(hotline)))
    within(6.5, lambda: client.get("/sla/breaches", headers=as_bearer(token)).status_code == 401)
    assert "sign in again" in client.get("/sla/breaches", headers=as_bearer(token)).json()["error"]["message"]
    # Signing in again gives a token with what the account holds now.
    again = ok(sign_in(client, "sup-gino", PASSWORD))
    assert again["roles"] == ["analyst"]
    assert client.get("/requests", headers=as_bearer(again["access_token"])).status_code == 403

    enrol(client, hotline, "dept-ada", ["department"], departments=["transport", "environment"])
    token, _ = hotline.identity.staff_sign_in("dept-ada", PASSWORD)
    assert client.get("/work-orders", params={"department_id": "environment"}, headers=as_bearer(token)).status_code == 200
    ok(client.post("/staff/dept-ada/departments", json={"departments": ["transport"]}, headers=admin(hotline)))
    within(6.5, lambda: client.get("/work-orders", params={"department_id": "environment"}, headers=as_bearer(token)).status_code == 401)


def test_role_grants_and_revocations_are_events(client: TestClient, hotline: Hotline) -> None:
    member = enrol(client, hotline, "op-anna", ["agent"], password=None)
    granted = ok(client.post("/staff/op-anna/roles/grant", json={"role": "expert"}, headers=admin(hotline)))
    assert granted["roles"] == ["agent", "expert"]
    seen = ok(client.get("/staff/op-anna", headers=admin(hotline)))
    assert seen["roles"] == ["agent", "expert"] and seen["version"] == member["version"] + 1

    ok(client.post("/staff/op-anna/roles/revoke", json={"role": "agent"}, headers=admin(hotline)))
    seen = ok(client.get("/staff/op-anna", headers=bearer(hotline.settings, "sup-1", "supervisor")))  # supervisors read accounts
    assert seen["roles"] == ["expert"] and seen["version"] == member["version"] + 2

    from domain.identity.staff import staff_id

    events = stored_events(hotline, str(staff_id("op-anna")))
    assert [(e.name, e.data.get("role"), e.meta["actor_id"]) for e in events[1:]] == [
        ("role_granted", "expert", "admin-ada"),
        ("role_revoked", "agent", "admin-ada"),
    ]

    # Roles a staff account may not hold, or hold twice.
    for role in ("system", "citizen", "wizard"):
        r = client.post("/staff/op-anna/roles/grant", json={"role": role}, headers=admin(hotline))
        assert r.status_code == 422, f"{role}: {r.status_code} {r.text}"
    assert client.post("/staff/op-anna/roles/grant", json={"role": "expert"}, headers=admin(hotline)).status_code == 409
    assert ok(client.get("/staff/op-anna", headers=admin(hotline)))["roles"] == ["expert"]


def test_only_an_administrator_manages_staff(client: TestClient, hotline: Hotline) -> None:
    body = {"username": "sup-x", "name": "X", "roles": ["supervisor"], "password": PASSWORD}
    for role in ("agent", "supervisor", "auditor"):
        r = client.post("/staff", json=body, headers=bearer(hotline.settings, f"{role}-1", role))
        assert r.status_code == 403, f"{role}: {r.status_code} {r.text}"
        assert r.json()["error"]["details"]["permission"] == "staff.manage"
    assert client.post("/staff", json=body).status_code == 401
    assert client.get("/staff/sup-x", headers=admin(hotline)).status_code == 404
    enrol(client, hotline, "op-bob", ["agent"])
    r = client.post("/staff/op-bob/roles/grant", json={"role": "administrator"}, headers=bearer(hotline.settings, "op-bob", "agent"))
    assert r.status_code == 403, r.text


# ---------------------------------------------------------------------- API keys
def issue_key(client: TestClient, hotline: Hotline, actions: list[str] = KEY_ACTIONS) -> Json:
    r = client.post("/api-keys", json={"name": "Open311 gateway of the city portal", "actions": actions}, headers=admin(hotline))
    body = ok(r, 201)
    assert r.headers["location"] == f"/api-keys/{body['id']}"
    return body


def test_an_api_key_is_shown_once_and_acts_within_its_actions(client: TestClient, hotline: Hotline) -> None:
    issued = issue_key(client, hotline)
    key, key_id = issued["key"], issued["id"]
    assert key.startswith(f"hk_{uuid.UUID(key_id).hex}_")
    secret = key.rsplit("_", 1)[1]
    assert issued["actions"] == sorted(KEY_ACTIONS) and issued["role"] == "integrator" and issued["revoked"] is False

    shown = client.get(f"/api-keys/{key_id}", headers=admin(hotline))
    assert ok(shown)["id"] == key_id
    assert "key" not in shown.json() and "secret_hash" not in shown.json()
    assert secret not in shown.text
    assert secret not in everything_stored(hotline), "only the key's hash is stored"

    by_bearer = ok(client.post("/requests", json=REQUEST, headers=as_bearer(key)), 201)
    by_header = ok(client.post("/requests", json={**REQUEST, "description": "Another pothole"}, headers={"X-API-Key": key}), 201)
    for reg in (by_bearer, by_header):
        events = stored_events(hotline, reg["id"])
        assert events, reg
        assert {(e.meta["actor_id"], e.meta["actor_role"]) for e in events} == {(f"api-key:{key_id}", "integrator")}
    assert ok(client.get(f"/requests/{by_bearer['reference']}", headers={"X-API-Key": key}))["reference"] == by_bearer["reference"]
    assert client.get("/catalogue", headers=as_bearer(key)).status_code == 200

    # Outside its actions: what its role may not do, and what its role may but the key was not issued for.
    for method, path in (
        ("GET", f"/citizens/{by_bearer['citizen_id']}"),
        ("GET", "/sla/breaches"),
        ("POST", f"/requests/{by_bearer['reference']}/dispatch"),
        ("POST", f"/knowledge/searches/{uuid.uuid4()}/opened"),  # knowledge.feedback: an integrator's, not this key's
    ):
        r = client.request(method, path, json={} if method == "POST" else None, headers=as_bearer(key))
        assert r.status_code == 403, f"{method} {path}: {r.status_code} {r.text}"
    r = client.post(f"/knowledge/searches/{uuid.uuid4()}/opened", json={}, headers=as_bearer(key))
    assert "not scoped" in r.json()["error"]["message"]


def test_a_revoked_key_is_refused_within_two_seconds(client: TestClient, hotline: Hotline) -> None:
    issued = issue_key(client, hotline)
    key = issued["key"]
    assert client.get("/catalogue", headers=as_bearer(key)).status_code == 200
    revoked = ok(client.post(f"/api-keys/{issued['id']}/revoke", json={"reason": "leaked in a log"}, headers=admin(hotline)))
    assert revoked["revoked"] is True
    took = within(2.0, lambda: client.get("/catalogue", headers=as_bearer(key)).status_code == 401)
    r = client.post("/requests", json=REQUEST, headers={"X-API-Key": key})
    assert r.status_code == 401, r.text
    assert ok(client.get(f"/api-keys/{issued['id']}", headers=admin(hotline)))["revoked"] is True
    print(f"\na revoked key was refused after {took:.1f} s")


def test_a_garbled_key_is_refused(client: TestClient, hotline: Hotline) -> None:
    key = issue_key(client, hotline)["key"]
    flipped = key[:-1] + ("A" if key[-1] != "A" else "B")
    for garbled in ("hk_", "hk_garbage", "hk_garbage_secret", f"hk_{uuid.uuid4().hex}_{key.rsplit('_', 1)[1]}", flipped, key + "x"):
        for headers in (as_bearer(garbled), {"X-API-Key": garbled}):
            r = client.get("/requests", headers=headers)
            assert r.status_code == 401, f"{garbled!r} {headers.keys()}: {r.status_code} {r.text}"
            assert r.headers.get("www-authenticate", "").startswith("Bearer")


def test_api_keys_are_an_administrators_and_never_exceed_their_role(client: TestClient, hotline: Hotline) -> None:
    spec = {"name": "PBX adapter", "actions": ["requests.register"]}
    for role in ("agent", "supervisor", "integrator"):
        r = client.post("/api-keys", json=spec, headers=bearer(hotline.settings, f"{role}-1", role))
        assert r.status_code == 403, f"{role}: {r.status_code} {r.text}"
    for bad in (
        {"name": "x", "actions": ["staff.manage"]},  # beyond an integrator
        {"name": "x", "actions": ["requests.register"], "role": "administrator"},  # not a key's role
        {"name": "x", "actions": ["no.such.action"]},
    ):
        r = client.post("/api-keys", json=bad, headers=admin(hotline))
        assert r.status_code == 422, f"{bad}: {r.status_code} {r.text}"
    key = issue_key(client, hotline)["key"]
    r = client.post("/api-keys", json=spec, headers=as_bearer(key))
    assert r.status_code == 403, r.text


def test_the_password_grant_takes_a_form_as_oauth_clients_send_it(client: TestClient, hotline: Hotline) -> None:
    enrol(client, hotline, "sup-form", ["supervisor"])
    form = {"grant_type": "password", "username": "sup-form", "password": PASSWORD}
    answer = ok(client.post("/auth/token", data=form))
    assert answer["token_type"] == "Bearer" and client.get("/requests", headers=as_bearer(answer["access_token"])).status_code == 200
    assert client.post("/auth/token", data={**form, "grant_type": "client_credentials"}).status_code == 422
    assert client.post("/auth/token", data={**form, "password": "wrong password"}).status_code == 401


def test_a_staff_accounts_etag_makes_a_change_conditional(client: TestClient, hotline: Hotline) -> None:
    """Two administrators edit the same account: the second, holding an old ETag, gets a 409."""
    enrol(client, hotline, "sup-etta", ["supervisor"])
    read = client.get("/staff/sup-etta", headers=admin(hotline))
    assert read.status_code == 200 and read.headers["ETag"] == f'"{read.json()["version"]}"'
    first = {**admin(hotline), "If-Match": read.headers["ETag"]}
    ok(client.post("/staff/sup-etta/roles/grant", json={"role": "expert"}, headers=first))
    late = client.post("/staff/sup-etta/roles/grant", json={"role": "auditor"}, headers=first)
    assert late.status_code == 409, late.text
    again = client.get("/staff/sup-etta", headers=admin(hotline))
    assert again.headers["ETag"] == f'"{read.json()["version"] + 1}"'


def test_a_shift_signs_in_from_one_address_while_failures_are_limited(client: TestClient, hotline: Hotline) -> None:
    """A call centre's agents share one address (its NAT): at the change of shift a dozen
    sign in within a minute. Successes do not count against the address; failures do (10
    a minute), and every attempt counts for its username."""
    for n in range(12):
        enrol(client, hotline, f"agent-{n}", ["agent"])
    for n in range(12):
        assert sign_in(client, f"agent-{n}", PASSWORD).status_code == 200, n
    for n in range(10):
        assert sign_in(client, f"agent-{n}", "wrong").status_code == 401, n
    refused = sign_in(client, "agent-11", PASSWORD)  # right, but the address is past its failures
    assert refused.status_code == 429 and int(refused.headers["retry-after"]) > 0, refused.text
    assert refused.json()["error"]["code"] == "rate_limited"
