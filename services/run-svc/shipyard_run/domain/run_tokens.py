"""A run's API token: ``syr_<run id>.<secret>``, made when the run starts, good while it is active.

The run finds it in SHIPYARD_TOKEN and calls the API with it as its owner. Only the sha256 of the
secret is stored, on the run's record; the gateway asks run-svc who a presented token acts for.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

from shipyard.kit.errors import Unauthenticated

RUN_TOKEN_PREFIX = "syr_"
SECRET_BYTES = 32  # 256 random bits: a plain sha256 is enough to store it (no stretching)


def secret_hash(secret: str) -> str:
    """What the run's record keeps of its token's secret."""
    return hashlib.sha256(secret.encode()).hexdigest()


def issue_run_token(run_id: str) -> tuple[str, str]:
    """A new token for run ``run_id``: (the token the run gets, the hash its record keeps)."""
    secret = secrets.token_urlsafe(SECRET_BYTES)
    return f"{RUN_TOKEN_PREFIX}{run_id}.{secret}", secret_hash(secret)


def parse_run_token(token: str) -> tuple[str, str]:
    """(run id, secret) of a presented run token; Unauthenticated if it is not one."""
    run_id, dot, secret = token.removeprefix(RUN_TOKEN_PREFIX).partition(".")
    if not token.startswith(RUN_TOKEN_PREFIX) or not dot or not run_id or not secret:
        raise Unauthenticated("the run token is malformed (expected syr_<run id>.<secret>)")
    return run_id, secret


def matches(stored_hash: str, secret: str) -> bool:
    """Whether ``secret`` is the one whose hash a run's record keeps (constant time)."""
    return bool(stored_hash) and hmac.compare_digest(stored_hash, secret_hash(secret))
