"""Errors of the gateway's HTTP edge as JSON: ``{"code": "INVALID_ARGUMENT", "message": "…"}``, and
for a bad request naming its field also ``"invalid-params": [{"name": field, "reason": problem}]``
(the extension RFC 9457 §3 shows), read from the service's status details, not its message."""

from __future__ import annotations

import math

import grpc
from aiohttp import web

from shipyard.kit import errors
from shipyard.kit.grpcio import status_of
from shipyard_gateway.app.identity import TooManyFailures
from shipyard_gateway.entrypoints.api import RelayedError

HTTP_STATUS = {
    grpc.StatusCode.INVALID_ARGUMENT: 400, grpc.StatusCode.FAILED_PRECONDITION: 400,
    grpc.StatusCode.OUT_OF_RANGE: 400, grpc.StatusCode.UNAUTHENTICATED: 401,
    grpc.StatusCode.PERMISSION_DENIED: 403, grpc.StatusCode.NOT_FOUND: 404,
    grpc.StatusCode.ALREADY_EXISTS: 409, grpc.StatusCode.ABORTED: 409,
    grpc.StatusCode.RESOURCE_EXHAUSTED: 429, grpc.StatusCode.UNIMPLEMENTED: 501,
    grpc.StatusCode.UNAVAILABLE: 503, grpc.StatusCode.DEADLINE_EXCEEDED: 504,
}


def problem(status: int, code: str, message: str, field: str = "", reason: str = "") -> web.Response:
    """An error response with an explicit HTTP status; with ``field``, the field a bad request got
    wrong and ``reason``, what is wrong with it."""
    body: dict[str, object] = {"code": code, "message": errors.clipped(message)}
    if field:
        body["invalid-params"] = [{"name": errors.clipped(field), "reason": errors.clipped(reason)}]
    return web.json_response(body, status=status)


def status_error(code: grpc.StatusCode, message: str, field: str = "", reason: str = "") -> web.Response:
    """An error response whose HTTP status follows its gRPC code."""
    return problem(HTTP_STATUS.get(code, 500), code.name, message, field, reason)


def relayed_error(exc: RelayedError) -> web.Response:
    """A service's error status, relayed: its code, message and the field it named."""
    return status_error(exc.code, exc.details, exc.failure.field, exc.failure.problem)


def domain_error(exc: errors.ShipyardError) -> web.Response:
    """A domain error, with the status its gRPC code maps to (and, when too many failures from the
    client were refused, when it may try again: Retry-After)."""
    field, reason = (exc.field, exc.problem) if isinstance(exc, errors.InvalidArgument) else ("", "")
    response = status_error(status_of(exc), exc.message, field, reason)
    if isinstance(exc, TooManyFailures):
        response.headers["Retry-After"] = str(math.ceil(exc.retry_after_s))
    return response
