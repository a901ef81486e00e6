"""The Rich table the benchmark prints, and a JSON copy of the figures."""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from typing import Any

from rich import box
from rich.console import Console
from rich.table import Table

from bench.grpc_load import GrpcRate
from bench.machine import Usage
from bench.nats_reference import NatsReference
from bench.stack_load import WholePath

WHOLE_PATH_GOAL = 0.25
GATEWAY_GOAL = 0.40
BUSY = 0.25  # cores used by other processes above which a figure is flagged


@dataclass
class Results:
    """Everything one run measured (a phase that failed is None, with its error)."""

    nats: NatsReference | None
    echo: GrpcRate | None
    whole: WholePath | None
    batched: WholePath | None  # the whole path again, with BatchCreateProjects
    gateway: GrpcRate | None
    errors: dict[str, str]
    settings: dict[str, Any]
    usage: dict[str, Usage | None]

    def others(self, key: str) -> str:
        """The other processes' CPU use during a phase, for the table."""
        use = self.usage.get(key)
        if use is None:
            return "—"
        text = f"{use.others:.2f}"
        return f"[yellow]{text}[/]" if use.others >= BUSY else text


def _rate(value: float | None, unit: str) -> str:
    return "—" if value is None or value <= 0 else f"{value:,.0f} {unit}"


def _latency(rate: GrpcRate | None) -> str:
    if rate is None or not rate.load.latencies:
        return "—"
    return f"{rate.load.percentile(50) * 1e3:.1f} / {rate.load.percentile(99) * 1e3:.1f}"


def _ratio(figure: float | None, reference: float | None) -> float | None:
    if not figure or not reference:
        return None
    return figure / reference


def _pct(ratio: float | None) -> str:
    return "—" if ratio is None else f"{ratio:.1%}"


def _verdict(ratio: float | None, goal: float) -> str:
    if ratio is None:
        return "[yellow]not measured[/]"
    return "[green]met[/]" if ratio >= goal else "[red]not met[/]"


def table(results: Results) -> Table:
    """The main table: figures, references, ratios and goals."""
    s = results.settings
    inflight = s["concurrency"]
    t = Table(
        title=f"Shipyard benchmark ({os.cpu_count()} CPUs, {inflight} in flight for gRPC, "
        f"{s['events']:,} events)",
        box=box.SIMPLE_HEAVY,
        title_justify="left",
    )
    t.add_column("measure", no_wrap=True)
    t.add_column("figure", justify="right")
    t.add_column("p50 / p99 ms", justify="right")
    t.add_column("reference", justify="right")
    t.add_column("ratio", justify="right")
    t.add_column("goal", justify="right")
    t.add_column("verdict")
    t.add_column("others' CPU", justify="right")

    nats, echo, whole, gateway = results.nats, results.echo, results.whole, results.gateway
    awaited = nats.awaited if nats else None
    pipelined = nats.pipelined if nats else None
    t.add_row(
        "A  JetStream publish, each ack awaited",
        _rate(awaited, "msg/s"),
        "",
        "",
        "",
        "",
        "reference of goal 1",
        results.others("nats"),
    )
    t.add_row(
        f"A' JetStream publish_async, batches of {nats.batch if nats else 1000:,}",
        _rate(pipelined, "msg/s"),
        "",
        "",
        "",
        "",
        "for comparison",
        results.others("nats"),
    )

    creates = whole.creates_per_s if whole else None
    events = whole.events_per_s if whole else None
    create_latency = GrpcRate(whole.creates, inflight) if whole else None
    t.add_row(
        "   creates answered by the gateway",
        _rate(creates, "creates/s"),
        _latency(create_latency),
        "",
        "",
        "",
        "",
        results.others("whole"),
    )
    ratio_a = _ratio(events, awaited)
    t.add_row(
        "1  whole path: create → projected",
        _rate(events, "events/s"),
        "",
        "A " + _rate(awaited, "msg/s"),
        _pct(ratio_a),
        f"≥ {WHOLE_PATH_GOAL:.0%}",
        _verdict(ratio_a, WHOLE_PATH_GOAL),
        results.others("whole"),
    )
    t.add_row(
        "   1 as a ratio of A' (pipelined)",
        "",
        "",
        "A' " + _rate(pipelined, "msg/s"),
        _pct(_ratio(events, pipelined)),
        "",
        "for information",
        "",
    )
    batched = results.batched
    if batched is not None or s.get("batch", 0) > 1:
        batch, inflight_batches = s["batch"], s["batch_concurrency"]
        batch_events = batched.events_per_s if batched else None
        t.add_row(
            f"   projects answered, {batch} per BatchCreateProjects call",
            _rate(batched.creates_per_s if batched else None, "projects/s"),
            _latency(GrpcRate(batched.creates, inflight_batches) if batched else None),
            "",
            "",
            "",
            f"{inflight_batches} calls in flight",
            results.others("batched"),
        )
        ratio_batched = _ratio(batch_events, awaited)
        t.add_row(
            "1b whole path, batched creates → projected",
            _rate(batch_events, "events/s"),
            "",
            "A " + _rate(awaited, "msg/s"),
            _pct(ratio_batched),
            f"≥ {WHOLE_PATH_GOAL:.0%}",
            _verdict(ratio_batched, WHOLE_PATH_GOAL),
            results.others("batched"),
        )
    echo_rate = echo.load.rate if echo else None
    t.add_row(
        "B  grpcio aio echo (bytes)",
        _rate(echo_rate, "calls/s"),
        _latency(echo),
        "",
        "",
        "",
        "reference of goal 2",
        results.others("echo"),
    )
    gateway_rate = gateway.load.rate if gateway else None
    ratio_b = _ratio(gateway_rate, echo_rate)
    t.add_row(
        "2  GetProject via the gateway",
        _rate(gateway_rate, "calls/s"),
        _latency(gateway),
        "B " + _rate(echo_rate, "calls/s"),
        _pct(ratio_b),
        f"≥ {GATEWAY_GOAL:.0%}",
        _verdict(ratio_b, GATEWAY_GOAL),
        results.others("gateway"),
    )
    return t


