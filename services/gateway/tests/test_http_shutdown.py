"""The HTTP server stopping with event streams open, and clients that go away mid-answer."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncGenerator

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import unused_port
from shipyard_gateway.entrypoints.http_server import HttpServer, quiet_disconnects
from shipyard_gateway.entrypoints.sse import Watches

from shipyard.contracts.gateway.v1 import gateway_pb2 as pb
from shipyard.kit.errors import Unavailable

DEADLINE_S = 10.0  # far past the second a stream takes to end; only a hang reaches it


async def _quiet() -> AsyncGenerator[pb.CloudEvent | None]:
    """An event stream whose filter never matches: only looks at the connection."""
    while True:
        await asyncio.sleep(0.05)
        yield None


def _streaming_app(watches: Watches) -> web.Application:
    async def events(request: web.Request) -> web.StreamResponse:
        with watches.claim("alice"):
            return await watches.send(request, _quiet(), lambda event: b"", greeting=b": connected\n\n")

    async def end_streams(_: web.Application) -> None:
        watches.end_all()

    app = web.Application(middlewares=[quiet_disconnects])
    app.router.add_get("/events", events)
    app.on_shutdown.append(end_streams)
    return app


async def test_closing_the_server_ends_its_open_event_streams() -> None:
    watches = Watches(per_user=5, heartbeat_s=15)
    listen = f"127.0.0.1:{unused_port()}"
    server = HttpServer(_streaming_app(watches), listen)
    serving = asyncio.create_task(server.serve())
    async with aiohttp.ClientSession() as session:
        async with asyncio.timeout(DEADLINE_S):
            while True:  # until the server listens
                try:
                    stream = await session.get(f"http://{listen}/events")
                    break
                except aiohttp.ClientConnectionError:
                    await asyncio.sleep(0.05)
        assert await stream.content.readline() == b": connected\n"
        serving.cancel()
        async with asyncio.timeout(DEADLINE_S):
            await server.close()
            assert await stream.content.read() == b"\n"  # the rest of the greeting, then the end
        assert watches.live == 0
    with pytest.raises(Unavailable, match="stopping"):
        watches.claim("bob")


class Noticing(logging.Handler):
    """Sets ``seen`` at the first record that says one of ``words``."""

    def __init__(self, *words: str) -> None:
        super().__init__(logging.DEBUG)
        self.words = words
        self.seen = asyncio.Event()

    def emit(self, record: logging.LogRecord) -> None:
        if any(word in record.getMessage() for word in self.words):
            self.seen.set()


async def _download(request: web.Request) -> web.StreamResponse:
    """Streams without end, as a blob download does, until a write fails."""
    response = web.StreamResponse()
    await response.prepare(request)
    while True:
        await response.write(b"x" * 65536)
        await asyncio.sleep(0.01)


async def test_a_client_going_away_mid_answer_is_no_error(caplog: pytest.LogCaptureFixture) -> None:
    app = web.Application(middlewares=[quiet_disconnects])
    app.router.add_get("/download", _download)
    listen = f"127.0.0.1:{unused_port()}"
    server = HttpServer(app, listen)
    serving = asyncio.create_task(server.serve())
    caplog.set_level(logging.DEBUG)
    watcher = Noticing("went away", "Error handling request")  # the disconnect handled, quietly or not
    logging.getLogger().addHandler(watcher)
    async with aiohttp.ClientSession() as session:
        async with asyncio.timeout(DEADLINE_S):
            while True:
                try:
                    download = await session.get(f"http://{listen}/download")
                    break
                except aiohttp.ClientConnectionError:
                    await asyncio.sleep(0.05)
        await download.content.readexactly(65536)
        download.close()  # the browser cancels the download
        async with asyncio.timeout(DEADLINE_S):
            await watcher.seen.wait()
    logging.getLogger().removeHandler(watcher)
    serving.cancel()
    await server.close()
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR] == []
