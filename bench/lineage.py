"""``python -m bench.lineage`` (``make bench-lineage``): lineage-svc's projections over a big
provenance graph, beside the raw consume rate of the same stream, in one run.

1. **Generate** the events of a graph (``--runs`` runs, 100,000 by default, and ~3 versions per
   run: ``bench/lineage_data.py``), seeded, and **publish** them to a fresh nats-server's
   SHIPYARD_EVENTS stream with the kit's ``EventBus.publish_encoded`` (1,000 at a time).
2. **Reference R, raw consume**: the kit's EventBus consumes the whole stream with a durable pull
   consumer (batches of 256, as lineage-svc) and a handler that does nothing: decode + ack.
3. **L1, projection ingest**: the same consume path with lineage-svc's Projector over a fresh
   SQLite document store (as ``shipyard_lineage.bootstrap`` wires it), until the projections'
   cursor is the stream's last sequence. Printed as a ratio of R.
4. **L2, upstream query**: ``LineageQueries.lineage`` of 1,000 random model versions (after 50 of
   warm-up), upstream, as an operator, in-process on that store; and **L2g** the same through
   ``LineageServicer.GetLineage`` on an in-process grpc.aio server, called over loopback with the
   caller assertion the gateway sends. **Goal: median under 20 ms.**
5. **L3, full rebuild**: ``Projections.rebuild`` (the bus's replay, as the Rebuild RPC runs it),
   timed until the cursor is back at the last sequence; the graph's digest before and after
   must be equal.

Prints the tables and writes ``bench/out/lineage.json``. Never fails on a figure: exits non-zero
only when a phase could not be measured, or when the rebuilt graph's digest differs (a bug).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import AbstractContextManager, asynccontextmanager, nullcontext
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import grpc
from rich import box
from rich.console import Console
from rich.table import Table
from shipyard_lineage.adapters.store import COLLECTIONS, LineageUnitOfWork
from shipyard_lineage.app.lineage import LineageQueries
from shipyard_lineage.app.ports import ProjectionUnitOfWorkFactory
from shipyard_lineage.app.projector import CONSUMER
from shipyard_lineage.app.rebuild import ProjectionState
from shipyard_lineage.bootstrap import Adapters, compose
from shipyard_lineage.domain.graph import Direction
from shipyard_lineage.entrypoints.grpc_api import LineageServicer
from shipyard_lineage.settings import SERVICE, LineageSettings

from bench import procs, profiling
from bench.lineage_data import GraphEvents, GraphShape, GraphStats
from bench.machine import CpuWatch, Usage
from bench.procs import REPO_ROOT
from shipyard.contracts.lineage.v1 import lineage_pb2 as pb
from shipyard.contracts.lineage.v1 import lineage_pb2_grpc
from shipyard.kit.assertions import CallerAssertions, new_key
from shipyard.kit.bus import EventBus
from shipyard.kit.caller import Caller
from shipyard.kit.events import STREAM, Event
from shipyard.kit.grpcio import Authentication, assertion_authenticator, new_server
from shipyard.kit.inbox import INBOX
from shipyard.kit.outbox import OUTBOX
from shipyard.kit.store.sqlite import SQLiteDocumentStore
from shipyard.kit.store.unit_of_work import StoreUnitOfWorkFactory

OUT = REPO_ROOT / "bench" / "out"
QUERY_GOAL_S = 0.020
ROLES = frozenset({"operator"})
BATCH = 256  # lineage-svc's consumer batch (bootstrap)
BUSY = 0.25  # cores used by other processes above which a figure is flagged
PHASES = {
    "publish": "generate + publish",
    "raw": "R raw consume",
    "ingest": "L1 projection ingest",
    "query": "L2 queries, in-process",
    "grpc": "L2g queries, gRPC",
    "rebuild": "L3 rebuild",
}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The command line."""
    p = argparse.ArgumentParser(
        prog="python -m bench.lineage",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--quick", action="store_true", help="a smoke run: 5,000 runs, 200 queries; rough figures")
    p.add_argument("--runs", type=int, help="runs in the graph (default 100,000; quick 5,000)")
    p.add_argument("--versions", type=int, help="versions in the graph (default 3 per run)")
    p.add_argument(
        "--seed", type=int, default=1, help="seed of the generated graph and of the query sample (1)"
    )
    p.add_argument("--queries", type=int, help="model versions queried (default 1,000; quick 200)")
    p.add_argument("--warmup", type=int, help="queries before the measured ones (default 50; quick 20)")
    p.add_argument(
        "--timeout",
        type=float,
        default=3600.0,
        help="seconds to wait for a consumer to reach the end of the stream (3600)",
    )
    p.add_argument(
        "--quiet-wait",
        type=float,
        help="before each measured phase, wait up to this many seconds for other processes "
        "to leave the CPUs alone (default 30, quick 5)",
    )
    p.add_argument(
        "--profile",
        nargs="?",
        const="flamegraph",
        choices=["flamegraph", "speedscope", "raw"],
        help="record py-spy profiles of the benchmark's process (ingest, queries, rebuild) "
        "into bench/out/profiles/",
    )
    p.add_argument("--keep", action="store_true", help="keep the work directory (stream, store, logs)")
    p.add_argument("--json", type=Path, default=OUT / "lineage.json", help="where the figures go")
    args = p.parse_args(argv)
    for name, full, short in (
        ("runs", 100_000, 5_000),
        ("queries", 1_000, 200),
        ("warmup", 50, 20),
        ("quiet_wait", 30.0, 5.0),
    ):
        if getattr(args, name) is None:
            setattr(args, name, short if args.quick else full)
    if args.versions is None:
        args.versions = 3 * args.runs
    if args.runs < 10:
        p.error("--runs must be at least 10")
    return args


# --- measuring ------------------------------------------------------------------------------


class Tracker:
    """Counts what a consumer's handler got; ``done`` once it has seen the target sequence."""

    def __init__(self) -> None:
        self.target = 0
        self.events = 0
        self.last = 0
        self.done = asyncio.Event()

    def arm(self, target: int) -> None:
        """Start over, waiting for ``target``."""
        self.target, self.events, self.last = target, 0, 0
        self.done.clear()

    def saw(self, events: list[Event]) -> None:
        """A batch handled (after the handler's work, before the acks)."""
        self.events += len(events)
        self.last = max(self.last, max(e.sequence for e in events))
        if self.last >= self.target:
            self.done.set()


@dataclass
class Latencies:
    """Seconds of each measured call, and what each answer held."""

    seconds: list[float] = field(default_factory=list)
    nodes: list[int] = field(default_factory=list)
    edges: list[int] = field(default_factory=list)
    truncated: int = 0

    def pct(self, p: float) -> float:
        """The p-th percentile (nearest rank), seconds."""
        ordered = sorted(self.seconds)
        return ordered[min(len(ordered) - 1, max(0, round(p / 100 * len(ordered)) - 1))]

    def summary(self) -> dict[str, Any]:
        """For the JSON copy."""
        if not self.seconds:
            return {}
        return {
            "calls": len(self.seconds),
            "median_ms": self.pct(50) * 1e3,
            "p90_ms": self.pct(90) * 1e3,
            "p99_ms": self.pct(99) * 1e3,
            "max_ms": max(self.seconds) * 1e3,
            "nodes_median": statistics.median(self.nodes) if self.nodes else None,
            "nodes_max": max(self.nodes) if self.nodes else None,
            "edges_median": statistics.median(self.edges) if self.edges else None,
            "truncated": self.truncated,
        }


@dataclass
class Figures:
    """Everything one run measured; a phase that failed leaves its figures unset."""

    events: int = 0
    last_sequence: int = 0
    stream_bytes: int = 0
    generate_s: float = 0.0
    publish_s: float = 0.0
    raw_s: float | None = None
    ingest_s: float | None = None
    ingest_cursor: int | None = None
    query: Latencies = field(default_factory=Latencies)
    floor: Latencies = field(default_factory=Latencies)  # the answers' nodes read by id
    grpc: Latencies = field(default_factory=Latencies)
    grpc_node_mismatches: int = 0
    digest_s: float | None = None
    rebuild_s: float | None = None
    rebuild_reset_s: float | None = None  # rebuild() returned: projections cleared, replay started
    before: ProjectionState | None = None
    after: ProjectionState | None = None
    store_bytes: int = 0
    windows: dict[str, tuple[float, float]] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)

    def rate(self, seconds: float | None) -> float | None:
        """Events per second over ``seconds``."""
        return self.events / seconds if seconds else None

    @property
    def digest_match(self) -> bool | None:
        """Whether the rebuilt graph is the graph (None: not compared)."""
        if self.before is None or self.after is None:
            return None
        b, a = self.before, self.after
        return (b.digest, b.nodes, b.edges, b.activities) == (a.digest, a.nodes, a.edges, a.activities)


