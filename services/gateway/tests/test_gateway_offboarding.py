"""Off-boarding (app/identity.py): disabling, deleting and re-roling users, token lifetimes, counts
and listing, revocation seen by other replicas within the cache time, console sessions and
throttled sign-ins — on two replicas of the gateway as it is composed, over one in-memory store."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, replace
from datetime import timedelta

import pytest
from gateway_fakes import World, gateway_units, gateway_world, token_ids
from google.protobuf.duration_pb2 import Duration
from google.protobuf.message import Message
from shipyard_gateway.app.identity import ADMIN, Identity, TooManyFailures
from shipyard_gateway.domain.identity import API, SESSION, parse_token
from shipyard_gateway.domain.policy import POLICY, authorize
from shipyard_gateway.domain.throttle import MAX_KEYS, FailureWindow
from shipyard_gateway.entrypoints.api import Route
from shipyard_gateway.settings import GatewaySettings

from shipyard.contracts.gateway.v1 import gateway_pb2 as pb
from shipyard.kit.caller import Caller
from shipyard.kit.errors import (
    AlreadyExists,
    FailedPrecondition,
    InvalidArgument,
    NotFound,
    PermissionDenied,
    ResourceExhausted,
    Unauthenticated,
)
from shipyard.kit.testing import FixedSeconds, TickingClock

IDENTITY = "/shipyard.gateway.v1.IdentityService"
WHOAMI = f"{IDENTITY}/WhoAmI"
ALICE = Caller("alice", frozenset({"data-scientist"}))


@dataclass
class Replicas:
    """Two gateway replicas over one store, with the clocks the test moves."""

    one: Identity
    two: Identity
    world: World  # the first replica
    clock: TickingClock
    ticks: FixedSeconds


@pytest.fixture
async def replicas() -> AsyncIterator[Replicas]:
    uow, clock, ticks, ids = await gateway_units(), TickingClock(), FixedSeconds(), token_ids()
    settings = GatewaySettings(token_default_ttl_days=30, token_max_ttl_days=90, token_max_per_user=3,
                               session_ttl_hours=12, token_cache_ttl_s=5.0, sign_in_failures_per_minute=3)
    worlds = [await gateway_world(settings, uow, clock, ids, ticks) for _ in range(2)]
    for world in worlds:
        # How many sessions a user keeps is no setting: lowered here to see the oldest make room.
        world.identity.limits = replace(world.identity.limits, sessions_per_user=2)
    yield Replicas(worlds[0].identity, worlds[1].identity, worlds[0], clock, ticks)
    for world in worlds:
        await world.close()


@pytest.fixture
def identity(replicas: Replicas) -> Identity:
    return replicas.one


async def operator(identity: Identity) -> Caller:
    token = await identity.ensure_admin()
    assert token is not None
    return await identity.authenticate(token, WHOAMI)


# --- the policy ----------------------------------------------------------------------------


@pytest.mark.parametrize("method", ["SetUserRoles", "DisableUser", "EnableUser", "DeleteUser"])
@pytest.mark.parametrize("role", ["data-scientist", "ml-engineer", "production-engineer"])
def test_only_operators_change_users(method: str, role: str) -> None:
    with pytest.raises(PermissionDenied):
        authorize(f"{IDENTITY}/{method}", Caller("someone", frozenset({role})))
    authorize(f"{IDENTITY}/{method}", Caller("someone", frozenset({"operator"})))


def test_everyone_may_list_tokens() -> None:
    authorize(f"{IDENTITY}/ListTokens", ALICE)


# --- disabling, enabling, deleting -------------------------------------------------------------


async def test_a_disabled_users_cached_token_is_refused_at_once(identity: Identity) -> None:
    await operator(identity)
    _, token = await identity.create_user("alice", ["data-scientist"])
    await identity.authenticate(token, WHOAMI)  # cached

    await identity.set_disabled("alice", True)

    with pytest.raises(Unauthenticated, match="disabled"):
        await identity.authenticate(token, WHOAMI)
    assert await identity.roles_of("alice") is None


async def test_an_enabled_user_works_again(identity: Identity) -> None:
    await operator(identity)
    _, token = await identity.create_user("alice", ["data-scientist"])
    await identity.set_disabled("alice", True)
    user = await identity.set_disabled("alice", False)
    assert not user.disabled
    assert (await identity.authenticate(token, WHOAMI)).user == "alice"


async def test_deleting_a_user_revokes_their_tokens_and_keeps_the_name(identity: Identity,
                                                                       replicas: Replicas) -> None:
    await operator(identity)
    _, token = await identity.create_user("alice", ["data-scientist"])
    await identity.create_token(ALICE, "ci")
    await identity.authenticate(token, WHOAMI)

    assert await identity.delete_user("alice") == 2

    with pytest.raises(Unauthenticated):
        await identity.authenticate(token, WHOAMI)
    assert not [t for t in (await replicas.world.tokens()).values() if t.user == "alice"]
    assert "alice" not in [u.name for u in await identity.list_users()]
    with pytest.raises(AlreadyExists, match="deleted"):
        await identity.create_user("alice", ["operator"])
    with pytest.raises(NotFound):
        await identity.set_disabled("alice", False)


@pytest.mark.parametrize("change", ["disable", "delete", "demote"])
async def test_the_last_operator_cannot_be_removed(identity: Identity, change: str) -> None:
    await operator(identity)
    with pytest.raises(FailedPrecondition, match="last enabled operator"):
        if change == "disable":
            await identity.set_disabled(ADMIN, True)
        elif change == "delete":
            await identity.delete_user(ADMIN)
        else:
            await identity.set_roles(ADMIN, ["data-scientist"])
    assert (await identity.whoami(Caller(ADMIN, frozenset()))).active_operator


async def test_an_operator_may_go_when_another_remains(identity: Identity) -> None:
    await operator(identity)
    await identity.create_user("olga", ["operator"])
    await identity.set_disabled(ADMIN, True)
    with pytest.raises(FailedPrecondition):
        await identity.delete_user("olga")  # the disabled admin does not count


async def test_unknown_users_are_not_found(identity: Identity) -> None:
    await operator(identity)
    for change in (identity.set_disabled("ghost", True), identity.set_roles("ghost", ["operator"]),
                   identity.delete_user("ghost")):
        with pytest.raises(NotFound, match="ghost"):
            await change


# --- roles -----------------------------------------------------------------------------------


async def test_new_roles_apply_to_the_next_call(identity: Identity) -> None:
    await operator(identity)
    _, token = await identity.create_user("alice", ["data-scientist"])
    await identity.authenticate(token, WHOAMI)

    await identity.set_roles("alice", ["production-engineer", "ml-engineer"])

    roles = (await identity.authenticate(token, WHOAMI)).roles
    assert roles == frozenset({"production-engineer", "ml-engineer"})


@pytest.mark.parametrize("roles", [[], ["root"]])
async def test_bad_roles_are_invalid(identity: Identity, roles: list[str]) -> None:
    await operator(identity)
    await identity.create_user("alice", ["data-scientist"])
    with pytest.raises(InvalidArgument, match=r"user\.roles"):
        await identity.set_roles("alice", roles)


# --- every replica sees changes within the cache time -----------------------------------------


async def test_a_token_revoked_on_one_replica_stops_on_the_other_within_the_cache_time(
        replicas: Replicas) -> None:
    await operator(replicas.one)
    _, token = await replicas.one.create_user("alice", ["data-scientist"])
    await replicas.two.authenticate(token, WHOAMI)  # replica two caches it

    await replicas.one.revoke_token(ALICE, parse_token(token)[0])
    assert (await replicas.two.authenticate(token, WHOAMI)).user == "alice"  # still within the cache time

    replicas.ticks.now += 5.0
    with pytest.raises(Unauthenticated):
        await replicas.two.authenticate(token, WHOAMI)


async def test_a_user_disabled_on_one_replica_is_refused_by_the_other_after_the_cache_time(
        replicas: Replicas) -> None:
    await operator(replicas.one)
    _, token = await replicas.one.create_user("alice", ["data-scientist"])
    await replicas.two.authenticate(token, WHOAMI)
    await replicas.one.set_disabled("alice", True)
    replicas.ticks.now += 5.0
    with pytest.raises(Unauthenticated, match="disabled"):
        await replicas.two.authenticate(token, WHOAMI)


async def test_the_cache_forgets_tokens_past_their_time(replicas: Replicas,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("shipyard_gateway.app.identity.CACHE_SWEEP_AT", 2)
    identity = replicas.one
    _, first = await identity.create_user("alice", ["data-scientist"])
    tokens = [first, *[(await identity.create_token(ALICE))[1] for _ in range(2)]]
    for token in tokens[:2]:
        await identity.authenticate(token, WHOAMI)
    replicas.ticks.now += 5.0
    await identity.authenticate(tokens[2], WHOAMI)
    assert list(identity._cache) == [parse_token(tokens[2])[0]]


# --- lifetimes and counts ---------------------------------------------------------------------


async def test_tokens_get_the_default_lifetime(identity: Identity, replicas: Replicas) -> None:
    record, _ = await identity.create_token(ALICE)
    assert record.kind == API
    assert record.expire_time == record.create_time + timedelta(days=30)
    _, first = await identity.create_user("bob", ["ml-engineer"])
    stored = (await replicas.world.tokens())[parse_token(first)[0]]
    assert stored.expire_time == stored.create_time + timedelta(days=30)


async def test_a_token_may_ask_for_a_lifetime_up_to_the_cap(identity: Identity) -> None:
    record, _ = await identity.create_token(ALICE, ttl=timedelta(days=90))
    assert record.expire_time == record.create_time + timedelta(days=90)


@pytest.mark.parametrize("ttl", [timedelta(days=90, seconds=1), timedelta(days=3650), timedelta(0),
                                 timedelta(seconds=-1)])
async def test_a_lifetime_beyond_the_cap_or_not_positive_is_invalid(identity: Identity, replicas: Replicas,
                                                                    ttl: timedelta) -> None:
    with pytest.raises(InvalidArgument, match="ttl"):
        await identity.create_token(ALICE, ttl=ttl)
    assert await replicas.world.tokens() == {}


async def test_an_expired_token_is_refused_even_from_the_cache(identity: Identity,
                                                               replicas: Replicas) -> None:
    _, token = await identity.create_token(ALICE, ttl=timedelta(hours=1))
    await identity.create_user("alice", ["data-scientist"])
    await identity.authenticate(token, WHOAMI)
    replicas.clock.now += timedelta(hours=1)
    with pytest.raises(Unauthenticated, match="token expired"):
        await identity.authenticate(token, WHOAMI)


async def test_the_first_admins_token_never_expires(identity: Identity, replicas: Replicas) -> None:
    token = await identity.ensure_admin()
    assert token is not None
    replicas.clock.now += timedelta(days=3650)
    assert (await identity.authenticate(token, WHOAMI)).user == ADMIN


async def test_a_user_may_hold_only_so_many_live_tokens(identity: Identity, replicas: Replicas) -> None:
    for _ in range(3):
        await identity.create_token(ALICE)
    with pytest.raises(ResourceExhausted, match="revoke"):
        await identity.create_token(ALICE)
    assert len(await replicas.world.tokens()) == 3


async def test_expired_tokens_make_room_and_are_removed(identity: Identity, replicas: Replicas) -> None:
    for _ in range(3):
        await identity.create_token(ALICE, ttl=timedelta(hours=1))
    replicas.clock.now += timedelta(hours=2)
    record, _ = await identity.create_token(ALICE)
    assert list(await replicas.world.tokens()) == [record.id]


@pytest.mark.parametrize("description", ["x" * 201, "bell\x07", "line\nbreak"])
async def test_a_bad_description_is_invalid(identity: Identity, description: str) -> None:
    with pytest.raises(InvalidArgument, match="description"):
        await identity.create_token(ALICE, description)


# --- listing --------------------------------------------------------------------------------


async def test_a_user_lists_their_own_tokens_only(identity: Identity) -> None:
    mine, _ = await identity.create_token(ALICE, "laptop")
    await identity.create_token(Caller("bob", frozenset({"ml-engineer"})), "bobs")
    listed = await identity.list_tokens(ALICE)
    assert [(t.id, t.description) for t in listed] == [(mine.id, "laptop")]
    for other in ({"user": "bob"}, {"all_users": True}):
        with pytest.raises(PermissionDenied):
            await identity.list_tokens(ALICE, **other)  # type: ignore[arg-type]


async def test_an_operator_lists_anyones_tokens(identity: Identity) -> None:
    admin = await operator(identity)
    await identity.create_token(ALICE)
    assert {t.user for t in await identity.list_tokens(admin, "alice")} == {"alice"}
    assert {t.user for t in await identity.list_tokens(admin, all_users=True)} == {"alice", ADMIN}


async def test_last_use_is_recorded_at_most_once_a_minute(identity: Identity, replicas: Replicas) -> None:
    await identity.create_user("alice", ["data-scientist"])
    record, token = await identity.create_token(ALICE)
    assert record.last_use_time is None
    await identity.authenticate(token, WHOAMI)
    first = (await replicas.world.tokens())[record.id].last_use_time
    assert first is not None
    replicas.ticks.now += 5.0
    await identity.authenticate(token, WHOAMI)
    assert (await replicas.world.tokens())[record.id].last_use_time == first


# --- console sessions -------------------------------------------------------------------------


async def test_sign_in_makes_a_session_token_that_sign_out_revokes(identity: Identity,
                                                                   replicas: Replicas) -> None:
    await identity.create_user("alice", ["data-scientist"])
    _, api_token = await identity.create_token(ALICE)

    caller, session = await identity.sign_in(api_token, "10.0.0.1")

    assert caller == ALICE and session != api_token
    record = (await replicas.world.tokens())[parse_token(session)[0]]
    assert record.kind == SESSION and record.expire_time == record.create_time + timedelta(hours=12)
    assert (await identity.authenticate(session, WHOAMI)).user == "alice"
    await identity.sign_out(session)
    with pytest.raises(Unauthenticated):
        await identity.authenticate(session, WHOAMI)
    assert (await identity.authenticate(api_token, WHOAMI)).user == "alice"


async def test_sign_out_with_an_api_token_or_garbage_revokes_nothing(identity: Identity) -> None:
    await identity.create_user("alice", ["data-scientist"])
    _, api_token = await identity.create_token(ALICE)
    for cookie in (api_token, "garbage", "sy_nosuch.secret"):
        await identity.sign_out(cookie)
    assert (await identity.authenticate(api_token, WHOAMI)).user == "alice"


async def test_a_session_token_cannot_sign_in(identity: Identity) -> None:
    await identity.create_user("alice", ["data-scientist"])
    _, api_token = await identity.create_token(ALICE)
    _, session = await identity.sign_in(api_token, "10.0.0.1")
    with pytest.raises(Unauthenticated, match="API token"):
        await identity.sign_in(session, "10.0.0.1")


async def test_old_sessions_make_room_for_new_ones(identity: Identity, replicas: Replicas) -> None:
    await identity.create_user("alice", ["data-scientist"])
    _, api_token = await identity.create_token(ALICE)
    sessions = [(await identity.sign_in(api_token, "10.0.0.1"))[1] for _ in range(3)]
    with pytest.raises(Unauthenticated):
        await identity.authenticate(sessions[0], WHOAMI)
    for session in sessions[1:]:
        assert (await identity.authenticate(session, WHOAMI)).user == "alice"


async def test_a_disabled_user_cannot_sign_in(identity: Identity) -> None:
    await operator(identity)
    _, token = await identity.create_user("alice", ["data-scientist"])
    await identity.set_disabled("alice", True)
    with pytest.raises(Unauthenticated, match="disabled"):
        await identity.sign_in(token, "10.0.0.1")


async def test_failed_sign_ins_from_one_address_are_throttled(identity: Identity,
                                                              caplog: pytest.LogCaptureFixture) -> None:
    _, token = await identity.create_user("alice", ["data-scientist"])
    for attempt in range(3):
        with pytest.raises(Unauthenticated):
            await identity.sign_in(f"sy_guess{attempt}.wrong-secret", "10.0.0.9")
    with pytest.raises(TooManyFailures) as refused:
        await identity.sign_in(token, "10.0.0.9")  # even the right token, from that address
    assert 0 < refused.value.retry_after_s <= 60
    assert (await identity.sign_in(token, "10.0.0.1"))[0].user == "alice"  # other addresses sign in
    assert "10.0.0.9" in caplog.text and "guess0" in caplog.text and "wrong-secret" not in caplog.text


async def test_failed_sign_ins_with_one_token_id_lock_it_out_of_sign_in(identity: Identity,
                                                                        replicas: Replicas) -> None:
    _, token = await identity.create_user("alice", ["data-scientist"])
    token_id, _ = parse_token(token)
    for address in ("10.0.0.1", "10.0.0.2", "10.0.0.3"):
        with pytest.raises(Unauthenticated):
            await identity.sign_in(f"sy_{token_id}.wrong", address)
    with pytest.raises(TooManyFailures):
        await identity.sign_in(token, "10.0.0.4")
    assert (await identity.authenticate(token, WHOAMI)).user == "alice"  # the API is not locked out
    replicas.ticks.now += 60.0
    assert (await identity.sign_in(token, "10.0.0.4"))[0].user == "alice"


# --- the failure window ---------------------------------------------------------------------


def test_a_window_lets_a_key_try_again_once_its_failures_age_out() -> None:
    window = FailureWindow(limit=2, window_s=60.0)
    window.fail("k", 0.0)
    assert window.retry_after("k", 1.0) is None
    window.fail("k", 30.0)
    assert window.retry_after("k", 31.0) == pytest.approx(29.0)
    assert window.retry_after("k", 60.0) is None
    assert window.retry_after("other", 31.0) is None


def test_a_window_keeps_a_bounded_number_of_keys() -> None:
    window = FailureWindow(limit=1, window_s=60.0)
    for n in range(MAX_KEYS + 5):
        window.fail(f"k{n}", float(n) / 1000)
    assert len(window._failures) <= MAX_KEYS
    assert window.retry_after(f"k{MAX_KEYS + 4}", 11.0) is not None


# --- the contract's methods, as the gateway answers them ----------------------------------------


def identity_routes(world: World) -> dict[str, Route]:
    return {method: route for method, route in world.api.routes.items() if method.startswith(IDENTITY)}


def test_every_identity_method_has_a_policy_entry_and_a_route(replicas: Replicas) -> None:
    service = pb.DESCRIPTOR.services_by_name["IdentityService"]
    methods = {f"/{service.full_name}/{m.name}" for m in service.methods}
    assert methods <= set(POLICY)
    assert methods == set(identity_routes(replicas.world))


async def call(world: World, method: str, caller: Caller, request: Message) -> Message:
    route = identity_routes(world)[f"{IDENTITY}/{method}"]
    assert route.local is not None and isinstance(request, route.request)
    return await route.local(caller, request)


async def test_tokens_through_the_contract(identity: Identity, replicas: Replicas) -> None:
    ttl = Duration()
    ttl.FromTimedelta(timedelta(days=7))
    made = await call(replicas.world, "CreateToken", ALICE, pb.CreateTokenRequest(description="ci", ttl=ttl))
    assert isinstance(made, pb.CreateTokenResponse)
    token = made.token
    assert token.kind == pb.TOKEN_KIND_API and token.description == "ci"
    assert token.expire_time.ToDatetime() - token.create_time.ToDatetime() == timedelta(days=7)
    assert not token.HasField("last_use_time")

    listed = await call(replicas.world, "ListTokens", ALICE, pb.ListTokensRequest())
    assert isinstance(listed, pb.ListTokensResponse)
    assert [t.id for t in listed.tokens] == [token.id]
    assert made.secret not in str(listed)
    await call(replicas.world, "RevokeToken", ALICE, pb.RevokeTokenRequest(id=token.id))
    assert not (await identity.list_tokens(ALICE))


async def test_users_through_the_contract(identity: Identity, replicas: Replicas) -> None:
    admin = await operator(identity)
    await identity.create_user("alice", ["data-scientist"])
    roles = await call(replicas.world, "SetUserRoles", admin,
                       pb.SetUserRolesRequest(name="alice", roles=[pb.ROLE_ML_ENGINEER]))
    assert isinstance(roles, pb.User) and list(roles.roles) == [pb.ROLE_ML_ENGINEER]
    disabled = await call(replicas.world, "DisableUser", admin, pb.DisableUserRequest(name="alice"))
    assert isinstance(disabled, pb.User) and disabled.disabled
    enabled = await call(replicas.world, "EnableUser", admin, pb.EnableUserRequest(name="alice"))
    assert isinstance(enabled, pb.User) and not enabled.disabled
    deleted = await call(replicas.world, "DeleteUser", admin, pb.DeleteUserRequest(name="alice"))
    assert isinstance(deleted, pb.DeleteUserResponse) and deleted.revoked_tokens == 1
    with pytest.raises(InvalidArgument, match="unknown role"):
        await call(replicas.world, "SetUserRoles", admin, pb.SetUserRolesRequest(name="admin", roles=[99]))
