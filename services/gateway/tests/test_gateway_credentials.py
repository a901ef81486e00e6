"""What each kind of credential may do, and what bad ones cost: a console session cannot manage
users or tokens, the console's cookie takes only a session, and bad bearer tokens are logged and
throttled per client address (app/identity.py, entrypoints/api.py, entrypoints/grpc_edge.py)."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass

import grpc
import pytest
from gateway_fakes import gateway_world
from shipyard_gateway.app.identity import Identity, TooManyFailures
from shipyard_gateway.domain.identity import IDENTITY_SERVICE
from shipyard_gateway.entrypoints.api import HTTP_CLIENT, PublicApi
from shipyard_gateway.entrypoints.grpc_edge import client_address, refusals
from shipyard_gateway.settings import GatewaySettings

from shipyard.contracts.gateway.v1 import gateway_pb2 as pb
from shipyard.kit.caller import Caller
from shipyard.kit.errors import PermissionDenied, Unauthenticated
from shipyard.kit.grpcio import Authentication, caller_of, new_server
from shipyard.kit.testing import FixedSeconds

WHOAMI = f"{IDENTITY_SERVICE}WhoAmI"
CREATE_TOKEN = f"{IDENTITY_SERVICE}CreateToken"
LIST_PROJECTS = "/shipyard.repo.v1.ProjectService/ListProjects"
MANAGING = [m.name for m in pb.DESCRIPTOR.services_by_name["IdentityService"].methods if m.name != "WhoAmI"]
LIMIT = 3
ATTACKER = "10.0.0.66"
ALICE = Caller("alice", frozenset({"data-scientist"}))


@dataclass
class World:
    identity: Identity
    api: PublicApi
    ticks: FixedSeconds
    api_token: str  # alice's
    session: str  # alice's console session


@pytest.fixture
async def world() -> AsyncIterator[World]:
    ticks = FixedSeconds()
    gateway = await gateway_world(GatewaySettings(bad_tokens_per_minute=LIMIT), ticks=ticks)
    identity = gateway.identity
    await identity.ensure_admin()
    _, api_token = await identity.create_user("alice", ["data-scientist"])
    _, session = await identity.sign_in(api_token, "10.0.0.1")
    yield World(identity, gateway.api, ticks, api_token, session)
    await gateway.close()


# --- what a console session may do ------------------------------------------------------------


@pytest.mark.parametrize("method", MANAGING)
async def test_a_session_may_not_manage_users_or_tokens(world: World, method: str) -> None:
    with pytest.raises(PermissionDenied, match=f"{method} needs an API token: a console sign-in session"):
        await world.identity.authenticate(world.session, f"{IDENTITY_SERVICE}{method}")


async def test_a_session_does_what_the_console_does(world: World) -> None:
    assert (await world.api.caller(WHOAMI, f"Bearer {world.session}")).user == "alice"
    assert (await world.api.caller(LIST_PROJECTS, f"Bearer {world.session}")).user == "alice"
    with pytest.raises(PermissionDenied, match="CreateToken needs an API token"):
        await world.api.caller(CREATE_TOKEN, f"Bearer {world.session}")


async def test_an_api_token_may_make_tokens(world: World) -> None:
    assert (await world.api.caller(CREATE_TOKEN, f"Bearer {world.api_token}")).user == "alice"


async def test_the_consoles_cookie_takes_a_session_not_an_api_token(world: World) -> None:
    assert (await world.api.caller(WHOAMI, f"Session {world.session}")).user == "alice"
    with pytest.raises(Unauthenticated, match="sign-in session, not an API token"):
        await world.api.caller(WHOAMI, f"Session {world.api_token}")


# --- bad bearer tokens ------------------------------------------------------------------------


async def _from(world: World, client: str, authorization: str) -> Caller:
    """A call of the HTTP edge from ``client``."""
    token = HTTP_CLIENT.set(client)
    try:
        return await world.api.caller(LIST_PROJECTS, authorization)
    finally:
        HTTP_CLIENT.reset(token)


async def test_bad_tokens_from_one_address_are_throttled_but_good_ones_pass(
        world: World, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING)
    for guess in range(LIMIT):
        with pytest.raises(Unauthenticated) as failed:
            await _from(world, ATTACKER, f"Bearer sy_guess{guess}.not-the-secret")
        assert not isinstance(failed.value, TooManyFailures)
    with pytest.raises(TooManyFailures) as throttled:
        await _from(world, ATTACKER, "Bearer sy_guess9.not-the-secret")
    assert 0 < throttled.value.retry_after_s <= 60
    assert "too many failed authentications from 10.0.0.66" in throttled.value.message
    with pytest.raises(TooManyFailures):
        await _from(world, ATTACKER, "Bearer garbage")

    assert (await _from(world, ATTACKER, f"Bearer {world.api_token}")).user == "alice"  # not locked out
    with pytest.raises(Unauthenticated) as elsewhere:
        await _from(world, "10.0.0.1", "Bearer sy_typo.secret")
    assert not isinstance(elsewhere.value, TooManyFailures)  # another address is not held back

    failures = [r.getMessage() for r in caplog.records if "authentication failed" in r.getMessage()]
    assert failures[0].startswith("authentication failed (client 10.0.0.66, token id guess0)")
    assert len([f for f in failures if ATTACKER in f]) == LIMIT  # then one line, not one a failure
    assert sum("10.0.0.66: 3 failed authentications" in r.getMessage() for r in caplog.records) == 1
    assert "not-the-secret" not in caplog.text


async def test_a_throttled_address_may_fail_again_once_its_failures_age_out(world: World) -> None:
    for guess in range(LIMIT):
        with pytest.raises(Unauthenticated):
            await _from(world, ATTACKER, f"Bearer sy_guess{guess}.x")
    with pytest.raises(TooManyFailures):
        await _from(world, ATTACKER, "Bearer sy_guess.x")
    world.ticks.now += 61.0
    with pytest.raises(Unauthenticated) as again:
        await _from(world, ATTACKER, "Bearer sy_guess.x")
    assert not isinstance(again.value, TooManyFailures)


async def test_what_is_not_a_bad_bearer_token_is_not_counted(world: World) -> None:
    for _ in range(LIMIT + 1):
        with pytest.raises(Unauthenticated):
            await _from(world, ATTACKER, "")  # no token at all
        with pytest.raises(Unauthenticated):
            await _from(world, ATTACKER, "Basic dXNlcjpwdw==")
        with pytest.raises(Unauthenticated):
            await _from(world, ATTACKER, f"Session {world.api_token}")  # the console's cookie
    with pytest.raises(Unauthenticated) as first:
        await _from(world, ATTACKER, "Bearer sy_guess.x")
    assert not isinstance(first.value, TooManyFailures)


@pytest.mark.parametrize(("peer", "address"), [
    ("ipv4:10.0.0.7:51234", "10.0.0.7"),
    ("ipv6:[::1]:51234", "::1"),
    ("ipv6:%5B::1%5D:51234", "::1"),
    ("ipv6:[fe80::1%25eth0]:1", "fe80::1%eth0"),
    ("unix:/run/shipyard.sock", "unix:/run/shipyard.sock"),
])
def test_the_client_address_of_a_grpc_peer(peer: str, address: str) -> None:
    assert client_address(peer) == address


# --- the gRPC edge ------------------------------------------------------------------------------


class WhoHandler(grpc.GenericRpcHandler):
    def service(self, details: grpc.HandlerCallDetails) -> grpc.RpcMethodHandler | None:
        async def who(request: bytes, context: grpc.aio.ServicerContext) -> bytes:
            return caller_of(context).user.encode()
        return grpc.unary_unary_rpc_method_handler(who) if details.method == LIST_PROJECTS else None


@pytest.fixture
async def edge(world: World) -> AsyncIterator[grpc.aio.UnaryUnaryMultiCallable]:
    """The gateway's public gRPC edge as bootstrap wires its authentication."""
    authentication = Authentication(lambda method, metadata: world.api.authenticate(method, metadata))
    authentication.use(world.api.authenticate, refused=refusals(world.api))
    server = new_server(tracing=False, authentication=authentication)
    server.add_generic_rpc_handlers([WhoHandler()])
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{port}")
    try:
        yield channel.unary_unary(LIST_PROJECTS)
    finally:
        await channel.close()
        await server.stop(None)


async def _code(call: grpc.aio.UnaryUnaryMultiCallable, token: str) -> grpc.StatusCode:
    try:
        await call(b"", metadata=(("authorization", f"Bearer {token}"),), timeout=10)
    except grpc.aio.AioRpcError as exc:
        return exc.code()
    return grpc.StatusCode.OK


async def test_the_grpc_edge_throttles_bad_tokens_by_the_peers_address(
        world: World, edge: grpc.aio.UnaryUnaryMultiCallable) -> None:
    codes = [await _code(edge, f"sy_guess{n}.x") for n in range(LIMIT + 1)]
    assert codes == [grpc.StatusCode.UNAUTHENTICATED] * LIMIT + [grpc.StatusCode.RESOURCE_EXHAUSTED]
    assert await _code(edge, world.api_token) == grpc.StatusCode.OK
