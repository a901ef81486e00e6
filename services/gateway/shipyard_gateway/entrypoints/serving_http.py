"""``/serving/<name>/v2/…``: test inferences and deployments, through the gateway, with the
caller's token.

The caller is authenticated like any API call (``Authorization: Bearer``, or the console's cookie
for the console's own test requests) and must be allowed to send inference requests, and, to a
deployment, allowed to see deployments (the API's policy for GetDeployment: not data scientists),
all before a byte of the body is read; the request then goes to one of the endpoint's ready model
servers, which serving-svc names (GetRoutes; remembered for a second), or, for an endpoint on a
Kubernetes cluster, to the URL its KServe InferenceService answers at (KServe spreads requests over its
replicas; where KServe's own runtime answers at the InferenceService's name, ``Routes.upstream_model``,
the path's model name is put in its place and the V2 answers' model name put back). A model server that
is at its concurrency limit (429) or gone (connection refused) is skipped for the next one; when every
one is busy the caller gets 429 with ``Retry-After``, when none is ready 503 — a V2 error body either
way, never a hang.
"""

from __future__ import annotations

import itertools
import json
import time
from dataclasses import dataclass, field

import grpc
from aiohttp import ClientConnectionError, ClientSession, ClientTimeout, TCPConnector, web

from shipyard.contracts.serving.v1 import serving_pb2, serving_pb2_grpc
from shipyard.kit import errors
from shipyard.kit.caller import Caller
from shipyard.kit.grpcio import status_of
from shipyard_gateway.domain.policy import SERVING, authorize
from shipyard_gateway.entrypoints.api import PublicApi, RelayedError
from shipyard_gateway.entrypoints.console.calls import console_authorization

INFER = "/shipyard.serving/Infer"  # the policy entry of inference traffic (not a gRPC method)
GET_INFERENCE = f"{SERVING}/GetInference"
GET_DEPLOYMENT = f"{SERVING}/GetDeployment"
ROUTES_TTL_S = 1.0
MAX_BODY = 16 * 1024 * 1024
UPSTREAM_TIMEOUT_S = 60.0
HTTP_OF = {"UNAUTHENTICATED": 401, "PERMISSION_DENIED": 403, "NOT_FOUND": 404, "UNAVAILABLE": 503}
BINARY_HEADER = "Inference-Header-Content-Length"  # V2 binary tensors: the JSON part's length
PASSED = ("content-type", BINARY_HEADER.lower())
RETURNED = ("Retry-After", BINARY_HEADER)


def v2_error(status: int, message: str, retry_after: bool = False) -> web.Response:
    """An error as the V2 protocol words it: ``{"error": "…"}``."""
    return Answer.error(status, message, retry_after).response()


@dataclass(frozen=True)
class Answer:
    """What an endpoint answered (its model servers, or the edge for them): the HTTP status, the body,
    its content type and the headers passed back (``RETURNED``)."""

    status: int
    body: bytes
    content_type: str = "application/json"
    headers: dict[str, str] = field(default_factory=dict)

    @classmethod
    def error(cls, status: int, message: str, retry_after: bool = False) -> Answer:
        """An error as the V2 protocol words it: ``{"error": "…"}``."""
        return cls(status, json.dumps({"error": message}).encode(),
                   headers={"Retry-After": "1"} if retry_after else {})

    @property
    def message(self) -> str:
        """The V2 error's text, or the body as text."""
        try:
            said = json.loads(self.body)
        except ValueError:
            return self.body.decode(errors="replace")
        return str(said["error"]) if isinstance(said, dict) and "error" in said else self.body.decode()

    def response(self) -> web.Response:
        """The answer as the HTTP edge sends it."""
        reply = web.Response(body=self.body, status=self.status, content_type=self.content_type)
        reply.headers.update(self.headers)
        return reply


@dataclass
class _Known:
    routes: serving_pb2.Routes
    until: float
    turn: itertools.count[int]


