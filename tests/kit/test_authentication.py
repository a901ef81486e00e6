"""The one authentication of every gRPC server (shipyard.kit.grpcio.Authentication, via new_server):
the caller is verified from metadata before the request is read, and caller_of believes nothing else."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from shipyard.kit.assertions import LIFETIME_S, SKEW_S, CallerAssertions, new_key
from shipyard.kit.caller import Caller
from shipyard.kit.errors import PermissionDenied, Unauthenticated
from shipyard.kit.grpcio import (
    LARGEST_MESSAGE,
    Authentication,
    Health,
    Metadata,
    assertion_authenticator,
    caller_of,
    enable_reflection,
    new_server,
)

WHO = "/test.Who/Ask"
WHO_STREAM = "/test.Who/Watch"
KEY = new_key()
ALICE = Caller("alice", frozenset({"data-scientist"}))


class WhoHandler(grpc.GenericRpcHandler):
    """Answers who called; counts the request bodies it was given to parse."""

    def __init__(self) -> None:
        self.parsed = 0

    def _parse(self, raw: bytes) -> bytes:
        self.parsed += 1
        return raw

    def service(self, details: grpc.HandlerCallDetails) -> grpc.RpcMethodHandler | None:
        async def who(request: bytes, context: grpc.aio.ServicerContext) -> bytes:
            caller = caller_of(context)
            return f"{caller.user}:{','.join(sorted(caller.roles))}".encode()

        async def who_again(request: bytes, context: grpc.aio.ServicerContext) -> AsyncIterator[bytes]:
            for _ in range(3):
                yield await who(request, context)

        if details.method == WHO:
            return grpc.unary_unary_rpc_method_handler(who, request_deserializer=self._parse)
        if details.method == WHO_STREAM:
            return grpc.unary_stream_rpc_method_handler(who_again, request_deserializer=self._parse)
        return None


Served = tuple[grpc.aio.Channel, "WhoHandler"]


@pytest.fixture
async def served() -> AsyncIterator[Served]:
    """repo-svc's server, as kit.service builds it, with a method that reports its caller."""
    server = new_server(tracing=False, authentication=Authentication(
        assertion_authenticator(CallerAssertions(KEY, "repo"))))
    handler = WhoHandler()
    server.add_generic_rpc_handlers([handler])
    health = Health(server)
    await health.set(True)
    enable_reflection(server, [])
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{port}", options=[
        ("grpc.max_send_message_length", -1)])
    try:
        yield channel, handler
    finally:
        await channel.close()
        await server.stop(None)


async def ask(channel: grpc.aio.Channel, metadata: Metadata, body: bytes = b"") -> bytes:
    reply: bytes = await channel.unary_unary(WHO)(body, metadata=tuple(metadata), timeout=10)
    return reply


async def refused(channel: grpc.aio.Channel, metadata: Metadata, body: bytes = b"") -> grpc.aio.AioRpcError:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await ask(channel, metadata, body)
    return caught.value


async def test_a_signed_caller_reaches_the_servicer(served: Served) -> None:
    channel, _ = served
    gateway = CallerAssertions(KEY, "gateway")
    assert await ask(channel, gateway.metadata(ALICE, "repo")) == b"alice:data-scientist"


async def test_a_stream_knows_its_caller_throughout(served: Served) -> None:
    channel, handler = served
    signed = CallerAssertions(KEY, "gateway").metadata(ALICE, "repo")
    answers = [a async for a in channel.unary_stream(WHO_STREAM)(b"", metadata=signed, timeout=10)]
    assert answers == [b"alice:data-scientist"] * 3
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        async for _ in channel.unary_stream(WHO_STREAM)(b"", timeout=10):
            pass
    assert caught.value.code() == grpc.StatusCode.UNAUTHENTICATED
    assert handler.parsed == 1


async def test_forged_identity_metadata_is_refused_unread(served: Served) -> None:
    """The attack of issue 14: any process that reaches the port claims to be an operator."""
    channel, handler = served
    forged = (("x-shipyard-user", "admin"), ("x-shipyard-roles", "operator"))
    error = await refused(channel, forged, b"x" * 1024)
    assert error.code() == grpc.StatusCode.UNAUTHENTICATED
    assert "no caller assertion" in (error.details() or "")
    assert handler.parsed == 0


