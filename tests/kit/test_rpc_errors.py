"""Domain errors on the wire (shipyard.kit.rpc_errors, via new_server): a ``google.rpc.Status`` with
the field and problem of a bad request and the error's name, read back by a service calling another
(error_of) and by the Python client — never parsed out of the message."""

from __future__ import annotations

import asyncio
import string
import urllib.parse
from collections.abc import AsyncIterator, Callable

import grpc
import pytest
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from shipyard.client.connection import Client, ClientError, Credentials
from shipyard.kit import errors
from shipyard.kit.caller import Caller
from shipyard.kit.grpcio import Authentication, Metadata, error_of, new_server
from shipyard.kit.rpc_errors import (
    DOMAIN,
    MAX_FIELD,
    failure_in,
    failure_of,
    reason_of,
    status_message,
    status_of_error,
)

# What each method of the test server raises.
PROBLEM = "may contain only letters, digits, '-', '_'"
RAISES: dict[str, Callable[[], errors.ShipyardError]] = {
    "/test.Bad/Name": lambda: errors.InvalidArgument("repo.name", PROBLEM),
    "/test.Bad/Missing": lambda: errors.NotFound("model mnist@3 not found"),
    "/test.Bad/Full": lambda: errors.NoSpace("blob 0123"),
    "/test.Bad/Huge": lambda: errors.InvalidArgument("\U0001f600" * 100_000, "got " + "\U0001f600" * 100_000),
}
STREAM = "/test.Bad/Watch"
PRINTABLE = "".join(c for c in string.printable if c.isprintable() and c != "%")  # left as is in grpc-message


async def anyone(method: str, metadata: Metadata) -> Caller:
    return Caller("alice", frozenset({"data-scientist"}))


class BadHandler(grpc.GenericRpcHandler):
    """Every method fails with its domain error (the stream after one message)."""

    def service(self, details: grpc.HandlerCallDetails) -> grpc.RpcMethodHandler | None:
        if details.method == STREAM:
            async def watch(request: bytes, context: grpc.aio.ServicerContext) -> AsyncIterator[bytes]:
                yield b"one"
                raise errors.InvalidArgument("watch.types[0]", "no such event type")
            return grpc.unary_stream_rpc_method_handler(watch)
        make = RAISES.get(details.method)
        if make is None:
            return None

        async def fail(request: bytes, context: grpc.aio.ServicerContext) -> bytes:
            raise make()
        return grpc.unary_unary_rpc_method_handler(fail)


@pytest.fixture
async def address() -> AsyncIterator[str]:
    server = new_server(tracing=False, authentication=Authentication(anyone))
    server.add_generic_rpc_handlers([BadHandler()])
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    try:
        yield f"127.0.0.1:{port}"
    finally:
        await server.stop(None)


async def _refusal(address: str, method: str) -> grpc.aio.AioRpcError:
    async with grpc.aio.insecure_channel(address) as channel:
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await channel.unary_unary(method)(b"")
    return caught.value


def _details(exc: grpc.aio.AioRpcError) -> tuple[list[error_details_pb2.BadRequest.FieldViolation],
                                                 list[error_details_pb2.ErrorInfo]]:
    status = rpc_status.from_call(exc)
    assert status is not None, "no google.rpc.Status in the trailers"
    violations, infos = [], []
    for detail in status.details:
        if detail.Is(error_details_pb2.BadRequest.DESCRIPTOR):
            request = error_details_pb2.BadRequest()
            detail.Unpack(request)
            violations.extend(request.field_violations)
        elif detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
            info = error_details_pb2.ErrorInfo()
            detail.Unpack(info)
            infos.append(info)
    return violations, infos


async def test_a_bad_request_carries_its_field_violation_and_error_info(address: str) -> None:
    refused = await _refusal(address, "/test.Bad/Name")

    # What a client that ignores the details sees is what it always saw.
    assert refused.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert refused.details() == f"repo.name: {PROBLEM}"
    violations, infos = _details(refused)
    assert [(v.field, v.description) for v in violations] == [
        ("repo.name", PROBLEM)]
    assert [(i.reason, i.domain) for i in infos] == [("INVALID_ARGUMENT", DOMAIN)]


@pytest.mark.parametrize(("method", "code", "reason"), [
    ("/test.Bad/Missing", grpc.StatusCode.NOT_FOUND, "NOT_FOUND"),
    ("/test.Bad/Full", grpc.StatusCode.RESOURCE_EXHAUSTED, "NO_SPACE"),
])
async def test_other_errors_name_themselves_and_no_field(address: str, method: str, code: grpc.StatusCode,
                                                         reason: str) -> None:
    refused = await _refusal(address, method)

    assert refused.code() == code
    violations, infos = _details(refused)
    assert violations == []
    assert [(i.reason, i.domain) for i in infos] == [(reason, DOMAIN)]
    failure = failure_of(refused)
    assert (failure.code, failure.message, failure.field, failure.reason) == (
        code, refused.details(), "", reason)


async def test_a_stream_ends_with_the_same_details(address: str) -> None:
    async with grpc.aio.insecure_channel(address) as channel:
        call = channel.unary_stream(STREAM)(b"")
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            assert [m async for m in call] == [b"one"]

    failure = failure_of(caught.value)
    assert (failure.field, failure.problem) == ("watch.types[0]", "no such event type")


