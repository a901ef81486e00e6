"""Users, roles and API tokens."""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from shipyard.kit.caller import OPERATOR
from shipyard.kit.errors import (
    FailedPrecondition,
    InvalidArgument,
    PermissionDenied,
    ResourceExhausted,
    Unauthenticated,
)

ROLES = (OPERATOR, "data-scientist", "ml-engineer", "production-engineer")
_USER = re.compile(r"[a-z0-9][a-z0-9._-]{0,62}")
TOKEN_PREFIX = "sy_"
# What a token is for: "api" (made by a person for the CLI, scripts and CI) or "session" (made by
# the console's sign-in, held in its cookie, revoked by signing out).
API = "api"
SESSION = "session"
# A run's own token (SHIPYARD_TOKEN inside the run): run-svc makes it when the run starts and
# answers for it only while the run is active. It is never stored here.
RUN = "run"
KINDS = (API, SESSION)
RUN_TOKEN_PREFIX = "syr_"
DESCRIPTION_MAX = 200
IDENTITY_SERVICE = "/shipyard.gateway.v1.IdentityService/"
# What a console session or a run's token may call of IdentityService. The console manages no
# users and no tokens, and a session taken from a browser (or a token taken from a run) must not
# become a lasting credential (an API token, a user of its own) nor lock its owner out (revoking
# their tokens): the rest needs an API token.
SESSION_IDENTITY_METHODS = frozenset({f"{IDENTITY_SERVICE}WhoAmI"})


@dataclass(frozen=True)
class User:
    """A person or a robot account. Rights are the union of the roles' rights; a disabled user has none.

    A deleted user is kept as a record (``deleted``): what they made still carries their name, so the
    name is never given to someone else."""

    name: str
    roles: frozenset[str]
    create_time: datetime
    display_name: str = ""
    disabled: bool = False
    deleted: bool = False
    revision: int = 0  # the store's revision of the record read (0: never stored)

    @property
    def id(self) -> str:
        """The user's key: their name, which is never given to anyone else."""
        return self.name

    @property
    def active_operator(self) -> bool:
        """Whether the user can manage the platform now."""
        return OPERATOR in self.roles and not self.disabled and not self.deleted


@dataclass(frozen=True)
class TokenRecord:
    """An API token as stored: only the sha256 of its secret part is kept."""

    id: str
    user: str
    secret_hash: str
    create_time: datetime
    description: str = ""
    kind: str = API
    expire_time: datetime | None = None  # None: never (only the first admin's token)
    last_use_time: datetime | None = None
    revision: int = 0  # the store's revision of the record read (0: never stored)

    def live(self, now: datetime) -> bool:
        """Whether the token still works at ``now`` (has not expired)."""
        return self.expire_time is None or now < self.expire_time


@dataclass(frozen=True)
class TokenLimits:
    """How long tokens live and how many a user may hold (settings)."""

    default_ttl: timedelta = timedelta(days=30)
    max_ttl: timedelta = timedelta(days=90)
    max_per_user: int = 50
    session_ttl: timedelta = timedelta(hours=12)
    sessions_per_user: int = 20

    def lifetime(self, requested: timedelta | None) -> timedelta:
        """The lifetime of a new API token: ``requested`` (None: the default) within the cap."""
        if requested is None:
            return min(self.default_ttl, self.max_ttl)
        if requested <= timedelta(0):
            raise InvalidArgument("ttl", "must be positive (leave it out for the default, "
                                         f"{_days(self.default_ttl)})")
        if requested > self.max_ttl:
            raise InvalidArgument("ttl", f"{_days(requested)} is longer than the most allowed, "
                                         f"{_days(self.max_ttl)} (SHIPYARD_TOKEN_MAX_TTL_DAYS)")
        return requested

    def check_room(self, live_api_tokens: int) -> None:
        """ResourceExhausted when a user holding ``live_api_tokens`` may not make another."""
        if live_api_tokens >= self.max_per_user:
            raise ResourceExhausted(f"you hold {live_api_tokens} live tokens, the most allowed "
                                    f"(SHIPYARD_TOKEN_MAX_PER_USER); revoke some first "
                                    "(shipyard token list, shipyard token revoke ID)")


def _days(span: timedelta) -> str:
    days = span / timedelta(days=1)
    return f"{days:g} days" if days >= 1 else f"{span.total_seconds() / 3600:g} hours"


def check_roles(roles: Iterable[str]) -> frozenset[str]:
    """A non-empty set of known roles, or InvalidArgument naming the field."""
    roles = list(roles)
    if not roles:
        raise InvalidArgument("user.roles", f"give at least one of: {', '.join(ROLES)}")
    unknown = [r for r in roles if r not in ROLES]
    if unknown:
        raise InvalidArgument("user.roles", f"unknown role {unknown[0]!r}; known: {', '.join(ROLES)}")
    return frozenset(roles)