def timeline(whole: WholePath) -> Table:
    """Where the whole path's time went (row 1, or 1b when the creates were batched)."""
    how = "row 1, CreateProject" if whole.batch == 1 else f"row 1b, BatchCreateProjects of {whole.batch}"
    t = Table(
        title=f"Whole path timeline, {how} (seconds from the first create)",
        box=box.SIMPLE,
        title_justify="left",
    )
    t.add_column("stage", no_wrap=True)
    t.add_column("at", justify="right")
    t.add_column("rate", justify="right")

    def row(stage: str, at: float | None) -> None:
        t.add_row(
            stage, "—" if at is None else f"{at:.2f}", "—" if not at else f"{whole.events / at:,.0f} /s"
        )

    row(f"last of {whole.events:,} projects' creates answered by the gateway", whole.t_acked)
    row("all events in JetStream (outbox relay done)", whole.t_stream)
    row("all events projected by lineage-svc", whole.t_projected)
    errors = whole.creates.errors
    t.add_row("create errors", f"{errors}" + (f" ({whole.creates.first_error})" if errors else ""), "")
    t.add_row("activity entries counted after the clock stopped", f"{whole.counted:,}", "")
    redelivered = f"{whole.redelivered:,}"
    if whole.redelivered:
        redelivered = f"[yellow]{redelivered}[/]"
    t.add_row(
        "redeliveries by lineage-svc's consumer (> 0: not acked, resent after ack_wait)", redelivered, ""
    )
    t.add_row("progress polls made (stream info + ListActivity page_size=1)", f"{whole.polls:,}", "")
    return t


