"""Bearer tokens: what the API refuses (401), key rotation, roles, gateway headers,
security headers, the issuer's discovery and keys, and a real Keycloak's tokens.

Tokens are crafted here with PyJWT (or by hand, where PyJWT refuses to sign something
unsafe) against the hotline's own keyring, ``hotline.identity.keyring``.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from fastapi.testclient import TestClient

from api.app import create_app
from domain.base import FixedClock
from domain.events import name_of
from infra.identity.tokens import TokenIssuer
from infra.runtime import Hotline
from infra.settings import Settings
from tests.auth import bearer, token_for
from tests.conftest import START, load_catalogue
from tests.identity import keycloak_fixtures
from tests.identity.conftest import pothole
from tests.identity.keycloak_fixtures import keycloak_token, unverified_claims, user_password

keycloak_issuer = keycloak_fixtures.keycloak_issuer  # the session fixture, visible to this module

PROTECTED = "/requests"  # a protected GET (requests.read)
Json = dict[str, Any]
REQUEST = pothole()


# ---------------------------------------------------------------------- fixtures
def start(settings: Settings) -> Hotline:
    h = Hotline.start(settings, FixedClock(START))
    load_catalogue(h)
    return h


@pytest.fixture
def hotline(tmp_path: Path) -> Iterator[Hotline]:
    h = start(Settings(data_dir=tmp_path))
    yield h
    h.close()


@pytest.fixture(scope="module")
def shared(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[TestClient, Hotline]]:
    """One hotline for the tests that change nothing (the refusals): a start each is slow."""
    h = start(Settings(data_dir=tmp_path_factory.mktemp("shared")))
    with TestClient(create_app(hotline=h)) as c:
        yield c, h
    h.close()


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def craft(header: Json, claims: Json, sign: Callable[[bytes], bytes]) -> str:
    """A JWT assembled by hand: for what PyJWT will not sign (``none``, HS256 with a PEM)."""
    signing_input = f"{b64(json.dumps(header).encode())}.{b64(json.dumps(claims).encode())}"
    return f"{signing_input}.{b64(sign(signing_input.encode()))}"


def claims_for(hotline: Hotline, **changes: Any) -> Json:
    now = int(time.time())
    claims: Json = {
        "iss": hotline.settings.token_issuer,
        "aud": hotline.settings.oidc_audience,
        "sub": "sup-crafted",
        "iat": now,
        "nbf": now,
        "exp": now + 600,
        "roles": ["supervisor"],
    }
    claims.update(changes)
    return {k: v for k, v in claims.items() if v is not None}


def signed(hotline: Hotline, claims: Json, kid: str | None = None, key: Any = None) -> str:
    current_kid, current_key = hotline.identity.keyring.current()
    headers = {"kid": kid or current_kid}
    return jwt.encode(claims, key or current_key, algorithm="RS256", headers=headers)


def as_bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def assert_unauthenticated(response: Any) -> None:
    assert response.status_code == 401, f"{response.status_code} {response.text}"
    assert response.headers.get("www-authenticate", "").startswith("Bearer"), response.headers
    assert response.headers["content-type"].startswith("application/json")
    error = response.json()["error"]
    assert error["status"] == 401 and error["code"] == "unauthenticated" and error["message"]


# ---------------------------------------------------------------------- refusals
def test_no_token_is_401_with_a_json_error_and_a_challenge(shared: tuple[TestClient, Hotline]) -> None:
    client, _ = shared
    r = client.get(PROTECTED)
    assert_unauthenticated(r)
    assert r.json()["error"]["details"]["permission"] == "requests.read"


def test_a_crafted_token_is_accepted_when_nothing_is_wrong_with_it(shared: tuple[TestClient, Hotline]) -> None:
    client, hotline = shared
    """The control for the refusals below: the same crafting, nothing spoiled."""
    assert client.get(PROTECTED, headers=as_bearer(signed(hotline, claims_for(hotline)))).status_code == 200
    assert client.get(PROTECTED, headers=bearer(hotline.settings, "sup-1", "supervisor")).status_code == 200


def _expired(h: Hotline) -> dict[str, str]:
    return bearer(h.settings, "sup-1", "supervisor", ttl=600, now=time.time() - 3600)


def _not_yet_valid(h: Hotline) -> dict[str, str]:
    now = int(time.time())
    return as_bearer(signed(h, claims_for(h, iat=now, nbf=now + 3600, exp=now + 7200)))


def _alg_none(h: Hotline) -> dict[str, str]:
    kid = h.identity.keyring.current()[0]
    return as_bearer(craft({"alg": "none", "typ": "JWT", "kid": kid}, claims_for(h), lambda _: b""))


def _alg_none_mixed_case(h: Hotline) -> dict[str, str]:
    kid = h.identity.keyring.current()[0]
    return as_bearer(craft({"alg": "nOnE", "typ": "JWT", "kid": kid}, claims_for(h), lambda _: b""))


def _hs256_with_the_public_key(h: Hotline) -> dict[str, str]:
    kid, key = h.identity.keyring.current()
    pem = key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    token = craft({"alg": "HS256", "typ": "JWT", "kid": kid}, claims_for(h), lambda data: hmac.new(pem, data, hashlib.sha256).digest())
    return as_bearer(token)


def _wrong_issuer(h: Hotline) -> dict[str, str]:
    issuer = TokenIssuer(h.identity.keyring, "urn:somebody-else", h.settings.oidc_audience)
    return as_bearer(issuer.issue("sup-1", ["supervisor"], ttl=600))


def _wrong_audience(h: Hotline) -> dict[str, str]:
    issuer = TokenIssuer(h.identity.keyring, h.settings.token_issuer, "another-api")
    return as_bearer(issuer.issue("sup-1", ["supervisor"], ttl=600))


def _unknown_kid(h: Hotline) -> dict[str, str]:
    return as_bearer(signed(h, claims_for(h), kid="no-such-key"))


def _no_kid(h: Hotline) -> dict[str, str]:
    return as_bearer(jwt.encode(claims_for(h), h.identity.keyring.current()[1], algorithm="RS256"))


def _foreign_key_with_our_kid(h: Hotline) -> dict[str, str]:
    foreign = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return as_bearer(signed(h, claims_for(h), key=foreign))


def _foreign_key_with_its_own_kid(h: Hotline) -> dict[str, str]:
    foreign = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return as_bearer(signed(h, claims_for(h), kid="20990101000000-deadbeef", key=foreign))


def _no_expiry(h: Hotline) -> dict[str, str]:
    return as_bearer(signed(h, claims_for(h, exp=None)))


def _tampered_roles(h: Hotline) -> dict[str, str]:
    header, _, rest = token_for(h.settings, "agent-1", "agent").partition(".")
    _, _, signature = rest.partition(".")
    return as_bearer(f"{header}.{b64(json.dumps(claims_for(h, sub='agent-1')).encode())}.{signature}")


def _not_a_jwt(h: Hotline) -> dict[str, str]:
    return as_bearer("not-a-jwt")


def _basic_scheme(h: Hotline) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(b"sup-1:password").decode()}


REFUSED: dict[str, Callable[[Hotline], dict[str, str]]] = {
    "expired": _expired,
    "not yet valid": _not_yet_valid,
    "alg none": _alg_none,
    "alg nOnE": _alg_none_mixed_case,
    "HS256 with the public key as secret": _hs256_with_the_public_key,
    "wrong issuer": _wrong_issuer,
    "wrong audience": _wrong_audience,
    "unknown kid": _unknown_kid,
    "no kid": _no_kid,
    "a key not in the keyring, our kid": _foreign_key_with_our_kid,
    "a key not in the keyring, its own kid": _foreign_key_with_its_own_kid,
    "no exp": _no_expiry,
    "tampered payload": _tampered_roles,
    "not a JWT": _not_a_jwt,
    "Basic scheme": _basic_scheme,
}


@pytest.mark.parametrize("case", sorted(REFUSED))
def test_refused_token(shared: tuple[TestClient, Hotline], case: str) -> None:
    client, hotline = shared
    assert_unauthenticated(client.get(PROTECTED, headers=REFUSED[case](hotline)))


def test_a_token_without_a_hotline_role_is_403(shared: tuple[TestClient, Hotline]) -> None:
    client, hotline = shared
    for roles in (["wizard"], []):
        r = client.get(PROTECTED, headers=bearer(hotline.settings, "someone", roles))
        assert r.status_code == 403, r.text
        assert r.json()["error"]["code"] == "forbidden"
        assert "none of the hotline's roles" in r.json()["error"]["message"]


# ---------------------------------------------------------------------- key rotation
def _after_a_second_boundary() -> None:
    """Kids are second timestamps plus random hex: wait for the next second so that the
    rotated key's kid sorts after the current one (see the test just below)."""
    time.sleep(1.05 - time.time() % 1)


