"""The V2 inference protocol over gRPC (``inference.GRPCInferenceService``, KServe's and Triton's) on the
gateway's gRPC port, for test inferences and deployments.

A model's name is the endpoint's (a test inference or deployment, as in ``/serving/<name>/``). Each call is
authenticated by the server's Authentication from its ``authorization`` metadata like any public method
(the policy lets every role send inference requests), a deployment is for whoever may see deployments, and
the request goes to the endpoint's model servers through the same routes as the REST path
(``ServingEdge``), as the REST V2 JSON they speak (``v2_tensors``); their HTTP errors come back as the
matching gRPC status with their message.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any, NoReturn

import grpc

import shipyard
from shipyard.contracts.inference import grpc_predict_v2_pb2 as pb
from shipyard.contracts.inference import grpc_predict_v2_pb2_grpc as pb_grpc
from shipyard.kit.caller import Caller
from shipyard.kit.errors import InvalidArgument, clipped
from shipyard.kit.grpcio import caller_of, metadata_value
from shipyard_gateway.entrypoints.serving_http import Answer, ServingEdge
from shipyard_gateway.entrypoints.v2_tensors import metadata_of, request_json, response_of

SERVICE = "inference.GRPCInferenceService"
SERVER_NAME = "shipyard"
CODE_OF = {400: grpc.StatusCode.INVALID_ARGUMENT, 401: grpc.StatusCode.UNAUTHENTICATED,
           403: grpc.StatusCode.PERMISSION_DENIED, 404: grpc.StatusCode.NOT_FOUND,
           413: grpc.StatusCode.RESOURCE_EXHAUSTED, 429: grpc.StatusCode.RESOURCE_EXHAUSTED,
           502: grpc.StatusCode.UNAVAILABLE, 503: grpc.StatusCode.UNAVAILABLE,
           504: grpc.StatusCode.DEADLINE_EXCEEDED}
JSON = {"Content-Type": "application/json"}


class InferenceEdge(pb_grpc.GRPCInferenceServiceServicer):
    """The V2 gRPC methods, answered through the serving proxy."""

    def __init__(self, edge: ServingEdge, ready: Callable[[], bool]) -> None:
        """``ready``: whether the platform's services answer (the gateway's own readiness)."""
        self._edge = edge
        self._ready = ready

    async def ServerLive(self, request: pb.ServerLiveRequest,
                         context: grpc.aio.ServicerContext) -> pb.ServerLiveResponse:
        return pb.ServerLiveResponse(live=True)

    async def ServerReady(self, request: pb.ServerReadyRequest,
                          context: grpc.aio.ServicerContext) -> pb.ServerReadyResponse:
        return pb.ServerReadyResponse(ready=self._ready())

    async def ServerMetadata(self, request: pb.ServerMetadataRequest,
                             context: grpc.aio.ServicerContext) -> pb.ServerMetadataResponse:
        return pb.ServerMetadataResponse(name=SERVER_NAME, version=shipyard.__version__)

    async def ModelReady(self, request: pb.ModelReadyRequest,
                         context: grpc.aio.ServicerContext) -> pb.ModelReadyResponse:
        _, routes = await self._endpoint(request.name, context, "name")
        return pb.ModelReadyResponse(ready=bool(routes.base_url or routes.addresses))

    async def ModelMetadata(self, request: pb.ModelMetadataRequest,
                            context: grpc.aio.ServicerContext) -> pb.ModelMetadataResponse:
        caller, routes = await self._endpoint(request.name, context, "name")
        answer = await self._edge.exchange(request.name, caller, "GET", f"v2/models/{routes.model}", b"", {})
        return metadata_of(await _json(answer, context), request.name)

    async def ModelInfer(self, request: pb.ModelInferRequest,
                         context: grpc.aio.ServicerContext) -> pb.ModelInferResponse:
        body = json.dumps(request_json(request)).encode()  # refuses a bad tensor before anything is sent
        caller, routes = await self._endpoint(request.model_name, context, "model_name")
        answer = await self._edge.exchange(request.model_name, caller, "POST",
                                           f"v2/models/{routes.model}/infer", body, JSON)
        try:
            return response_of(await _json(answer, context), request.model_name,
                               raw=bool(request.raw_input_contents))
        except (ValueError, KeyError, TypeError, OverflowError) as exc:
            await context.abort(grpc.StatusCode.INTERNAL,
                                clipped(f"the model server's answer cannot be sent as gRPC: {exc}"))
            raise  # abort raises; this line only satisfies the type checker

    async def _endpoint(self, name: str, context: grpc.aio.ServicerContext,
                        field: str) -> tuple[Caller, Any]:
        """The caller and the routes of endpoint ``name``, once the caller may send requests to it."""
        if not name:
            raise InvalidArgument(field, "is required: the name of a test inference or deployment")
        caller = caller_of(context)
        authorization = metadata_value(context.invocation_metadata(), "authorization")
        refused = await self._edge.admit(name, caller, authorization)
        if refused is not None:
            await _refuse(refused, context)
        routes = await self._edge.routes(name, caller)
        if isinstance(routes, Answer):
            await _refuse(routes, context)
        return caller, routes


async def _json(answer: Answer, context: grpc.aio.ServicerContext) -> dict[str, Any]:
    """The model servers' JSON answer; their error as its gRPC status."""
    if answer.status != 200:
        await _refuse(answer, context)
    try:
        found = json.loads(answer.body)
    except ValueError:
        found = None
    if not isinstance(found, dict):
        await context.abort(grpc.StatusCode.INTERNAL, "the model server's answer is not a JSON object")
    return found


async def _refuse(answer: Answer, context: grpc.aio.ServicerContext) -> NoReturn:
    """Abort the call with the gRPC status of an HTTP error answer, and its message (clipped as every
    error's is, so that a model server's long message still fits gRPC's trailers)."""
    await context.abort(CODE_OF.get(answer.status, grpc.StatusCode.INTERNAL), clipped(answer.message))
    raise AssertionError("abort raises")
