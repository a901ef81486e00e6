"""Secrets encrypted at rest with a key the operator provides (generated on first start in
embedded mode): the port the use cases hold (:class:`SecretBox`) and its implementation, Fernet
(AES-128-CBC + HMAC-SHA256) from the `cryptography` package."""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
from pathlib import Path
from typing import Protocol

from cryptography.fernet import Fernet, InvalidToken


class SecretBox(Protocol):
    """Encryption of stored secrets; the key stays in the implementation (:class:`FernetSecretBox`)."""

    def seal(self, secret: str) -> str:
        """The secret, encrypted, as text to store."""

    def open(self, sealed: str) -> str:
        """The secret back from what ``seal`` made; ValueError when the key cannot open it."""

    def fingerprint(self, secret: str) -> str:
        """A short keyed digest that tells secrets apart and reveals nothing of them."""


class FernetSecretBox:
    """Encrypts with one Fernet key; fingerprints with an HMAC keyed by it (not reversible)."""

    def __init__(self, key: bytes) -> None:
        self._fernet = Fernet(key)
        self._mac_key = hashlib.sha256(b"shipyard-fingerprint" + key).digest()

    def seal(self, secret: str) -> str:
        """The secret, encrypted, as text to store."""
        return self._fernet.encrypt(secret.encode()).decode()

    def open(self, sealed: str) -> str:
        """The secret back from what ``seal`` made; ValueError when this key did not seal it."""
        try:
            return self._fernet.decrypt(sealed.encode()).decode()
        except InvalidToken:
            raise ValueError(
                "a stored secret cannot be decrypted: was SHIPYARD_SECRET_KEY changed?"
            ) from None

    def fingerprint(self, secret: str) -> str:
        """A short keyed digest that tells secrets apart and reveals nothing of them."""
        return "hmac-sha256:" + hmac.new(self._mac_key, secret.encode(), hashlib.sha256).hexdigest()[:16]


def load_key(env_key: str, key_file: Path) -> bytes:
    """The key: SHIPYARD_SECRET_KEY when given, else the key file, created (mode 600) if missing."""
    if env_key:
        key = env_key.encode()
    elif key_file.exists():
        key = key_file.read_bytes().strip()
    else:
        key_file.parent.mkdir(parents=True, exist_ok=True)
        key = Fernet.generate_key()
        fd = os.open(key_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as out:
            out.write(key + b"\n")
    try:
        if len(base64.urlsafe_b64decode(key)) != 32:
            raise ValueError
    except ValueError:
        raise ValueError("the secret key must be 32 bytes, url-safe base64 (Fernet.generate_key())") from None
    return key