class Bench:
    """The phases, in one event loop, against one nats-server."""

    def __init__(self, args: argparse.Namespace, url: str, work: Path, cpu: CpuWatch, say: Console) -> None:
        self.args = args
        self.url = url
        self.work = work
        self.cpu = cpu
        self.say = say
        self.shape = GraphShape(runs=args.runs, versions=args.versions)
        self.graph = GraphEvents(self.shape, args.seed)
        self.figures = Figures()
        self.answers: list[list[str]] = []  # the node ids of each measured in-process answer

    @property
    def stats(self) -> GraphStats:
        """What the generator emitted."""
        return self.graph.stats

    @asynccontextmanager
    async def phase(self, key: str, quiet: bool = True) -> AsyncIterator[None]:
        """Wait for a quiet machine, then time the block as phase ``key`` (its CPU window)."""
        if quiet and self.args.quiet_wait > 0:
            others = await asyncio.to_thread(self.cpu.wait_quiet, self.args.quiet_wait)
            if others >= BUSY:
                self.say.log(f"[yellow]other processes still use {others:.2f} cores; measuring anyway[/]")
        self.say.log(f"{PHASES[key]} …")
        started = time.monotonic()
        try:
            yield
        finally:
            self.figures.windows[key] = (started, time.monotonic())
            self.say.log(f"{PHASES[key]} done in {time.monotonic() - started:.1f}s")

    def profiled(self, name: str) -> AbstractContextManager[Any]:
        """py-spy on this process for the block, with --profile."""
        if not self.args.profile:
            return nullcontext()
        return profiling.Profiles(
            OUT / "profiles", f"lineage-{name}", {"bench": os.getpid()}, self.args.profile
        )

    async def progress(self, name: str, tracker: Tracker, every: float = 15.0) -> None:
        """A line every ``every`` seconds while a consumer works through the stream."""
        started = time.monotonic()
        while True:
            await asyncio.sleep(every)
            elapsed = time.monotonic() - started
            self.say.log(
                f"  {name}: {tracker.events:,} of {self.figures.events:,} events "
                f"({tracker.events / elapsed:,.0f}/s)"
            )

    async def until_done(self, name: str, tracker: Tracker) -> None:
        """Wait for ``tracker`` (with progress lines), at most --timeout seconds."""
        reporter = asyncio.create_task(self.progress(name, tracker))
        try:
            await asyncio.wait_for(tracker.done.wait(), self.args.timeout)
        except TimeoutError:
            raise RuntimeError(
                f"{name}: {tracker.events:,} of {self.figures.events:,} events after {self.args.timeout:.0f}s"
            ) from None
        finally:
            reporter.cancel()

    # --- the phases ---------------------------------------------------------------------------

    async def publish(self) -> None:
        """Generate the graph's events and publish them, a batch at a time (both timed)."""
        bus = EventBus(self.url, source="bench/publisher")
        await bus.start()
        try:
            async with self.phase("publish", quiet=False):
                batches = self.graph.batches(1000)
                while True:
                    t0 = time.perf_counter()
                    batch = next(batches, None)
                    t1 = time.perf_counter()
                    self.figures.generate_s += t1 - t0
                    if batch is None:
                        break
                    await bus.publish_encoded(batch)
                    self.figures.publish_s += time.perf_counter() - t1
            self.figures.events = self.stats.events
            self.figures.last_sequence = await bus.last_sequence()
            js = bus.broker.connection.jetstream()
            self.figures.stream_bytes = int((await js.stream_info(STREAM)).state.bytes or 0)
        finally:
            await bus.stop()
        if self.figures.last_sequence != self.figures.events:
            raise RuntimeError(
                f"the stream holds {self.figures.last_sequence:,} events, "
                f"not the {self.figures.events:,} published"
            )

    async def raw_consume(self) -> None:
        """Reference R: the kit's consumer with a handler that does nothing."""
        tracker = Tracker()
        tracker.arm(self.figures.last_sequence)

        async def nothing(events: list[Event]) -> None:
            tracker.saw(events)

        bus = EventBus(self.url, source="bench/raw")
        bus.consume("bench-raw", nothing, subjects=">", batch_size=BATCH)
        try:
            async with self.phase("raw"):
                started = time.perf_counter()
                await bus.start()
                await self.until_done("raw consume", tracker)
                self.figures.raw_s = time.perf_counter() - started
        finally:
            await bus.stop()

    async def lineage(self) -> None:
        """L1, L2, L2g and L3 on one store and one bus, wired as lineage-svc's bootstrap does."""
        path = self.work / SERVICE / "store.db"
        store = SQLiteDocumentStore(path)
        await store.open([*COLLECTIONS, OUTBOX, INBOX])
        uow = StoreUnitOfWorkFactory(store, None, LineageUnitOfWork)
        bus = EventBus(self.url, source=f"shipyard/{SERVICE}")
        tracker = Tracker()
        tracker.arm(self.figures.last_sequence)

        async def replay(reset: Callable[[], Awaitable[None]]) -> None:
            await bus.replay(CONSUMER, reset)

        lineage = compose(Adapters(uow, replay, bus.last_sequence), LineageSettings())

        async def on_events(events: list[Event]) -> None:
            await lineage.consumer.handle(events)
            tracker.saw(events)

        projections = lineage.projections
        bus.consume(lineage.consumer.name, on_events, subjects=">", batch_size=BATCH)
        queries = lineage.walks
        try:
            async with self.phase("ingest"):
                with self.profiled("ingest"):
                    started = time.perf_counter()
                    await bus.start()
                    await self.until_done("projection ingest", tracker)
                    self.figures.ingest_s = time.perf_counter() - started
            async with uow() as u:
                self.figures.ingest_cursor = await u.graph.cursor()

            names = self.sample()
            warm, measured = names[: self.args.warmup], names[self.args.warmup :]
            async with self.phase("query"):
                with self.profiled("query"):
                    await self.query_in_process(queries, warm, measured)
            await self.query_floor(uow)
            async with self.phase("grpc"):
                await self.query_grpc(lineage.servicer, warm, measured)

            self.say.log("digest of the graph before the rebuild …")
            started = time.perf_counter()
            self.figures.before = await projections.status(with_digest=True)
            self.figures.digest_s = time.perf_counter() - started
            tracker.arm(self.figures.last_sequence)
            async with self.phase("rebuild"):
                with self.profiled("rebuild"):
                    started = time.perf_counter()
                    await projections.rebuild()
                    self.figures.rebuild_reset_s = time.perf_counter() - started
                    await self.until_done("rebuild", tracker)
                    self.figures.rebuild_s = time.perf_counter() - started
            self.say.log("digest of the rebuilt graph …")
            self.figures.after = await projections.status(with_digest=True)
        finally:
            await bus.stop()
            await store.close()
            self.figures.store_bytes = sum(f.stat().st_size for f in path.parent.glob("store.db*"))

    def sample(self) -> list[str]:
        """Warm-up and measured model versions ("repo@n"), seeded; with replacement if too few."""
        rng = random.Random(self.args.seed + 1)
        models = self.stats.model_versions
        if not models:
            raise RuntimeError("the graph has no model version produced by a run")
        wanted = self.args.warmup + self.args.queries
        return (
            rng.sample(models, wanted)
            if len(models) >= wanted
            else [rng.choice(models) for _ in range(wanted)]
        )

    async def query_in_process(self, queries: LineageQueries, warm: list[str], measured: list[str]) -> None:
        """L2: LineageQueries.lineage, one call at a time."""
        for name in warm:
            await queries.lineage(ROLES, "model", name, Direction.UPSTREAM)
        found = self.figures.query
        for name in measured:
            started = time.perf_counter()
            graph = await queries.lineage(ROLES, "model", name, Direction.UPSTREAM)
            found.seconds.append(time.perf_counter() - started)
            found.nodes.append(len(graph.nodes))
            found.edges.append(len(graph.edges))
            found.truncated += graph.truncated
            self.answers.append(list(graph.nodes))

    async def query_floor(self, uow: ProjectionUnitOfWorkFactory) -> None:
        """The reference of L2: each answer's nodes read by id in one transaction (no edges, no walk)."""
        for ids in self.answers:
            started = time.perf_counter()
            async with uow() as u:
                for node_id in ids:
                    await u.graph.node(node_id)
            self.figures.floor.seconds.append(time.perf_counter() - started)

    async def query_grpc(self, servicer: LineageServicer, warm: list[str], measured: list[str]) -> None:
        """L2g: GetLineage on an in-process grpc.aio server over loopback, one call at a time."""
        # As lineage-svc serves: every call carries a caller assertion, verified before it is read.
        assertions = CallerAssertions(new_key(), SERVICE)
        server = new_server(tracing=False, authentication=Authentication(assertion_authenticator(assertions)))
        lineage_pb2_grpc.add_LineageServiceServicer_to_server(servicer, server)
        port = server.add_insecure_port("127.0.0.1:0")
        await server.start()
        metadata = assertions.metadata(Caller("bench", ROLES), SERVICE)
        found = self.figures.grpc
        try:
            async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
                stub = lineage_pb2_grpc.LineageServiceStub(channel)

                def request(name: str) -> pb.GetLineageRequest:
                    return pb.GetLineageRequest(kind="model", name=name, direction=pb.DIRECTION_UPSTREAM)

                for name in warm:
                    await stub.GetLineage(request(name), metadata=metadata)
                for n, name in enumerate(measured):
                    started = time.perf_counter()
                    answer = await stub.GetLineage(request(name), metadata=metadata)
                    found.seconds.append(time.perf_counter() - started)
                    found.nodes.append(len(answer.nodes))
                    found.edges.append(len(answer.edges))
                    found.truncated += answer.truncated
                    if len(answer.nodes) != self.figures.query.nodes[n]:
                        self.figures.grpc_node_mismatches += 1
        finally:
            await server.stop(None)

    async def run(self) -> None:
        """Every phase in order; a phase that fails ends the run (the later ones need it)."""
        steps: list[tuple[str, Callable[[], Awaitable[None]]]] = [
            ("generate + publish", self.publish),
            ("raw consume", self.raw_consume),
            ("lineage-svc projections", self.lineage),
        ]
        for name, step in steps:
            try:
                await step()
            except Exception as exc:
                self.figures.errors[name] = f"{type(exc).__name__}: {exc}"
                self.say.log(f"[red]{name} failed:[/] {self.figures.errors[name]}")
                return


