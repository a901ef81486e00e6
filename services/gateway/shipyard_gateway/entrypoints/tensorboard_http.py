"""``/tensorboard/<run>/…``: a run's TensorBoard, through the gateway, for its signed-in users.

The caller is authenticated like any API call and must be allowed to call GetTensorBoard; the
request is then passed to the TensorBoard run-svc started for the run. A browser is known by:

- the console's session cookie, when it is signed in to the console (the console links here);
- or the ``shipyard_tensorboard`` cookie that ``/tensorboard/<run>/?token=…`` sets once, after the
  token was checked the same way: it is sent only to that run's board, and only for as long as
  the browser runs; the console's own cookie never takes an API token.

A client such as curl sends ``Authorization: Bearer <token>``.
"""

from __future__ import annotations

from urllib.parse import quote

from aiohttp import ClientConnectorError, ClientSession, ClientTimeout, web
from multidict import CIMultiDict

from shipyard.contracts.run.v1 import runs_pb2
from shipyard.kit import errors
from shipyard.kit.grpcio import status_of
from shipyard_gateway.entrypoints.api import PublicApi, RelayedError
from shipyard_gateway.entrypoints.console.calls import session_authorization

GET_TENSORBOARD = "/shipyard.run.v1.RunService/GetTensorBoard"
COOKIE = "shipyard_tensorboard"  # the token a ?token= link gave, for that run's board only
# Not passed on: hop-by-hop headers, and the caller's credentials (TensorBoard needs none).
DROPPED = frozenset({"connection", "keep-alive", "transfer-encoding", "te", "upgrade", "host",
                     "authorization", "cookie", "content-length", "proxy-authorization",
                     "proxy-authenticate", "trailer"})
HTTP_OF = {"UNAUTHENTICATED": 401, "PERMISSION_DENIED": 403, "NOT_FOUND": 404}


def _authorization(request: web.Request) -> str | None:
    """The request's credential: its Authorization header, the token a ?token= link left for this
    board, or the console's session."""
    if header := request.headers.get("Authorization"):
        return header
    if token := request.cookies.get(COOKIE):
        return f"Bearer {token}"
    return session_authorization(request)


def _problem(status: int, code: str, message: str) -> web.Response:
    return web.json_response({"code": code, "message": message}, status=status)


class TensorBoardEdge:
    """The proxy to runs' TensorBoards."""

    def __init__(self, api: PublicApi) -> None:
        self._api = api
        self._session: ClientSession | None = None

    def add_routes(self, app: web.Application) -> None:
        """Register the routes on the gateway's HTTP application."""
        app.router.add_route("*", "/tensorboard/{run}/{tail:.*}", self.proxy)
        app.on_cleanup.append(self._close)

    async def _close(self, _: web.Application) -> None:
        if self._session is not None:
            await self._session.close()

    async def proxy(self, request: web.Request) -> web.StreamResponse:
        """Authenticate, find the run's TensorBoard, pass the request on."""
        token = request.query.get("token")
        if token:  # a browser's first visit: keep the token in a cookie, drop it from the URL
            # Only a token that opens this run's TensorBoard is kept: a link cannot plant one.
            checked = await self._board(request.match_info["run"], f"Bearer {token}")
            if isinstance(checked, web.Response):
                return checked
            query = {k: v for k, v in request.query.items() if k != "token"}
            response = web.HTTPFound(request.rel_url.with_query(query))
            response.set_cookie(COOKIE, token, httponly=True, samesite="Strict", secure=request.secure,
                                path=f"/tensorboard/{quote(request.match_info['run'], safe='')}/")
            return response
        found = await self._board(request.match_info["run"], _authorization(request))
        if isinstance(found, web.Response):
            return found
        try:
            return await self._pass(request, found)
        except ClientConnectorError:  # started a moment ago: it is not listening yet
            starting = _problem(503, "UNAVAILABLE", f"the TensorBoard of run {request.match_info['run']!r} "
                                                    "is starting; try again in a few seconds")
            starting.headers["Retry-After"] = "2"
            return starting

    async def _board(self, run: str, authorization: str | None) -> str | web.Response:
        route = self._api.routes[GET_TENSORBOARD]
        try:
            board = await self._api.call_message(route, authorization, runs_pb2.TensorBoardRequest(name=run))
        except errors.ShipyardError as exc:
            code = status_of(exc).name
            return _problem(HTTP_OF.get(code, 400), code, exc.message)
        except RelayedError as exc:
            return _problem(HTTP_OF.get(exc.code.name, 502), exc.code.name, exc.details)
        assert isinstance(board, runs_pb2.TensorBoard)
        if board.state != runs_pb2.TENSORBOARD_STATE_RUNNING:
            return _problem(409, "FAILED_PRECONDITION",
                            f"run {run!r} has no TensorBoard running: shipyard tensorboard start {run}")
        return board.backend_address

    async def _pass(self, request: web.Request, address: str) -> web.StreamResponse:
        if self._session is None:
            self._session = ClientSession(timeout=ClientTimeout(total=None, sock_connect=10))
        headers = CIMultiDict((k, v) for k, v in request.headers.items() if k.lower() not in DROPPED)
        body = request.content if request.can_read_body else None
        url = f"http://{address}{request.path_qs}"
        async with self._session.request(request.method, url, headers=headers, data=body,
                                         allow_redirects=False) as upstream:
            response = web.StreamResponse(status=upstream.status)
            for key, value in upstream.headers.items():
                if key.lower() not in DROPPED:
                    response.headers.add(key, value)
            await response.prepare(request)
            async for chunk in upstream.content.iter_any():
                await response.write(chunk)
            await response.write_eof()
            return response
