"""Channels from the gateway to the services, and their health as the gateway sees it."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc
from opentelemetry.instrumentation.grpc import aio_client_interceptors

from shipyard.kit.grpcio import LARGEST_MESSAGE
from shipyard.kit.telemetry import tracing_enabled

log = logging.getLogger(__name__)


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

    @classmethod
    def connect(cls, addresses: dict[str, str]) -> Backends:
        """Open one channel per service (lazily connected by gRPC)."""
        # round_robin spreads calls over every replica a (headless) Service name resolves to.
        # The largest reply a service sends: FindMissingBlobs naming 100,000 missing digests.
        options = [("grpc.lb_policy_name", "round_robin"),
                   ("grpc.max_receive_message_length", LARGEST_MESSAGE)]
        interceptors = aio_client_interceptors() if tracing_enabled() else None
        return cls({name: Backend(name, address, grpc.aio.insecure_channel(
            address, options=options, interceptors=interceptors))
            for name, address in addresses.items()})

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
