"""A gRPC client that no one here wrote can use the API: it learns it by reflection."""

from __future__ import annotations

import grpc
from google.protobuf import descriptor_pool, json_format
from google.protobuf.message_factory import GetMessageClass
from grpc_reflection.v1alpha import reflection_pb2
from grpc_reflection.v1alpha.proto_reflection_descriptor_database import ProtoReflectionDescriptorDatabase

from shipyard.local.harness import Stack


def test_reflection_lists_and_serves_the_public_api(stack: Stack) -> None:
    with grpc.insecure_channel(stack.grpc_address) as channel:
        database = ProtoReflectionDescriptorDatabase(channel)
        services = set(database.get_services())
        assert {"shipyard.repo.v1.ProjectService", "shipyard.lineage.v1.LineageService",
                "shipyard.gateway.v1.IdentityService", "shipyard.gateway.v1.EventService",
                "shipyard.gateway.v1.PlatformService", "grpc.health.v1.Health"} <= services
        # Build request and response types from the server's descriptors alone (a fresh pool,
        # none of Shipyard's generated code), as grpcurl or Postman would.
        pool = descriptor_pool.DescriptorPool(database)
        method = pool.FindServiceByName("shipyard.repo.v1.ProjectService").FindMethodByName("CreateProject")
        request_type = GetMessageClass(method.input_type)
        response_type = GetMessageClass(method.output_type)
        request = json_format.ParseDict({"project": {"name": "by-reflection", "description": "dynamic"}},
                                        request_type())
        call = channel.unary_unary("/shipyard.repo.v1.ProjectService/CreateProject",
                                   request_serializer=request_type.SerializeToString,
                                   response_deserializer=response_type.FromString)
        reply = call(request, metadata=(("authorization", f"Bearer {stack.admin_token()}"),), timeout=10)
    assert json_format.MessageToDict(reply)["name"] == "by-reflection"


def test_a_reflection_v1_client_may_ask_the_gateway_without_a_token(stack: Stack) -> None:
    # grpc.reflection.v1's messages are v1alpha's on the wire: a v1 client is these on v1's path.
    with grpc.insecure_channel(stack.grpc_address) as channel:
        info = channel.stream_stream("/grpc.reflection.v1.ServerReflection/ServerReflectionInfo",
                                     request_serializer=reflection_pb2.ServerReflectionRequest.SerializeToString,
                                     response_deserializer=reflection_pb2.ServerReflectionResponse.FromString)
        [answer] = list(info(iter([reflection_pb2.ServerReflectionRequest(list_services="")]), timeout=10))
    services = {service.name for service in answer.list_services_response.service}
    assert {"shipyard.repo.v1.ProjectService", "grpc.reflection.v1.ServerReflection"} <= services