# --- the report -----------------------------------------------------------------------------


def _ms(seconds: float) -> str:
    return f"{seconds * 1e3:,.1f} ms" if seconds < 10 else f"{seconds * 1e3:,.0f} ms"


def _seconds(value: float | None) -> str:
    return "—" if value is None else f"{value:,.1f} s"


def _rate(value: float | None, unit: str = "ev/s") -> str:
    return "—" if not value else f"{value:,.0f} {unit}"


def _others(usage: dict[str, Usage | None], key: str) -> str:
    use = usage.get(key)
    if use is None:
        return "—"
    text = f"{use.others:.2f}"
    return f"[yellow]{text}[/]" if use.others >= BUSY else text


def table(f: Figures, stats: GraphStats, usage: dict[str, Usage | None]) -> Table:
    """The main table: figure, reference, ratio, goal, verdict."""
    runs = stats.runs["training"] + stats.runs["preprocessing"]
    t = Table(
        title=f"lineage-svc over a graph of {runs:,} runs and {stats.versions_total:,} versions "
        f"({f.events:,} events; {os.cpu_count()} CPUs)",
        box=box.SIMPLE_HEAVY,
        title_justify="left",
    )
    for column in ("measure", "figure", "detail", "reference", "ratio", "goal", "verdict", "others"):
        t.add_column(column, justify="left" if column in ("measure", "verdict") else "right", no_wrap=True)
    goal = f"< {QUERY_GOAL_S * 1e3:.0f} ms"
    raw, ingest, rebuild = f.rate(f.raw_s), f.rate(f.ingest_s), f.rate(f.rebuild_s)
    t.add_row(
        "   publish, 1,000 at a time",
        _rate(f.rate(f.publish_s)),
        f"generated {_rate(f.rate(f.generate_s))}",
        "",
        "",
        "",
        "for information",
        _others(usage, "publish"),
    )
    t.add_row(
        "R  raw consume: decode + ack",
        _rate(raw),
        _seconds(f.raw_s),
        "",
        "",
        "",
        "reference",
        _others(usage, "raw"),
    )
    t.add_row(
        "L1 projection ingest",
        _rate(ingest),
        _seconds(f.ingest_s),
        "R " + _rate(raw),
        f"{ingest / raw:.1%}" if ingest and raw else "—",
        "",
        "for information",
        _others(usage, "ingest"),
    )
    q, floor, g = f.query, f.floor, f.grpc
    for key, label, lat, ref_label, ref in (
        ("query", "L2  upstream query, in-process", q, "nodes by id", floor),
        ("grpc", "L2g upstream query via gRPC", g, "L2", q),
    ):
        if not lat.seconds:
            t.add_row(label, "—", "", "", "", goal, "[yellow]not measured[/]", "")
            continue
        median = lat.pct(50)
        ref_median = ref.pct(50) if ref.seconds else None
        t.add_row(
            label,
            f"{_ms(median)} median",
            f"p90 {_ms(lat.pct(90))} p99 {_ms(lat.pct(99))}",
            f"{ref_label} {_ms(ref_median)}" if ref_median else "—",
            f"{median / ref_median:.1f}x" if ref_median else "—",
            goal,
            "[green]met[/]" if median < QUERY_GOAL_S else "[red]not met[/]",
            _others(usage, key),
        )
    if q.nodes:
        t.add_row(
            "    nodes per answer",
            f"{statistics.median(q.nodes):,.0f} median",
            f"max {max(q.nodes):,}",
            "",
            "",
            "",
            f"{q.truncated:,} of {len(q.nodes):,} truncated",
            "",
        )
    match = f.digest_match
    verdict = (
        "[yellow]not compared[/]"
        if match is None
        else "[green]same digest[/]"
        if match
        else "[red]digest DIFFERS: a bug[/]"
    )
    t.add_row(
        "L3 full rebuild",
        _seconds(f.rebuild_s),
        f"{_rate(rebuild)}, clear {_seconds(f.rebuild_reset_s)}" if f.rebuild_s else "",
        f"R {_seconds(f.raw_s)}",
        f"{f.rebuild_s / f.raw_s:.1f}x" if f.rebuild_s and f.raw_s else "—",
        "",
        verdict,
        _others(usage, "rebuild"),
    )
    return t


