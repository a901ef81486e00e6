"""Event streams over HTTP (Server-Sent Events): ``/api/events`` and the console's ``/console/events``.

A stream holds a JetStream consumer for as long as it is open, so the gateway bounds how many one
user may hold, counts them (an operator can read the count), and notices a client that went away
even when nothing matches its filter: a quiet stream looks at its connection every second, sends a
``: keep-alive`` comment every heartbeat (for proxies in between), and stops when the connection is
closing or a write fails. When the gateway stops, ``end_all`` ends every stream within a second
(browsers would otherwise hold the HTTP server open until it is killed).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections import Counter
from collections.abc import AsyncGenerator, Callable

from aiohttp import web

from shipyard.contracts.gateway.v1 import gateway_pb2 as pb
from shipyard.kit.errors import ResourceExhausted, ShipyardError, Unavailable
from shipyard_gateway.entrypoints.http_server import client_gone

KEEP_ALIVE = b": keep-alive\n\n"
CHECK_S = 1.0
HEADERS = {"Content-Type": "text/event-stream", "Cache-Control": "no-cache"}


class Watches:
    """The open event streams of this gateway, per user."""

    def __init__(self, per_user: int, heartbeat_s: float) -> None:
        self.per_user = per_user
        self.heartbeat_s = heartbeat_s
        # How often a quiet stream looks at its connection: a page left behind gives its stream
        # back within a second, not a heartbeat (a user clicking through pages opens many).
        self.check_s = min(CHECK_S, heartbeat_s)
        self._open: Counter[str] = Counter()
        self._ending = False

    @property
    def live(self) -> int:
        """Streams open now, of every user."""
        return sum(self._open.values())

    def claim(self, user: str) -> contextlib.ExitStack:
        """A stream for ``user``, given back when the returned context exits; ResourceExhausted when
        the user holds as many as one user may; Unavailable once the gateway is stopping."""
        if self._ending:
            raise Unavailable("the gateway is stopping; retry when it is back")
        if self._open[user] >= self.per_user:
            raise ResourceExhausted(
                f"{user} has {self._open[user]} event streams open, as many as one user may "
                f"(SHIPYARD_WATCHES_PER_USER={self.per_user}); close one and try again"
            )
        self._open[user] += 1
        held = contextlib.ExitStack()
        held.callback(self._release, user)
        return held

    def end_all(self) -> None:
        """End every open stream at its next look at the connection, and take no new ones (the
        gateway is stopping)."""
        self._ending = True

    def _release(self, user: str) -> None:
        self._open[user] -= 1
        if self._open[user] <= 0:
            del self._open[user]

    async def send(
        self,
        request: web.Request,
        events: AsyncGenerator[pb.CloudEvent | None],
        render: Callable[[pb.CloudEvent], bytes],
        greeting: bytes = b"",
    ) -> web.StreamResponse:
        """Write ``events`` as Server-Sent Events until the client goes away (``events`` yields None
        every ``check_s`` without one: a look at the connection, and every ``heartbeat_s`` a
        keep-alive); the events' consumer is closed whichever way the stream ends."""
        response = web.StreamResponse(headers=HEADERS)
        clock = asyncio.get_running_loop().time
        async with contextlib.aclosing(events):
            with contextlib.suppress(ConnectionResetError):  # aiohttp's "cannot write to closing transport"
                try:
                    await response.prepare(request)
                    await response.write(greeting or KEEP_ALIVE)
                    written = clock()
                    async for event in events:
                        if self._ending or client_gone(request):
                            break
                        if event is None and clock() - written < self.heartbeat_s:
                            continue
                        await response.write(KEEP_ALIVE if event is None else render(event))
                        written = clock()
                except ShipyardError as exc:
                    await response.write(f"event: error\ndata: {json.dumps(exc.message)}\n\n".encode())
        return response
