"""The life of one service process: store, bus, outbox relay, gRPC server, health, shutdown.

Each service's bootstrap builds its adapters and hands them here with what to serve; this
module owns the order of start-up and shut-down, so every service behaves the same:
NOT_SERVING until its store and the bus are up, SERVING while both answer and its disks have
room (``shipyard.kit.health``), a clean stop on SIGTERM or SIGINT.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import time
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import grpc

from shipyard.contracts.common.v1 import health_pb2, health_pb2_grpc
from shipyard.kit.assertions import CallerAssertions, load_internal_key
from shipyard.kit.bus import EventBus
from shipyard.kit.former_folders import FolderConflict, move_former_folder
from shipyard.kit.grpcio import Authentication, Health, assertion_authenticator, enable_reflection, new_server
from shipyard.kit.health import Check, Report, blob_dir, disk_checks, store_dir
from shipyard.kit.inbox import INBOX
from shipyard.kit.logs import setup_logging
from shipyard.kit.outbox import OUTBOX, OutboxRelay
from shipyard.kit.settings import Settings
from shipyard.kit.store.factory import open_document_store
from shipyard.kit.store.port import Collection, DocumentStore
from shipyard.kit.telemetry import setup_tracing

log = logging.getLogger(__name__)
R = TypeVar("R")
S = TypeVar("S", bound=Settings)


@dataclass
class Runtime:
    """What a running service is made of; bootstrap fills in the servicers."""

    settings: Settings
    store: DocumentStore
    bus: EventBus
    relay: OutboxRelay
    server: grpc.aio.Server
    # Signs this process's calls to other services, and verifies the calls addressed to it.
    assertions: CallerAssertions
    # The server's authentication (the gateway swaps in bearer tokens for its public edge).
    authentication: Authentication
    service_names: list[str] = field(default_factory=list)
    tasks: list[Callable[[], Coroutine[Any, Any, None]]] = field(default_factory=list)
    # Further conditions for SERVING (the gateway adds "every service is healthy").
    ready_checks: list[Callable[[], bool]] = field(default_factory=list)
    # Further folders on local disk whose free space health checks (run-svc's workspaces).
    disk_paths: list[Path] = field(default_factory=list)
    # What the last health check found (the gateway shows its own beside the services').
    health: Report = field(default_factory=lambda: Report((Check("start", False, "starting"),)))
    # Everything the service's wiring opened (blob stores, channels, clients), closed in reverse
    # order when the service stops, after its server and tasks.
    resources: contextlib.AsyncExitStack = field(default_factory=contextlib.AsyncExitStack)

    def settings_as(self, kind: type[S]) -> S:
        """The settings as the service's own class (``python -m shipyard_<x>`` builds that class)."""
        if not isinstance(self.settings, kind):
            raise TypeError(f"{self.settings.service} runs with {kind.__name__}, not "
                            f"{type(self.settings).__name__} (python -m builds them)")
        return self.settings

    async def enter(self, resource: AbstractAsyncContextManager[R]) -> R:
        """Open ``resource`` for the life of the service; it is closed when the service stops."""
        return await self.resources.enter_async_context(resource)

    def close_on_stop(self, close: Callable[[], Awaitable[object]]) -> None:
        """Call ``close`` when the service stops (for what is opened without a context manager)."""
        self.resources.push_async_callback(close)


Wiring = Callable[[Runtime], Awaitable[None]]


def build_runtime(settings: Settings, tracing: bool) -> Runtime:
    """The adapters a service process runs on, built from settings."""
    store = open_document_store(settings.default_store_url())
    bus = EventBus(settings.nats_url, source=f"shipyard/{settings.service}",
                   stream_replicas=settings.stream_replicas, user=settings.nats_user,
                   password=settings.nats_password)
    # The bus password is this process's alone: no child (a model server, git, TensorBoard) inherits it.
    os.environ.pop("SHIPYARD_NATS_PASSWORD", None)
    hold = settings.failpoint("outbox.hold")
    relay = OutboxRelay(store, bus, hold_file=Path(hold) if hold else None)
    assertions = CallerAssertions(internal_key(settings), settings.service)
    authentication = Authentication(assertion_authenticator(assertions))
    server = new_server(tracing, authentication)
    return Runtime(settings, store, bus, relay, server, assertions, authentication)


def internal_key(settings: Settings) -> bytes:
    """The platform's internal key, from the settings or the key file.

    Once read, the key leaves this process's environment, so no child (a model server, git,
    TensorBoard) inherits it.
    """
    key = load_internal_key(settings.internal_key,
                            settings.internal_key_file or settings.data_dir / "internal.key")
    os.environ.pop("SHIPYARD_INTERNAL_KEY", None)
    return key


async def _connect(bus: EventBus) -> None:
    """Start the bus, retrying while NATS is not there yet (the supervisor may be starting it)."""
    delay = 0.1
    while True:
        try:
            await bus.start()
            return
        except Exception as exc:
            log.warning("bus not reachable (%s); retrying in %.1fs", exc, delay)
            with contextlib.suppress(Exception):
                await bus.stop()
            await asyncio.sleep(delay)
            delay = min(delay * 2, 2.0)


