"""Every call a server answers is in a trace: the caller's, or one started where none came in, so
that every event the call causes carries a traceparent (README: "a traceparent on every event")."""

from __future__ import annotations

from collections.abc import AsyncIterator

import grpc
import pytest

from shipyard.kit.assertions import CallerAssertions, new_key
from shipyard.kit.caller import Caller
from shipyard.kit.grpcio import Authentication, assertion_authenticator, new_server
from shipyard.kit.telemetry import current_traceparent

KEY = new_key()
TRACE = "/test.Trace/Current"
INCOMING = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"


class TraceHandler(grpc.GenericRpcHandler):
    """Answers the traceparent current while the call runs."""

    def service(self, details: grpc.HandlerCallDetails) -> grpc.RpcMethodHandler | None:
        async def current(request: bytes, context: grpc.aio.ServicerContext) -> bytes:
            return current_traceparent().encode()

        return grpc.unary_unary_rpc_method_handler(current) if details.method == TRACE else None


@pytest.fixture
async def ask() -> AsyncIterator[grpc.aio.UnaryUnaryMultiCallable]:
    server = new_server(tracing=False, authentication=Authentication(
        assertion_authenticator(CallerAssertions(KEY, "repo"))))
    server.add_generic_rpc_handlers([TraceHandler()])
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
        yield channel.unary_unary(TRACE)
    await server.stop(None)


def _signed(*extra: tuple[str, str]) -> tuple[tuple[str, str], ...]:
    return (*CallerAssertions(KEY, "gateway").metadata(Caller("alice", frozenset()), "repo"), *extra)


async def test_a_call_goes_on_in_its_callers_trace(ask: grpc.aio.UnaryUnaryMultiCallable) -> None:
    answer = await ask(b"", metadata=_signed(("traceparent", INCOMING)), timeout=10)
    assert answer.decode().split("-")[1] == INCOMING.split("-")[1]


async def test_a_call_without_a_trace_starts_one_of_its_own(ask: grpc.aio.UnaryUnaryMultiCallable) -> None:
    first, second = [(await ask(b"", metadata=_signed(), timeout=10)).decode() for _ in range(2)]
    assert first and second and first.split("-")[1] != second.split("-")[1]
