"""The HTTP edge's listening server: started by one of the service's tasks (once its gRPC server and
bus are up), closed with the service's other resources.

Closing it ends the open event streams first (the application's ``on_shutdown``), then gives the
requests still being answered ``SHUTDOWN_S`` before cutting them off, well within the supervisor's
grace period. A client that goes away mid-answer (a page left, a download cancelled) is logged at
debug: it is what browsers do, not an error of the gateway."""

from __future__ import annotations

import asyncio
import logging

from aiohttp import web
from aiohttp.typedefs import Handler

log = logging.getLogger(__name__)

SHUTDOWN_S = 3.0


class HttpServer:
    """Serves an aiohttp application on ``listen`` (host:port)."""

    def __init__(self, app: web.Application, listen: str) -> None:
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=SHUTDOWN_S)
        self._listen = listen
        self._started = False

    async def serve(self) -> None:
        """Listen and serve until cancelled (the service stopping); ``close`` then closes it."""
        await self._runner.setup()
        self._started = True
        host, _, port = self._listen.rpartition(":")
        await web.TCPSite(self._runner, host or "127.0.0.1", int(port)).start()
        log.info("console and JSON API on http://%s", self._listen)
        await asyncio.Event().wait()

    async def close(self) -> None:
        """Stop listening, end the event streams and the other open requests (nothing if it never
        started)."""
        if self._started:
            await self._runner.cleanup()


@web.middleware
async def quiet_disconnects(request: web.Request, handler: Handler) -> web.StreamResponse:
    """A client gone mid-answer is logged at debug, not as aiohttp's "Error handling request"
    traceback; a reset of anything else (an upstream the handler reads) still is an error."""
    try:
        return await handler(request)
    except ConnectionResetError:
        if not client_gone(request):
            raise
        log.debug("client %s went away during %s %s", request.remote, request.method, request.path)
        # Never sent: aiohttp finds the connection closed and drops the answer quietly.
        return web.Response(status=499)


def client_gone(request: web.Request) -> bool:
    """Whether the client closed its connection."""
    transport = request.transport
    return transport is None or transport.is_closing()
