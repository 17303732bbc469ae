"""A real Keycloak for the identity tests: the realm ``hotline`` of ``infra/keycloak.sh``.

``keycloak_issuer`` (session scope) returns the realm's issuer URL when its discovery
document answers; locally a missing Keycloak skips the test, with ``CI=true`` it fails
(as the PostgreSQL and Kafka fixtures of ``tests/conftest.py`` do). A test module makes it
visible with ``keycloak_issuer = keycloak_fixtures.keycloak_issuer`` (an assignment, not a
``from`` import, which ruff would flag as F811 at each test's parameter), or a conftest
imports it.

The realm (``infra/keycloak/hotline-realm.json``) has the public client ``hotline-console``
with the password grant, and the users ``kc-agent``, ``kc-roads``, ``kc-supervisor``,
``kc-citizen``, ``kc-admin``, ``kc-multi``, each with the password ``hotline-<username>``:
``keycloak_token(issuer, "kc-roads", user_password("kc-roads"))``.

Signing-key rotation (``rotated_signing_key``), through the admin REST API with a
master-realm admin token (client ``admin-cli``, the bootstrap admin of infra/keycloak.sh):

1. ``POST {base}/admin/realms/hotline/components`` with
   ``{"name": ..., "providerId": "rsa-generated", "providerType": "org.keycloak.keys.KeyProvider",
   "parentId": "hotline", "config": {"priority": ["1000"], "enabled": ["true"], "active": ["true"],
   "algorithm": ["RS256"], "keySize": ["2048"]}}``: Keycloak generates a key pair; the active
   key with the highest priority (the realm's own is 100) signs every token from then on,
   and the JWKS lists both keys. The new component's id ends the ``Location`` header.
2. ``GET {base}/admin/realms/hotline/keys``: the entry whose ``providerId`` is that
   component id carries the new ``kid``.
3. ``DELETE {base}/admin/realms/hotline/components/{id}`` removes the key again: tokens it
   signed no longer verify, and the realm's own key signs again.
"""

from __future__ import annotations

import base64
import json
import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import httpx
import pytest

from tests.conftest import IN_CI

KEYCLOAK_PORT = int(os.environ.get("HOTLINE_KEYCLOAK_PORT", "58080"))
KEYCLOAK_BASE = f"http://127.0.0.1:{KEYCLOAK_PORT}"
REALM = "hotline"
ISSUER = f"{KEYCLOAK_BASE}/realms/{REALM}"
CLIENT_ID = "hotline-console"
ADMIN_USERNAME = os.environ.get("KC_BOOTSTRAP_ADMIN_USERNAME", "admin")
ADMIN_PASSWORD = os.environ.get("KC_BOOTSTRAP_ADMIN_PASSWORD", "admin")
TIMEOUT = 10.0


def user_password(username: str) -> str:
    """The password of a test user of the realm ``hotline``."""
    return f"hotline-{username}"


def discovery(issuer: str) -> dict[str, Any]:
    """The realm's OpenID Provider metadata (``/.well-known/openid-configuration``)."""
    return dict(_discovery(issuer))


@lru_cache(maxsize=8)
def _discovery(issuer: str) -> dict[str, Any]:
    response = httpx.get(f"{issuer}/.well-known/openid-configuration", timeout=TIMEOUT)
    response.raise_for_status()
    doc: dict[str, Any] = response.json()
    if doc.get("issuer") != issuer:
        raise ValueError(f"{issuer} announces the issuer {doc.get('issuer')!r}")
    return doc


def keycloak_down_reason(issuer: str = ISSUER) -> str | None:
    """None when the realm answers at ``issuer``, else why not."""
    try:
        _discovery.cache_clear()
        _discovery(issuer)
    except (httpx.HTTPError, ValueError) as exc:
        return f"Keycloak realm {issuer} does not answer ({exc.__class__.__name__}: {exc}); start it with infra/keycloak.sh start"
    return None


@pytest.fixture(scope="session")
def keycloak_issuer() -> str:
    """The issuer URL of the realm ``hotline``; skips locally, fails in CI, when Keycloak is down."""
    reason = keycloak_down_reason(ISSUER)
    if reason is not None:
        if IN_CI:
            pytest.fail(reason)
        pytest.skip(reason)
    return ISSUER


