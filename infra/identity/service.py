"""The hotline's sign-in service: who a request comes from.

Built once per process by :meth:`Hotline.start <infra.runtime.Hotline.start>`. It
verifies bearer tokens (its own, and an external OpenID Connect issuer's when one is
configured), API keys (``hk_<id>_<secret>``), and staff passwords; it signs the tokens
of the embedded mode and of citizens signed in by a code.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections import OrderedDict
from dataclasses import dataclass
from functools import cache, cached_property
from typing import Any

import jwt

from domain.base import Actor, InvalidTransition
from domain.identity.api_keys import ApiKey
from domain.identity.staff import StaffCredential, StaffMember, credential_id, staff_id
from infra.eventstore import EventStore
from infra.identity.keys import Keyring
from infra.identity.secrets import Argon2Secrets, api_key_matches
from infra.identity.tokens import LEEWAY_SECONDS, ClaimMap, InvalidToken, LocalKeys, RemoteKeys, TokenIssuer, TokenVerifier
from infra.settings import Settings

API_KEY_PREFIX = "hk_"
STAFF_CLAIM = "hotline_staff"  # tokens from /auth/token: the account is checked on use
VERIFIED_CACHE_SIZE = 10_000


@dataclass(frozen=True)
class _Verified:
    actor: Actor
    staff: bool  # an account of this hotline's: checked on use
    expires: float
    verifier: TokenVerifier
    kid: str


class Identity:
    """Built with every hotline process; what only sign-in needs (the keyring, which may
    write a first key, and the verifiers) is made on first use."""

    def __init__(self, settings: Settings, store: EventStore) -> None:
        self.settings, self.store = settings, store
        self.secrets = Argon2Secrets()
        self._verified: OrderedDict[str, _Verified] = OrderedDict()
        self._lock = threading.Lock()

    @cached_property
    def keyring(self) -> Keyring:
        return Keyring(self.settings.keys_dir)

    @cached_property
    def issuer(self) -> TokenIssuer:
        return TokenIssuer(self.keyring, self.settings.token_issuer, self.settings.oidc_audience)

    @cached_property
    def verifiers(self) -> dict[str, TokenVerifier]:
        """By issuer: the hotline's own, and the external OpenID Connect issuer's if any."""
        settings = self.settings
        own = TokenVerifier(LocalKeys(self.keyring), settings.token_issuer, settings.oidc_audience, ClaimMap())
        verifiers = {settings.token_issuer: own}
        if settings.oidc_issuer:
            claims = ClaimMap(
                subject=settings.oidc_subject_claim,
                roles=settings.oidc_roles_claim,
                departments=settings.oidc_departments_claim,
                citizen_id=settings.oidc_citizen_claim,
                name=settings.oidc_name_claim,
            )
            keys = RemoteKeys(settings.oidc_issuer, settings.oidc_jwks_url)
            verifiers[settings.oidc_issuer] = TokenVerifier(keys, settings.oidc_issuer, settings.oidc_audience, claims)
        return verifiers

    # ------------------------------------------------------------------ verifying
    def verify_token(self, token: str) -> Actor:
        """Verified tokens are remembered until they expire: a console sends the same
        token with every request, and the signature check is the costly part."""
        hit = self._verified.get(token)
        if hit is not None and time.time() < hit.expires and hit.verifier.keys.key_for(hit.kid) is not None:
            actor, staff = hit.actor, hit.staff  # (a retired key's tokens fail from then on)
        else:
            try:
                unverified = jwt.decode(token, options={"verify_signature": False})
            except jwt.PyJWTError as exc:
                raise InvalidToken(f"not a JWT: {exc}") from None
            verifier = self.verifiers.get(str(unverified.get("iss")))
            if verifier is None:
                raise InvalidToken(f"tokens from issuer {unverified.get('iss')!r} are not accepted here")
            actor, claims, kid = verifier.verify(token)
            staff = bool(claims.get(STAFF_CLAIM)) and verifier.issuer == self.settings.token_issuer
            with self._lock:
                self._verified[token] = _Verified(actor, staff, float(claims["exp"]) + LEEWAY_SECONDS, verifier, kid)
                if len(self._verified) > VERIFIED_CACHE_SIZE:
                    self._verified.popitem(last=False)
        if staff and not self._account_still_grants(actor):
            raise InvalidToken(f"the account {actor.id} is disabled or lost a role or department since sign-in: sign in again")
        return actor

    def _account_still_grants(self, actor: Actor) -> bool:
        """The account is enabled and still holds every role and department the token
        carries (the store's reference cache: at once after a change made by this
        process, within its ttl after another node's)."""
        member = self.store.reference(staff_id(actor.id))
        return (
            isinstance(member, StaffMember)
            and not member.disabled
            and set(actor.roles) <= set(member.roles)
            and set(actor.departments) <= set(member.departments)
        )

    def verify_api_key(self, raw: str, now: Any) -> Actor:
        """``hk_<key id, 32 hex>_<secret>``: the key must exist, match, be unrevoked and unexpired."""
        body = raw[len(API_KEY_PREFIX) :]
        key_hex, _, secret = body.partition("_")
        try:
            key_id = uuid.UUID(hex=key_hex)
        except ValueError:
            raise InvalidToken("not an API key of this hotline") from None
        key = self.store.reference(key_id)  # a revocation counts at once here, within 2 s elsewhere
        key = key if isinstance(key, ApiKey) else None
        if key is None or not api_key_matches(key.secret_hash, secret):
            raise InvalidToken("unknown API key")
        if not key.usable(now):
            raise InvalidToken("the API key is revoked or expired")
        if key.jurisdiction != self.settings.jurisdiction:
            raise InvalidToken(f"the API key is for jurisdiction {key.jurisdiction!r}, not {self.settings.jurisdiction!r}")
        return key.actor()

    # ------------------------------------------------------------------ signing in
    def staff_sign_in(self, username: str, password: str) -> tuple[str, StaffMember]:
        """A token for the member whose password this is; InvalidToken otherwise (the
        same answer whether the account is unknown or the password wrong)."""
        member = self.store.read_reference(staff_id(username))
        credential = self.store.read_reference(credential_id(username))
        refused = InvalidToken("unknown username or wrong password")
        if not isinstance(member, StaffMember) or not isinstance(credential, StaffCredential):
            self.secrets.verify(_dummy_hash(), password)  # the same time either way
            raise refused
        if not self.secrets.verify(credential.password_hash, password):
            raise refused
        try:
            actor = member.actor()
        except InvalidTransition:
            raise InvalidToken(f"the account {username} is disabled or has no role") from None
        token = self.issuer.issue(
            actor.id,
            actor.roles,
            ttl=self.settings.token_ttl_seconds,
            departments=actor.departments,
            name=actor.name,
            extra={STAFF_CLAIM: True},
        )
        return token, member

    def citizen_token(self, citizen_id: str, name: str | None) -> str:
        return self.issuer.issue(
            f"citizen:{citizen_id}", ["citizen"], ttl=self.settings.citizen_token_ttl_seconds, citizen_id=citizen_id, name=name
        )

    def discovery(self, base_url: str) -> dict[str, Any]:
        """An OpenID Connect discovery document for the hotline's own issuer."""
        return {
            "issuer": self.settings.token_issuer,
            "jwks_uri": f"{base_url}/auth/jwks.json",
            "token_endpoint": f"{base_url}/auth/token",
            "grant_types_supported": ["password"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "claims_supported": ["sub", "roles", "departments", "citizen_id", "name"],
        }


@cache
def _dummy_hash() -> str:
    """A hash to check an unknown username's password against (made once, on first need)."""
    return Argon2Secrets().hash("not a password of anybody")