def test_rotation_new_kid_signs_old_verifies_until_retired(client: TestClient, hotline: Hotline) -> None:
    keyring, issuer = hotline.identity.keyring, hotline.identity.issuer
    old_kid = keyring.current()[0]
    old = issuer.issue("sup-old", ["supervisor"], ttl=600)
    old_unused = issuer.issue("sup-old-unused", ["supervisor"], ttl=600)  # first shown after the retirement
    assert jwt.get_unverified_header(old)["kid"] == old_kid
    assert client.get(PROTECTED, headers=as_bearer(old)).status_code == 200

    _after_a_second_boundary()
    new_kid = keyring.rotate()
    assert keyring.current()[0] == new_kid != old_kid
    new = issuer.issue("sup-new", ["supervisor"], ttl=600)
    assert jwt.get_unverified_header(new)["kid"] == new_kid
    assert client.get(PROTECTED, headers=as_bearer(new)).status_code == 200
    assert client.get(PROTECTED, headers=as_bearer(old)).status_code == 200, "an older key verifies until it is retired"
    assert {k["kid"] for k in client.get("/auth/jwks.json").json()["keys"]} == {old_kid, new_kid}

    keyring.retire(old_kid)
    assert {k["kid"] for k in client.get("/auth/jwks.json").json()["keys"]} == {new_kid}
    assert_unauthenticated(client.get(PROTECTED, headers=as_bearer(old_unused)))
    assert_unauthenticated(client.get(PROTECTED, headers=as_bearer(old)))  # verified before the retirement: still refused now
    assert client.get(PROTECTED, headers=as_bearer(new)).status_code == 200


