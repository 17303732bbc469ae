"""The embedded mode's own signing keys, kept in the data folder.

RS256 (what every OpenID Connect client verifies). ``hotline keys rotate`` adds a key
that signs from then on; older keys keep verifying the tokens they signed until they are
retired (``hotline keys retire KID``, once those tokens have expired). The public keys
are served as a JWKS at ``/auth/jwks.json``.
"""

from __future__ import annotations

import fcntl
import os
import secrets
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm

ALGORITHM = "RS256"


class Keyring:
    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self._keys: dict[str, rsa.RSAPrivateKey] = {}
        self._loaded_at = 0.0
        self.reload()
        if not self._keys:
            self.rotate()

    @contextmanager
    def _locked(self) -> Iterator[None]:
        self.folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        with open(self.folder / ".lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def reload(self) -> None:
        """Reads the folder again (another process may have rotated)."""
        keys: dict[str, rsa.RSAPrivateKey] = {}
        if self.folder.exists():
            for path in sorted(self.folder.glob("*.pem")):
                key = serialization.load_pem_private_key(path.read_bytes(), password=None)
                if isinstance(key, rsa.RSAPrivateKey):
                    keys[path.stem] = key
        self._keys = keys
        self._loaded_at = time.monotonic()

    def rotate(self) -> str:
        """A new signing key; the kid sorts after every older one."""
        with self._locked():
            # Kids sort in the order the keys were made (the newest signs), even within a second.
            self.reload()
            ns = time.time_ns()
            while True:
                kid = time.strftime("%Y%m%dT%H%M%S", time.gmtime(ns / 1e9)) + f".{ns % 10**9:09d}-{secrets.token_hex(3)}"
                if not self._keys or kid > max(self._keys):
                    break
                ns += 1_000
            key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
            pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
            path = self.folder / f"{kid}.pem"
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "wb") as f:
                f.write(pem)
            self.reload()
            return kid

    def retire(self, kid: str) -> None:
        with self._locked():
            if kid not in self._keys:
                raise KeyError(f"no signing key {kid}")
            if len(self._keys) == 1:
                raise ValueError("the only signing key cannot be retired: rotate first")
            (self.folder / f"{kid}.pem").unlink()
            self.reload()

    @property
    def kids(self) -> list[str]:
        return sorted(self._keys)

    def current(self) -> tuple[str, rsa.RSAPrivateKey]:
        kid = self.kids[-1]
        return kid, self._keys[kid]

    def public_key(self, kid: str) -> Any:
        key = self._keys.get(kid)
        if key is None and time.monotonic() - self._loaded_at > 5:
            self.reload()  # rotated by another process of the same data folder
            key = self._keys.get(kid)
        return key.public_key() if key is not None else None

    def jwks(self) -> dict[str, Any]:
        keys = []
        for kid in self.kids:
            jwk = RSAAlgorithm.to_jwk(self._keys[kid].public_key(), as_dict=True)
            keys.append({**jwk, "kid": kid, "use": "sig", "alg": ALGORITHM})
        return {"keys": keys}