class ServingEdge:
    """The proxy to model servers, for the HTTP edge (``proxy``) and the V2 gRPC edge (``admit`` and
    ``exchange``)."""

    def __init__(self, api: PublicApi, channel: grpc.aio.Channel) -> None:
        self._api = api
        self._serving = serving_pb2_grpc.ServingServiceStub(channel)
        self._known: dict[str, _Known] = {}
        self._kinds: dict[str, tuple[bool, float]] = {}  # name → (a deployment?, until)
        self._session: ClientSession | None = None

    def add_routes(self, app: web.Application) -> None:
        """Register the routes on the gateway's HTTP application."""
        app.router.add_route("*", "/serving/{name}/{tail:.*}", self.proxy)
        app.on_cleanup.append(self._close)

    async def _close(self, _: web.Application) -> None:
        await self.close()

    async def close(self) -> None:
        """Close the connections to the model servers."""
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def proxy(self, request: web.Request) -> web.StreamResponse:
        """Authenticate, pick a ready model server, pass the request on."""
        authorization = request.headers.get("Authorization") or console_authorization(request)
        name = request.match_info["name"]
        try:
            caller = await self._api.caller(INFER, authorization)
        except errors.ShipyardError as exc:
            return v2_error(HTTP_OF.get(status_of(exc).name, 400), exc.message)
        refused = await self.admit(name, caller, authorization)
        if refused is not None:
            return refused.response()
        body = await _body(request)
        if isinstance(body, web.Response):
            return body
        headers = {k: v for k, v in request.headers.items() if k.lower() in PASSED}
        answer = await self.exchange(name, caller, request.method, request.match_info["tail"], body, headers,
                                     request.query_string)
        return answer.response()

    async def admit(self, name: str, caller: Caller, authorization: str | None) -> Answer | None:
        """None when the authenticated ``caller`` may send requests to endpoint ``name``; else the refusal:
        a deployment is for whoever the API lets see deployments."""
        try:
            if await self._is_deployment(name, authorization):
                authorize(GET_DEPLOYMENT, caller)
        except errors.ShipyardError as exc:
            return Answer.error(HTTP_OF.get(status_of(exc).name, 400), exc.message)
        except RelayedError as exc:
            return Answer.error(HTTP_OF.get(exc.code.name, 502), exc.details)
        return None

    async def _is_deployment(self, name: str, authorization: str | None) -> bool:
        """Whether ``name`` is not a test inference (so a deployment, or nothing): asked as the caller,
        who may see every test inference, and remembered as long as the routes."""
        known = self._kinds.get(name)
        if known is not None and known[1] > time.monotonic():
            return known[0]
        try:
            await self._api.call_message(self._api.routes[GET_INFERENCE], authorization,
                                         serving_pb2.GetInferenceRequest(name=name))
            deployment = False
        except (errors.NotFound, RelayedError) as exc:
            if isinstance(exc, RelayedError) and exc.code != grpc.StatusCode.NOT_FOUND:
                raise
            deployment = True
        self._kinds[name] = (deployment, time.monotonic() + ROUTES_TTL_S)
        return deployment

    async def routes(self, name: str, caller: Caller) -> serving_pb2.Routes | Answer:
        """Where endpoint ``name``'s requests go now (remembered for ``ROUTES_TTL_S``), or why not."""
        known = await self._routes(name, caller)
        return known if isinstance(known, Answer) else known.routes

    async def _routes(self, name: str, caller: Caller) -> _Known | Answer:
        known = self._known.get(name)
        if known is not None and known.until > time.monotonic():
            return known
        try:
            asserted = self._api.internal_metadata(caller, "serving-svc")
            routes = await self._serving.GetRoutes(serving_pb2.GetRoutesRequest(name=name), timeout=5.0,
                                                   metadata=asserted)
        except grpc.aio.AioRpcError as exc:
            status = 404 if exc.code() == grpc.StatusCode.NOT_FOUND else 503
            return Answer.error(status, exc.details() or f"serving {name!r} is not reachable")
        known = _Known(routes, time.monotonic() + ROUTES_TTL_S, known.turn if known else itertools.count())
        self._known[name] = known
        return known

    async def exchange(self, name: str, caller: Caller, method: str, tail: str, body: bytes,
                       headers: dict[str, str], query: str = "") -> Answer:
        """Send one request of an admitted ``caller`` to endpoint ``name``'s model servers: ``tail`` is the
        path after ``/serving/<name>/``; the first model server that takes it answers."""
        known = await self._routes(name, caller)
        if isinstance(known, Answer):
            return known
        session = self._client()
        url_path = "/" + upstream_tail(tail, known.routes)
        if query:
            url_path += "?" + query
        tried = 0
        bases = _bases(known.routes)
        start = next(known.turn)
        while tried < len(bases):
            base = bases[(start + tried) % len(bases)]
            tried += 1
            try:
                async with session.request(method, f"{base}{url_path}", data=body or None,
                                           headers=headers, allow_redirects=False) as upstream:
                    if upstream.status == 429 and tried < len(bases):
                        continue  # this replica is at its limit: the next one may not be
                    payload = await upstream.read()
                    if known.routes.upstream_model and BINARY_HEADER not in upstream.headers:
                        payload = renamed_answer(payload, upstream.content_type, known.routes)
                    return Answer(upstream.status, payload, upstream.content_type,
                                  {h: upstream.headers[h] for h in RETURNED if h in upstream.headers})
            except ClientConnectionError:
                self._known.pop(name, None)  # a replica went away: ask again next time
        if not bases:
            return Answer.error(503, f"{name!r} has no model server ready yet; try again shortly",
                                retry_after=True)
        return Answer.error(503, f"{name!r}: no model server answered; try again shortly", retry_after=True)

    def _client(self) -> ClientSession:
        if self._session is None:
            self._session = ClientSession(connector=TCPConnector(limit=0),
                                          timeout=ClientTimeout(total=UPSTREAM_TIMEOUT_S, sock_connect=5))
        return self._session


