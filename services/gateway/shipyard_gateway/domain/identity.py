"""Users, roles and API tokens."""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from datetime import datetime

from shipyard.kit.errors import InvalidArgument, Unauthenticated

ROLES = ("operator", "data-scientist", "ml-engineer", "production-engineer")
_USER = re.compile(r"[a-z0-9][a-z0-9._-]{0,62}")
TOKEN_PREFIX = "sy_"


@dataclass(frozen=True)
class User:
    """A person or a robot account. Rights are the union of the roles' rights."""

    name: str
    roles: frozenset[str]
    create_time: datetime
    display_name: str = ""


@dataclass(frozen=True)
class TokenRecord:
    """An API token as stored: only the sha256 of its secret part is kept."""

    id: str
    user: str
    secret_hash: str
    create_time: datetime
    description: str = ""


def check_user(name: str, roles: list[str]) -> tuple[str, frozenset[str]]:
    """A valid user name and a non-empty set of known roles, or InvalidArgument naming the field."""
    if not _USER.fullmatch(name or ""):
        raise InvalidArgument("user.name", "must be 1-63 lowercase letters, digits, '.', '_' or '-', "
                                           "starting with a letter or digit")
    if not roles:
        raise InvalidArgument("user.roles", f"give at least one of: {', '.join(ROLES)}")
    unknown = [r for r in roles if r not in ROLES]
    if unknown:
        raise InvalidArgument("user.roles", f"unknown role {unknown[0]!r}; known: {', '.join(ROLES)}")
    return name, frozenset(roles)


def _hash(secret: str) -> str:
    # Tokens carry 256 random bits, so a plain sha256 is enough (no password stretching).
    return hashlib.sha256(secret.encode()).hexdigest()


def issue_token(user: str, token_id: str, now: datetime, description: str = "") -> tuple[TokenRecord, str]:
    """A new token for ``user``: the record to store and the full secret to show once."""
    secret = secrets.token_urlsafe(32)
    record = TokenRecord(id=token_id, user=user, secret_hash=_hash(secret), create_time=now,
                         description=description)
    return record, f"{TOKEN_PREFIX}{token_id}.{secret}"


def parse_token(token: str) -> tuple[str, str]:
    """(token id, secret) of a presented token; Unauthenticated if it is not one of ours."""
    if not token.startswith(TOKEN_PREFIX) or "." not in token:
        raise Unauthenticated("the API token is malformed (expected sy_<id>.<secret>)")
    token_id, _, secret = token[len(TOKEN_PREFIX):].partition(".")
    if not token_id or not secret:
        raise Unauthenticated("the API token is malformed (expected sy_<id>.<secret>)")
    return token_id, secret


def verify(record: TokenRecord | None, secret: str) -> TokenRecord:
    """The record if ``secret`` matches it; Unauthenticated otherwise."""
    if record is None or not hmac.compare_digest(record.secret_hash, _hash(secret)):
        raise Unauthenticated("the API token is not valid (unknown or revoked)")
    return record
