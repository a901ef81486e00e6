"""MLflow's REST API on the wire: reading its requests, writing its errors, calling the platform.

MLflow's client sends GET parameters in the query string and POST bodies as proto3 JSON (64-bit
integers as strings, NaN and infinities as "NaN" / "Infinity"); every error is
``{"error_code": "RESOURCE_DOES_NOT_EXIST", "message": "…"}`` with the HTTP status MLflow gives it.
Calls go through the public API's table (``PublicApi``), so a caller is authenticated and
authorized exactly as on Shipyard's own API.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from typing import Any, TypeVar

import grpc
from aiohttp import web
from google.protobuf.message import Message

from shipyard.kit import errors
from shipyard.kit.grpcio import status_of
from shipyard_gateway.entrypoints.api import PublicApi, RelayedError

M = TypeVar("M", bound=Message)
# gRPC status → (MLflow's error code, HTTP status), as MLflow's server answers each.
MLFLOW_ERRORS: dict[grpc.StatusCode, tuple[str, int]] = {
    grpc.StatusCode.INVALID_ARGUMENT: ("INVALID_PARAMETER_VALUE", 400),
    grpc.StatusCode.FAILED_PRECONDITION: ("INVALID_STATE", 400),
    grpc.StatusCode.OUT_OF_RANGE: ("INVALID_PARAMETER_VALUE", 400),
    grpc.StatusCode.NOT_FOUND: ("RESOURCE_DOES_NOT_EXIST", 404),
    grpc.StatusCode.ALREADY_EXISTS: ("RESOURCE_ALREADY_EXISTS", 400),
    grpc.StatusCode.PERMISSION_DENIED: ("PERMISSION_DENIED", 403),
    grpc.StatusCode.UNAUTHENTICATED: ("UNAUTHENTICATED", 401),
    grpc.StatusCode.RESOURCE_EXHAUSTED: ("REQUEST_LIMIT_EXCEEDED", 429),
    grpc.StatusCode.ABORTED: ("ABORTED", 409),
    grpc.StatusCode.UNAVAILABLE: ("TEMPORARILY_UNAVAILABLE", 503),
    grpc.StatusCode.DEADLINE_EXCEEDED: ("TEMPORARILY_UNAVAILABLE", 503),
    grpc.StatusCode.UNIMPLEMENTED: ("NOT_IMPLEMENTED", 501),
}


class MlflowError(Exception):
    """An error answered in MLflow's format."""

    def __init__(self, error_code: str, message: str, status: int) -> None:
        super().__init__(message)
        self.error_code = error_code
        self.message = message
        self.status = status

    def response(self) -> web.Response:
        """The error as MLflow's server sends it."""
        return web.json_response(
            {"error_code": self.error_code, "message": errors.clipped(self.message)}, status=self.status
        )


def invalid(message: str) -> MlflowError:
    """A request MLflow's rules refuse."""
    return MlflowError("INVALID_PARAMETER_VALUE", message, 400)


def not_found(message: str) -> MlflowError:
    """A resource that does not exist."""
    return MlflowError("RESOURCE_DOES_NOT_EXIST", message, 404)


def not_implemented(what: str) -> MlflowError:
    """An MLflow endpoint or option Shipyard does not provide (never a silent success)."""
    return MlflowError(
        "NOT_IMPLEMENTED",
        f"{what} is not supported by Shipyard's MLflow API (see the README's MLflow section)",
        501,
    )


def from_status(code: grpc.StatusCode, message: str) -> MlflowError:
    """The MLflow error for a platform error status."""
    error_code, status = MLFLOW_ERRORS.get(code, ("INTERNAL_ERROR", 500))
    return MlflowError(error_code, message, status)


def from_domain(exc: errors.ShipyardError) -> MlflowError:
    """The MLflow error for a domain error (authentication, authorization, bad input)."""
    return from_status(status_of(exc), exc.message)


def mlflow_json(data: Any) -> web.Response:
    """A JSON answer; NaN and infinities written as MLflow's server writes them."""
    return web.Response(text=json.dumps(data, allow_nan=True), content_type="application/json")


