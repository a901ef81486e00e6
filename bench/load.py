"""The closed-loop load generator: a fixed number of calls in flight on one grpc.aio channel.

Every gRPC figure of the benchmark (the echo reference and the gateway) is driven by this
same code with pre-serialized request bytes and unparsed response bytes, so the client's
cost is the same on both sides of a ratio and the ratio measures the servers.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field

Call = Callable[[bytes], Awaitable[bytes]]


@dataclass
class LoadResult:
    """What one load run achieved."""

    calls: int = 0
    errors: int = 0
    elapsed: float = 0.0
    latencies: list[float] = field(default_factory=list)  # seconds, successful calls only
    first_error: str = ""
    started: float = 0.0  # perf_counter when the first call went out
    finished: float = 0.0  # perf_counter when the last call came back

    @property
    def window(self) -> tuple[float, float]:
        """The measured interval on the monotonic clock (perf_counter is CLOCK_MONOTONIC too on Linux,
        but converting keeps this right anywhere)."""
        shift = time.monotonic() - time.perf_counter()
        return self.started + shift, self.finished + shift

    @property
    def rate(self) -> float:
        """Successful calls per second."""
        return self.calls / self.elapsed if self.elapsed > 0 else 0.0

    def percentile(self, q: float) -> float:
        """Latency percentile ``q`` (0-100) in seconds (nearest rank)."""
        if not self.latencies:
            return float("nan")
        ordered = sorted(self.latencies)
        rank = max(0, min(len(ordered) - 1, round(q / 100 * len(ordered) + 0.5) - 1))
        return ordered[rank]


async def drive(
    call: Call,
    requests: Sequence[bytes],
    concurrency: int,
    *,
    count: int | None = None,
    duration: float | None = None,
) -> LoadResult:
    """Issue calls with ``concurrency`` in flight: ``count`` calls (request i is
    ``requests[i % len(requests)]``), or as many as fit in ``duration`` seconds."""
    if (count is None) == (duration is None):
        raise ValueError("give exactly one of count and duration")
    result = LoadResult()
    next_index = 0
    clock = time.perf_counter
    result.started = clock()
    deadline = result.started + duration if duration is not None else float("inf")
    limit = count if count is not None else -1
    n_requests = len(requests)

    async def worker() -> None:
        nonlocal next_index
        while True:
            if next_index == limit or clock() >= deadline:
                return
            index = next_index
            next_index += 1
            begin = clock()
            try:
                await call(requests[index % n_requests])
            except Exception as exc:
                result.errors += 1
                if not result.first_error:
                    details = getattr(exc, "details", None)
                    text = details() if callable(details) else str(exc)
                    result.first_error = f"{type(exc).__name__}: {text}"
                continue
            end = clock()
            result.latencies.append(end - begin)
            result.calls += 1

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    result.finished = clock()
    result.elapsed = result.finished - result.started
    return result
