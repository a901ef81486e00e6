"""gRPC rates: reference B (the echo server) and the gateway's calls, measured alike."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from pathlib import Path

import grpc

from bench import echo, procs
from bench.load import LoadResult, drive

# ~the size of a GetProject answer, so the echo moves as many bytes as the gateway does
ECHO_PAYLOAD = b"p" * 160


@dataclass
class GrpcRate:
    """A closed-loop rate with its latencies."""

    load: LoadResult
    concurrency: int

    @property
    def window(self) -> tuple[float, float]:
        """The measured interval on the monotonic clock."""
        return self.load.window


def channel(address: str) -> grpc.aio.Channel:
    """One client channel (one HTTP/2 connection), as a plain client would have."""
    return grpc.aio.insecure_channel(address)


async def rate(
    address: str,
    method: str,
    requests: list[bytes],
    metadata: tuple[tuple[str, str], ...],
    concurrency: int,
    duration: float,
    warmup: float,
) -> GrpcRate:
    """Calls per second of ``method`` with ``concurrency`` in flight, after ``warmup`` seconds."""
    async with channel(address) as ch:
        stub = ch.unary_unary(method)

        async def call(request: bytes) -> bytes:
            return await stub(request, metadata=metadata, timeout=30.0)

        await ch.channel_ready()
        if warmup > 0:
            await drive(call, requests, concurrency, duration=warmup)
        return GrpcRate(await drive(call, requests, concurrency, duration=duration), concurrency)


def echo_reference(
    work: Path, concurrency: int, duration: float, warmup: float, metadata: tuple[tuple[str, str], ...]
) -> GrpcRate:
    """Reference B: start the echo server in its own process and load it from this one."""
    port = procs.free_port()
    server = procs.spawn([procs.python(), "-m", "bench.echo", str(port)], work / "echo.log")
    try:
        procs.wait_port(port, 30, server)
        return asyncio.run(
            rate(f"127.0.0.1:{port}", echo.METHOD, [ECHO_PAYLOAD], metadata, concurrency, duration, warmup)
        )
    finally:
        procs.stop(server)
