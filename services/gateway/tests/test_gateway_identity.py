"""The identity use cases (app/identity.py) as the gateway composes them, on its store adapters over
the in-memory store."""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator

import pytest
from gateway_fakes import World, gateway_world
from shipyard_gateway.adapters.store import TOKENS, USERS
from shipyard_gateway.app.identity import ADMIN, Identity
from shipyard_gateway.domain.identity import ROLES, TOKEN_PREFIX, parse_token

from shipyard.kit.caller import Caller
from shipyard.kit.errors import AlreadyExists, InvalidArgument, NotFound, PermissionDenied, Unauthenticated

WHOAMI = "/shipyard.gateway.v1.IdentityService/WhoAmI"


@pytest.fixture
async def world() -> AsyncIterator[World]:
    world = await gateway_world()
    yield world
    await world.close()


@pytest.fixture
def identity(world: World) -> Identity:
    return world.identity


async def admin_token(identity: Identity) -> str:
    token = await identity.ensure_admin()
    assert token is not None
    return token


def with_secret(token: str, secret: str) -> str:
    token_id, _ = parse_token(token)
    return f"{TOKEN_PREFIX}{token_id}.{secret}"


# --- first start -------------------------------------------------------------------------


async def test_first_start_creates_exactly_one_admin_operator(identity: Identity,
                                                              world: World) -> None:
    token = await admin_token(identity)

    assert token.startswith(TOKEN_PREFIX)
    assert list(await world.users()) == [ADMIN]
    admin = (await world.users())[ADMIN]
    assert admin.roles == frozenset({"operator"})
    assert len(await world.tokens()) == 1
    caller = await identity.authenticate(token, WHOAMI)
    assert caller == Caller(ADMIN, frozenset({"operator"}))


async def test_second_start_creates_nothing(identity: Identity, world: World) -> None:
    await admin_token(identity)
    assert await identity.ensure_admin() is None
    assert len(await world.users()) == 1
    assert len(await world.tokens()) == 1


async def test_no_admin_when_users_exist_already(identity: Identity, world: World) -> None:
    await identity.create_user("alice", ["data-scientist"])
    assert await identity.ensure_admin() is None
    assert list(await world.users()) == ["alice"]


# --- authentication ----------------------------------------------------------------------


async def test_authenticate_accepts_a_users_token(identity: Identity) -> None:
    user, token = await identity.create_user("alice", ["data-scientist", "ml-engineer"])
    caller = await identity.authenticate(token, WHOAMI)
    assert caller == Caller("alice", frozenset({"data-scientist", "ml-engineer"}))
    assert user.roles == caller.roles


async def test_authenticate_rejects_a_wrong_secret(identity: Identity) -> None:
    token = await admin_token(identity)
    with pytest.raises(Unauthenticated):
        await identity.authenticate(with_secret(token, "not-the-secret"), WHOAMI)


async def test_authenticate_rejects_an_unknown_token_id(identity: Identity) -> None:
    token = await admin_token(identity)
    _, secret = parse_token(token)
    with pytest.raises(Unauthenticated):
        await identity.authenticate(f"{TOKEN_PREFIX}nosuchid.{secret}", WHOAMI)


@pytest.mark.parametrize("token", ["", "sy_", "sy_.", "sy_abc", "sy_abc.", "sy_.secret", "abc.def",
                                   "Bearer sy_abc.def", "xy_abc.def"])
async def test_authenticate_rejects_malformed_tokens(identity: Identity, token: str) -> None:
    await admin_token(identity)
    with pytest.raises(Unauthenticated):
        await identity.authenticate(token, WHOAMI)


async def test_authenticate_caches_a_verified_token(identity: Identity,
                                                    world: World) -> None:
    token = await admin_token(identity)
    await identity.authenticate(token, WHOAMI)
    opened = world.transactions
    for _ in range(3):
        await identity.authenticate(token, WHOAMI)
    assert world.transactions == opened