def graph_table(f: Figures, stats: GraphStats) -> Table:
    """What the graph held."""
    t = Table(title="The graph", box=box.SIMPLE, title_justify="left")
    t.add_column("what", no_wrap=True)
    t.add_column("count", justify="right")
    t.add_row("events (stream sequences)", f"{f.events:,}")
    for name, count in sorted(stats.by_type.items(), key=lambda kv: -kv[1]):
        t.add_row(f"  {name}", f"{count:,}")
    t.add_row(
        "runs: training / preprocessing / failed",
        f"{stats.runs['training']:,} / {stats.runs['preprocessing']:,} / {stats.runs['failed']:,}",
    )
    v = stats.versions
    t.add_row(
        "versions: uploaded / derived datasets / models / empty v1",
        f"{v['uploaded']:,} / {v['derived']:,} / {v['model']:,} / {v['placeholder']:,}",
    )
    t.add_row(
        "repos: dataset / model / code",
        f"{stats.repos['dataset']:,} / {stats.repos['model']:,} / {stats.repos['code']:,}",
    )
    if f.before is not None:
        t.add_row(
            "projected: nodes / edges / activity entries",
            f"{f.before.nodes:,} / {f.before.edges:,} / {f.before.activities:,}",
        )
    if f.after is not None:
        t.add_row("  after the rebuild", f"{f.after.nodes:,} / {f.after.edges:,} / {f.after.activities:,}")
    t.add_row(
        "stream on disk / event bodies (protobuf)",
        f"{f.stream_bytes / 2**20:,.0f} MiB / {stats.body_bytes / 2**20:,.0f} MiB",
    )
    t.add_row("SQLite store (with its WAL)", f"{f.store_bytes / 2**20:,.0f} MiB")
    if f.digest_s is not None:
        t.add_row("digest of the graph (Projections.status(with_digest=True))", f"{f.digest_s:,.1f} s")
    return t