def keycloak_token(issuer: str, username: str, password: str, client_id: str = CLIENT_ID) -> str:
    """An access token for ``username`` by the password grant (tests and local dev only)."""
    response = httpx.post(
        discovery(issuer)["token_endpoint"],
        data={"grant_type": "password", "client_id": client_id, "username": username, "password": password, "scope": "openid"},
        timeout=TIMEOUT,
    )
    if response.status_code != 200:
        raise AssertionError(f"password grant for {username} at {issuer}: HTTP {response.status_code} {response.text}")
    token: str = response.json()["access_token"]
    return token


def _b64url_json(part: str) -> dict[str, Any]:
    decoded: dict[str, Any] = json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))
    return decoded


def unverified_header(token: str) -> dict[str, Any]:
    """The JOSE header of a JWT, not verified (stdlib only)."""
    return _b64url_json(token.split(".")[0])


def unverified_claims(token: str) -> dict[str, Any]:
    """The claims of a JWT, not verified (stdlib only): for asserting what the realm issues."""
    return _b64url_json(token.split(".")[1])


def jwks_kids(issuer: str) -> set[str]:
    """The ``kid`` of every key in the realm's JWKS (``jwks_uri`` of the discovery document)."""
    response = httpx.get(discovery(issuer)["jwks_uri"], timeout=TIMEOUT)
    response.raise_for_status()
    return {key["kid"] for key in response.json()["keys"]}


# ------------------------------------------------------------------ admin REST API ---


def base_url(issuer: str) -> str:
    """``http://127.0.0.1:58080`` for ``http://127.0.0.1:58080/realms/hotline``."""
    return issuer.rsplit("/realms/", 1)[0]


def admin_token(issuer: str) -> str:
    """A master-realm admin access token (client ``admin-cli``, the bootstrap admin)."""
    response = httpx.post(
        f"{base_url(issuer)}/realms/master/protocol/openid-connect/token",
        data={"grant_type": "password", "client_id": "admin-cli", "username": ADMIN_USERNAME, "password": ADMIN_PASSWORD},
        timeout=TIMEOUT,
    )
    if response.status_code != 200:
        raise AssertionError(f"admin token from the master realm: HTTP {response.status_code} {response.text}")
    token: str = response.json()["access_token"]
    return token


def admin_client(issuer: str) -> httpx.Client:
    """An httpx client on ``{base}/admin/realms/<realm>`` with a fresh admin token."""
    realm = issuer.rsplit("/realms/", 1)[1]
    return httpx.Client(
        base_url=f"{base_url(issuer)}/admin/realms/{realm}",
        headers={"Authorization": f"Bearer {admin_token(issuer)}"},
        timeout=TIMEOUT,
    )


@dataclass(frozen=True)
class RotatedKey:
    component_id: str  # the key provider's component id (DELETE .../components/<id>)
    kid: str  # the kid the new signing key carries in token headers and in the JWKS


@contextmanager
def rotated_signing_key(issuer: str, priority: int = 1000) -> Iterator[RotatedKey]:
    """A new RS256 signing key above the realm's own for the block, deleted on exit.

    Tokens issued inside the block carry the new key's ``kid``; the realm's previous key
    stays in the JWKS (tokens it signed still verify). On exit the provider is deleted,
    so the realm is as before (see the module docstring for the REST calls).
    """
    with admin_client(issuer) as admin:
        realm_id = admin.get("").raise_for_status().json()["id"]
        response = admin.post(
            "/components",
            json={
                "name": f"hotline-test-rotation-{uuid.uuid4().hex[:8]}",
                "providerId": "rsa-generated",
                "providerType": "org.keycloak.keys.KeyProvider",
                "parentId": realm_id,
                "config": {
                    "priority": [str(priority)],
                    "enabled": ["true"],
                    "active": ["true"],
                    "algorithm": ["RS256"],
                    "keySize": ["2048"],
                },
            },
        )
        if response.status_code != 201:
            raise AssertionError(f"creating a key provider: HTTP {response.status_code} {response.text}")
        component_id = response.headers["Location"].rstrip("/").rsplit("/", 1)[1]
        try:
            keys = admin.get("/keys").raise_for_status().json()["keys"]
            kids = [k["kid"] for k in keys if k.get("providerId") == component_id and k.get("algorithm") == "RS256"]
            if len(kids) != 1:
                raise AssertionError(f"key provider {component_id} has keys {kids}, expected one RS256 key")
            yield RotatedKey(component_id=component_id, kid=kids[0])
        finally:
            # a fresh token: the block may have outlived the first one
            with admin_client(issuer) as cleanup:
                deleted = cleanup.delete(f"/components/{component_id}")
                if deleted.status_code not in (204, 404):
                    raise AssertionError(f"deleting key provider {component_id}: HTTP {deleted.status_code} {deleted.text}")
