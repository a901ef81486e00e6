"""The public gRPC edge: one generic handler for every public method.

The server's Authentication (the gateway's bearer tokens and role policy) has checked each
call's caller from its metadata before the request was read; the handlers take it from there.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import unquote

import grpc
from grpc_status import rpc_status

from shipyard.contracts.gateway.v1 import gateway_pb2 as pb
from shipyard.kit.bus import EventBus
from shipyard.kit.errors import ShipyardError
from shipyard.kit.grpcio import Metadata, Refused, caller_of, metadata_value
from shipyard_gateway.entrypoints.api import PublicApi, RelayedError, Route
from shipyard_gateway.entrypoints.watch import watch

WATCH = "/shipyard.gateway.v1.EventService/Watch"


def client_address(peer: str) -> str:
    """The client's host in a gRPC peer: ``ipv4:10.0.0.7:51234`` → ``10.0.0.7``,
    ``ipv6:[::1]:51234`` → ``::1``; any other kind of peer (a unix socket) as it is."""
    kind, _, address = unquote(peer).partition(":")
    if kind not in ("ipv4", "ipv6"):
        return peer
    host = address.rpartition(":")[0] or address
    return host.removeprefix("[").removesuffix("]")


def refusals(api: PublicApi) -> Refused:
    """The answer to each call the edge's authentication refused: bad tokens are counted against
    the client's address (PublicApi.refused)."""
    def answer(method: str, metadata: Metadata, peer: str, error: ShipyardError) -> ShipyardError:
        return api.refused(metadata_value(metadata, "authorization"), client_address(peer), error)
    return answer


class PublicHandler(grpc.GenericRpcHandler):
    """Serves the public API's methods by name, passing request bytes through untouched."""

    def __init__(self, api: PublicApi, bus: EventBus) -> None:
        self._api = api
        self._bus = bus
        self._handlers: dict[str, grpc.RpcMethodHandler] = {
            path: grpc.unary_unary_rpc_method_handler(self._unary(route))
            for path, route in api.routes.items()}
        self._handlers[WATCH] = grpc.unary_stream_rpc_method_handler(
            self._watch, request_deserializer=pb.WatchRequest.FromString,
            response_serializer=pb.CloudEvent.SerializeToString)

    def service(self, handler_call_details: grpc.HandlerCallDetails) -> grpc.RpcMethodHandler | None:
        return self._handlers.get(handler_call_details.method)

    def _unary(self, route: Route) -> Any:
        async def handle(payload: bytes, context: grpc.aio.ServicerContext) -> bytes:
            try:
                return await self._api.call(route, caller_of(context), payload)
            except RelayedError as exc:
                # The service's google.rpc.Status (the field of a bad request) goes on unchanged.
                if exc.status is not None:
                    await context.abort_with_status(rpc_status.to_status(exc.status))
                else:
                    await context.abort(exc.code, exc.details)
                raise  # abort raises; this line only satisfies the type checker
        return handle

    async def _watch(self, request: pb.WatchRequest, context: grpc.aio.ServicerContext) -> Any:
        caller = caller_of(context)
        async for event in watch(self._bus, request, caller.roles):
            yield event
