"""The realm ``hotline`` that infra/keycloak.sh imports issues the tokens the Hotline API expects.

Tokens are decoded here without verification (stdlib base64): these tests check what the
identity provider puts in them (issuer, audience, roles, department and citizen claims,
the signing key's ``kid`` in the JWKS), not the API's verification of them.
"""

from __future__ import annotations

import httpx
import pytest

from domain.base import ROLES
from tests.identity import keycloak_fixtures
from tests.identity.keycloak_fixtures import (
    CLIENT_ID,
    jwks_kids,
    keycloak_token,
    rotated_signing_key,
    unverified_claims,
    unverified_header,
    user_password,
)

keycloak_issuer = keycloak_fixtures.keycloak_issuer  # the session fixture, visible to this module

REALM_ROLES = set(ROLES) - {"system"}  # a process is never a Keycloak user
CITIZEN_ID = "6b0c5d1e-1111-4a4a-9e9e-000000000001"

# username -> (realm roles, department claim or None, citizen_id claim or None, name)
USERS: dict[str, tuple[set[str], list[str] | None, str | None, str]] = {
    "kc-agent": ({"agent"}, None, None, "Anna Agent"),
    "kc-roads": ({"department"}, ["roads"], None, "Rita Roads"),
    "kc-supervisor": ({"supervisor"}, None, None, "Sam Supervisor"),
    "kc-citizen": ({"citizen"}, None, CITIZEN_ID, "Clara Citizen"),
    "kc-admin": ({"administrator"}, None, None, "Ada Admin"),
    "kc-multi": ({"department", "expert"}, ["roads", "parks"], None, "Max Multi"),
}


def audiences(claims: dict[str, object]) -> list[object]:
    aud = claims.get("aud")
    return aud if isinstance(aud, list) else [aud]


@pytest.mark.parametrize("username", sorted(USERS))
def test_password_grant_token_carries_the_hotline_claims(keycloak_issuer: str, username: str) -> None:
    roles, departments, citizen_id, name = USERS[username]
    token = keycloak_token(keycloak_issuer, username, user_password(username))
    claims = unverified_claims(token)

    assert claims["iss"] == keycloak_issuer
    assert "hotline" in audiences(claims)
    assert claims["azp"] == CLIENT_ID
    assert claims["preferred_username"] == username
    assert claims["name"] == name
    assert claims["exp"] - claims["iat"] <= 600, "access tokens are short-lived"
    granted = set(claims["realm_access"]["roles"])
    assert roles <= granted
    assert (granted & REALM_ROLES) == roles, f"{username} has exactly its hotline roles"
    if departments is None:
        assert "department" not in claims
    else:
        assert isinstance(claims["department"], list)
        assert sorted(claims["department"]) == sorted(departments)
    if citizen_id is None:
        assert "citizen_id" not in claims
    else:
        assert claims["citizen_id"] == citizen_id

    header = unverified_header(token)
    assert header["alg"] == "RS256"
    assert header["kid"] in jwks_kids(keycloak_issuer)


def test_discovery_and_realm_roles(keycloak_issuer: str) -> None:
    response = httpx.get(f"{keycloak_issuer}/.well-known/openid-configuration", timeout=10)
    response.raise_for_status()
    doc = response.json()
    assert doc["issuer"] == keycloak_issuer
    assert doc["jwks_uri"].startswith(keycloak_issuer + "/")
    assert "password" in doc["grant_types_supported"]
    assert "RS256" in doc["id_token_signing_alg_values_supported"]


def test_wrong_password_is_refused(keycloak_issuer: str) -> None:
    with pytest.raises(AssertionError, match="HTTP 401"):
        keycloak_token(keycloak_issuer, "kc-agent", "not-the-password")


def test_users_cannot_change_their_own_department(keycloak_issuer: str) -> None:
    """department and citizen_id are admin-only in the user profile: a department user
    cannot widen the scope of their own token through the account API."""
    token = keycloak_token(keycloak_issuer, "kc-roads", user_password("kc-roads"))
    headers = {"Authorization": f"Bearer {token}", "Accept": "application/json"}
    me = httpx.get(f"{keycloak_issuer}/account", headers=headers, timeout=10).raise_for_status().json()
    assert me["attributes"]["department"] == ["roads"]

    me["attributes"]["department"] = ["roads", "parks"]
    me["attributes"]["citizen_id"] = [CITIZEN_ID]
    changed = httpx.post(f"{keycloak_issuer}/account", headers=headers, json=me, timeout=10)
    assert changed.status_code == 400
    assert "read-only" in changed.text

    after = unverified_claims(keycloak_token(keycloak_issuer, "kc-roads", user_password("kc-roads")))
    assert after["department"] == ["roads"]
    assert "citizen_id" not in after


def test_signing_key_rotation_through_the_admin_api(keycloak_issuer: str) -> None:
    before = keycloak_token(keycloak_issuer, "kc-agent", user_password("kc-agent"))
    old_kid = unverified_header(before)["kid"]

    with rotated_signing_key(keycloak_issuer) as rotated:
        after = keycloak_token(keycloak_issuer, "kc-agent", user_password("kc-agent"))
        new_kid = unverified_header(after)["kid"]
        assert new_kid == rotated.kid
        assert new_kid != old_kid
        kids = jwks_kids(keycloak_issuer)
        assert {old_kid, new_kid} <= kids, "during a rotation the JWKS publishes both keys"
        assert unverified_claims(after)["iss"] == keycloak_issuer

    # the added key provider is gone: the realm signs with its own key again
    assert rotated.kid not in jwks_kids(keycloak_issuer)
    again = keycloak_token(keycloak_issuer, "kc-agent", user_password("kc-agent"))
    assert unverified_header(again)["kid"] == old_kid
