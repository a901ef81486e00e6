"""Reference A: raw nats-py JetStream publishes against a fresh nats-server.

The server is started here (``-js -sd <tmp>``, nothing else) on a free port; the stream is
a file-storage stream like SHIPYARD_EVENTS. Two rates are measured on it:

* awaited: ``await js.publish(...)`` one message after another (each ack awaited) — the
  plain rate, and the reference the whole-path goal is a ratio of;
* pipelined: ``publish_async`` in batches of 1,000, then the batch's acks awaited together
  (what the platform's outbox relay does).
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from pathlib import Path

import nats
from nats.js.api import StorageType, StreamConfig

from bench import procs

STREAM = "BENCH_REF"
SUBJECT = "bench.ref.created"
# About the size of a ProjectCreated event's protobuf body.
PAYLOAD = b"x" * 160


@dataclass
class NatsReference:
    """Publish rates, messages per second."""

    awaited: float
    awaited_messages: int
    pipelined: float
    pipelined_messages: int
    batch: int


async def _measure(url: str, awaited_count: int, pipelined_count: int, batch: int) -> NatsReference:
    nc = await nats.connect(url)
    try:
        js = nc.jetstream(publish_async_max_pending=batch * 2)
        await js.add_stream(StreamConfig(name=STREAM, subjects=["bench.ref.>"], storage=StorageType.FILE))
        for _ in range(200):  # warm-up: connection, stream files, the ack subscription
            await js.publish(SUBJECT, PAYLOAD)

        start = time.perf_counter()
        for _ in range(awaited_count):
            await js.publish(SUBJECT, PAYLOAD)
        awaited = awaited_count / (time.perf_counter() - start)

        start = time.perf_counter()
        sent = 0
        while sent < pipelined_count:
            size = min(batch, pipelined_count - sent)
            futures = [await js.publish_async(SUBJECT, PAYLOAD) for _ in range(size)]
            await asyncio.gather(*futures)
            sent += size
        pipelined = pipelined_count / (time.perf_counter() - start)

        info = await js.stream_info(STREAM)
        expected = 200 + awaited_count + pipelined_count
        if info.state.messages != expected:
            raise RuntimeError(f"the reference stream holds {info.state.messages} messages, not {expected}")
    finally:
        await nc.close()
    return NatsReference(awaited, awaited_count, pipelined, pipelined_count, batch)


def measure(work: Path, awaited_count: int, pipelined_count: int, batch: int = 1000) -> NatsReference:
    """Start a fresh nats-server in ``work``, measure both rates, stop it."""
    store = work / "nats-ref"
    store.mkdir(parents=True, exist_ok=True)
    port = procs.free_port()
    server = procs.spawn(
        [procs.nats_server_binary(), "-js", "-sd", str(store), "-a", "127.0.0.1", "-p", str(port)],
        work / "nats-ref.log",
    )
    try:
        procs.wait_port(port, 20, server)
        return asyncio.run(_measure(f"nats://127.0.0.1:{port}", awaited_count, pipelined_count, batch))
    finally:
        procs.stop(server)