async def test_an_echoed_huge_field_is_clipped_to_fit_the_trailers(address: str) -> None:
    refused = await _refusal(address, "/test.Bad/Huge")

    # Not RESOURCE_EXHAUSTED ("received metadata size exceeds limit"): the status fits.
    assert refused.code() == grpc.StatusCode.INVALID_ARGUMENT
    failure = failure_of(refused)
    assert failure.field.startswith("\U0001f600") and "characters left out" in failure.field
    assert len(failure.field) <= MAX_FIELD + 50
    assert failure.problem.startswith("got \U0001f600") and "characters left out" in failure.problem


async def test_a_service_calling_another_keeps_the_backends_field(address: str) -> None:
    refused = await _refusal(address, "/test.Bad/Name")

    error = error_of(refused, "code train@latest")

    assert isinstance(error, errors.InvalidArgument)
    assert (error.field, error.problem) == ("repo.name", PROBLEM)


async def test_without_details_a_bad_request_names_what_was_asked() -> None:
    async def plain(request: bytes, context: grpc.aio.ServicerContext) -> bytes:
        await context.abort(grpc.StatusCode.INVALID_ARGUMENT, "version: must be a number")
        raise AssertionError("abort raises")

    class Plain(grpc.GenericRpcHandler):
        def service(self, details: grpc.HandlerCallDetails) -> grpc.RpcMethodHandler | None:
            return grpc.unary_unary_rpc_method_handler(plain)

    server = grpc.aio.server()  # not new_server: a server that sends no status details
    server.add_generic_rpc_handlers([Plain()])
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    try:
        refused = await _refusal(f"127.0.0.1:{port}", "/test.Plain/Ask")
    finally:
        await server.stop(None)

    assert failure_of(refused).field == ""
    error = error_of(refused, "code train@latest")
    assert isinstance(error, errors.InvalidArgument)
    assert (error.field, error.problem) == ("code train@latest", "version: must be a number")


async def test_the_python_clients_error_has_the_field_and_problem(address: str) -> None:
    client = Client(Credentials(address, "any"))
    try:
        method = client.channel.unary_unary("/test.Bad/Name",
                                            request_serializer=error_details_pb2.ErrorInfo.SerializeToString)
        with pytest.raises(ClientError) as caught:
            await asyncio.to_thread(client.call, method, error_details_pb2.ErrorInfo())
    finally:
        client.close()

    refused = caught.value
    assert (refused.code, refused.message) == ("INVALID_ARGUMENT",
                                               f"repo.name: {PROBLEM}")
    assert (refused.field, refused.problem, refused.reason) == (
        "repo.name", PROBLEM, "INVALID_ARGUMENT")


@pytest.mark.parametrize(("error", "reason"), [
    (errors.NotFound("x"), "NOT_FOUND"),
    (errors.NoSpace("x"), "NO_SPACE"),
    (errors.InvalidArgument("a", "b"), "INVALID_ARGUMENT"),
    (errors.ResourceExhausted("x"), "RESOURCE_EXHAUSTED"),
])
def test_the_reason_is_the_error_class_in_upper_snake_case(error: errors.ShipyardError, reason: str) -> None:
    assert reason_of(error) == reason


def test_a_field_the_state_refuses_travels_as_a_precondition_failure() -> None:
    exc = errors.FailedPrecondition("4 GPUs asked for, but the local executor has 0", field="run.gpus")
    status = status_message(exc, grpc.StatusCode.FAILED_PRECONDITION)
    failure = failure_in(grpc.StatusCode.FAILED_PRECONDITION, exc.message, status)
    assert exc.message == "run.gpus: 4 GPUs asked for, but the local executor has 0"
    assert (failure.field, failure.reason) == ("run.gpus", "FAILED_PRECONDITION")
    assert failure.problem == "4 GPUs asked for, but the local executor has 0"  # the field is named once


def test_a_precondition_without_a_field_names_none() -> None:
    exc = errors.FailedPrecondition("the run is finished")
    status = status_message(exc, grpc.StatusCode.FAILED_PRECONDITION)
    assert failure_in(grpc.StatusCode.FAILED_PRECONDITION, exc.message, status).field == ""


def test_the_worst_echoed_error_leaves_room_below_grpcs_metadata_limit() -> None:
    # gRPC refuses trailers past its 8 KiB soft limit at random (RESOURCE_EXHAUSTED): measure the worst
    # case as gRPC counts it — name + value + 32 bytes an entry, grpc-message percent-encoded — with
    # room left to spare.
    status = status_of_error(RAISES["/test.Bad/Huge"](), grpc.StatusCode.INVALID_ARGUMENT)
    message = urllib.parse.quote(status.details, safe=PRINTABLE)
    size = len("grpc-message") + len(message) + 32
    size += sum(len(name) + len(value) + 32 for name, value in status.trailing_metadata)
    fixed = 42 + 60 + 44  # :status, content-type and grpc-status, as gRPC counts them
    assert size + fixed <= 8192 - 512, size + fixed  # half a KiB to spare (a proxy's own trailers)
