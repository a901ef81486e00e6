"""Errors of the gateway's HTTP edge as JSON: ``{"code": "INVALID_ARGUMENT", "message": "…"}``."""

from __future__ import annotations

import math

import grpc
from aiohttp import web

from shipyard.kit import errors
from shipyard.kit.grpcio import status_of
from shipyard_gateway.app.identity import TooManyFailures

HTTP_STATUS = {
    grpc.StatusCode.INVALID_ARGUMENT: 400, grpc.StatusCode.FAILED_PRECONDITION: 400,
    grpc.StatusCode.OUT_OF_RANGE: 400, grpc.StatusCode.UNAUTHENTICATED: 401,
    grpc.StatusCode.PERMISSION_DENIED: 403, grpc.StatusCode.NOT_FOUND: 404,
    grpc.StatusCode.ALREADY_EXISTS: 409, grpc.StatusCode.ABORTED: 409,
    grpc.StatusCode.RESOURCE_EXHAUSTED: 429, grpc.StatusCode.UNIMPLEMENTED: 501,
    grpc.StatusCode.UNAVAILABLE: 503, grpc.StatusCode.DEADLINE_EXCEEDED: 504,
}


def problem(status: int, code: str, message: str) -> web.Response:
    """An error response with an explicit HTTP status."""
    return web.json_response({"code": code, "message": errors.clipped(message)}, status=status)


def status_error(code: grpc.StatusCode, message: str) -> web.Response:
    """An error response whose HTTP status follows its gRPC code."""
    return problem(HTTP_STATUS.get(code, 500), code.name, message)


def domain_error(exc: errors.ShipyardError) -> web.Response:
    """A domain error, with the status its gRPC code maps to (and, when too many failures from the
    client were refused, when it may try again: Retry-After)."""
    response = status_error(status_of(exc), exc.message)
    if isinstance(exc, TooManyFailures):
        response.headers["Retry-After"] = str(math.ceil(exc.retry_after_s))
    return response