def check_user(name: str, roles: list[str]) -> tuple[str, frozenset[str]]:
    """A valid user name and a non-empty set of known roles, or InvalidArgument naming the field."""
    if not _USER.fullmatch(name or ""):
        raise InvalidArgument("user.name", "must be 1-63 lowercase letters, digits, '.', '_' or '-', "
                                           "starting with a letter or digit")
    return name, check_roles(roles)


def check_description(description: str) -> str:
    """A token's description: printable, at most DESCRIPTION_MAX characters."""
    if len(description) > DESCRIPTION_MAX:
        raise InvalidArgument("description", f"at most {DESCRIPTION_MAX} characters")
    if not description.isprintable():
        raise InvalidArgument("description", "control characters are not allowed")
    return description


def keeps_an_operator(users: Iterable[User], before: User, after: User | None) -> None:
    """FailedPrecondition when changing ``before`` into ``after`` (None: deleting it) would leave no
    enabled operator among ``users``: nobody could manage the platform any more."""
    if not before.active_operator or (after is not None and after.active_operator):
        return
    if not any(u.active_operator for u in users if u.name != before.name):
        raise FailedPrecondition(f"{before.name!r} is the last enabled operator; make another operator first "
                                 "(shipyard user create NAME --role operator)")


def _hash(secret: str) -> str:
    # Tokens carry 256 random bits, so a plain sha256 is enough (no password stretching).
    return hashlib.sha256(secret.encode()).hexdigest()


def issue_token(user: str, token_id: str, now: datetime, description: str = "", kind: str = API,
                ttl: timedelta | None = None) -> tuple[TokenRecord, str]:
    """A new token for ``user`` living ``ttl`` (None: forever): the record to store and the full
    secret to show once."""
    secret = secrets.token_urlsafe(32)
    record = TokenRecord(id=token_id, user=user, secret_hash=_hash(secret), create_time=now,
                         description=description, kind=kind,
                         expire_time=now + ttl if ttl is not None else None)
    return record, f"{TOKEN_PREFIX}{token_id}.{secret}"


def parse_token(token: str) -> tuple[str, str]:
    """(token id, secret) of a presented token; Unauthenticated if it is not one of ours."""
    if not token.startswith(TOKEN_PREFIX) or "." not in token:
        raise Unauthenticated("the API token is malformed (expected sy_<id>.<secret>)")
    token_id, _, secret = token[len(TOKEN_PREFIX):].partition(".")
    if not token_id or not secret:
        raise Unauthenticated("the API token is malformed (expected sy_<id>.<secret>)")
    return token_id, secret


def verify(record: TokenRecord | None, secret: str, now: datetime) -> TokenRecord:
    """The record if ``secret`` matches it and it has not expired; Unauthenticated otherwise."""
    if record is None or not hmac.compare_digest(record.secret_hash, _hash(secret)):
        raise Unauthenticated("the API token is not valid (unknown or revoked)")
    if not record.live(now):
        assert record.expire_time is not None
        raise Unauthenticated(f"token expired at {record.expire_time:%Y-%m-%d %H:%M} UTC; "
                              "make a new one (shipyard token create)")
    return record


def check_use(record: TokenRecord, method: str, session_only: bool = False) -> None:
    """Whether the token of ``record`` may call ``method``: Unauthenticated when only a console
    session will do (``session_only``: the console's cookie) and it is not one; PermissionDenied
    when a session or a run's token calls an IdentityService method the console does not use."""
    if session_only and record.kind != SESSION:
        raise Unauthenticated("the console's cookie must hold a sign-in session, not an API token: "
                              "sign in at /login")
    if (record.kind in (SESSION, RUN) and method.startswith(IDENTITY_SERVICE)
            and method not in SESSION_IDENTITY_METHODS):
        holder = "a run's token" if record.kind == RUN else "a console sign-in session"
        raise PermissionDenied(f"{method.removeprefix(IDENTITY_SERVICE)} needs an API token: {holder} "
                               "cannot make tokens or manage users and tokens "
                               "(use the CLI with your API token)")


def run_token_record(run_id: str, run: str, user: str, secret: str, now: datetime) -> TokenRecord:
    """What the gateway keeps, for the cache time, of a run's token that run-svc vouched for."""
    return TokenRecord(id=run_id, user=user, secret_hash=_hash(secret), create_time=now,
                       description=f"run {run}", kind=RUN)


def parse_run_token(token: str) -> tuple[str, str]:
    """(run id, secret) of a presented run token; Unauthenticated if it is not one."""
    run_id, dot, secret = token.removeprefix(RUN_TOKEN_PREFIX).partition(".")
    if not token.startswith(RUN_TOKEN_PREFIX) or not dot or not run_id or not secret:
        raise Unauthenticated("the run token is malformed (expected syr_<run id>.<secret>)")
    return run_id, secret


def check_enabled(user: User | None) -> User:
    """The user if they may act; Unauthenticated when they were disabled or deleted."""
    if user is None or user.deleted:
        raise Unauthenticated("the API token is not valid (its user was deleted)")
    if user.disabled:
        raise Unauthenticated(f"user {user.name!r} is disabled; ask an operator")
    return user
