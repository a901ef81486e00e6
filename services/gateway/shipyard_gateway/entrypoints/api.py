"""The public API as one table of methods, shared by the gRPC and the HTTP/JSON edges.

Every call is authenticated (``authorization: Bearer <token>``) and checked against the role
policy — on the gRPC edge from the call's metadata, before its request is read — then parsed
(a body that is not the method's request message is refused here), and answered by the
gateway itself or forwarded, as the original bytes, to the service that owns the method, with
the caller in a signed caller assertion addressed to that service.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from contextvars import ContextVar
from dataclasses import dataclass

import grpc
from google.protobuf.descriptor import ServiceDescriptor
from google.protobuf.message import DecodeError, Message
from google.protobuf.message_factory import GetMessageClass
from google.rpc import status_pb2

from shipyard.kit.assertions import CallerAssertions
from shipyard.kit.caller import Caller
from shipyard.kit.errors import InvalidArgument, ResourceExhausted, ShipyardError, Unauthenticated
from shipyard.kit.grpcio import LARGEST_MESSAGE, MESSAGE_LIMIT, Metadata, metadata_value
from shipyard.kit.rpc_errors import failure_in, rich_status, with_message
from shipyard.kit.telemetry import current_traceparent, tracing_enabled
from shipyard_gateway.app.identity import Identity
from shipyard_gateway.domain.policy import authorize

LocalMethod = Callable[[Caller, Message], Awaitable[Message]]
FORWARD_TIMEOUT_S = 30.0
# Methods whose work grows with the data they read: a version made from a directory of many GiB.
SLOW_METHODS = {"/shipyard.repo.v1.RepoService/CreateVersionFromPath": 3600.0,
                "/shipyard.repo.v1.RepoService/CollectGarbage": 3600.0}
# Methods whose requests may be larger than MESSAGE_LIMIT (every other one is refused above it):
# FindMissingBlobs takes up to 100,000 digests (about 6.6 MB).
LARGE_REQUESTS = {"/shipyard.repo.v1.RepoService/FindMissingBlobs": LARGEST_MESSAGE}
BEARER = "bearer"
# How the console passes its cookie on: "Session <token>" takes only a console session (an API
# token put in the cookie by hand is refused), where "Bearer <token>" takes either kind.
SESSION = "session"
# The address of the HTTP client being served (the HTTP edge sets it for each request): the bad
# bearer tokens it sends are counted against it. The gRPC edge counts them where it refuses a call.
HTTP_CLIENT: ContextVar[str | None] = ContextVar("shipyard_http_client", default=None)


class RelayedError(Exception):
    """A service answered with an error status; the caller gets it unchanged: its code, its message
    (``details``) and the ``google.rpc.Status`` it sent, if any (``status``, with the field and
    problem of a bad request: ``failure``)."""

    def __init__(self, code: grpc.StatusCode, details: str, status: status_pb2.Status | None = None) -> None:
        super().__init__(f"{code.name}: {details}")
        self.code = code
        self.details = details
        # The status's message must be the call's (gRPC's clients check): a relay that says more
        # than the service did says it in both.
        self.status = None if status is None else with_message(status, details)
        self.failure = failure_in(code, details, self.status)


@dataclass(frozen=True)
class Route:
    """One public unary method and who answers it."""

    method: str  # /package.Service/Method
    request: type[Message]
    response: type[Message]
    remote: grpc.aio.UnaryUnaryMultiCallable | None = None
    local: LocalMethod | None = None
    backend: str = ""  # the service a forwarded call goes to: its one name, its assertion's audience
    timeout: float = FORWARD_TIMEOUT_S  # seconds a forwarded call may take
    max_request_bytes: int = MESSAGE_LIMIT


def credential(authorization: str | None) -> tuple[str, str]:
    """(scheme, token) of an ``authorization`` value, the scheme ``bearer`` (or ``session``, the
    console's cookie); Unauthenticated if absent or of another scheme."""
    if not authorization:
        raise Unauthenticated("missing credentials: send 'authorization: Bearer <token>' "
                              "(shipyard login, or SHIPYARD_TOKEN)")
    scheme, _, token = authorization.strip().partition(" ")
    if scheme.lower() not in (BEARER, SESSION) or not token.strip():
        raise Unauthenticated("the authorization header must be 'Bearer <token>'")
    return scheme.lower(), token.strip()


class PublicApi:
    """Authenticate, authorize, validate, then answer or forward."""

    def __init__(self, identity: Identity, routes: list[Route], assertions: CallerAssertions) -> None:
        self.identity = identity
        self.routes = {r.method: r for r in routes}
        self._assertions = assertions

    async def caller(self, method: str, authorization: str | None) -> Caller:
        """The authenticated caller, allowed to call ``method``."""
        scheme, token = credential(authorization)
        try:
            caller = await self.identity.authenticate(token, method, session_only=scheme == SESSION)
        except Unauthenticated as exc:
            client = HTTP_CLIENT.get()
            if client is None:
                raise
            raise self.refused(authorization, client, exc) from None
        authorize(method, caller)
        return caller

    def refused(self, authorization: str | None, client: str, error: ShipyardError) -> ShipyardError:
        """What to answer ``client`` whose call with ``authorization`` was refused with ``error``: a
        bad bearer token is counted against the client's address (Identity.refused), which may
        answer that it has failed too often; any other refusal is answered as it is."""
        if not isinstance(error, Unauthenticated) or not authorization:
            return error
        try:
            scheme, token = credential(authorization)
        except Unauthenticated:
            return error
        return self.identity.refused(client, token, error) if scheme == BEARER else error

    async def authenticate(self, method: str, metadata: Metadata) -> Caller:
        """The caller of a gRPC call, from its metadata alone (the gRPC edge's Authenticator)."""
        return await self.caller(method, metadata_value(metadata, "authorization"))

    async def call(self, route: Route, caller: Caller, payload: bytes) -> bytes:
        """Answer one serialized request of an authenticated ``caller`` with a serialized response."""
        if len(payload) > route.max_request_bytes:
            raise ResourceExhausted(f"the request is {len(payload)} bytes; {route.method.rsplit('/', 1)[-1]} "
                                    f"takes at most {route.max_request_bytes}")
        try:
            request = route.request.FromString(payload)
        except DecodeError:
            raise InvalidArgument("request", f"the body is not a valid "
                                             f"{route.request.DESCRIPTOR.full_name} message") from None
        if route.local is not None:
            return (await route.local(caller, request)).SerializeToString()
        return await self._forward(route, caller, payload)

    async def call_message(self, route: Route, authorization: str | None, request: Message) -> Message:
        """Answer a parsed request (the HTTP/JSON edge)."""
        caller = await self.caller(route.method, authorization)
        if route.local is not None:
            return await route.local(caller, request)
        return route.response.FromString(await self._forward(route, caller, request.SerializeToString()))

    async def _forward(self, route: Route, caller: Caller, payload: bytes) -> bytes:
        assert route.remote is not None
        try:
            # wait_for_ready: a service that the supervisor is restarting delays the call
            # (within the deadline) instead of failing it.
            metadata = self.internal_metadata(caller, route.backend)
            reply: bytes = await route.remote(payload, metadata=metadata, timeout=route.timeout,
                                              wait_for_ready=True)
        except grpc.aio.AioRpcError as exc:
            details = exc.details() or ""
            if exc.code() in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED):
                details = f"{route.backend or 'the service'} is not answering: {details}"
            raise RelayedError(exc.code(), details, rich_status(exc)) from None
        return reply

    def internal_metadata(self, caller: Caller, audience: str) -> tuple[tuple[str, str], ...]:
        """What a call to service ``audience`` for ``caller`` carries: the caller's signed assertion,
        and the trace context unless OpenTelemetry's interceptor adds it."""
        asserted = self._assertions.metadata(caller, audience)
        traceparent = "" if tracing_enabled() else current_traceparent()
        return (*asserted, ("traceparent", traceparent)) if traceparent else asserted


def remote_routes(backend: str, channel: grpc.aio.Channel, service: ServiceDescriptor) -> list[Route]:
    """Routes forwarding every unary method of a service descriptor to ``backend``'s channel."""
    routes = []
    for method in service.methods:
        if method.server_streaming or method.client_streaming:
            continue
        path = f"/{service.full_name}/{method.name}"
        routes.append(Route(path, GetMessageClass(method.input_type), GetMessageClass(method.output_type),
                            remote=channel.unary_unary(path), backend=backend,
                            timeout=SLOW_METHODS.get(path, FORWARD_TIMEOUT_S),
                            max_request_bytes=LARGE_REQUESTS.get(path, MESSAGE_LIMIT)))
    return routes
