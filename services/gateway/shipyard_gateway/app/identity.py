"""Identity use cases: the first admin, authentication, users and tokens."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from shipyard.kit.caller import Caller
from shipyard.kit.errors import AlreadyExists, NotFound, PermissionDenied
from shipyard.kit.ids import new_id
from shipyard_gateway.app.ports import DirectoryFactory
from shipyard_gateway.domain.identity import (
    TokenRecord,
    User,
    check_user,
    issue_token,
    parse_token,
    verify,
)

ADMIN = "admin"


def _now() -> datetime:
    return datetime.now(UTC)


@dataclass
class Identity:
    """Users, roles and API tokens."""

    directory: DirectoryFactory
    clock: Callable[[], datetime] = _now
    ids: Callable[[], str] = new_id
    # Authenticated tokens by id: the gateway is the directory's only writer, so revoking
    # a token here is enough to invalidate the cache.
    _cache: dict[str, tuple[TokenRecord, Caller]] = field(default_factory=dict)

    async def ensure_admin(self) -> str | None:
        """On the first start, create the ``admin`` operator; its token, or None if users exist."""
        async with self.directory() as directory:
            if await directory.count_users():
                return None
            await directory.add_user(User(ADMIN, frozenset({"operator"}), self.clock(), "Administrator"))
            record, secret = issue_token(ADMIN, self.ids(), self.clock(), "created by the first start")
            await directory.add_token(record)
            return secret

    async def authenticate(self, token: str) -> Caller:
        """The caller presenting ``token``; Unauthenticated otherwise."""
        token_id, secret = parse_token(token)
        cached = self._cache.get(token_id)
        if cached is not None:
            verify(cached[0], secret)
            return cached[1]
        async with self.directory() as directory:
            record = verify(await directory.token(token_id), secret)
            user = await directory.user(record.user)
        if user is None:
            verify(None, secret)
        assert user is not None
        caller = Caller(user.name, user.roles)
        self._cache[token_id] = (record, caller)
        return caller

    async def whoami(self, caller: Caller) -> User:
        """The caller's user record."""
        async with self.directory() as directory:
            user = await directory.user(caller.user)
        if user is None:
            raise NotFound(f"user {caller.user!r} not found")
        return user

    async def roles_of(self, user: str) -> frozenset[str] | None:
        """A user's roles now; None if there is no such user."""
        async with self.directory() as directory:
            found = await directory.user(user)
        return found.roles if found is not None else None

    async def create_user(self, name: str, roles: list[str], display_name: str = "") -> tuple[User, str]:
        """A new user and its first token (operators only; checked by the policy)."""
        name, role_set = check_user(name, roles)
        async with self.directory() as directory:
            if await directory.user(name) is not None:
                raise AlreadyExists(f"a user named {name!r} already exists")
            user = User(name, role_set, self.clock(), display_name)
            await directory.add_user(user)
            record, secret = issue_token(name, self.ids(), self.clock(), "first token")
            await directory.add_token(record)
        return user, secret

    async def list_users(self) -> list[User]:
        """Every user."""
        async with self.directory() as directory:
            return await directory.users()

    async def create_token(self, caller: Caller, description: str = "") -> tuple[TokenRecord, str]:
        """A new token for the caller."""
        record, secret = issue_token(caller.user, self.ids(), self.clock(), description)
        async with self.directory() as directory:
            await directory.add_token(record)
        return record, secret

    async def revoke_token(self, caller: Caller, token_id: str) -> None:
        """Revoke one of the caller's tokens (an operator may revoke anyone's)."""
        async with self.directory() as directory:
            record = await directory.token(token_id)
            if record is None:
                raise NotFound(f"token {token_id!r} not found")
            if record.user != caller.user and not caller.has("operator"):
                raise PermissionDenied("you may revoke only your own tokens")
            await directory.remove_token(token_id)
        self._cache.pop(token_id, None)
