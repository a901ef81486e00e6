"""Signed caller assertions: how one Shipyard process tells another who a call is for.

Every internal gRPC call carries one metadata entry, ``x-shipyard-caller``::

    base64url(payload) "." base64url(HMAC-SHA256(key, payload))

where the payload (compact JSON) binds the user, their roles, the issuing process (its one name:
gateway, repo-svc, run-svc, serving-svc, lineage-svc, supervisor), the audience (the service
called, by its one name), and when the assertion was issued and expires (a minute later). The
key is the platform's internal key, 32 random bytes that only the platform's processes hold. A
service believes a caller only when the assertion is signed with that key, is for it, and has not
expired — so a process that can reach a service's port, but does not hold the key, cannot act as
anyone.

Signing and verifying are cached (a process signs once per user, roles and audience for half
a lifetime; a service checks each distinct assertion once until it expires), so the per-call
cost is a dictionary lookup.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import os
import secrets
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from shipyard.kit.caller import Caller
from shipyard.kit.errors import Unauthenticated

ASSERTION_KEY = "x-shipyard-caller"
KEY_BYTES = 32
LIFETIME_S = 60
# Clocks of different hosts differ a little: an assertion issued up to this far in the future,
# or expired this recently, still counts.
SKEW_S = 5
# Bounds on the caches, so many distinct callers cannot grow them without end.
CACHE_MAX = 10_000


def new_key() -> bytes:
    """A fresh internal key."""
    return secrets.token_bytes(KEY_BYTES)


def parse_key(text: str) -> bytes:
    """The key from its text form: 64 hex digits, or base64 (standard or url-safe) of 32 bytes."""
    text = text.strip()
    try:
        key = bytes.fromhex(text) if len(text) == 2 * KEY_BYTES else _b64decode(text)
    except (ValueError, binascii.Error):
        key = b""
    if len(key) != KEY_BYTES:
        raise ValueError(f"the internal key must be {KEY_BYTES} random bytes, as 64 hex digits or base64 "
                         "(python -c 'import secrets; print(secrets.token_hex(32))')")
    return key


def load_internal_key(value: str, key_file: Path) -> bytes:
    """The internal key: ``value`` (SHIPYARD_INTERNAL_KEY) when given, else the key file.

    Services never make a key of their own: two processes with different keys could not talk,
    and would say so only as UNAUTHENTICATED calls. ``shipyard up`` creates the file
    (:func:`ensure_key_file`); on Kubernetes a Secret provides the value.
    """
    if value.strip():
        return parse_key(value)
    try:
        return parse_key(key_file.read_text())
    except FileNotFoundError:
        raise ValueError(f"no internal key: set SHIPYARD_INTERNAL_KEY, or SHIPYARD_INTERNAL_KEY_FILE to a "
                         f"file holding one ({key_file} does not exist; `shipyard up` creates it)") from None


def ensure_key_file(key_file: Path) -> None:
    """Create the key file (mode 600) with a fresh key unless it exists; safe against a race."""
    if key_file.exists():
        parse_key(key_file.read_text())  # a damaged file is refused here, not by every service later
        return
    key_file.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=f".{key_file.name}.", dir=key_file.parent)  # mode 600
    temp = Path(name)
    with os.fdopen(fd, "w") as out:
        out.write(base64.urlsafe_b64encode(new_key()).decode() + "\n")
        out.flush()
        os.fsync(out.fileno())
    try:
        os.link(temp, key_file)  # atomic, and never replaces a key another process made first
    except FileExistsError:
        pass
    finally:
        temp.unlink()


@dataclass(frozen=True)
class Assertion:
    """What a verified assertion says."""

    caller: Caller
    issuer: str
    audience: str
    issued_at: int
    expires_at: int


class CallerAssertions:
    """Signs assertions as ``principal`` and verifies those addressed to it.

    ``principal`` is this process's service name (``repo``, ``gateway``, …): the issuer of what
    it signs and the audience it accepts.
    """

    def __init__(self, key: bytes, principal: str, lifetime_s: int = LIFETIME_S,
                 clock: Callable[[], float] = time.time) -> None:
        if len(key) != KEY_BYTES:
            raise ValueError(f"the internal key must be {KEY_BYTES} bytes")
        self.principal = principal
        self._key = key
        self._lifetime_s = lifetime_s
        self._clock = clock
        self._signed: dict[tuple[str, frozenset[str], str, str], tuple[str, float]] = {}
        self._verified: dict[str, Assertion] = {}

    # --- signing ------------------------------------------------------------------------------

    def sign(self, caller: Caller, audience: str) -> str:
        """An assertion that ``caller`` calls ``audience`` through this process (cached)."""
        now = self._clock()
        cache_key = (caller.user, caller.roles, caller.run_id, audience)
        cached = self._signed.get(cache_key)
        if cached is not None and now < cached[1]:
            return cached[0]
        issued = int(now)
        claims = {"sub": caller.user, "roles": sorted(caller.roles), "iss": self.principal,
                  "aud": audience, "iat": issued, "exp": issued + self._lifetime_s}
        if caller.run_id:
            claims["run"] = caller.run_id
        payload = json.dumps(claims, separators=(",", ":"), sort_keys=True).encode()
        token = f"{_b64encode(payload)}.{_b64encode(self._mac(payload))}"
        if len(self._signed) >= CACHE_MAX:
            self._signed.clear()
        # Reused for half its lifetime: the receiver always gets at least half a lifetime.
        self._signed[cache_key] = (token, now + self._lifetime_s / 2)
        return token

    def metadata(self, caller: Caller, audience: str) -> tuple[tuple[str, str]]:
        """The metadata entry of a call to ``audience`` on behalf of ``caller``."""
        return ((ASSERTION_KEY, self.sign(caller, audience)),)

    # --- verifying ----------------------------------------------------------------------------

    def verify(self, token: str | None) -> Assertion:
        """The assertion ``token`` makes, addressed to this process; Unauthenticated naming why not."""
        if not token:
            raise Unauthenticated(f"no caller assertion ({ASSERTION_KEY}) on the call: internal services "
                                  "answer only the platform's own processes")
        now = self._clock()
        found = self._verified.get(token)
        if found is None:
            found = self._check(token, now)
            if len(self._verified) >= CACHE_MAX:
                self._verified = {t: a for t, a in self._verified.items() if a.expires_at + SKEW_S > now}
                if len(self._verified) >= CACHE_MAX:
                    self._verified.clear()
            self._verified[token] = found
        if now >= found.expires_at + SKEW_S:
            raise Unauthenticated("the caller assertion expired")
        return found

    def _check(self, token: str, now: float) -> Assertion:
        encoded_payload, dot, encoded_mac = token.partition(".")
        try:
            if not dot:
                raise ValueError
            payload, mac = _b64decode(encoded_payload), _b64decode(encoded_mac)
        except (ValueError, binascii.Error):
            raise Unauthenticated("the caller assertion is malformed") from None
        if not hmac.compare_digest(mac, self._mac(payload)):
            raise Unauthenticated("the caller assertion's signature is not valid (not signed with this "
                                  "platform's internal key)")
        try:
            claims = json.loads(payload)
            caller = Caller(str(claims["sub"]), frozenset(str(r) for r in claims["roles"]),
                            run_id=str(claims.get("run", "")), via=str(claims["iss"]))
            assertion = Assertion(caller, str(claims["iss"]), str(claims["aud"]), int(claims["iat"]),
                                  int(claims["exp"]))
        except (ValueError, KeyError, TypeError):
            raise Unauthenticated("the caller assertion is malformed") from None
        if assertion.audience != self.principal:
            raise Unauthenticated(f"the caller assertion is for {assertion.audience!r}, "
                                  f"not {self.principal!r}")
        if assertion.issued_at > now + SKEW_S:
            raise Unauthenticated("the caller assertion is not valid yet (issued in the future)")
        if not assertion.caller.user:
            raise Unauthenticated("the caller assertion names no user")
        return assertion

    def _mac(self, payload: bytes) -> bytes:
        return hmac.new(self._key, payload, hashlib.sha256).digest()


def _b64encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _b64decode(text: str) -> bytes:
    text = text.replace("+", "-").replace("/", "_").rstrip("=")
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
