"""ServingService over gRPC (test inferences so far; the catalog and deployments are next)."""

from __future__ import annotations

import zlib

import grpc

from shipyard.contracts.serving.v1 import serving_pb2 as pb
from shipyard.contracts.serving.v1 import serving_pb2_grpc
from shipyard.kit.grpcio import caller_of
from shipyard_serving.app.inferences import Inferences
from shipyard_serving.app.messages import inference_to_proto, spec_from_proto
from shipyard_serving.domain.serving import ModelPin


class ServingServicer(serving_pb2_grpc.ServingServiceServicer):
    """Test inferences, and the routes the gateway sends their requests by."""

    def __init__(self, inferences: Inferences) -> None:
        self._inferences = inferences

    async def CreateInference(
        self, request: pb.CreateInferenceRequest, context: grpc.aio.ServicerContext
    ) -> pb.Inference:
        given = request.inference
        made = await self._inferences.create(
            caller_of(context),
            given.name,
            ModelPin(given.model.model, given.model.version),
            spec_from_proto(given.spec),
            project=given.project,
            description=given.description,
            request_id=request.request_id,
        )
        return inference_to_proto(made, self._inferences.observe(made.name))

    async def GetInference(
        self, request: pb.GetInferenceRequest, context: grpc.aio.ServicerContext
    ) -> pb.Inference:
        caller_of(context)
        found = await self._inferences.get(request.name)
        return inference_to_proto(found, self._inferences.observe(found.name))

    async def ListInferences(
        self, request: pb.ListInferencesRequest, context: grpc.aio.ServicerContext
    ) -> pb.ListInferencesResponse:
        caller_of(context)
        found, token = await self._inferences.list_page(
            request.project, request.page_size, request.page_token
        )
        return pb.ListInferencesResponse(
            inferences=[inference_to_proto(i, self._inferences.observe(i.name)) for i in found],
            next_page_token=token,
        )

    async def DeleteInference(
        self, request: pb.DeleteInferenceRequest, context: grpc.aio.ServicerContext
    ) -> pb.DeleteInferenceResponse:
        await self._inferences.delete(caller_of(context), request.name)
        return pb.DeleteInferenceResponse()

    async def GetRoutes(self, request: pb.GetRoutesRequest, context: grpc.aio.ServicerContext) -> pb.Routes:
        found = await self._inferences.get(request.name)
        seen = self._inferences.observe(found.name)
        addresses = [r.address for r in seen.replicas if r.ready]
        return pb.Routes(
            name=found.name,
            model=found.model.model,
            addresses=addresses,
            max_concurrency=found.spec.max_concurrency,
            revision=zlib.crc32(",".join(addresses).encode()),
        )