def test_rotate_makes_the_new_key_the_signing_key_at_once(hotline: Hotline) -> None:
    """``Keyring.rotate``: "a new signing key; the kid sorts after every older one", even
    when two rotations fall in the same second."""
    keyring = hotline.identity.keyring
    for _ in range(6):
        kid = keyring.rotate()
        assert keyring.current()[0] == kid, f"rotated to {kid}, but {keyring.current()[0]} still signs (kids {keyring.kids})"


# ---------------------------------------------------------------------- gateway headers
GATEWAY = {"X-Actor-Id": "sup-gateway", "X-Actor-Role": "supervisor"}


def test_actor_headers_confer_nothing_without_a_trusted_gateway(client: TestClient, hotline: Hotline) -> None:
    assert_unauthenticated(client.get(PROTECTED, headers=GATEWAY))
    assert_unauthenticated(client.get(PROTECTED, headers={**GATEWAY, "X-Actor-Roles": "supervisor,auditor"}))
    # Beside a token they widen nothing: an agent stays an agent.
    ref = client.post("/requests", json=REQUEST, headers=bearer(hotline.settings, "agent-1", "agent")).json()["reference"]
    r = client.post(
        f"/requests/{ref}/supervision",
        json={"reason": "school street"},
        headers={**bearer(hotline.settings, "agent-1", "agent"), **GATEWAY},
    )
    assert r.status_code == 403, r.text


def test_a_trusted_gateway_names_the_actor(tmp_path: Path) -> None:
    h = start(Settings(data_dir=tmp_path, trusted_gateway=True))
    try:
        with TestClient(create_app(hotline=h)) as c:
            assert c.get(PROTECTED, headers=GATEWAY).status_code == 200
            assert_unauthenticated(c.get(PROTECTED))
            r = c.get(PROTECTED, headers={"X-Actor-Id": "x", "X-Actor-Role": "wizard"})
            assert r.status_code == 401, r.text
    finally:
        h.close()


# ---------------------------------------------------------------------- headers, discovery, keys
def test_security_headers(shared: tuple[TestClient, Hotline]) -> None:
    client, hotline = shared
    for r in (client.get(PROTECTED, headers=bearer(hotline.settings, "sup-1", "supervisor")), client.get(PROTECTED)):
        assert r.headers["x-content-type-options"] == "nosniff"
        assert r.headers["cache-control"] == "no-store"
    docs = client.get("/docs")
    assert docs.status_code == 200 and docs.headers["content-type"].startswith("text/html")
    csp = docs.headers["content-security-policy"]
    assert "default-src 'self'" in csp and "frame-ancestors 'none'" in csp
    assert docs.headers["x-content-type-options"] == "nosniff"


def test_discovery_and_jwks_are_served_without_a_token(shared: tuple[TestClient, Hotline]) -> None:
    client, hotline = shared
    doc = client.get("/.well-known/openid-configuration")
    assert doc.status_code == 200, doc.text
    assert doc.json()["issuer"] == hotline.settings.token_issuer
    assert doc.json()["jwks_uri"].endswith("/auth/jwks.json")
    jwks = client.get("/auth/jwks.json")
    assert jwks.status_code == 200, jwks.text
    keys = jwks.json()["keys"]
    kid = hotline.identity.keyring.current()[0]
    assert kid in {k["kid"] for k in keys}
    assert all(k["kty"] == "RSA" and k["use"] == "sig" and k["alg"] == "RS256" for k in keys)
    assert not any(private in k for k in keys for private in ("d", "p", "q", "dp", "dq", "qi")), "only public keys"
    # What the JWKS publishes verifies what the hotline signs.
    token = hotline.identity.issuer.issue("sup-1", ["supervisor"], ttl=600)
    public = jwt.PyJWKSet.from_dict(jwks.json())[kid].key
    claims = jwt.decode(token, public, algorithms=["RS256"], audience=hotline.settings.oidc_audience)
    assert claims["iss"] == hotline.settings.token_issuer


