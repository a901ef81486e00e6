"""A whole embedded stack in a subprocess, for tests and benchmarks.

It runs exactly what ``make up`` runs (``shipyard up``), on free ports and a data directory
of the caller's, and offers what tests need: the processes' pids, killing one, waiting for
the supervisor to restart it, and a client signed in as the first admin.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from shipyard.client.connection import Client, Credentials
from shipyard.local.datadir import DataDir
from shipyard.local.supervisor import free_port

# The wheels the tests' run environments install from (tools/install-test-deps.sh downloads them).
WHEELHOUSE = Path(__file__).resolve().parents[3] / ".venv" / "wheelhouse"


def environment_settings(base: Path) -> dict[str, str]:
    """run-svc's settings for tests: runs' environments under ``base``/environments (one folder for a
    whole test session, so each is built once), installed offline from ``WHEELHOUSE``, never PyPI."""
    return {"SHIPYARD_ENVIRONMENTS_DIR": str(base / "environments"),
            "SHIPYARD_PACKAGE_FIND_LINKS": str(WHEELHOUSE), "SHIPYARD_PACKAGES_OFFLINE": "1"}


def wait_for(condition: Callable[[], Any], timeout: float, what: str, interval: float = 0.05) -> Any:
    """Poll ``condition`` until it returns something truthy; TimeoutError naming ``what``."""
    deadline = time.monotonic() + timeout
    last_error: Exception | None = None
    while time.monotonic() < deadline:
        try:
            result = condition()
            if result:
                return result
        except Exception as exc:  # the condition may fail while things restart
            last_error = exc
        time.sleep(interval)
    raise TimeoutError(f"timed out after {timeout:.0f}s waiting for {what}"
                       + (f" (last error: {last_error})" if last_error else ""))


@dataclass
class Stack:
    """``shipyard up`` on free ports in ``data_dir``."""

    data_dir: Path
    env: dict[str, str] = field(default_factory=dict)
    grpc_port: int = field(default_factory=free_port)
    http_port: int = field(default_factory=free_port)
    nats_port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None

    @property
    def data(self) -> DataDir:
        """The stack's data directory layout."""
        return DataDir(self.data_dir.resolve())

    @property
    def grpc_address(self) -> str:
        """The gateway's gRPC address."""
        return f"127.0.0.1:{self.grpc_port}"

    @property
    def http_url(self) -> str:
        """The console's base URL."""
        return f"http://127.0.0.1:{self.http_port}"

    @property
    def nats_url(self) -> str:
        """The embedded NATS server."""
        return f"nats://127.0.0.1:{self.nats_port}"

    def start(self, timeout: float = 90.0) -> Stack:
        """Start and wait until the gateway reports SERVING."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        out = open(self.data_dir / "up.out", "ab")  # noqa: SIM115 - owned by the child
        self.process = subprocess.Popen(
            [sys.executable, "-m", "shipyard", "up", "--data-dir", str(self.data_dir),
             "--grpc-port", str(self.grpc_port), "--http-port", str(self.http_port),
             "--nats-port", str(self.nats_port)],
            env={**os.environ, **self.env, "COLUMNS": "200"}, stdout=out, stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL)
        out.close()
        self.wait_serving(timeout)
        return self

    def serving(self) -> bool:
        """Whether the gateway's health check answers SERVING now."""
        with grpc.insecure_channel(self.grpc_address) as channel:
            try:
                reply = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=1)
            except grpc.RpcError:
                return False
        return reply.status == health_pb2.HealthCheckResponse.SERVING

    def wait_serving(self, timeout: float = 60.0) -> None:
        """Wait until every service is healthy (the gateway says SERVING)."""
        def ready() -> bool:
            if self.process is not None and self.process.poll() is not None:
                raise RuntimeError(f"shipyard up exited with {self.process.returncode}: "
                                   f"{(self.data_dir / 'up.out').read_text()[-2000:]}")
            return self.serving()
        wait_for(ready, timeout, "the gateway to report SERVING")

    def pid(self, name: str) -> int:
        """The current pid of a supervised process (nats, repo-svc, …, gateway)."""
        state = self.data.read_state() or {}
        return int(state["processes"][name]["pid"])

    def kill(self, name: str, sig: int = signal.SIGKILL) -> int:
        """Send ``sig`` to a supervised process; its pid."""
        pid = self.pid(name)
        os.kill(pid, sig)
        return pid

    def wait_restarted(self, name: str, old_pid: int, timeout: float = 60.0) -> int:
        """Wait until the supervisor runs ``name`` under a new pid."""
        return int(wait_for(lambda: self.pid(name) != old_pid and self.pid(name), timeout,
                            f"{name} to be restarted"))

    def admin_token(self) -> str:
        """The first admin's token."""
        return self.data.admin_token.read_text().strip()

    def bus_password(self, user: str) -> str:
        """A bus user's NATS password (shipyard.kit.bus_access), read as the platform reads it."""
        return str(json.loads(self.data.nats_passwords.read_text())[user])

    def client(self, token: str | None = None) -> Client:
        """A client of the gateway, as the admin unless another token is given."""
        return Client(Credentials(self.grpc_address, token or self.admin_token()))

    def __enter__(self) -> Stack:
        """Start the stack for a ``with`` block (``stop`` when it ends)."""
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.stop()

    def stop(self, timeout: float = 30.0) -> int:
        """Ctrl-C the supervisor and wait for it; its exit code."""
        if self.process is None or self.process.poll() is not None:
            return self.process.returncode if self.process else 0
        self.process.send_signal(signal.SIGINT)
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            raise
