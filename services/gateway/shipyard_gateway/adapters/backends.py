"""Channels from the gateway to the services, and their health as the gateway sees it."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass, field

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc
from opentelemetry.instrumentation.grpc import aio_client_interceptors

from shipyard.contracts.common.v1 import health_pb2 as reports_pb2
from shipyard.contracts.common.v1 import health_pb2_grpc as reports_pb2_grpc
from shipyard.kit.assertions import CallerAssertions
from shipyard.kit.caller import Caller
from shipyard.kit.grpcio import LARGEST_MESSAGE
from shipyard.kit.health import Check, Report
from shipyard.kit.telemetry import tracing_enabled

log = logging.getLogger(__name__)

# Who the gateway's own health questions come from (signed like every internal call).
HEALTH_CALLER = Caller("gateway", frozenset())


@dataclass
class Backend:
    """One service behind the gateway."""

    name: str
    address: str
    channel: grpc.aio.Channel
    healthy: bool = False
    detail: str = "not checked yet"


@dataclass
class Backends:
    """Every service the gateway forwards to."""

    services: dict[str, Backend] = field(default_factory=dict)
    # Signs the questions for a service's health report (why it is unhealthy); None: not asked.
    assertions: CallerAssertions | None = None
    # The gateway's own last health report (its bus and its disks).
    own_health: Callable[[], Report] = lambda: Report(())

    @classmethod
    def connect(cls, addresses: dict[str, str], assertions: CallerAssertions | None = None,
                own_health: Callable[[], Report] = lambda: Report(())) -> Backends:
        """Open one channel per service (lazily connected by gRPC); ``assertions`` sign the
        questions that ask an unhealthy service why, ``own_health`` is the gateway's own."""
        # round_robin spreads calls over every replica a (headless) Service name resolves to.
        # The largest reply a service sends: FindMissingBlobs naming 100,000 missing digests.
        options = [("grpc.lb_policy_name", "round_robin"),
                   ("grpc.max_receive_message_length", LARGEST_MESSAGE)]
        interceptors = aio_client_interceptors() if tracing_enabled() else None
        return cls({name: Backend(name, address, grpc.aio.insecure_channel(
            address, options=options, interceptors=interceptors))
            for name, address in addresses.items()}, assertions, own_health)

    def channel(self, name: str) -> grpc.aio.Channel:
        """The channel to service ``name``."""
        return self.services[name].channel

    @property
    def all_healthy(self) -> bool:
        """Whether every service answered SERVING at the last check."""
        return all(b.healthy for b in self.services.values())

    async def check(self) -> None:
        """Ask each service's standard health service, concurrently."""
        await asyncio.gather(*(self._check(b) for b in self.services.values()))

    async def _check(self, backend: Backend) -> None:
        stub = health_pb2_grpc.HealthStub(backend.channel)
        try:
            reply = await stub.Check(health_pb2.HealthCheckRequest(service=""), timeout=1.0)
            backend.healthy = reply.status == health_pb2.HealthCheckResponse.SERVING
            backend.detail = health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status)
        except grpc.aio.AioRpcError as exc:
            backend.healthy = False
            backend.detail = f"{exc.code().name}: {exc.details()}"
            return
        if not backend.healthy and self.assertions is not None:
            backend.detail = await self._why(backend, self.assertions)

    async def _why(self, backend: Backend, assertions: CallerAssertions) -> str:
        """What an unhealthy service says is wrong ("disk /data: 12.0 MiB free …"), from its report."""
        stub = reports_pb2_grpc.HealthReportServiceStub(backend.channel)
        # A service's assertions are addressed to its one name (repo-svc), as the API's are.
        asserted = assertions.metadata(HEALTH_CALLER, backend.name)
        try:
            reply = await stub.GetHealthReport(reports_pb2.GetHealthReportRequest(), timeout=1.0,
                                               metadata=asserted)
        except grpc.aio.AioRpcError as exc:
            return f"NOT_SERVING (its report: {exc.code().name}: {exc.details()})"
        return Report(tuple(Check(c.name, c.healthy, c.detail) for c in reply.checks)).summary

    async def watch(self, interval: float = 0.5) -> None:
        """Check forever, logging changes."""
        before: dict[str, bool] = {}
        while True:
            await self.check()
            for backend in self.services.values():
                if before.get(backend.name) != backend.healthy:
                    log.info("%s is %s (%s)", backend.name, "healthy" if backend.healthy else "unhealthy",
                             backend.detail)
                    before[backend.name] = backend.healthy
            await asyncio.sleep(interval)

    async def close(self) -> None:
        """Close every channel."""
        await asyncio.gather(*(b.channel.close() for b in self.services.values()))