def cpu_table(results: Results) -> Table | None:
    """CPU by process over each measured window: cores, and ms of CPU per call or event."""
    ops = {
        "echo": results.echo.load.calls if results.echo else 0,
        "whole-creates": results.whole.events if results.whole else 0,
        "whole": results.whole.events if results.whole else 0,
        "batched": results.batched.events if results.batched else 0,
        "gateway": results.gateway.load.calls if results.gateway else 0,
    }
    titles = {
        "echo": "B echo",
        "whole-creates": "1 until last create answered",
        "whole": "1 whole path",
        "batched": "1b whole path, batched",
        "gateway": "2 gateway calls",
    }
    uses = {key: use for key in titles if (use := results.usage.get(key)) is not None}
    if not uses:
        return None
    t = Table(
        title="CPU by process over each measured window: cores busy (ms of CPU per call or event)",
        box=box.SIMPLE,
        title_justify="left",
    )
    t.add_column("process", no_wrap=True)
    for key in uses:
        t.add_column(titles[key], justify="right")

    def cell(cores: float, key: str) -> str:
        per_op = f"{cores * uses[key].seconds / ops[key] * 1e3:.2f}" if ops[key] else "—"
        return f"{cores:.2f} ({per_op})"

    labels = {label for use in uses.values() for label in use.by_process}
    rows = sorted(
        ((label, {k: u.by_process.get(label, 0.0) for k, u in uses.items()}) for label in labels),
        key=lambda row: -max(row[1].values()),
    )
    for label, cores in rows:
        if max(cores.values()) >= 0.01:
            t.add_row(label, *(cell(cores[k], k) for k in uses))
    t.add_row("all of the benchmark's processes", *(cell(u.ours, k) for k, u in uses.items()))
    t.add_row("other processes on the machine", *(cell(u.others, k) for k, u in uses.items()))
    return t


def print_report(console: Console, results: Results) -> None:
    """Print the tables and the notes."""
    console.print(table(results))
    for whole in (results.whole, results.batched):
        if whole is not None:
            console.print(timeline(whole))
    cpu = cpu_table(results)
    if cpu is not None:
        console.print(cpu)
    busy = [k for k, u in results.usage.items() if u is not None and u.others >= BUSY]
    if busy:
        console.print(
            f"[yellow]Other processes used ≥ {BUSY} cores during: {', '.join(busy)}; "
            "those figures are low by about that share of the machine.[/]"
        )
    for phase, error in results.errors.items():
        console.print(f"[red]{phase} could not be measured:[/] {error}")
    console.print(
        "Durability of the figures: JetStream file storage (reference A and SHIPYARD_EVENTS) writes each "
        "message to the OS without an fsync per message (nats-server syncs every 2 min by default); the "
        "services' SQLite is WAL with synchronous=NORMAL (a commit survives a killed process, not "
        "necessarily a power loss). The goal of 1 is a ratio of A, the plain awaited publish rate; "
        "the ratio of A' is printed for information. p50/p99 are client-side latencies of successful calls; "
        '"others\' CPU" is the cores used by processes outside the benchmark during that phase.'
    )


def as_json(results: Results) -> dict[str, Any]:
    """The figures as plain data."""

    def grpc_rate(rate: GrpcRate | None) -> dict[str, Any] | None:
        if rate is None:
            return None
        p50, p99 = rate.load.percentile(50), rate.load.percentile(99)
        return {
            "calls": rate.load.calls,
            "errors": rate.load.errors,
            "seconds": rate.load.elapsed,
            "calls_per_s": rate.load.rate,
            "p50_ms": None if math.isnan(p50) else p50 * 1e3,
            "p99_ms": None if math.isnan(p99) else p99 * 1e3,
        }

    def whole_path(whole: WholePath | None, concurrency: int) -> dict[str, Any] | None:
        if whole is None:
            return None
        return {
            "events": whole.events,
            "batch": whole.batch,
            "creates_per_s": whole.creates_per_s,
            "events_per_s": whole.events_per_s,
            "t_acked": whole.t_acked,
            "t_stream": whole.t_stream,
            "t_projected": whole.t_projected,
            "create_errors": whole.creates.errors,
            "counted": whole.counted,
            "polls": whole.polls,
            "redelivered": whole.redelivered,
            "create_latency": grpc_rate(GrpcRate(whole.creates, concurrency)),
            "samples": [s.__dict__ for s in whole.samples],
        }

    return {
        "settings": results.settings,
        "nats_reference": None if results.nats is None else results.nats.__dict__,
        "echo_reference": grpc_rate(results.echo),
        "whole_path": whole_path(results.whole, results.settings["concurrency"]),
        "whole_path_batched": whole_path(results.batched, results.settings["batch_concurrency"]),
        "gateway_get_project": grpc_rate(results.gateway),
        "errors": results.errors,
        "others_cpu_cores": {k: None if u is None else u.others for k, u in results.usage.items()},
        "our_cpu_cores": {k: None if u is None else u.ours for k, u in results.usage.items()},
    }
