"""gRPC plumbing every service shares: the server with health and reflection, the one place
where domain errors become status codes, and the one place where a call's caller is
authenticated (before its request is read)."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Sequence
from contextvars import ContextVar
from typing import Any

import grpc
from google.protobuf import descriptor_pb2, descriptor_pool
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_health.v1.health import aio as health_aio
from grpc_reflection.v1alpha import reflection, reflection_pb2
from opentelemetry.instrumentation.grpc import aio_server_interceptor

from shipyard.kit import errors
from shipyard.kit.assertions import ASSERTION_KEY, CallerAssertions
from shipyard.kit.caller import Caller
from shipyard.kit.events import new_traceparent
from shipyard.kit.rpc_errors import failure_of, status_of_error
from shipyard.kit.telemetry import attach_traceparent, detach

log = logging.getLogger(__name__)

# What one request may be: gRPC's own default. The gateway refuses a larger request of any
# method but those in its list of large requests (FindMissingBlobs: 100,000 digests).
MESSAGE_LIMIT = 4 * 1024 * 1024
# What a server receives at most, the largest of those per-method limits: gRPC's limit is one
# per server, so each server takes the largest and the gateway checks each method's own.
LARGEST_MESSAGE = 8 * 1024 * 1024
# Callable without a caller: the standard health service (Kubernetes probes), which tells
# nothing but SERVING or NOT_SERVING.
HEALTH_METHODS = "/grpc.health.v1.Health/"
# Server reflection, served as both versions clients ask for: v1alpha (grpcio-reflection's) and v1
# (newer grpcurl, Postman). The two protos differ only in their package, so v1 is v1alpha's servicer
# and messages under v1's name.
REFLECTION_V1 = "grpc.reflection.v1.ServerReflection"
REFLECTION_METHODS = (f"/{reflection.SERVICE_NAME}/", f"/{REFLECTION_V1}/")

Metadata = Sequence[tuple[str, Any]]
# Who a call is from, given its method and metadata; raises a domain error (Unauthenticated,
# PermissionDenied) to refuse it.
Authenticator = Callable[[str, Metadata], Awaitable[Caller]]
# Told of each call its Authenticator refused — the method, the metadata, the client's address as
# gRPC writes it (``ipv4:10.0.0.7:51234``) and the error — it answers the error to send: the same,
# or another (the gateway counts bad tokens per client address with it, and throttles).
Refused = Callable[[str, Metadata, str, errors.ShipyardError], errors.ShipyardError]

_CALLER: ContextVar[Caller | None] = ContextVar("shipyard_caller", default=None)


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


async def abort_with(context: grpc.aio.ServicerContext, exc: errors.ShipyardError) -> None:
    """End the call with domain error ``exc``: its status code and message, and the same as a
    ``google.rpc.Status`` with the details a program reads (shipyard.kit.rpc_errors)."""
    await context.abort_with_status(status_of_error(exc, status_of(exc)))


def caller_of(context: grpc.aio.ServicerContext) -> Caller:
    """The caller of the call ``context`` serves, as the server's :class:`Authentication` verified
    it before the request was read; Unauthenticated when nothing verified one."""
    caller = _CALLER.get()
    if caller is None:
        raise errors.Unauthenticated("no verified caller on the call")
    return caller


def metadata_value(metadata: Metadata | None, key: str) -> str | None:
    """The first value of ``key`` in call metadata, or None."""
    for name, value in metadata or ():
        if name == key:
            return value if isinstance(value, str) else value.decode(errors="replace")
    return None


def assertion_authenticator(assertions: CallerAssertions) -> Authenticator:
    """Authenticates calls by their signed caller assertion, addressed to this service."""
    async def authenticate(method: str, metadata: Metadata) -> Caller:
        return assertions.verify(metadata_value(metadata, ASSERTION_KEY)).caller
    return authenticate


def _refusal(answer: Callable[[str], errors.ShipyardError]) -> grpc.RpcMethodHandler:
    # Request-streaming, whatever the method: the server then reads no request message before
    # the refusal, so an unauthenticated body is never received into memory nor parsed. Only
    # the handler knows the client's address (the interceptor sees the method and metadata).
    async def refuse(requests: AsyncIterator[Any], context: grpc.aio.ServicerContext) -> None:
        await abort_with(context, answer(context.peer()))
    return grpc.stream_unary_rpc_method_handler(refuse)


def _as_caller(handler: grpc.RpcMethodHandler, caller: Caller) -> grpc.RpcMethodHandler:
    """``handler`` running with ``caller`` as the verified caller (what caller_of returns)."""
    if handler.unary_unary is not None:
        unary = handler.unary_unary

        async def unary_as(request: Any, context: grpc.aio.ServicerContext) -> Any:
            token = _CALLER.set(caller)
            try:
                return await unary(request, context)
            finally:
                _CALLER.reset(token)
        return handler._replace(unary_unary=unary_as)
    if handler.unary_stream is not None:
        stream = handler.unary_stream

        async def stream_as(request: Any, context: grpc.aio.ServicerContext) -> Any:
            # Not reset after: a stream may be closed from another context (no token would fit),
            # and each call runs in its own task, whose context no other call shares.
            _CALLER.set(caller)
            async for item in stream(request, context):
                yield item
        return handler._replace(unary_stream=stream_as)
    # Request-streaming methods (server reflection) are authenticated but need no caller.
    return handler


class Authentication(grpc.aio.ServerInterceptor):
    """The one authentication of every server the platform runs: each call's caller is verified
    from its metadata before its request is read, and refused (UNAUTHENTICATED, or
    PERMISSION_DENIED, naming why) otherwise. Only the health service is open to anyone.

    Services verify signed caller assertions; the gateway's public edge swaps in bearer tokens
    (:meth:`use`) while it is wired, before the server starts.
    """

    def __init__(self, authenticate: Authenticator) -> None:
        self._authenticate = authenticate
        self._open: tuple[str, ...] = (HEALTH_METHODS,)
        self._refused: Refused | None = None

    def use(self, authenticate: Authenticator, open_methods: tuple[str, ...] = (),
            refused: Refused | None = None) -> None:
        """Authenticate with ``authenticate`` instead; ``open_methods`` (prefixes) need no caller;
        ``refused`` chooses the answer to each refused call."""
        self._authenticate = authenticate
        self._open = (HEALTH_METHODS, *open_methods)
        self._refused = refused

    async def intercept_service(self, continuation: Callable[..., Awaitable[grpc.RpcMethodHandler]],
                                details: grpc.HandlerCallDetails) -> grpc.RpcMethodHandler:
        handler = await continuation(details)
        if handler is None or details.method.startswith(self._open):
            return handler
        metadata = details.invocation_metadata or ()
        try:
            caller = await self._authenticate(details.method, metadata)
        except errors.ShipyardError as exc:
            refused, error = self._refused, exc
            if refused is None:
                return _refusal(lambda peer: error)
            return _refusal(lambda peer: refused(details.method, metadata, peer, error))
        return _as_caller(handler, caller)


def incoming_traceparent(context: grpc.aio.ServicerContext) -> str:
    """The caller's W3C traceparent metadata, or ""."""
    for key, value in context.invocation_metadata() or ():
        if key == "traceparent":
            return str(value)
    return ""