async def test_identity_metadata_beside_an_assertion_counts_for_nothing(
        served: Served) -> None:
    channel, _ = served
    metadata = (("x-shipyard-user", "admin"), ("x-shipyard-roles", "operator"),
                *CallerAssertions(KEY, "gateway").metadata(ALICE, "repo"))
    assert await ask(channel, metadata) == b"alice:data-scientist"


@pytest.mark.parametrize(("signer", "audience", "why"), [
    (CallerAssertions(new_key(), "gateway"), "repo", "signature is not valid"),
    (CallerAssertions(KEY, "gateway"), "lineage", "for 'lineage', not 'repo'"),
    (CallerAssertions(KEY, "gateway", clock=lambda: time.time() - LIFETIME_S - SKEW_S - 1), "repo",
     "expired"),
])
async def test_a_bad_assertion_is_refused_naming_why(served: Served, signer: CallerAssertions, audience: str,
                                                     why: str) -> None:
    channel, handler = served
    error = await refused(channel, signer.metadata(ALICE, audience))
    assert error.code() == grpc.StatusCode.UNAUTHENTICATED
    assert why in (error.details() or "")
    assert handler.parsed == 0


async def test_an_unauthenticated_huge_message_is_refused(served: Served) -> None:
    channel, handler = served
    error = await refused(channel, (), b"\0" * (LARGEST_MESSAGE * 2))
    assert error.code() in (grpc.StatusCode.UNAUTHENTICATED, grpc.StatusCode.RESOURCE_EXHAUSTED)
    assert handler.parsed == 0


async def test_even_a_signed_caller_cannot_send_past_the_limit(
        served: Served) -> None:
    channel, handler = served
    error = await refused(channel, CallerAssertions(KEY, "gateway").metadata(ALICE, "repo"),
                          b"\0" * (LARGEST_MESSAGE + 1))
    assert error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert handler.parsed == 0


async def test_health_answers_anyone(served: Served) -> None:
    channel, _ = served
    reply = await health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=10)
    assert reply.status == health_pb2.HealthCheckResponse.SERVING


async def test_reflection_needs_a_caller(served: Served) -> None:
    channel, _ = served
    stub = reflection_pb2_grpc.ServerReflectionStub(channel)
    request = reflection_pb2.ServerReflectionRequest(list_services="")
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        async for _ in stub.ServerReflectionInfo(iter([request]), timeout=10):
            pass
    assert caught.value.code() == grpc.StatusCode.UNAUTHENTICATED
    signed = CallerAssertions(KEY, "gateway").metadata(ALICE, "repo")
    answers = [a async for a in stub.ServerReflectionInfo(iter([request]), metadata=signed, timeout=10)]
    assert "grpc.health.v1.Health" in {s.name for s in answers[0].list_services_response.service}


async def test_an_edge_may_authenticate_otherwise() -> None:
    """The gateway's public edge: its own authenticator (bearer tokens), its own refusals."""
    server_auth = Authentication(assertion_authenticator(CallerAssertions(KEY, "repo")))

    async def bearer(method: str, metadata: Metadata) -> Caller:
        if dict(metadata).get("authorization") != "Bearer good":
            raise PermissionDenied(f"{method}: not you")
        return ALICE

    server_auth.use(bearer)
    server = new_server(tracing=False, authentication=server_auth)
    server.add_generic_rpc_handlers([WhoHandler()])
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as edge:
            assert await ask(edge, (("authorization", "Bearer good"),)) == b"alice:data-scientist"
            error = await refused(edge, CallerAssertions(KEY, "gateway").metadata(ALICE, "repo"))
            assert error.code() == grpc.StatusCode.PERMISSION_DENIED
    finally:
        await server.stop(None)


def test_caller_of_outside_an_authenticated_call_is_unauthenticated() -> None:
    with pytest.raises(Unauthenticated, match="no verified caller"):
        caller_of(None)  # type: ignore[arg-type]