def cpu_table(f: Figures, usage: dict[str, Usage | None]) -> Table | None:
    """CPU by process over each phase: cores busy (ms of CPU per event, or per query)."""
    uses = {key: use for key in PHASES if (use := usage.get(key)) is not None}
    if not uses:
        return None
    per = {
        "publish": f.events,
        "raw": f.events,
        "ingest": f.events,
        "rebuild": f.events,
        "query": len(f.query.seconds),
        "grpc": len(f.grpc.seconds),
    }
    t = Table(
        title="CPU by process over each phase: cores busy (ms of CPU per event, per query for L2/L2g)",
        box=box.SIMPLE,
        title_justify="left",
    )
    t.add_column("process", no_wrap=True)
    for key in uses:
        t.add_column(key if key == "publish" else PHASES[key].split()[0], justify="right")

    def cell(cores: float, key: str) -> str:
        each = f"{cores * uses[key].seconds / per[key] * 1e3:.2f}" if per[key] else "—"
        return f"{cores:.2f} ({each})"

    labels = {label for use in uses.values() for label in use.by_process}
    rows = sorted(
        ((label, {k: u.by_process.get(label, 0.0) for k, u in uses.items()}) for label in labels),
        key=lambda row: -max(row[1].values()),
    )
    for label, cores in rows:
        if max(cores.values()) >= 0.01:
            shown = "the benchmark (all phases in-process)" if label == "load generator (bench)" else label
            t.add_row(shown, *(cell(cores[k], k) for k in uses))
    t.add_row("other processes on the machine", *(cell(u.others, k) for k, u in uses.items()))
    return t


