"""The HTTP side of the gateway: the web console and the JSON mapping of the public API.

``POST /api/<package.Service>/<Method>`` takes the request message as proto3 JSON and
answers the response message as JSON (the same mapping grpc-gateway and Twirp use); errors
are ``{"code": "INVALID_ARGUMENT", "message": "…"}`` with the matching HTTP status.
``GET /api/status`` and ``GET /healthz`` need no token and then say only whether the platform is
healthy; ``GET /api/events`` streams CloudEvents as Server-Sent Events. Every request is
authenticated before its body is read.
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
from shipyard_gateway.adapters.backends import Backends
from shipyard_gateway.domain.policy import COUNT_WATCHES
from shipyard_gateway.entrypoints.api import PublicApi, RelayedError
from shipyard_gateway.entrypoints.blobs_http import BlobEdge
from shipyard_gateway.entrypoints.console import add_console
from shipyard_gateway.entrypoints.grpc_edge import WATCH
from shipyard_gateway.entrypoints.http_guards import (
    add_security_headers,
    readable_credentials,
    remember_client,
)
from shipyard_gateway.entrypoints.http_problems import domain_error, relayed_error, status_error
from shipyard_gateway.entrypoints.http_server import quiet_disconnects
from shipyard_gateway.entrypoints.limits import EdgeLimits
from shipyard_gateway.entrypoints.local_api import status
from shipyard_gateway.entrypoints.mlflow import MlflowEdge
from shipyard_gateway.entrypoints.serving_http import ServingEdge
from shipyard_gateway.entrypoints.sse import Watches
from shipyard_gateway.entrypoints.tensorboard_http import TensorBoardEdge
from shipyard_gateway.entrypoints.watch import watch_or_beat

GET_STATUS = "/shipyard.gateway.v1.PlatformService/GetStatus"
MAX_BODY = 4 * 1024 * 1024


def _to_json(message: Message) -> dict[str, Any]:
    return json_format.MessageToDict(message, always_print_fields_with_no_presence=True)


def _sse_event(event: pb.CloudEvent) -> bytes:
    return f"id: {event.sequence}\ndata: {json.dumps(_to_json(event))}\n\n".encode()


class HttpEdge:
    """aiohttp handlers over the public API."""

    def __init__(self, api: PublicApi, backends: Backends, bus: EventBus, blobs: BlobEdge,
                 blob_url: str, limits: EdgeLimits | None = None) -> None:
        self._api = api
        self._backends = backends
        self._bus = bus
        self._blobs = blobs
        self._blob_url = blob_url
        self._limits = limits or EdgeLimits()
        self._watches = Watches(self._limits.watches_per_user, self._limits.sse_heartbeat_s)

    def app(self) -> web.Application:
        """The aiohttp application."""
        app = web.Application(client_max_size=MAX_BODY,
                              middlewares=[quiet_disconnects, remember_client, readable_credentials])
        app.on_response_prepare.append(add_security_headers)
        app.on_shutdown.append(self._end_streams)
        add_console(app, self._api, self._bus, self._blobs.store, self._public_status,
                    secure_cookies=self._blob_url.startswith("https://"), watches=self._watches,
                    limits=self._limits)
        app.router.add_get("/healthz", self.healthz)
        app.router.add_get("/api/status", self.status)
        app.router.add_get("/api/events", self.events)
        app.router.add_get("/api/watches", self.watches)
        self._blobs.add_routes(app)
        TensorBoardEdge(self._api).add_routes(app)
        ServingEdge(self._api, self._backends.channel("serving-svc")).add_routes(app)
        MlflowEdge(self._api, self._blobs.store, self._limits.upload_max_bytes).add_routes(app)
        app.router.add_post("/api/{service}/{method}", self.call)
        return app

    async def _end_streams(self, _: web.Application) -> None:
        self._watches.end_all()

    def _public_status(self) -> pb.GetStatusResponse:
        """What anyone may know before signing in: whether the platform is healthy. Where its
        services, NATS and the blob store are is for signed-in callers (GetStatus)."""
        return pb.GetStatusResponse(healthy=status(self._backends, self._bus, self._blob_url).healthy)

    async def healthz(self, _: web.Request) -> web.Response:
        healthy = self._public_status().healthy
        return web.json_response({"healthy": healthy}, status=200 if healthy else 503)

    async def status(self, request: web.Request) -> web.Response:
        """Without a token, only whether the platform is healthy; with one, GetStatus's answer."""
        authorization = request.headers.get("Authorization")
        if authorization is None:
            return web.json_response({"healthy": self._public_status().healthy})
        try:
            reply = await self._api.call_message(self._api.routes[GET_STATUS], authorization,
                                                 pb.GetStatusRequest())
        except errors.ShipyardError as exc:
            return domain_error(exc)
        return web.json_response(_to_json(reply))

    async def call(self, request: web.Request) -> web.Response:
        path = f"/{request.match_info['service']}/{request.match_info['method']}"
        route = self._api.routes.get(path)
        if route is None:
            return status_error(grpc.StatusCode.NOT_FOUND, f"no public method {path[1:]!r}")
        authorization = request.headers.get("Authorization")
        try:
            await self._api.caller(route.method, authorization)  # before a byte of the body is read
            body = await request.text()
            message = json_format.Parse(body or "{}", route.request())
        except errors.ShipyardError as exc:
            return domain_error(exc)
        except (json_format.ParseError, UnicodeDecodeError) as exc:
            return status_error(grpc.StatusCode.INVALID_ARGUMENT, f"request body: {exc}")
        try:
            reply = await self._api.call_message(route, authorization, message)
        except errors.ShipyardError as exc:
            return domain_error(exc)
        except RelayedError as exc:
            return relayed_error(exc)
        return web.json_response(_to_json(reply))

    async def events(self, request: web.Request) -> web.StreamResponse:
        """Server-Sent Events: one ``data:`` line of CloudEvent JSON per event; 429 past the streams
        one user may hold open."""
        try:
            caller = await self._api.caller(WATCH, request.headers.get("Authorization"))
            after = request.headers.get("Last-Event-ID") or request.query.get("start_sequence", "0")
            watch_request = pb.WatchRequest(types=request.query.getall("type", []), start_sequence=int(after),
                                            from_start=request.query.get("from_start") in ("1", "true"),
                                            subject_prefix=request.query.get("subject_prefix", ""))
            held = self._watches.claim(caller.user)
        except errors.ShipyardError as exc:
            return domain_error(exc)
        except ValueError:
            return status_error(grpc.StatusCode.INVALID_ARGUMENT, "start_sequence: must be a whole number")
        with held:
            events = watch_or_beat(self._bus, watch_request, caller.roles, self._watches.check_s)
            return await self._watches.send(request, events, _sse_event)

    async def watches(self, request: web.Request) -> web.Response:
        """For operators: how many event streams this gateway holds open now."""
        try:
            await self._api.caller(COUNT_WATCHES, request.headers.get("Authorization"))
        except errors.ShipyardError as exc:
            return domain_error(exc)
        return web.json_response({"live": self._watches.live})
