"""Identity use cases: the first admin, authentication, console sessions, users and tokens."""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Protocol

from shipyard.kit.caller import OPERATOR, Caller
from shipyard.kit.clock import Clock, utc_now
from shipyard.kit.errors import (
    AlreadyExists,
    NotFound,
    PermissionDenied,
    ResourceExhausted,
    ShipyardError,
    Unauthenticated,
)
from shipyard.kit.ids import new_id
from shipyard_gateway.app.ports import TokenRepository, UnitOfWork, Units
from shipyard_gateway.domain.identity import (
    API,
    RUN_TOKEN_PREFIX,
    SESSION,
    TokenLimits,
    TokenRecord,
    User,
    check_description,
    check_enabled,
    check_roles,
    check_use,
    check_user,
    issue_token,
    keeps_an_operator,
    parse_run_token,
    parse_token,
    run_token_record,
    verify,
)
from shipyard_gateway.domain.throttle import FailureWindow

log = logging.getLogger(__name__)

ADMIN = "admin"
# How long a replica trusts what it read about a token and its user: a token revoked, a user
# disabled or given other roles on another replica takes effect here within this time.
CACHE_TTL_S = 5.0
# Entries past their time are dropped when the cache holds this many (tokens revoked elsewhere
# are never looked up here again).
CACHE_SWEEP_AT = 10_000
# Last use is written at most this often per token (a write per call would cost every call).
LAST_USE_EVERY = timedelta(minutes=1)
SIGN_IN_WINDOW_S = 60.0
BAD_TOKEN_WINDOW_S = 60.0


class TooManyFailures(ResourceExhausted):
    """Too many failed sign-ins, or calls with bad tokens, from a client address (or with a token
    id); ``retry_after_s`` says when the next try may come."""

    def __init__(self, message: str, retry_after_s: float) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


@dataclass(frozen=True)
class RunGrant:
    """Who a run's token acts for, as run-svc vouches: the run's owner with their roles at submit."""

    user: str
    roles: frozenset[str]
    run: str


class RunTokenVerifier(Protocol):
    """Asks run-svc about a run's token (``syr_…``, SHIPYARD_TOKEN inside a run)."""

    async def verify(self, token: str) -> RunGrant:
        """Who the token acts for while its run is active; Unauthenticated otherwise."""
        ...


@dataclass(frozen=True)
class _Cached:
    record: TokenRecord
    caller: Caller
    until: float  # on the monotonic clock
    run: str = ""  # a run's token: the run's name, as run-svc vouched