def as_json(
    f: Figures, stats: GraphStats, usage: dict[str, Usage | None], settings: dict[str, Any]
) -> dict[str, Any]:
    """The figures as plain data."""

    def state(s: ProjectionState | None) -> dict[str, Any] | None:
        return (
            None
            if s is None
            else {
                "last_sequence": s.last_sequence,
                "nodes": s.nodes,
                "edges": s.edges,
                "activities": s.activities,
                "digest": s.digest,
            }
        )

    return {
        "settings": settings,
        "graph": {
            "events": f.events,
            "by_type": dict(stats.by_type),
            "runs": dict(stats.runs),
            "versions": dict(stats.versions),
            "repos": dict(stats.repos),
            "stream_bytes": f.stream_bytes,
            "body_bytes": stats.body_bytes,
            "store_bytes": f.store_bytes,
        },
        "publish": {"seconds": f.publish_s, "events_per_s": f.rate(f.publish_s), "generate_s": f.generate_s},
        "raw_consume": {"seconds": f.raw_s, "events_per_s": f.rate(f.raw_s)},
        "ingest": {
            "seconds": f.ingest_s,
            "events_per_s": f.rate(f.ingest_s),
            "cursor": f.ingest_cursor,
            "ratio_to_raw": f.raw_s / f.ingest_s if f.raw_s and f.ingest_s else None,
        },
        "upstream_query": {
            **f.query.summary(),
            "goal_ms": QUERY_GOAL_S * 1e3,
            "met": bool(f.query.seconds) and f.query.pct(50) < QUERY_GOAL_S,
        },
        "upstream_query_floor": f.floor.summary(),
        "upstream_query_grpc": {
            **f.grpc.summary(),
            "node_count_mismatches": f.grpc_node_mismatches,
            "met": bool(f.grpc.seconds) and f.grpc.pct(50) < QUERY_GOAL_S,
        },
        "rebuild": {
            "seconds": f.rebuild_s,
            "events_per_s": f.rate(f.rebuild_s),
            "reset_s": f.rebuild_reset_s,
            "ratio_to_raw": f.rebuild_s / f.raw_s if f.rebuild_s and f.raw_s else None,
            "digest_s": f.digest_s,
            "before": state(f.before),
            "after": state(f.after),
            "digest_match": f.digest_match,
        },
        "cpu": {key: None if u is None else asdict(u) for key, u in usage.items()},
        "errors": f.errors,
    }