class Params:
    """One request's parameters: the query string's and the JSON body's, checked by type."""

    def __init__(self, query: dict[str, list[str]], body: dict[str, Any]) -> None:
        self._query = query
        self._body = body

    @classmethod
    async def of(cls, request: web.Request) -> Params:
        """The request's parameters; INVALID_PARAMETER_VALUE for a body that is not a JSON object."""
        query = {key: request.query.getall(key) for key in request.query}
        body: Any = {}
        if request.can_read_body and request.method != "GET":
            text = await request.text()
            try:
                body = json.loads(text) if text.strip() else {}
            except ValueError as exc:
                raise MlflowError("MALFORMED_REQUEST", f"the request body is not JSON: {exc}", 400) from None
        if not isinstance(body, dict):
            raise MlflowError("MALFORMED_REQUEST", "the request body must be a JSON object", 400)
        return cls(query, body)

    def _raw(self, name: str) -> Any:
        if name in self._body:
            return self._body[name]
        values = self._query.get(name)
        return values[0] if values else None

    def string(self, name: str, required: bool = False, default: str = "") -> str:
        """A string parameter; INVALID_PARAMETER_VALUE naming it when required and missing."""
        value = self._raw(name)
        if value is None or value == "":
            if required:
                raise invalid(f"Missing value for required parameter '{name}'")
            return default
        if not isinstance(value, str):
            raise invalid(f"Invalid value {value!r} for parameter '{name}': it must be a string")
        return value

    def integer(self, name: str, default: int = 0) -> int:
        """An int64 parameter (a number, or a string of digits as proto3 JSON writes it)."""
        value = self._raw(name)
        if value is None or value == "":
            return default
        return as_int(name, value)

    def number(self, name: str, required: bool = False) -> float:
        """A double parameter: a number, or "NaN" / "Infinity" / "-Infinity"."""
        value = self._raw(name)
        if value is None:
            if required:
                raise invalid(f"Missing value for required parameter '{name}'")
            return 0.0
        return as_float(name, value)

    def strings(self, name: str) -> list[str]:
        """A repeated string parameter."""
        if name in self._body:
            value = self._body[name]
            if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                raise invalid(f"Invalid value for parameter '{name}': it must be a list of strings")
            return value
        return list(self._query.get(name, []))

    def objects(self, name: str) -> list[dict[str, Any]]:
        """A repeated message parameter (a list of JSON objects)."""
        value = self._body.get(name, [])
        if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
            raise invalid(f"Invalid value for parameter '{name}': it must be a list of objects")
        return value

    def key_values(self, name: str) -> dict[str, str]:
        """``[{"key": …, "value": …}]`` (tags, params) as a dict."""
        return dict(pairs(name, self.objects(name)))


def pairs(name: str, items: list[dict[str, Any]]) -> Iterator[tuple[str, str]]:
    """The (key, value) of each ``{"key", "value"}`` object; INVALID_PARAMETER_VALUE naming a bad one."""
    for item in items:
        key, value = item.get("key"), item.get("value", "")
        if not isinstance(key, str) or not isinstance(value, str):
            raise invalid(f"Invalid value {item!r} in '{name}': key and value must be strings")
        yield key, value


def as_int(name: str, value: Any) -> int:
    """An int64 as proto3 JSON writes it."""
    if isinstance(value, bool):
        raise invalid(f"Invalid value {value!r} for parameter '{name}': it must be an integer")
    try:
        return int(value)
    except (TypeError, ValueError):
        raise invalid(f"Invalid value {value!r} for parameter '{name}': it must be an integer") from None


def as_float(name: str, value: Any) -> float:
    """A double as proto3 JSON writes it (NaN and infinities included)."""
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise invalid(f"Invalid value {value!r} for parameter '{name}': it must be a number")
    try:
        return float(value)
    except ValueError:
        raise invalid(f"Invalid value {value!r} for parameter '{name}': it must be a number") from None


def json_number(value: float) -> float | str:
    """A double for MLflow's JSON: NaN and infinities as proto3 JSON's strings."""
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "Infinity" if value > 0 else "-Infinity"
    return value


class Platform:
    """Calls the platform's public methods as the request's caller."""

    def __init__(self, api: PublicApi, authorization: str | None) -> None:
        self._api = api
        self.authorization = authorization

    async def call(self, method: str, request: Message, response: type[M]) -> M:
        """Call ``method`` (``/package.Service/Method``); its error as an MlflowError."""
        route = self._api.routes[method]
        try:
            reply = await self._api.call_message(route, self.authorization, request)
        except errors.ShipyardError as exc:
            raise from_domain(exc) from None
        except RelayedError as exc:
            raise from_status(exc.code, exc.details) from None
        assert isinstance(reply, response)
        return reply