async def test_cached_token_id_still_rejects_a_wrong_secret(identity: Identity,
                                                            world: World) -> None:
    token = await admin_token(identity)
    await identity.authenticate(token, WHOAMI)  # now cached
    opened = world.transactions
    with pytest.raises(Unauthenticated):
        await identity.authenticate(with_secret(token, "guess"), WHOAMI)
    assert world.transactions == opened  # answered from the cache, and still refused
    assert (await identity.authenticate(token, WHOAMI)).user == ADMIN


async def test_a_revoked_token_is_rejected_even_after_it_was_cached(identity: Identity) -> None:
    _, token = await identity.create_user("alice", ["data-scientist"])
    caller = await identity.authenticate(token, WHOAMI)
    token_id, _ = parse_token(token)

    await identity.revoke_token(caller, token_id)

    with pytest.raises(Unauthenticated):
        await identity.authenticate(token, WHOAMI)


async def test_a_token_of_a_vanished_user_is_rejected(identity: Identity,
                                                      world: World) -> None:
    _, token = await identity.create_user("alice", ["data-scientist"])
    async with world.uow() as tx:  # gone from the store behind the gateway's back
        await tx.txn.delete(USERS.name, "alice")
    with pytest.raises(Unauthenticated):
        await identity.authenticate(token, WHOAMI)


# --- tokens at rest ----------------------------------------------------------------------


async def test_tokens_are_stored_hashed_never_in_clear(identity: Identity,
                                                       world: World) -> None:
    tokens = [await admin_token(identity)]
    tokens.append((await identity.create_user("alice", ["data-scientist"]))[1])
    tokens.append((await identity.create_token(Caller("alice", frozenset({"data-scientist"})), "ci"))[1])

    stored = repr(await world.documents(TOKENS)) + repr(await world.documents(USERS))
    stored_tokens = await world.tokens()
    for token in tokens:
        token_id, secret = parse_token(token)
        record = stored_tokens[token_id]
        assert secret not in stored
        assert token not in stored
        assert record.secret_hash == hashlib.sha256(secret.encode()).hexdigest()


async def test_each_token_has_its_own_secret(identity: Identity) -> None:
    caller = Caller("alice", frozenset({"data-scientist"}))
    await identity.create_user("alice", ["data-scientist"])
    secrets = {parse_token((await identity.create_token(caller))[1])[1] for _ in range(5)}
    assert len(secrets) == 5


async def test_create_token_belongs_to_the_caller(identity: Identity) -> None:
    await identity.create_user("alice", ["data-scientist"])
    record, token = await identity.create_token(Caller("alice", frozenset({"data-scientist"})), "laptop")
    assert record.user == "alice"
    assert record.description == "laptop"
    assert token.startswith(f"{TOKEN_PREFIX}{record.id}.")
    assert (await identity.authenticate(token, WHOAMI)).user == "alice"


# --- users -------------------------------------------------------------------------------


async def test_create_user_stores_the_user(identity: Identity) -> None:
    user, _ = await identity.create_user("alice", ["data-scientist"], display_name="Alice A.")
    assert (user.name, user.roles, user.display_name) == ("alice", frozenset({"data-scientist"}), "Alice A.")
    assert await identity.whoami(Caller("alice", frozenset())) == user
    assert [u.name for u in await identity.list_users()] == ["alice"]


@pytest.mark.parametrize("role", ROLES)
async def test_every_known_role_can_be_given(identity: Identity, role: str) -> None:
    user, _ = await identity.create_user("u1", [role])
    assert user.roles == frozenset({role})