def print_report(out: Console, f: Figures, stats: GraphStats, usage: dict[str, Usage | None]) -> None:
    """The tables and the notes."""
    out.print(table(f, stats, usage))
    out.print(graph_table(f, stats))
    cpu = cpu_table(f, usage)
    if cpu is not None:
        out.print(cpu)
    busy = [PHASES[k] for k, u in usage.items() if u is not None and u.others >= BUSY]
    if busy:
        out.print(
            f"[yellow]Other processes used ≥ {BUSY} cores during: {', '.join(busy)}; "
            "those figures are low by about that share of the machine.[/]"
        )
    if f.ingest_cursor is not None and f.ingest_cursor != f.last_sequence:
        out.print(
            f"[red]The projections' cursor was {f.ingest_cursor:,} after ingest, not {f.last_sequence:,}.[/]"
        )
    if f.grpc_node_mismatches:
        out.print(f"[red]{f.grpc_node_mismatches} gRPC answers had another node count than in-process.[/]")
    if f.digest_match is False and f.before is not None and f.after is not None:
        out.print(
            f"[red]The rebuilt graph differs from the ingested one: before {f.before}, after {f.after}[/]"
        )
    for phase, error in f.errors.items():
        out.print(f"[red]{phase} could not be measured:[/] {error}")
    out.print(
        "R, L1 and L3 run the same kit consumer (durable pull, batches of 256, explicit acks) in the "
        "benchmark's process against the same nats-server and stream; L1 and L3 write SQLite in WAL mode "
        "with synchronous=NORMAL, one transaction per batch. L2 and L2g: one call at a time; L2g's client "
        "runs in the same process and event loop as its server; the reference of L2 reads each answer's "
        'nodes by id in one transaction (no edges, no walk). "others": cores used by processes outside '
        "the benchmark during the phase."
    )


