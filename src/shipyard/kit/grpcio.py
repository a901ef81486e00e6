"""gRPC plumbing every service shares: the server with health and reflection, the one place
where domain errors become status codes, and the caller identity the gateway forwards."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_health.v1.health import aio as health_aio
from grpc_reflection.v1alpha import reflection
from opentelemetry.instrumentation.grpc import aio_server_interceptor

from shipyard.kit import errors
from shipyard.kit.caller import ROLES_KEY, USER_KEY, Caller
from shipyard.kit.telemetry import attach_traceparent, detach

log = logging.getLogger(__name__)


STATUS_OF: dict[type[errors.ShipyardError], grpc.StatusCode] = {
    errors.InvalidArgument: grpc.StatusCode.INVALID_ARGUMENT,
    errors.NotFound: grpc.StatusCode.NOT_FOUND,
    errors.AlreadyExists: grpc.StatusCode.ALREADY_EXISTS,
    errors.FailedPrecondition: grpc.StatusCode.FAILED_PRECONDITION,
    errors.Aborted: grpc.StatusCode.ABORTED,
    errors.PermissionDenied: grpc.StatusCode.PERMISSION_DENIED,
    errors.Unauthenticated: grpc.StatusCode.UNAUTHENTICATED,
    errors.ResourceExhausted: grpc.StatusCode.RESOURCE_EXHAUSTED,
    errors.Unavailable: grpc.StatusCode.UNAVAILABLE,
}


def status_of(exc: errors.ShipyardError) -> grpc.StatusCode:
    """The gRPC status code for a domain error."""
    for cls in type(exc).__mro__:
        if cls in STATUS_OF:
            return STATUS_OF[cls]  # type: ignore[index]
    return grpc.StatusCode.UNKNOWN


def caller_of(context: grpc.aio.ServicerContext) -> Caller:
    """The caller forwarded by the gateway; services are reachable only from it."""
    metadata = dict(context.invocation_metadata() or ())
    user = metadata.get(USER_KEY, "")
    if not user:
        raise errors.Unauthenticated("no caller identity on the call")
    roles = frozenset(r for r in str(metadata.get(ROLES_KEY, "")).split(",") if r)
    return Caller(str(user), roles)


def incoming_traceparent(context: grpc.aio.ServicerContext) -> str:
    """The caller's W3C traceparent metadata, or ""."""
    for key, value in context.invocation_metadata() or ():
        if key == "traceparent":
            return str(value)
    return ""


def _wrap_unary(behavior: Callable[..., Awaitable[Any]], propagate: bool) -> Callable[..., Awaitable[Any]]:
    async def handler(request: Any, context: grpc.aio.ServicerContext) -> Any:
        token = attach_traceparent(incoming_traceparent(context)) if propagate else None
        try:
            return await behavior(request, context)
        except errors.ShipyardError as exc:
            await context.abort(status_of(exc), exc.message)
        finally:
            detach(token)
    return handler


def _wrap_stream(behavior: Callable[..., Any], propagate: bool) -> Callable[..., Any]:
    async def handler(request: Any, context: grpc.aio.ServicerContext) -> Any:
        token = attach_traceparent(incoming_traceparent(context)) if propagate else None
        try:
            async for item in behavior(request, context):
                yield item
        except errors.ShipyardError as exc:
            await context.abort(status_of(exc), exc.message)
        finally:
            detach(token)
    return handler


class DomainErrors(grpc.aio.ServerInterceptor):
    """Maps domain errors to status codes for every method of the server.

    With ``propagate`` it also makes the caller's traceparent the current trace context
    (what OpenTelemetry's interceptor would do, without recording spans).
    """

    def __init__(self, propagate: bool = False) -> None:
        self._cache: dict[str, grpc.RpcMethodHandler] = {}
        self._propagate = propagate

    async def intercept_service(self, continuation: Callable[..., Awaitable[grpc.RpcMethodHandler]],
                                details: grpc.HandlerCallDetails) -> grpc.RpcMethodHandler:
        cached = self._cache.get(details.method)
        if cached is not None:
            return cached
        handler = await continuation(details)
        if handler is None:
            return handler
        if handler.unary_unary is not None:
            handler = handler._replace(unary_unary=_wrap_unary(handler.unary_unary, self._propagate))
        elif handler.unary_stream is not None:
            handler = handler._replace(unary_stream=_wrap_stream(handler.unary_stream, self._propagate))
        self._cache[details.method] = handler
        return handler


def new_server(tracing: bool) -> grpc.aio.Server:
    """An aio server mapping domain errors; with ``tracing``, recording a span per call."""
    interceptors: list[grpc.aio.ServerInterceptor] = [DomainErrors(propagate=not tracing)]
    if tracing:
        interceptors.insert(0, aio_server_interceptor())
    return grpc.aio.server(interceptors=interceptors, options=[
        ("grpc.so_reuseport", 0),
        ("grpc.max_receive_message_length", 64 * 1024 * 1024),
    ])


class Health:
    """The standard gRPC health service; "" is the whole server's status."""

    def __init__(self, server: grpc.aio.Server) -> None:
        self.servicer = health_aio.HealthServicer()
        health_pb2_grpc.add_HealthServicer_to_server(self.servicer, server)

    async def set(self, serving: bool, services: Iterable[str] = ("",)) -> None:
        """Set every named service (and the server) to SERVING or NOT_SERVING."""
        status = (health_pb2.HealthCheckResponse.SERVING if serving
                  else health_pb2.HealthCheckResponse.NOT_SERVING)
        for name in services:
            await self.servicer.set(name, status)


def enable_reflection(server: grpc.aio.Server, service_names: Iterable[str]) -> None:
    """Let any gRPC client (grpcurl, Postman, …) list and describe the services."""
    names = [*service_names, health_pb2.DESCRIPTOR.services_by_name["Health"].full_name,
             reflection.SERVICE_NAME]
    reflection.enable_server_reflection(names, server)


def error_of(exc: grpc.aio.AioRpcError, what: str) -> errors.ShipyardError:
    """The domain error a service's status stands for, when one service calls another; anything
    unexpected is Unavailable, naming ``what`` was being asked."""
    details = exc.details() or ""
    for cls, code in STATUS_OF.items():
        if code == exc.code() and cls is not errors.InvalidArgument:
            return cls(details)
    if exc.code() == grpc.StatusCode.INVALID_ARGUMENT:
        return errors.InvalidArgument(what, details)
    return errors.Unavailable(f"{what}: {exc.code().name} {details}")