def _trace_context(context: grpc.aio.ServicerContext) -> object | None:
    """Make the caller's trace the current one, or start a trace when the caller sent none (the
    edge, for a client without tracing): every event the call causes then carries its trace."""
    return attach_traceparent(incoming_traceparent(context) or new_traceparent())


def _wrap_unary(behavior: Callable[..., Awaitable[Any]], propagate: bool) -> Callable[..., Awaitable[Any]]:
    async def handler(request: Any, context: grpc.aio.ServicerContext) -> Any:
        token = _trace_context(context) if propagate else None
        try:
            return await behavior(request, context)
        except errors.ShipyardError as exc:
            await abort_with(context, exc)
        finally:
            detach(token)
    return handler


def _wrap_stream(behavior: Callable[..., Any], propagate: bool) -> Callable[..., Any]:
    async def handler(request: Any, context: grpc.aio.ServicerContext) -> Any:
        token = _trace_context(context) if propagate else None
        try:
            async for item in behavior(request, context):
                yield item
        except errors.ShipyardError as exc:
            await abort_with(context, exc)
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


def new_server(tracing: bool, authentication: Authentication) -> grpc.aio.Server:
    """An aio server that authenticates every call (but health checks) with ``authentication``
    and maps domain errors; with ``tracing``, recording a span per call. Every gRPC server of
    the platform is made here (an architecture test holds it to that)."""
    interceptors: list[grpc.aio.ServerInterceptor] = [authentication, DomainErrors(propagate=not tracing)]
    if tracing:
        interceptors.insert(0, aio_server_interceptor())
    return grpc.aio.server(interceptors=interceptors, options=[
        ("grpc.so_reuseport", 0),
        ("grpc.max_receive_message_length", LARGEST_MESSAGE),
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
    """Let any gRPC client (grpcurl, Postman, …) list and describe the services, by reflection v1
    or v1alpha."""
    names = [*service_names, health_pb2.DESCRIPTOR.services_by_name["Health"].full_name,
             reflection.SERVICE_NAME, REFLECTION_V1]
    _describe_reflection_v1()
    servicer = reflection.aio.ReflectionServicer(names)
    info = grpc.stream_stream_rpc_method_handler(
        servicer.ServerReflectionInfo,
        request_deserializer=reflection_pb2.ServerReflectionRequest.FromString,
        response_serializer=reflection_pb2.ServerReflectionResponse.SerializeToString)
    server.add_generic_rpc_handlers([
        grpc.method_handlers_generic_handler(service, {"ServerReflectionInfo": info})
        for service in (reflection.SERVICE_NAME, REFLECTION_V1)])


def _describe_reflection_v1() -> None:
    """Put grpc/reflection/v1/reflection.proto in the default pool (v1alpha's file under v1's
    package), so that reflection can describe the v1 service it lists."""
    pool = descriptor_pool.Default()
    name = "grpc/reflection/v1/reflection.proto"
    try:
        pool.FindFileByName(name)
        return
    except KeyError:
        pass
    proto = descriptor_pb2.FileDescriptorProto()
    reflection_pb2.DESCRIPTOR.CopyToProto(proto)
    old, new = f".{proto.package}.", ".grpc.reflection.v1."
    proto.name, proto.package = name, "grpc.reflection.v1"
    proto.options.Clear()
    for message in proto.message_type:
        for field in message.field:
            if field.type_name:
                field.type_name = field.type_name.replace(old, new)
    for method in proto.service[0].method:
        method.input_type, method.output_type = (method.input_type.replace(old, new),
                                                 method.output_type.replace(old, new))
    pool.Add(proto)


def error_of(exc: grpc.aio.AioRpcError, what: str) -> errors.ShipyardError:
    """The domain error a service's status stands for, when one service calls another: a bad
    request names the field the service named (its status details), else ``what`` was being
    asked; anything unexpected is Unavailable, naming ``what``."""
    failure = failure_of(exc)
    for cls, code in STATUS_OF.items():
        if code == failure.code and cls is not errors.InvalidArgument:
            return cls(failure.message)
    if failure.code == grpc.StatusCode.INVALID_ARGUMENT:
        if failure.field:
            return errors.InvalidArgument(failure.field, failure.problem)
        return errors.InvalidArgument(what, failure.message)
    return errors.Unavailable(f"{what}: {failure.code.name} {failure.message}")
