"""One-way hashes of secrets.

Passwords and sign-in codes are low-entropy: argon2id (argon2-cffi), slow on purpose.
API keys are 256 random bits: SHA-256 is enough, and keeps every integrator call cheap.
"""

from __future__ import annotations

import hashlib
import hmac

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError


class Argon2Secrets:
    """The domain's :class:`~domain.config.SecretHasher`."""

    def __init__(self) -> None:
        self._hasher = PasswordHasher()

    def hash(self, secret: str) -> str:
        return self._hasher.hash(secret)

    def verify(self, hashed: str, secret: str) -> bool:
        try:
            return self._hasher.verify(hashed, secret)
        except (VerificationError, InvalidHashError):
            return False


def api_key_hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def api_key_matches(stored_hash: str, secret: str) -> bool:
    return hmac.compare_digest(stored_hash, api_key_hash(secret))
