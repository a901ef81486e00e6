"""The HTTP side of the gateway: the web console and the JSON mapping of the public API.

``POST /api/<package.Service>/<Method>`` takes the request message as proto3 JSON and
answers the response message as JSON (the same mapping grpc-gateway and Twirp use); errors
are ``{"code": "INVALID_ARGUMENT", "message": "…"}`` with the matching HTTP status.
``GET /api/status`` and ``GET /healthz`` need no token; ``GET /api/events`` streams
CloudEvents as Server-Sent Events.
"""

from __future__ import annotations

import json
from typing import Any

import grpc
from aiohttp import web
from google.protobuf import json_format
from google.protobuf.message import Message

from shipyard.contracts.gateway.v1 import gateway_pb2 as pb
from shipyard.kit import errors
from shipyard.kit.bus import EventBus
from shipyard.kit.grpcio import status_of
from shipyard_gateway.adapters.backends import Backends
from shipyard_gateway.entrypoints.api import PublicApi, RelayedError
from shipyard_gateway.entrypoints.blobs_http import BlobEdge
from shipyard_gateway.entrypoints.console import add_console
from shipyard_gateway.entrypoints.grpc_edge import WATCH
from shipyard_gateway.entrypoints.local_api import status
from shipyard_gateway.entrypoints.serving_http import ServingEdge
from shipyard_gateway.entrypoints.tensorboard_http import TensorBoardEdge
from shipyard_gateway.entrypoints.watch import watch

HTTP_STATUS = {
    grpc.StatusCode.INVALID_ARGUMENT: 400, grpc.StatusCode.FAILED_PRECONDITION: 400,
    grpc.StatusCode.OUT_OF_RANGE: 400, grpc.StatusCode.UNAUTHENTICATED: 401,
    grpc.StatusCode.PERMISSION_DENIED: 403, grpc.StatusCode.NOT_FOUND: 404,
    grpc.StatusCode.ALREADY_EXISTS: 409, grpc.StatusCode.ABORTED: 409,
    grpc.StatusCode.RESOURCE_EXHAUSTED: 429, grpc.StatusCode.UNIMPLEMENTED: 501,
    grpc.StatusCode.UNAVAILABLE: 503, grpc.StatusCode.DEADLINE_EXCEEDED: 504,
}
MAX_BODY = 4 * 1024 * 1024


def _error(code: grpc.StatusCode, message: str) -> web.Response:
    return web.json_response({"code": code.name, "message": message}, status=HTTP_STATUS.get(code, 500))


def _to_json(message: Message) -> dict[str, Any]:
    return json_format.MessageToDict(message, always_print_fields_with_no_presence=True)


class HttpEdge:
    """aiohttp handlers over the public API."""

    def __init__(self, api: PublicApi, backends: Backends, bus: EventBus, blobs: BlobEdge,
                 blob_url: str) -> None:
        self._api = api
        self._backends = backends
        self._bus = bus
        self._blobs = blobs
        self._blob_url = blob_url

    def app(self) -> web.Application:
        """The aiohttp application."""
        app = web.Application(client_max_size=MAX_BODY)
        add_console(app, self._api, self._bus, self._blobs.store,
                    lambda: status(self._backends, self._bus, self._blob_url),
                    secure_cookies=self._blob_url.startswith("https://"))
        app.router.add_get("/healthz", self.healthz)
        app.router.add_get("/api/status", self.status)
        app.router.add_get("/api/events", self.events)
        self._blobs.add_routes(app)
        TensorBoardEdge(self._api).add_routes(app)
        ServingEdge(self._api, self._backends.channel("serving-svc")).add_routes(app)
        app.router.add_post("/api/{service}/{method}", self.call)
        return app

    async def healthz(self, _: web.Request) -> web.Response:
        healthy = status(self._backends, self._bus, self._blob_url).healthy
        return web.json_response({"healthy": healthy}, status=200 if healthy else 503)

    async def status(self, _: web.Request) -> web.Response:
        return web.json_response(_to_json(status(self._backends, self._bus, self._blob_url)))

    async def call(self, request: web.Request) -> web.Response:
        path = f"/{request.match_info['service']}/{request.match_info['method']}"
        route = self._api.routes.get(path)
        if route is None:
            return _error(grpc.StatusCode.NOT_FOUND, f"no public method {path[1:]!r}")
        try:
            body = await request.text()
            message = json_format.Parse(body or "{}", route.request())
        except (json_format.ParseError, UnicodeDecodeError) as exc:
            return _error(grpc.StatusCode.INVALID_ARGUMENT, f"request body: {exc}")
        try:
            reply = await self._api.call_message(route, request.headers.get("Authorization"), message)
        except errors.ShipyardError as exc:
            return _error(status_of(exc), exc.message)
        except RelayedError as exc:
            return _error(exc.code, exc.details)
        return web.json_response(_to_json(reply))

    async def events(self, request: web.Request) -> web.StreamResponse:
        """Server-Sent Events: one ``data:`` line of CloudEvent JSON per event."""
        try:
            caller = await self._api.caller(WATCH, request.headers.get("Authorization"))
            after = request.headers.get("Last-Event-ID") or request.query.get("start_sequence", "0")
            watch_request = pb.WatchRequest(types=request.query.getall("type", []), start_sequence=int(after),
                                            from_start=request.query.get("from_start") in ("1", "true"),
                                            subject_prefix=request.query.get("subject_prefix", ""))
        except errors.ShipyardError as exc:
            return _error(status_of(exc), exc.message)
        except ValueError:
            return _error(grpc.StatusCode.INVALID_ARGUMENT, "start_sequence: must be a whole number")
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream",
                                               "Cache-Control": "no-cache"})
        await response.prepare(request)
        try:
            async for event in watch(self._bus, watch_request, caller.roles):
                line = json.dumps(_to_json(event))
                await response.write(f"id: {event.sequence}\ndata: {line}\n\n".encode())
        except errors.ShipyardError as exc:
            await response.write(f"event: error\ndata: {json.dumps(exc.message)}\n\n".encode())
        return response