def _bases(routes: serving_pb2.Routes) -> list[str]:
    """Where an endpoint's requests may go, each without a trailing '/': its cluster's URL, or its
    model servers here."""
    if routes.base_url:
        return [routes.base_url.rstrip("/")]
    return [f"http://{address}" for address in routes.addresses]


def upstream_tail(tail: str, routes: serving_pb2.Routes) -> str:
    """The path after ``/serving/<name>/`` as the model servers answer it: ``v2/models/<model>…`` with
    the model name they serve under (``routes.upstream_model``) when it differs."""
    if not routes.upstream_model:
        return tail
    ours = f"v2/models/{routes.model}"
    if tail == ours or tail.startswith(ours + "/"):
        return f"v2/models/{routes.upstream_model}{tail[len(ours):]}"
    return tail


def renamed_answer(payload: bytes, content_type: str, routes: serving_pb2.Routes) -> bytes:
    """A V2 JSON answer naming the model as the caller did: metadata's ``name`` and an inference's
    ``model_name`` say ``routes.model`` where the model servers said ``routes.upstream_model``."""
    if content_type != "application/json":
        return payload
    try:
        answer = json.loads(payload)
    except ValueError:
        return payload
    if not isinstance(answer, dict):
        return payload
    renamed = {key: routes.model if key in ("name", "model_name") and value == routes.upstream_model
               else value for key, value in answer.items()}
    return payload if renamed == answer else json.dumps(renamed).encode()


async def _body(request: web.Request) -> bytes | web.Response:
    """The request body, refused (413) past MAX_BODY — by its declared length first."""
    if request.content_length is not None and request.content_length > MAX_BODY:
        return v2_error(413, f"the request body is over {MAX_BODY} bytes")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.content.iter_any():
        size += len(chunk)
        if size > MAX_BODY:
            return v2_error(413, f"the request body is over {MAX_BODY} bytes")
        chunks.append(chunk)
    return b"".join(chunks)
