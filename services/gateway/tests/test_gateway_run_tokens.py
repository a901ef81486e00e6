"""Runs' tokens at the gateway (app/identity.py, adapters/run_tokens.py): run-svc vouches for a
``syr_`` token, the gateway trusts that for the cache time at most, and such a token acts as the
run's owner but may not manage users or tokens."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass

import grpc
import pytest
from gateway_fakes import FakeRunTokens, gateway_units, gateway_world, token_ids
from shipyard_gateway.adapters.run_tokens import GrpcRunTokens
from shipyard_gateway.app.identity import Identity, RunGrant, TooManyFailures
from shipyard_gateway.domain.identity import IDENTITY_SERVICE
from shipyard_gateway.entrypoints.api import HTTP_CLIENT, PublicApi
from shipyard_gateway.settings import GatewaySettings

from shipyard.contracts.gateway.v1 import gateway_pb2
from shipyard.contracts.run.v1 import runs_pb2, runs_pb2_grpc
from shipyard.kit.assertions import CallerAssertions, new_key
from shipyard.kit.caller import Caller
from shipyard.kit.errors import PermissionDenied, Unauthenticated, Unavailable
from shipyard.kit.grpcio import Authentication, assertion_authenticator, caller_of, new_server
from shipyard.kit.testing import FixedSeconds, TickingClock

WHOAMI = f"{IDENTITY_SERVICE}WhoAmI"
LIST_DATASETS = "/shipyard.repo.v1.RepoService/ListRepos"
VERIFY = "/shipyard.run.v1.RunService/VerifyRunToken"
MANAGING = [m.name for m in gateway_pb2.DESCRIPTOR.services_by_name["IdentityService"].methods
            if m.name != "WhoAmI"]
TOKEN = "syr_run1.the-secret"
TTL_S = 5.0
LIMIT = 3


@dataclass
class World:
    identity: Identity
    api: PublicApi
    runs: FakeRunTokens
    ticks: FixedSeconds


@pytest.fixture
async def world() -> AsyncIterator[World]:
    ticks = FixedSeconds()
    runs = FakeRunTokens({TOKEN: RunGrant("alice", frozenset({"data-scientist"}), "train")})
    settings = GatewaySettings(token_cache_ttl_s=TTL_S, bad_tokens_per_minute=LIMIT)
    gateway = await gateway_world(settings, ticks=ticks, run_tokens=runs)
    identity = gateway.identity
    await identity.ensure_admin()
    await identity.create_user("alice", ["data-scientist", "ml-engineer"])
    yield World(identity, gateway.api, runs, ticks)
    await gateway.close()


async def test_a_runs_token_acts_as_its_owner_with_the_roles_at_submit(world: World) -> None:
    caller = await world.api.caller(LIST_DATASETS, f"Bearer {TOKEN}")
    assert caller == Caller("alice", frozenset({"data-scientist"}), run_id="run1")
    assert (await world.api.caller(WHOAMI, f"Bearer {TOKEN}")).user == "alice"


async def test_whoami_with_a_runs_token_names_the_run(world: World) -> None:
    route = world.api.routes[WHOAMI]
    answer = await world.api.call_message(route, f"Bearer {TOKEN}", gateway_pb2.WhoAmIRequest())
    assert isinstance(answer, gateway_pb2.User)
    assert (answer.name, answer.run.id, answer.run.name) == ("alice", "run1", "train")


async def test_whoami_with_a_persons_token_names_no_run(world: World) -> None:
    _, secret = await world.identity.create_token(Caller("alice", frozenset({"data-scientist"})))
    route = world.api.routes[WHOAMI]
    answer = await world.api.call_message(route, f"Bearer {secret}", gateway_pb2.WhoAmIRequest())
    assert isinstance(answer, gateway_pb2.User)
    assert answer.name == "alice" and not answer.HasField("run")


@pytest.mark.parametrize("method", MANAGING)
async def test_a_runs_token_may_not_manage_users_or_tokens(world: World, method: str) -> None:
    with pytest.raises(PermissionDenied, match=f"{method} needs an API token: a run's token"):
        await world.identity.authenticate(TOKEN, f"{IDENTITY_SERVICE}{method}")


async def test_a_runs_token_is_no_console_session_and_cannot_sign_in(world: World) -> None:
    with pytest.raises(Unauthenticated, match="sign-in session"):
        await world.api.caller(WHOAMI, f"Session {TOKEN}")
    with pytest.raises(Unauthenticated, match="sign in with an API token"):
        await world.identity.sign_in(TOKEN, "10.0.0.1")


async def test_a_verified_token_is_trusted_for_the_cache_time_only(world: World) -> None:
    await world.identity.authenticate(TOKEN, LIST_DATASETS)
    await world.identity.authenticate(TOKEN, LIST_DATASETS)
    assert world.runs.asked == 1
    del world.runs.active[TOKEN]  # the run ended
    world.ticks.now += TTL_S
    with pytest.raises(Unauthenticated, match="has ended: its token no longer works"):
        await world.identity.authenticate(TOKEN, LIST_DATASETS)


async def test_a_cached_run_id_still_refuses_another_secret(world: World) -> None:
    await world.identity.authenticate(TOKEN, LIST_DATASETS)
    with pytest.raises(Unauthenticated):
        await world.identity.authenticate("syr_run1.a-guess", LIST_DATASETS)


async def test_the_owner_disabled_or_demoted_takes_the_runs_rights(world: World) -> None:
    await world.identity.set_roles("alice", ["ml-engineer"])
    assert (await world.identity.authenticate(TOKEN, LIST_DATASETS)).roles == frozenset()
    await world.identity.set_disabled("alice", True)
    with pytest.raises(Unauthenticated, match="disabled"):
        await world.identity.authenticate(TOKEN, LIST_DATASETS)


async def test_without_run_svc_wired_runs_tokens_are_refused() -> None:
    identity = Identity(await gateway_units(), clock=TickingClock(), ids=token_ids())
    with pytest.raises(Unauthenticated, match="not accepted"):
        await identity.authenticate(TOKEN, LIST_DATASETS)


async def test_forged_run_tokens_count_as_bad_tokens(world: World) -> None:
    token = HTTP_CLIENT.set("10.0.0.66")
    try:
        for guess in range(LIMIT):
            with pytest.raises(Unauthenticated):
                await world.api.caller(LIST_DATASETS, f"Bearer syr_run{guess}.forged")
        with pytest.raises(TooManyFailures):
            await world.api.caller(LIST_DATASETS, "Bearer syr_run9.forged")
    finally:
        HTTP_CLIENT.reset(token)


async def test_verify_run_token_is_not_a_public_method(world: World) -> None:
    admin_token = await world.identity.create_token(Caller("admin", frozenset({"operator"})))
    with pytest.raises(PermissionDenied, match="not a public method"):
        await world.api.caller(VERIFY, f"Bearer {admin_token[1]}")


# --- the adapter against a fake run-svc over gRPC --------------------------------------------


class FakeRunService(runs_pb2_grpc.RunServiceServicer):
    def __init__(self) -> None:
        self.callers: list[Caller] = []

    async def VerifyRunToken(self, request: runs_pb2.VerifyRunTokenRequest,
                             context: grpc.aio.ServicerContext) -> runs_pb2.VerifyRunTokenResponse:
        self.callers.append(caller_of(context))
        if request.token != TOKEN:
            raise Unauthenticated("the run token is not valid (no run has it)")
        return runs_pb2.VerifyRunTokenResponse(user="alice", roles=["data-scientist"], run="train")


@dataclass
class Backend:
    service: FakeRunService
    channel: grpc.aio.Channel
    key: bytes


@pytest.fixture
async def backend() -> AsyncIterator[Backend]:
    key = new_key()
    server = new_server(tracing=False, authentication=Authentication(
        assertion_authenticator(CallerAssertions(key, "run-svc"))))
    service = FakeRunService()
    runs_pb2_grpc.add_RunServiceServicer_to_server(service, server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{port}")
    try:
        yield Backend(service, channel, key)
    finally:
        await channel.close()
        await server.stop(None)


async def test_the_adapter_asks_run_svc_as_the_gateway(backend: Backend) -> None:
    tokens = GrpcRunTokens(backend.channel, CallerAssertions(backend.key, "gateway"))
    assert await tokens.verify(TOKEN) == RunGrant("alice", frozenset({"data-scientist"}), "train")
    assert backend.service.callers == [Caller("gateway", frozenset())]
    with pytest.raises(Unauthenticated, match="no run has it"):
        await tokens.verify("syr_run1.forged")


async def test_an_unreachable_run_svc_is_unavailable_not_a_bad_token() -> None:
    channel = grpc.aio.insecure_channel("127.0.0.1:1")
    try:
        tokens = GrpcRunTokens(channel, CallerAssertions(new_key(), "gateway"), timeout_s=0.5)
        with pytest.raises(Unavailable, match="run-svc could not check"):
            await tokens.verify(TOKEN)
    finally:
        await channel.close()