# --- the command --------------------------------------------------------------------------------


def _usage(cpu: CpuWatch, windows: dict[str, tuple[float, float]]) -> Iterator[tuple[str, Usage | None]]:
    for key, (start, end) in windows.items():
        yield key, cpu.usage(start, end)


def main(argv: list[str] | None = None) -> int:
    """Start nats-server, run the phases, print the report."""
    args = parse_args(argv)
    out = Console(width=None if sys.stdout.isatty() else 150)
    say = Console(stderr=True)
    work = Path(tempfile.mkdtemp(prefix="shipyard-bench-lineage-", dir="/var/tmp"))
    settings = {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()}
    settings["date"] = time.strftime("%Y-%m-%d %H:%M:%S %z")
    (work / "nats").mkdir()
    port = procs.free_port()
    server = procs.spawn(
        [procs.nats_server_binary(), "-js", "-sd", str(work / "nats"), "-a", "127.0.0.1", "-p", str(port)],
        work / "nats.log",
    )
    with CpuWatch() as cpu:
        bench = Bench(args, f"nats://127.0.0.1:{port}", work, cpu, say)
        try:
            procs.wait_port(port, 20, server)
            asyncio.run(bench.run())
        except Exception as exc:
            bench.figures.errors["nats-server"] = f"{type(exc).__name__}: {exc}"
        finally:
            procs.stop(server)
            if args.keep:
                say.log(f"stream, store and logs kept in {work}")
            else:
                shutil.rmtree(work, ignore_errors=True)
        usage = dict(_usage(cpu, bench.figures.windows))
    f = bench.figures
    print_report(out, f, bench.stats, usage)
    if args.profile:
        out.print(f"Profiles: {OUT / 'profiles'}")
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(as_json(f, bench.stats, usage, settings), indent=2, default=str))
    return 1 if f.errors or f.digest_match is False else 0


if __name__ == "__main__":
    sys.exit(main())
