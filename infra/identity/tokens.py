"""Bearer tokens (JWT, verified with PyJWT).

The embedded mode is its own issuer: :class:`TokenIssuer` signs with the data folder's
:class:`~infra.identity.keys.Keyring`. The distributed mode trusts an external OpenID
Connect issuer (Keycloak, …): :class:`RemoteKeys` finds its JWKS through discovery and
caches it, fetching again when a token names a key it has not seen (a rotation), at
most every few seconds. Which claims carry the roles, departments, citizen id and name
is configuration (:class:`ClaimMap`), so a Keycloak realm works as it is.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import httpx
import jwt

from domain.base import ROLES, Actor
from infra.identity.keys import ALGORITHM, Keyring

# Asymmetric algorithms only: "none" and HS256 (signed with a public key as its secret)
# are refused before any key is looked at.
ALGORITHMS = ["RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "EdDSA"]
LEEWAY_SECONDS = 30  # clock skew between the issuer and us


class InvalidToken(Exception):
    """Not a token we accept (HTTP 401)."""


class NoHotlineRole(Exception):
    """A valid token that carries none of the hotline's roles (HTTP 403)."""


@dataclass(frozen=True)
class ClaimMap:
    """Where the hotline's facts are in a token; dotted paths reach nested claims
    (Keycloak: ``realm_access.roles``)."""

    subject: str = "sub"
    roles: str = "roles"
    departments: str = "departments"
    citizen_id: str = "citizen_id"
    name: str = "name"

    @staticmethod
    def read(claims: dict[str, Any], path: str) -> Any:
        value: Any = claims
        for part in path.split("."):
            if not isinstance(value, dict):
                return None
            value = value.get(part)
        return value

    def actor(self, claims: dict[str, Any]) -> Actor:
        subject = self.read(claims, self.subject)
        if not isinstance(subject, str) or not subject:
            raise InvalidToken(f"the token has no subject claim {self.subject!r}")
        roles = [r for r in ROLES if r in _as_list(self.read(claims, self.roles))]
        if not roles:
            raise NoHotlineRole(f"the token of {subject} carries none of the hotline's roles in {self.roles!r}")
        citizen = self.read(claims, self.citizen_id)
        name = self.read(claims, self.name)
        return Actor(
            id=subject,
            role=roles[0],
            name=name if isinstance(name, str) else None,
            roles=tuple(roles),
            departments=tuple(str(d) for d in _as_list(self.read(claims, self.departments))),
            citizen_id=str(citizen) if citizen and "citizen" in roles else None,
            via="token",
        )


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    if isinstance(value, str):
        return [value]
    return list(value) if isinstance(value, list | tuple) else []


class TokenIssuer:
    """Signs the embedded mode's tokens (``POST /auth/token``, citizens' codes, ``hotline token``)."""

    def __init__(self, keyring: Keyring, issuer: str, audience: str) -> None:
        self.keyring, self.issuer, self.audience = keyring, issuer, audience

    def issue(
        self,
        subject: str,
        roles: Sequence[str],
        *,
        ttl: int,
        departments: Sequence[str] = (),
        citizen_id: str | None = None,
        name: str | None = None,
        now: float | None = None,
        extra: dict[str, Any] | None = None,
    ) -> str:
        issued = int(now if now is not None else time.time())
        claims: dict[str, Any] = {
            "iss": self.issuer,
            "aud": self.audience,
            "sub": subject,
            "iat": issued,
            "nbf": issued,
            "exp": issued + ttl,
            "roles": list(roles),
        }
        if departments:
            claims["departments"] = list(departments)
        if citizen_id:
            claims["citizen_id"] = citizen_id
        if name:
            claims["name"] = name
        claims.update(extra or {})
        kid, key = self.keyring.current()
        return jwt.encode(claims, key, algorithm=ALGORITHM, headers={"kid": kid})


class LocalKeys:
    """The embedded issuer's own public keys."""

    def __init__(self, keyring: Keyring) -> None:
        self.keyring = keyring

    def key_for(self, kid: str) -> Any:
        return self.keyring.public_key(kid)


class RemoteKeys:
    """An external issuer's JWKS, found by OpenID Connect discovery and cached."""

    REFETCH_SECONDS = 10.0  # at most this often for an unknown kid (a rotation)

    def __init__(self, issuer: str, jwks_url: str | None = None, timeout: float = 5.0) -> None:
        self.issuer, self.timeout = issuer.rstrip("/"), timeout
        self._jwks_url = jwks_url
        self._keys: dict[str, Any] = {}
        self._fetched_at = 0.0
        self._lock = threading.Lock()

    def jwks_url(self) -> str:
        if self._jwks_url is None:
            response = httpx.get(f"{self.issuer}/.well-known/openid-configuration", timeout=self.timeout)
            response.raise_for_status()
            self._jwks_url = str(response.json()["jwks_uri"])
        return self._jwks_url

    def _fetch(self) -> None:
        response = httpx.get(self.jwks_url(), timeout=self.timeout)
        response.raise_for_status()
        keys = {}
        for jwk in jwt.PyJWKSet.from_dict(response.json()).keys:
            if jwk.key_id and jwk.public_key_use in (None, "sig"):
                keys[jwk.key_id] = jwk.key
        self._keys, self._fetched_at = keys, time.monotonic()

    def key_for(self, kid: str) -> Any:
        key = self._keys.get(kid)
        if key is not None:
            return key
        with self._lock:
            if kid not in self._keys and time.monotonic() - self._fetched_at >= self.REFETCH_SECONDS:
                try:
                    self._fetch()
                except (httpx.HTTPError, KeyError, ValueError, jwt.PyJWTError) as exc:
                    raise InvalidToken(f"the issuer's keys cannot be fetched: {exc}") from None
            return self._keys.get(kid)


class TokenVerifier:
    """Checks signature, expiry, not-before, issuer and audience; maps claims to an actor."""

    def __init__(self, keys: LocalKeys | RemoteKeys, issuer: str, audience: str, claims: ClaimMap) -> None:
        self.keys, self.issuer, self.audience, self.claims = keys, issuer, audience, claims

    def verify(self, token: str) -> tuple[Actor, dict[str, Any], str]:
        """The actor, the verified claims and the key (kid) that signed them."""
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError as exc:
            raise InvalidToken(f"not a JWT: {exc}") from None
        if header.get("alg") not in ALGORITHMS:
            raise InvalidToken(f"algorithm {header.get('alg')!r} is not accepted")
        kid = header.get("kid")
        if not isinstance(kid, str):
            raise InvalidToken("the token names no key (kid)")
        key = self.keys.key_for(kid)
        if key is None:
            raise InvalidToken(f"the token is signed by an unknown key {kid!r}")
        try:
            claims = jwt.decode(
                token,
                key,
                algorithms=ALGORITHMS,
                audience=self.audience,
                issuer=self.issuer,
                leeway=LEEWAY_SECONDS,
                options={"require": ["exp", "iat", "iss", "aud"]},
            )
        except jwt.ExpiredSignatureError:
            raise InvalidToken("the token has expired") from None
        except jwt.ImmatureSignatureError:
            raise InvalidToken("the token is not valid yet") from None
        except jwt.InvalidAudienceError:
            raise InvalidToken(f"the token is not for audience {self.audience!r}") from None
        except jwt.InvalidIssuerError:
            raise InvalidToken(f"the token is not from issuer {self.issuer!r}") from None
        except jwt.PyJWTError as exc:
            raise InvalidToken(f"the token is not valid: {exc}") from None
        return self.claims.actor(claims), claims, kid