@dataclass
class Identity:
    """Users, roles, API tokens and console sessions."""

    uow: Units
    clock: Clock = utc_now
    ids: Callable[[], str] = new_id
    limits: TokenLimits = field(default_factory=TokenLimits)
    cache_ttl_s: float = CACHE_TTL_S
    ticks: Callable[[], float] = time.monotonic
    sign_in_failures: int = 10  # per client address and per token id, per minute
    bad_tokens: int = 30  # calls with a bad token per client address, per minute, before throttling
    run_tokens: RunTokenVerifier | None = None  # None: runs' tokens are refused
    _cache: dict[str, _Cached] = field(default_factory=dict)
    _by_address: FailureWindow = field(init=False)
    _by_token: FailureWindow = field(init=False)
    _bad_tokens: FailureWindow = field(init=False)

    def __post_init__(self) -> None:
        self._by_address = FailureWindow(self.sign_in_failures, SIGN_IN_WINDOW_S)
        self._by_token = FailureWindow(self.sign_in_failures, SIGN_IN_WINDOW_S)
        self._bad_tokens = FailureWindow(self.bad_tokens, BAD_TOKEN_WINDOW_S)

    async def ensure_admin(self) -> str | None:
        """On the first start, create the ``admin`` operator; its token, or None if users exist.

        That token never expires: it is the way back in when every other operator token has."""
        async with self.uow() as tx:
            if await tx.users.count():
                return None
            await tx.users.add(User(ADMIN, frozenset({OPERATOR}), self.clock(), "Administrator"))
            record, secret = issue_token(ADMIN, self.ids(), self.clock(), "created by the first start")
            await tx.tokens.add(record)
            return secret

    # --- authentication --------------------------------------------------------------------

    async def authenticate(self, token: str, method: str, session_only: bool = False) -> Caller:
        """The caller presenting ``token`` to call ``method``; Unauthenticated otherwise (unknown,
        revoked or expired token, disabled or deleted user, or an API token where only a console
        session will do: ``session_only``, the console's cookie); PermissionDenied when a console
        session calls what needs an API token (managing users and tokens)."""
        record, caller = await self._resolve(token)
        check_use(record, method, session_only)
        return caller

    def refused(self, client: str, token: str, error: Unauthenticated) -> ShipyardError:
        """What to answer a call from ``client`` whose bearer ``token`` was refused with ``error``.

        Each failure is counted per client address and logged with the token's id, never its
        secret. Past ``bad_tokens`` failures a minute the address is throttled: its failures are
        answered TooManyFailures (with when to try again) and no longer logged one by one, until
        they fall below the limit. Good tokens are never held back, so a throttled address cannot
        lock out a user who shares it (behind the same NAT, or on the same machine)."""
        now = self.ticks()
        wait = self._bad_tokens.retry_after(client, now)
        self._bad_tokens.fail(client, now)  # a throttled address that goes on stays throttled
        if wait is not None:
            return TooManyFailures(f"too many failed authentications from {client}; try again in "
                                   f"{math.ceil(wait)} s ({error.message})", wait)
        log.warning("authentication failed (client %s, token id %s): %s", client, _token_id(token) or "-",
                    error.message)
        if self._bad_tokens.retry_after(client, now) is not None:
            log.warning("client %s: %d failed authentications within %.0f s; its next failures are answered "
                        "RESOURCE_EXHAUSTED, and not logged, until it fails less often", client,
                        self.bad_tokens, BAD_TOKEN_WINDOW_S)
        return error

    async def _resolve(self, token: str) -> tuple[TokenRecord, Caller]:
        if token.startswith(RUN_TOKEN_PREFIX):
            return await self._resolve_run(token)
        token_id, secret = parse_token(token)
        cached = self._cache.get(token_id)
        if cached is not None and self.ticks() < cached.until:
            verify(cached.record, secret, self.clock())
            return cached.record, cached.caller
        now = self.clock()
        async with self.uow() as tx:
            record = verify(await tx.tokens.by_id(token_id), secret, now)
            user = check_enabled(await tx.users.by_id(record.user))
            if record.last_use_time is None or now - record.last_use_time >= LAST_USE_EVERY:
                record = await tx.tokens.save(replace(record, last_use_time=now))
        caller = Caller(user.name, user.roles)
        self._remember(token_id, record, caller)
        return record, caller

    async def _resolve_run(self, token: str) -> tuple[TokenRecord, Caller]:
        """A run's token, as run-svc vouches for it; trusted for the cache time at most, so it stops
        working within that time of the run's end."""
        run_id, secret = parse_run_token(token)
        key = RUN_TOKEN_PREFIX + run_id  # never the id of an API token or session
        cached = self._cache.get(key)
        if cached is not None and self.ticks() < cached.until:
            verify(cached.record, secret, self.clock())
            return cached.record, cached.caller
        if self.run_tokens is None:
            raise Unauthenticated("runs' tokens are not accepted here")
        grant = await self.run_tokens.verify(token)
        async with self.uow() as tx:
            user = check_enabled(await tx.users.by_id(grant.user))
        # The roles at submit, but never more than the owner holds now.
        caller = Caller(user.name, grant.roles & user.roles, run_id=run_id)
        record = run_token_record(run_id, grant.run, user.name, secret, self.clock())
        self._remember(key, record, caller, grant.run)
        return record, caller

    def _remember(self, key: str, record: TokenRecord, caller: Caller, run: str = "") -> None:
        if len(self._cache) >= CACHE_SWEEP_AT:
            ticks = self.ticks()
            for stale in [k for k, v in self._cache.items() if v.until <= ticks]:
                del self._cache[stale]
        self._cache[key] = _Cached(record, caller, self.ticks() + self.cache_ttl_s, run)

    async def sign_in(self, token: str, client: str) -> tuple[Caller, str]:
        """The console's sign-in: the API token's caller and a new session token for them.

        Failures are counted per client address and per token id: past ``sign_in_failures`` a
        minute, TooManyFailures until the minute has passed."""
        token_id = _token_id(token)
        self._check_throttle(client, token_id)
        try:
            record, caller = await self._resolve(token)
            if record.kind != API:
                raise Unauthenticated("sign in with an API token (shipyard token create makes one)")
        except Unauthenticated as exc:
            self._count_failure(client, token_id, exc.message)
            raise
        return caller, await self._start_session(caller.user)

    def _check_throttle(self, client: str, token_id: str) -> None:
        now = self.ticks()
        waits = [self._by_address.retry_after(client, now)]
        if token_id:
            waits.append(self._by_token.retry_after(token_id, now))
        wait = max((w for w in waits if w is not None), default=None)
        if wait is not None:
            log.warning("sign-in refused: too many failures (client %s, token id %s)", client,
                        token_id or "-")
            raise TooManyFailures(f"too many failed sign-ins; try again in {wait:.0f} s", wait)

    def _count_failure(self, client: str, token_id: str, reason: str) -> None:
        now = self.ticks()
        self._by_address.fail(client, now)
        if token_id:
            self._by_token.fail(token_id, now)
        log.warning("sign-in failed (client %s, token id %s): %s", client, token_id or "-", reason)

    async def _start_session(self, user: str) -> str:
        now = self.clock()
        record, secret = issue_token(user, self.ids(), now, "console sign-in", SESSION,
                                     self.limits.session_ttl)
        async with self.uow() as tx:
            sessions = [t for t in await self._live_tokens(tx.tokens, user, now) if t.kind == SESSION]
            excess = len(sessions) - self.limits.sessions_per_user + 1
            # The oldest sessions make room: a user is never kept out of the console.
            for old in sorted(sessions, key=lambda t: t.create_time)[:max(excess, 0)]:
                await tx.tokens.remove(old)
                self._cache.pop(old.id, None)
            await tx.tokens.add(record)
        return secret

    async def sign_out(self, session_token: str) -> None:
        """End a console session: its token stops working on every replica (here at once)."""
        try:
            token_id, secret = parse_token(session_token)
        except Unauthenticated:
            return
        async with self.uow() as tx:
            record = await tx.tokens.by_id(token_id)
            if record is None or record.kind != SESSION:
                return
            try:
                verify(record, secret, self.clock())
            except Unauthenticated:
                return
            await tx.tokens.remove(record)
        self._cache.pop(token_id, None)

    # --- users -----------------------------------------------------------------------------

    async def whoami(self, caller: Caller) -> User:
        """The caller's user record."""
        async with self.uow() as tx:
            user = await tx.users.by_id(caller.user)
        if user is None or user.deleted:
            raise NotFound(f"user {caller.user!r} not found")
        return user

    def run_name(self, caller: Caller) -> str:
        """The name of the run whose token made ``caller`` ("" for a person's own token), as run-svc
        vouched for it when the token was checked for this very call."""
        cached = self._cache.get(RUN_TOKEN_PREFIX + caller.run_id) if caller.run_id else None
        return cached.run if cached is not None else ""

    async def roles_of(self, user: str) -> frozenset[str] | None:
        """A user's roles now; None if there is no such user, or they are disabled."""
        async with self.uow() as tx:
            found = await tx.users.by_id(user)
        if found is None or found.disabled or found.deleted:
            return None
        return found.roles

    async def create_user(self, name: str, roles: list[str], display_name: str = "") -> tuple[User, str]:
        """A new user and its first token (operators only; checked by the policy)."""
        name, role_set = check_user(name, roles)
        async with self.uow() as tx:
            existing = await tx.users.by_id(name)
            if existing is not None and existing.deleted:
                raise AlreadyExists(f"a deleted user was named {name!r}; what they made still carries "
                                    "the name, so it is not given to anyone else")
            if existing is not None:
                raise AlreadyExists(f"a user named {name!r} already exists")
            user = await tx.users.add(User(name, role_set, self.clock(), display_name))
            record, secret = issue_token(name, self.ids(), self.clock(), "first token",
                                         ttl=self.limits.lifetime(None))
            await tx.tokens.add(record)
        return user, secret

    async def list_users(self) -> list[User]:
        """Every user (not the deleted ones)."""
        async with self.uow() as tx:
            return [u for u in await tx.users.every() if not u.deleted]

    async def set_roles(self, name: str, roles: list[str]) -> User:
        """Give a user other roles (operators only); every replica sees them within the cache time."""
        role_set = check_roles(roles)
        return await self._change_user(name, lambda u: replace(u, roles=role_set))

    async def set_disabled(self, name: str, disabled: bool) -> User:
        """Disable a user (their tokens stop working) or enable them again (operators only)."""
        return await self._change_user(name, lambda u: replace(u, disabled=disabled))

    async def delete_user(self, name: str) -> int:
        """Delete a user and revoke their tokens; how many were revoked. What they made stays, still
        owned by their name, which is therefore never given to a new user."""
        async with self.uow() as tx:
            user = await self._existing(tx, name)
            keeps_an_operator(await tx.users.every(), user, None)
            tokens = await tx.tokens.of_user(name)
            for token in tokens:
                await tx.tokens.remove(token)
            await tx.users.save(replace(user, disabled=True, deleted=True))
        self._forget(name)
        return len(tokens)

    async def _change_user(self, name: str, change: Callable[[User], User]) -> User:
        async with self.uow() as tx:
            user = await self._existing(tx, name)
            changed = change(user)
            keeps_an_operator(await tx.users.every(), user, changed)
            changed = await tx.users.save(changed)
        self._forget(name)
        return changed

    @staticmethod
    async def _existing(tx: UnitOfWork, name: str) -> User:
        user = await tx.users.by_id(name)
        if user is None or user.deleted:
            raise NotFound(f"user {name!r} not found")
        return user

    def _forget(self, user: str) -> None:
        """Drop this replica's cached tokens of ``user`` (others drop theirs within the cache time)."""
        for token_id in [k for k, v in self._cache.items() if v.caller.user == user]:
            self._cache.pop(token_id, None)

    # --- tokens ----------------------------------------------------------------------------

    async def create_token(self, caller: Caller, description: str = "",
                           ttl: timedelta | None = None) -> tuple[TokenRecord, str]:
        """A new API token for the caller, living ``ttl`` (None: the default) within the limits."""
        description = check_description(description)
        lifetime = self.limits.lifetime(ttl)
        now = self.clock()
        record, secret = issue_token(caller.user, self.ids(), now, description, ttl=lifetime)
        async with self.uow() as tx:
            live = await self._live_tokens(tx.tokens, caller.user, now)
            self.limits.check_room(sum(1 for t in live if t.kind == API))
            record = await tx.tokens.add(record)
        return record, secret

    async def _live_tokens(self, tokens: TokenRepository, user: str, now: datetime) -> list[TokenRecord]:
        """The user's tokens that still work; the expired ones are removed on the way."""
        found = await tokens.of_user(user)
        for expired in (t for t in found if not t.live(now)):
            await tokens.remove(expired)
            self._cache.pop(expired.id, None)
        return [t for t in found if t.live(now)]

    async def list_tokens(self, caller: Caller, user: str = "", all_users: bool = False) -> list[TokenRecord]:
        """The caller's tokens; an operator may list another user's (``user``) or everyone's."""
        if (all_users or (user and user != caller.user)) and not caller.is_operator:
            raise PermissionDenied("you may list only your own tokens")
        async with self.uow() as tx:
            tokens = await tx.tokens.of_user(None if all_users else (user or caller.user))
        return sorted(tokens, key=lambda t: (t.user, t.create_time, t.id))

    async def revoke_token(self, caller: Caller, token_id: str) -> None:
        """Revoke one of the caller's tokens (an operator may revoke anyone's)."""
        async with self.uow() as tx:
            record = await tx.tokens.by_id(token_id)
            if record is None:
                raise NotFound(f"token {token_id!r} not found")
            if record.user != caller.user and not caller.is_operator:
                raise PermissionDenied("you may revoke only your own tokens")
            await tx.tokens.remove(record)
        self._cache.pop(token_id, None)


def _token_id(token: str) -> str:
    """The public id of a presented token, if it has the form of one ("" otherwise): logged and
    counted, never the secret."""
    try:
        token_id = (parse_run_token if token.startswith(RUN_TOKEN_PREFIX) else parse_token)(token)[0]
    except Unauthenticated:
        return ""
    return token_id[:40] if token_id.isalnum() else ""
