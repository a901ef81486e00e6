"""``/tensorboard/<run>/…``: a run's TensorBoard, through the gateway, for its signed-in users.

The caller is authenticated like any API call — an ``Authorization: Bearer`` header, or, for a
browser, the ``shipyard_token`` cookie that ``?token=…`` sets once, after that token was checked
the same way — and must be allowed to call GetTensorBoard; the request is then passed to the
TensorBoard run-svc started for the run.
"""

from __future__ import annotations

from aiohttp import ClientConnectorError, ClientSession, ClientTimeout, web
from multidict import CIMultiDict

from shipyard.contracts.run.v1 import runs_pb2
from shipyard.kit import errors
from shipyard.kit.grpcio import status_of
from shipyard_gateway.entrypoints.api import PublicApi, RelayedError
from shipyard_gateway.entrypoints.console.calls import TOKEN_COOKIE

GET_TENSORBOARD = "/shipyard.run.v1.RunService/GetTensorBoard"
COOKIE = TOKEN_COOKIE  # the console's sign-in cookie opens TensorBoard too
# Not passed on: hop-by-hop headers, and the caller's credentials (TensorBoard needs none).
DROPPED = frozenset({"connection", "keep-alive", "transfer-encoding", "te", "upgrade", "host",
                     "authorization", "cookie", "content-length", "proxy-authorization",
                     "proxy-authenticate", "trailer"})
HTTP_OF = {"UNAUTHENTICATED": 401, "PERMISSION_DENIED": 403, "NOT_FOUND": 404}


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
            response.set_cookie(COOKIE, token, httponly=True, samesite="Strict", path="/tensorboard/")
            return response
        header = request.headers.get("Authorization") or (
            f"Bearer {request.cookies[COOKIE]}" if COOKIE in request.cookies else None)
        found = await self._board(request.match_info["run"], header)
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
