"""The platform's figures, on a whole stack started as ``make up`` starts it.

Whole path: N CreateProject calls through the gateway, timed from the first create until
lineage-svc has projected every one of the N ProjectCreated events into its activity feed.

How completion is watched, cheaply: lineage-svc applies events in stream order, one store
transaction per fetched batch, so once the newest projected ProjectCreated carries the
stream sequence of the last of the N events, all N are in. The benchmark knows that
sequence (the stream's last sequence S0 when the stack is idle, plus N) and every
``poll_interval`` seconds it asks two small questions: ListActivity(page_size=1,
type_prefix=io.shipyard.project.created.v1) through the gateway (one row read from the
``seq`` index) and the stream's last sequence from nats-server (one JetStream API request,
answered by the Go server). At 10 polls a second that is ~20 small requests per second
beside thousands of creates. Only when the newest sequence reaches the target does the
benchmark page through the feed (1,000 a page) to count the N entries exactly, after
the clock has stopped; if the count falls short (some other event took a sequence in
between) it keeps polling with counting until it is complete.

Gateway calls: GetProject of an existing project through the gateway (authenticated,
authorized, forwarded as bytes to repo-svc, which reads SQLite), driven exactly like the
echo reference.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field

import grpc
import nats
from nats.js.client import JetStreamContext

from bench.grpc_load import GrpcRate, rate
from bench.load import LoadResult, drive
from shipyard.contracts.lineage.v1 import lineage_pb2
from shipyard.contracts.repo.v1 import projects_pb2
from shipyard.kit.bus_access import OBSERVER
from shipyard.kit.events import STREAM

CREATE = "/shipyard.repo.v1.ProjectService/CreateProject"
BATCH_CREATE = "/shipyard.repo.v1.ProjectService/BatchCreateProjects"
GET = "/shipyard.repo.v1.ProjectService/GetProject"
LIST_ACTIVITY = "/shipyard.lineage.v1.LineageService/ListActivity"
CREATED = "io.shipyard.project.created.v1"
LINEAGE_CONSUMER = "lineage"  # lineage-svc's durable consumer on SHIPYARD_EVENTS

Metadata = tuple[tuple[str, str], ...]


@dataclass
class Sample:
    """One progress reading, seconds after the first create."""

    t: float
    acked: int  # creates the gateway has answered
    in_stream: int  # events JetStream holds beyond S0
    projected: int  # newest projected ProjectCreated's sequence beyond S0


@dataclass
class WholePath:
    """The whole path's timeline."""

    events: int  # ProjectCreated events expected (the projects of the calls that succeeded)
    creates: LoadResult  # the create calls as the client saw them
    batch: int  # projects per call: 1 for CreateProject, more for BatchCreateProjects
    t_acked: float  # seconds from the first create until the last was answered
    t_stream: float | None  # ... until JetStream held all N events
    t_projected: float | None  # ... until lineage-svc had projected all N
    counted: int  # activity entries counted after the clock stopped
    polls: int
    redelivered: int  # redeliveries by lineage-svc's consumer during the run
    samples: list[Sample] = field(default_factory=list)

    @property
    def window(self) -> tuple[float, float]:
        """The measured interval (first create to projection) on the monotonic clock."""
        start = self.creates.window[0]
        return start, start + (self.t_projected or self.t_acked)

    @property
    def creates_per_s(self) -> float:
        """Projects whose create the gateway acknowledged, per second."""
        return self.events / self.t_acked if self.t_acked > 0 else 0.0

    @property
    def events_per_s(self) -> float:
        """Events per second, first create to last projection."""
        return self.events / self.t_projected if self.t_projected else 0.0


class Probe:
    """The cheap progress readings described in the module docstring."""

    def __init__(self, channel: grpc.aio.Channel, js: JetStreamContext, metadata: Metadata) -> None:
        self._list = channel.unary_unary(
            LIST_ACTIVITY,
            request_serializer=lineage_pb2.ListActivityRequest.SerializeToString,
            response_deserializer=lineage_pb2.ListActivityResponse.FromString,
        )
        self._js = js
        self._metadata = metadata
        self.polls = 0

    async def stream_last(self) -> int:
        """The stream's last sequence."""
        self.polls += 1
        return int((await self._js.stream_info(STREAM)).state.last_seq)

    async def newest(self, type_prefix: str = "") -> int:
        """The stream sequence of the newest activity (of that type), 0 if none."""
        self.polls += 1
        reply = await self._list(
            lineage_pb2.ListActivityRequest(page_size=1, type_prefix=type_prefix),
            metadata=self._metadata,
            timeout=30.0,
        )
        return int(reply.activities[0].sequence) if reply.activities else 0

    async def count_after(self, s0: int, subject_prefix: str) -> int:
        """ProjectCreated entries after sequence ``s0`` whose subject starts with the prefix
        (warm-up projects excluded)."""
        found, token = 0, ""
        while True:
            reply = await self._list(
                lineage_pb2.ListActivityRequest(page_size=1000, page_token=token, type_prefix=CREATED),
                metadata=self._metadata,
                timeout=30.0,
            )
            newer = [a for a in reply.activities if a.sequence > s0]
            found += sum(
                1 for a in newer if a.subject.startswith(subject_prefix) and "-warm-" not in a.subject
            )
            token = reply.next_page_token
            if not token or len(newer) < len(reply.activities):
                return found

    async def settle(self, quiet_s: float = 1.5, within_s: float = 90.0) -> int:
        """Wait until lineage-svc has projected everything in the stream and nothing more came
        for ``quiet_s`` (the outbox relay may hold a last event back for up to 1 s); that last
        sequence."""
        deadline = time.monotonic() + within_s
        since, previous = time.monotonic(), -1
        while time.monotonic() < deadline:
            last, newest = await self.stream_last(), await self.newest()
            if last != newest or last != previous:
                since, previous = time.monotonic(), (last if last == newest else -1)
            elif time.monotonic() - since >= quiet_s:
                return last
            await asyncio.sleep(0.2)
        raise TimeoutError("lineage-svc did not catch up with the stream")

    async def redeliveries(self, durable: str) -> int:
        """Deliveries beyond the first of each message, so far, by the consumer ``durable``.

        Its consumer sequence counts every delivery, redeliveries included; the stream sequence
        of its last delivery counts messages (it takes every subject and started at the first).
        """
        info = await self._js.consumer_info(STREAM, durable)
        delivered = info.delivered
        if delivered is None:
            return 0
        return int(delivered.consumer_seq or 0) - int(delivered.stream_seq or 0)


