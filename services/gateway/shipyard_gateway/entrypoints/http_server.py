"""The HTTP edge's listening server: started by one of the service's tasks (once its gRPC server and
bus are up), closed with the service's other resources."""

from __future__ import annotations

import asyncio
import logging

from aiohttp import web

log = logging.getLogger(__name__)


class HttpServer:
    """Serves an aiohttp application on ``listen`` (host:port)."""

    def __init__(self, app: web.Application, listen: str) -> None:
        self._runner = web.AppRunner(app, access_log=None)
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
        """Stop listening and end the open connections (nothing if it never started)."""
        if self._started:
            await self._runner.cleanup()