# ---------------------------------------------------------------------- Keycloak
@pytest.fixture
def kc_hotline(tmp_path: Path, keycloak_issuer: str) -> Iterator[Hotline]:
    h = start(
        Settings(
            data_dir=tmp_path,
            oidc_issuer=keycloak_issuer,
            oidc_audience="hotline",
            oidc_roles_claim="realm_access.roles",
            oidc_departments_claim="department",
            oidc_subject_claim="preferred_username",
        )
    )
    yield h
    h.close()


def kc(issuer: str, username: str) -> dict[str, str]:
    return as_bearer(keycloak_token(issuer, username, user_password(username)))


def test_keycloak_tokens_end_to_end(kc_hotline: Hotline, keycloak_issuer: str) -> None:
    settings = kc_hotline.settings
    agent = bearer(settings, "agent-1", "agent")
    with TestClient(create_app(hotline=kc_hotline)) as client:
        reg = client.post("/requests", json=REQUEST, headers=agent).json()
        ref = reg["reference"]
        assert client.post(f"/requests/{ref}/dispatch", json={}, headers=agent).status_code == 200
        transport = bearer(settings, "dept-transport", "department", departments=["transport"])
        assert client.post(f"/requests/{ref}/accept", json={}, headers=transport).status_code == 200
        order = client.post(f"/requests/{ref}/work-order", json={}, headers=agent)
        assert order.status_code == 201, order.text

        # kc-roads: a department user of roads only.
        roads_token = keycloak_token(keycloak_issuer, "kc-roads", user_password("kc-roads"))
        assert unverified_claims(roads_token)["department"] == ["roads"]
        roads = as_bearer(roads_token)
        second = client.post("/requests", json={**REQUEST, "contact": {"name": "Anna", "phone": "+39 347 123 4567"}}, headers=agent).json()
        assert client.post(f"/requests/{second['reference']}/dispatch", json={}, headers=agent).status_code == 200
        r = client.post(f"/requests/{second['reference']}/accept", json={}, headers=roads)
        assert r.status_code == 403, r.text
        r = client.post(f"/requests/{second['reference']}/accept", json={"department_id": "transport"}, headers=roads)
        assert r.status_code == 403, r.text
        r = client.post(f"/requests/{second['reference']}/accept", json={}, headers={**roads, "X-Actor-Departments": "transport"})
        assert r.status_code == 403, r.text
        orders = client.get("/work-orders", headers=roads)
        assert orders.status_code == 200, orders.text
        assert all(o["department_id"] == "roads" for o in orders.json())
        assert order.json()["id"] not in {o["id"] for o in orders.json()}
        assert client.get(f"/work-orders/{order.json()['id']}", headers=roads).status_code == 403
        assert client.get("/work-orders", params={"department_id": "transport"}, headers=roads).status_code == 403
        assert [o["id"] for o in client.get("/work-orders", headers=transport).json()] == [order.json()["id"]]

        # kc-supervisor reads every request, and acts under their username.
        supervisor = kc(keycloak_issuer, "kc-supervisor")
        listed = client.get("/requests", headers=supervisor)
        assert listed.status_code == 200, listed.text
        assert {ref, second["reference"]} <= {x["reference"] for x in listed.json()["items"]}
        r = client.post(f"/requests/{ref}/supervision", json={"reason": "school street"}, headers=supervisor)
        assert r.status_code == 200, r.text
        timeline = client.get(f"/requests/{ref}", headers=supervisor).json()["timeline"]
        started = [t for t in timeline if name_of(t["type"]) == "supervision_started"]
        assert [(t["actor_id"], t["actor_role"]) for t in started] == [("kc-supervisor", "supervisor")]

        # A Keycloak token with a tampered payload: the roads user made supervisor.
        header, _, signature = roads_token.split(".")
        claims = unverified_claims(roads_token)
        claims["realm_access"] = {"roles": ["supervisor"]}
        forged = f"{header}.{b64(json.dumps(claims).encode())}.{signature}"
        assert_unauthenticated(client.get("/requests", headers=as_bearer(forged)))
        # The untouched token still works (the refusal was the tampering, not the key).
        assert client.get("/work-orders", headers=roads).status_code == 200