def _create(name: str) -> projects_pb2.CreateProjectRequest:
    return projects_pb2.CreateProjectRequest(
        project=projects_pb2.Project(name=name, description="made by the Shipyard benchmark")
    )


def _requests(prefix: str, n: int, batch: int) -> list[bytes]:
    """``n`` projects named ``prefix-i``: one CreateProject each, or BatchCreateProjects of ``batch``
    (``n`` is a multiple of ``batch``)."""
    if batch == 1:
        return [_create(f"{prefix}-{i}").SerializeToString() for i in range(n)]
    return [
        projects_pb2.BatchCreateProjectsRequest(
            requests=[_create(f"{prefix}-{i}") for i in range(start, min(start + batch, n))]
        ).SerializeToString()
        for start in range(0, n, batch)
    ]


async def whole_path(
    address: str,
    nats_url: str,
    metadata: Metadata,
    run_id: str,
    n: int,
    concurrency: int,
    poll_interval: float,
    within_s: float,
    batch: int = 1,
    nats_password: str = "",
) -> WholePath:
    """Create ``n`` projects with ``concurrency`` calls in flight; time until all are projected.

    ``batch`` > 1 creates them ``batch`` at a time with BatchCreateProjects (one transaction
    and one gRPC call per batch, still one ProjectCreated event per project). The stream is
    read as the bus's observer, whose password is ``nats_password``.
    """
    nc = await nats.connect(nats_url, user=OBSERVER, password=nats_password)
    try:
        async with grpc.aio.insecure_channel(address) as channel:
            stub = channel.unary_unary(CREATE if batch == 1 else BATCH_CREATE)
            acked = 0

            async def create(request: bytes) -> bytes:
                nonlocal acked
                reply: bytes = await stub(request, metadata=metadata, timeout=60.0)
                acked += batch
                return reply

            probe = Probe(channel, nc.jetstream(), metadata)
            tag = f"bench-{run_id}-b{batch}"
            warm = _requests(f"{tag}-warm", concurrency * batch, batch)
            warmed = await drive(create, warm, concurrency, count=len(warm))
            if warmed.errors:
                raise RuntimeError(f"warm-up creates failed: {warmed.first_error}")
            s0 = await probe.settle()
            redelivered_before = await probe.redeliveries(LINEAGE_CONSUMER)
            probe.polls = 0
            acked = 0
            requests = _requests(tag, n, batch)
            prefix = f"projects/{tag}-"
            expected: int | None = None
            samples: list[Sample] = []
            marks: dict[str, float] = {}
            counted = 0

            async def watch(t0: float) -> None:
                nonlocal counted
                interval = poll_interval
                while True:
                    await asyncio.sleep(interval)
                    in_stream = await probe.stream_last() - s0
                    projected = await probe.newest(CREATED) - s0
                    now = time.perf_counter() - t0
                    samples.append(Sample(now, acked, in_stream, projected))
                    if expected is None:
                        continue
                    if in_stream >= expected and "stream" not in marks:
                        marks["stream"] = now
                    if projected >= expected:
                        counted = await probe.count_after(s0, prefix)
                        if counted >= expected:
                            marks["projected"] = now
                            return
                        # Some are missing below the newest: count again, but only once a second
                        # (a count pages through the feed and costs lineage-svc real work).
                        interval = max(poll_interval, 1.0)

            t0 = time.perf_counter()
            watcher = asyncio.create_task(watch(t0))
            creates = await drive(create, requests, concurrency, count=len(requests))
            t_acked = creates.finished - t0
            expected = creates.calls * batch
            try:
                await asyncio.wait_for(asyncio.shield(watcher), within_s)
            except TimeoutError:
                watcher.cancel()
            redelivered = await probe.redeliveries(LINEAGE_CONSUMER) - redelivered_before
            return WholePath(
                events=expected,
                creates=creates,
                batch=batch,
                t_acked=t_acked,
                t_stream=marks.get("stream"),
                t_projected=marks.get("projected"),
                counted=counted,
                polls=probe.polls,
                redelivered=redelivered,
                samples=samples,
            )
    finally:
        await nc.close()


async def gateway_calls(
    address: str, metadata: Metadata, name: str, concurrency: int, duration: float, warmup: float
) -> GrpcRate:
    """GetProject through the gateway, driven like the echo reference."""
    request = projects_pb2.GetProjectRequest(name=name).SerializeToString()
    return await rate(address, GET, [request], metadata, concurrency, duration, warmup)