# How often the bus and the disks are looked at (a round trip to NATS, statvfs), and how long
# NATS may take to answer: a frozen server keeps its connection open, so only asking tells.
SLOW_CHECKS_S = 2.0
BUS_TIMEOUT_S = 1.5


class HealthReports(health_pb2_grpc.HealthReportServiceServicer):
    """Answers GetHealthReport with the service's last health report."""

    def __init__(self, runtime: Runtime) -> None:
        self._runtime = runtime

    async def GetHealthReport(self, request: health_pb2.GetHealthReportRequest,
                              context: grpc.aio.ServicerContext) -> health_pb2.HealthReport:
        report = self._runtime.health
        return health_pb2.HealthReport(healthy=report.healthy, checks=[
            health_pb2.HealthCheck(name=c.name, healthy=c.healthy, detail=c.detail) for c in report.checks])


def disk_paths(settings: Settings) -> list[Path]:
    """Where a service writes on local disk: its store's folder, the blob store's when it is a
    folder, and the data directory (run workspaces, model servers' files, the embedded NATS's
    storage)."""
    found = [store_dir(settings.default_store_url()), blob_dir(settings.default_blob_url()),
             settings.data_dir.resolve()]
    return [path for path in found if path is not None]


async def _bus_check(bus: EventBus) -> Check:
    if not bus.connected:
        return Check("bus", False, "NATS not connected (reconnecting)")
    try:
        await bus.round_trip(BUS_TIMEOUT_S)
    except Exception as exc:
        return Check("bus", False, f"NATS not answering within {BUS_TIMEOUT_S:g}s "
                                   f"({type(exc).__name__}: {exc or 'no reply'})")
    return Check("bus", True, "NATS answering")


async def _store_check(store: DocumentStore) -> Check:
    try:
        await store.ping()
    except Exception as exc:
        return Check("store", False, f"not answering ({exc})")
    return Check("store", True, "answering")


async def _watch_health(runtime: Runtime, health: Health) -> None:
    names = ["", *runtime.service_names]
    serving: bool | None = None
    slow: list[Check] = []
    slow_at = 0.0
    paths = [*disk_paths(runtime.settings), *runtime.disk_paths]
    while True:
        if time.monotonic() >= slow_at:
            slow = [await _bus_check(runtime.bus),
                    *await asyncio.to_thread(disk_checks, paths, runtime.settings.min_free_bytes)]
            slow_at = time.monotonic() + SLOW_CHECKS_S
        checks = [await _store_check(runtime.store), *slow]
        try:
            ready = all(check() for check in runtime.ready_checks)
        except Exception:
            ready = False
        if not ready:
            checks.append(Check("ready", False, "not ready (a service it depends on is unhealthy)"))
        runtime.health = Report(tuple(checks))
        now = runtime.health.healthy
        if now != serving:
            await health.set(now, names)
            log.info("health: %s", "SERVING" if now else f"NOT_SERVING: {runtime.health.summary}")
            serving = now
        await asyncio.sleep(0.5)


async def serve(settings: Settings, collections: Sequence[Collection], wire: Wiring) -> None:
    """Run one service until SIGTERM/SIGINT."""
    setup_logging(settings.service, settings.log_level, settings.log_file)
    try:  # before anything opens the service's files
        move_former_folder(settings)
    except FolderConflict as exc:
        log.error("%s", exc)
        raise SystemExit(1) from None
    runtime = build_runtime(settings, setup_tracing(settings.service, settings.otel_exporter))
    await runtime.store.open([*collections, OUTBOX, INBOX])
    await wire(runtime)
    health = Health(runtime.server)
    health_pb2_grpc.add_HealthReportServiceServicer_to_server(HealthReports(runtime), runtime.server)
    await health.set(False, ["", *runtime.service_names])
    enable_reflection(runtime.server, runtime.service_names)
    port = runtime.server.add_insecure_port(settings.grpc_listen)
    await runtime.server.start()
    log.info("%s listening on %s (port %d)", settings.service, settings.grpc_listen, port)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await _connect(runtime.bus)
    tasks = [asyncio.create_task(runtime.relay.run()), asyncio.create_task(_watch_health(runtime, health)),
             *(asyncio.create_task(task()) for task in runtime.tasks)]
    failed: list[BaseException] = []

    def crashed(task: asyncio.Task[None]) -> None:
        # A background task that dies takes the process down, so the supervisor restarts it,
        # rather than leaving a service that answers health checks but no longer works.
        if not task.cancelled() and (exc := task.exception()) is not None:
            log.error("%s: a background task failed: %r", settings.service, exc, exc_info=exc)
            failed.append(exc)
            stop.set()

    for task in tasks:
        task.add_done_callback(crashed)
    await stop.wait()
    log.info("%s stopping", settings.service)
    await health.set(False, ["", *runtime.service_names])
    await runtime.server.stop(grace=2.0)
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    try:
        await runtime.resources.aclose()
    except Exception:
        log.exception("%s: closing its resources failed", settings.service)
    with contextlib.suppress(Exception):
        await runtime.bus.stop()
    await runtime.store.close()
    if failed:
        raise SystemExit(1)