@pytest.mark.parametrize("name", [
    pytest.param("", id="empty"),
    pytest.param("Alice", id="uppercase"),
    pytest.param("-alice", id="leading-dash"),
    pytest.param(".alice", id="leading-dot"),
    pytest.param("al ice", id="space"),
    pytest.param("al/ice", id="slash"),
    pytest.param("al:ice", id="colon"),
    pytest.param("a" * 64, id="64-chars"),
    pytest.param("a" * 300, id="300-chars"),
    pytest.param("al\x07ice", id="bell"),
    pytest.param("j\u00f6rg", id="unicode"),
])
async def test_create_user_with_a_bad_name_is_invalid(identity: Identity, world: World,
                                                      name: str) -> None:
    with pytest.raises(InvalidArgument) as caught:
        await identity.create_user(name, ["data-scientist"])
    assert caught.value.field == "user.name"
    assert await world.users() == {}


@pytest.mark.parametrize("name", ["alice\n", "a" * 63 + "\n"], ids=["short", "63-chars"])
async def test_create_user_with_a_trailing_newline_is_invalid(identity: Identity,
                                                              world: World,
                                                              name: str) -> None:
    with pytest.raises(InvalidArgument) as caught:
        await identity.create_user(name, ["data-scientist"])
    assert caught.value.field == "user.name"
    assert await world.users() == {}


@pytest.mark.parametrize("name", ["a", "alice", "a.b_c-d", "0day", "a" * 63])
async def test_create_user_accepts_good_names(identity: Identity, name: str) -> None:
    user, _ = await identity.create_user(name, ["ml-engineer"])
    assert user.name == name


@pytest.mark.parametrize("roles", [[], ["admin"], ["data-scientist", "root"], ["Operator"], [""]])
async def test_create_user_with_bad_roles_is_invalid(identity: Identity, world: World,
                                                     roles: list[str]) -> None:
    with pytest.raises(InvalidArgument) as caught:
        await identity.create_user("alice", roles)
    assert caught.value.field == "user.roles"
    assert await world.users() == {}


async def test_create_duplicate_user_is_already_exists(identity: Identity,
                                                       world: World) -> None:
    await identity.create_user("alice", ["data-scientist"])
    with pytest.raises(AlreadyExists, match="alice"):
        await identity.create_user("alice", ["operator"])
    assert (await world.users())["alice"].roles == frozenset({"data-scientist"})
    assert len(await world.tokens()) == 1


async def test_whoami_of_an_unknown_user_is_not_found(identity: Identity) -> None:
    with pytest.raises(NotFound):
        await identity.whoami(Caller("ghost", frozenset()))


# --- revoking ----------------------------------------------------------------------------


async def test_a_user_may_revoke_their_own_token(identity: Identity, world: World) -> None:
    _, token = await identity.create_user("alice", ["data-scientist"])
    token_id, _ = parse_token(token)
    await identity.revoke_token(Caller("alice", frozenset({"data-scientist"})), token_id)
    assert token_id not in await world.tokens()


async def test_revoking_someone_elses_token_is_denied(identity: Identity,
                                                      world: World) -> None:
    _, alice_token = await identity.create_user("alice", ["data-scientist"])
    await identity.create_user("bob", ["ml-engineer", "data-scientist"])
    token_id, _ = parse_token(alice_token)

    with pytest.raises(PermissionDenied):
        await identity.revoke_token(Caller("bob", frozenset({"ml-engineer", "data-scientist"})), token_id)

    assert token_id in await world.tokens()
    assert (await identity.authenticate(alice_token, WHOAMI)).user == "alice"


async def test_an_operator_may_revoke_anyones_token(identity: Identity) -> None:
    admin = await identity.authenticate(await admin_token(identity), WHOAMI)
    _, alice_token = await identity.create_user("alice", ["data-scientist"])
    await identity.authenticate(alice_token, WHOAMI)  # cached
    await identity.revoke_token(admin, parse_token(alice_token)[0])
    with pytest.raises(Unauthenticated):
        await identity.authenticate(alice_token, WHOAMI)


async def test_revoking_an_unknown_token_is_not_found(identity: Identity) -> None:
    admin = await identity.authenticate(await admin_token(identity), WHOAMI)
    with pytest.raises(NotFound):
        await identity.revoke_token(admin, "nosuchid")
