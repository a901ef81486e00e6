"""Server reflection answers both versions clients ask for: v1alpha and v1 (newer grpcurl, Postman)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import grpc
import pytest
from google.protobuf import descriptor_pb2
from grpc_reflection.v1alpha import reflection_pb2

from shipyard.kit.assertions import CallerAssertions, new_key
from shipyard.kit.caller import Caller
from shipyard.kit.grpcio import Authentication, assertion_authenticator, enable_reflection, new_server

KEY = new_key()
# grpc.reflection.v1's messages are v1alpha's on the wire: a v1 client is these messages on v1's path.
V1_INFO = "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo"


@pytest.fixture
async def channel() -> AsyncIterator[grpc.aio.Channel]:
    server = new_server(tracing=False, authentication=Authentication(
        assertion_authenticator(CallerAssertions(KEY, "repo"))))
    enable_reflection(server, ["shipyard.repo.v1.ProjectService"])
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as open_channel:
        yield open_channel
    await server.stop(None)


async def _ask_v1(channel: grpc.aio.Channel, *requests: reflection_pb2.ServerReflectionRequest
                  ) -> list[reflection_pb2.ServerReflectionResponse]:
    info = channel.stream_stream(V1_INFO,
                                 request_serializer=reflection_pb2.ServerReflectionRequest.SerializeToString,
                                 response_deserializer=reflection_pb2.ServerReflectionResponse.FromString)
    signed = CallerAssertions(KEY, "gateway").metadata(Caller("alice", frozenset()), "repo")
    return [answer async for answer in info(iter(requests), metadata=signed, timeout=10)]


async def test_a_v1_client_lists_the_services_and_both_reflection_versions(channel: grpc.aio.Channel) -> None:
    [answer] = await _ask_v1(channel, reflection_pb2.ServerReflectionRequest(list_services=""))
    names = {service.name for service in answer.list_services_response.service}
    assert {"shipyard.repo.v1.ProjectService", "grpc.health.v1.Health",
            "grpc.reflection.v1alpha.ServerReflection", "grpc.reflection.v1.ServerReflection"} <= names


@pytest.mark.parametrize("symbol", ["shipyard.repo.v1.ProjectService", "grpc.reflection.v1.ServerReflection"])
async def test_a_v1_client_can_describe_every_service_listed(channel: grpc.aio.Channel, symbol: str) -> None:
    [answer] = await _ask_v1(channel, reflection_pb2.ServerReflectionRequest(file_containing_symbol=symbol))
    assert not answer.HasField("error_response"), answer.error_response.error_message
    files = [descriptor_pb2.FileDescriptorProto.FromString(raw)
             for raw in answer.file_descriptor_response.file_descriptor_proto]
    assert symbol in {f"{f.package}.{service.name}" for f in files for service in f.service}
