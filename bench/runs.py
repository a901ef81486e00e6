"""``python -m bench.runs``: how fast the local executor starts and finishes runs, beside the same
command started directly with ``subprocess`` in the same run.

* **Latency**: submit → the user's process running. Each run's command prints the wall clock
  (``date +%s%N``) as its first act; the figure is that minus the moment before SubmitRun. The
  reference is the same command started with ``subprocess.Popen`` (the moment before Popen to the
  printed clock). Runs are submitted one at a time, each after the previous one ended. **Goal:
  median under 300 ms.**
* **Throughput**: N trivial runs (``true``) submitted at once from 8 threads; runs completed per
  minute from the first submit to the last run's end. The reference is the same command run N
  times with ``subprocess.run``, one after another.

Prints a table and writes ``bench/out/runs-last-run.json``; never fails on a figure.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from pathlib import Path
from typing import Any

from rich import box
from rich.console import Console
from rich.table import Table

from bench.procs import REPO_ROOT
from shipyard.client.connection import Client
from shipyard.contracts.run.v1 import runs_pb2 as pb
from shipyard.local.harness import Stack, wait_for

OUT = REPO_ROOT / "bench" / "out"
STAMP = "date +%s%N"
LATENCY_GOAL_S = 0.300
ISOLATION_GOAL_S = 0.050  # what the sandbox (namespaces, a user of its own) may add to a start
# The same stack with runs not isolated (an operator's runs start there): the sandbox's reference.
UNISOLATED = {"SHIPYARD_FAILPOINTS": "run.sandbox=unavailable"}
ENDED = (pb.RUN_STATUS_COMPLETE, pb.RUN_STATUS_FAILED, pb.RUN_STATUS_STOPPED, pb.RUN_STATUS_ERROR)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The command line."""
    p = argparse.ArgumentParser(prog="python -m bench.runs", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--latency-runs", type=int, default=30, help="runs for the latency figure (30)")
    p.add_argument("--throughput-runs", type=int, default=100, help="runs for the throughput figure (100)")
    p.add_argument("--json", type=Path, default=OUT / "runs-last-run.json", help="where the figures go")
    return p.parse_args(argv)


def _ended(client: Client, name: str) -> pb.Run | None:
    run = client.call(client.runs.GetRun, pb.GetRunRequest(name=name))
    return run if run.status in ENDED else None


def build_environment(client: Client) -> None:
    """One run first, so that its environment (the default image's) is built before any figure: the
    figures are starts in an existing environment, not its first-use build (bench.environments times that)."""
    client.call(client.runs.SubmitRun, pb.SubmitRunRequest(run=pb.Run(name="environment", command="true")))
    wait_for(partial(_ended, client, "environment"), 600, "the run that builds the environment to end")


def latency_via_shipyard(client: Client, count: int) -> list[float]:
    """Seconds from before SubmitRun to the first clock the run's command printed."""
    seconds = []
    for n in range(count):
        name = f"latency-{n}"
        before = time.time_ns()
        client.call(client.runs.SubmitRun, pb.SubmitRunRequest(run=pb.Run(name=name, command=STAMP)))
        run = wait_for(partial(_ended, client, name), 60, f"{name} to end")
        if run.status != pb.RUN_STATUS_COMPLETE:
            raise RuntimeError(f"{name} ended {pb.RunStatus.Name(run.status)}: {run.status_reason}")
        printed = client.call(client.runs.ReadRunLogs, pb.ReadRunLogsRequest(name=name)).data
        seconds.append((int(printed.split()[0]) - before) / 1e9)
    return seconds


def latency_via_subprocess(count: int) -> list[float]:
    """The same command started directly: before Popen → the clock it printed."""
    seconds = []
    for _ in range(count):
        before = time.time_ns()
        done = subprocess.run(["/bin/sh", "-c", STAMP], capture_output=True, check=True)
        seconds.append((int(done.stdout.split()[0]) - before) / 1e9)
    return seconds


def throughput_via_shipyard(client: Client, count: int) -> float:
    """Runs completed per minute, N submitted at once."""
    names = [f"burst-{n}" for n in range(count)]
    start = time.monotonic()
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda name: client.call(client.runs.SubmitRun, pb.SubmitRunRequest(
            run=pb.Run(name=name, command="true"))), names))

    def all_ended() -> bool:
        listed = client.call(client.runs.ListRuns, pb.ListRunsRequest(name_prefix="burst-", page_size=1000))
        return sum(r.status in ENDED for r in listed.runs) == count

    wait_for(all_ended, 600, f"{count} runs to end")
    return count / (time.monotonic() - start) * 60


def throughput_via_subprocess(count: int) -> float:
    """The same command run N times, one after another: per minute."""
    start = time.monotonic()
    for _ in range(count):
        subprocess.run(["/bin/sh", "-c", "true"], check=True)
    return count / (time.monotonic() - start) * 60


def report(console: Console, figures: dict[str, Any]) -> None:
    """The table: figure, reference, ratio, goal."""
    t = Table(title="Local executor: runs vs the same command started with subprocess", box=box.SIMPLE_HEAVY,
              title_justify="left")
    for column in ("figure", "Shipyard", "subprocess", "ratio", "goal"):
        t.add_column(column, justify="left" if column == "figure" else "right")
    ours, ref = figures["latency_s"], figures["latency_reference_s"]
    median, ref_median = statistics.median(ours), statistics.median(ref)
    met = "[green]met[/]" if median < LATENCY_GOAL_S else "[red]not met[/]"
    t.add_row("submit → process started, median (ms)", f"{median * 1e3:,.0f}", f"{ref_median * 1e3:,.1f}",
              f"{median / ref_median:,.0f}x", f"< {LATENCY_GOAL_S * 1e3:.0f} ms: {met}")
    t.add_row("  p90 (ms)", f"{statistics.quantiles(ours, n=10)[-1] * 1e3:,.0f}",
              f"{statistics.quantiles(ref, n=10)[-1] * 1e3:,.1f}", "", "")
    unisolated = statistics.median(figures["latency_unisolated_s"])
    added = median - unisolated
    met = "[green]met[/]" if added < ISOLATION_GOAL_S else "[red]not met[/]"
    t.add_row("  the sandbox's share: isolated minus not isolated, medians (ms)", f"{added * 1e3:,.0f}",
              f"not isolated: {unisolated * 1e3:,.0f}", "", f"< {ISOLATION_GOAL_S * 1e3:.0f} ms: {met}")
    per_min, ref_per_min = figures["runs_per_minute"], figures["runs_per_minute_reference"]
    t.add_row(f"trivial runs completed per minute ({figures['throughput_runs']} at once)", f"{per_min:,.0f}",
              f"{ref_per_min:,.0f}", f"{per_min / ref_per_min:.3f}x", "for information")
    console.print(t)


def main(argv: list[str] | None = None) -> int:
    """Start a stack, measure, print."""
    args = parse_args(argv)
    console = Console()
    work = Path(tempfile.mkdtemp(prefix="shipyard-bench-runs-", dir="/var/tmp"))
    stack = Stack(work / "data").start()
    client = stack.client()
    try:
        build_environment(client)
        console.log("latency …")
        figures: dict[str, Any] = {
            "latency_s": latency_via_shipyard(client, args.latency_runs),
            "latency_reference_s": latency_via_subprocess(args.latency_runs),
        }
        console.log("throughput …")
        figures["throughput_runs"] = args.throughput_runs
        figures["runs_per_minute"] = throughput_via_shipyard(client, args.throughput_runs)
        figures["runs_per_minute_reference"] = throughput_via_subprocess(args.throughput_runs)
    finally:
        client.close()
        stack.stop()
    # Runs without isolation, on a stack of their own, measured the same way.
    plain = Stack(work / "unisolated", env=UNISOLATED).start()
    plain_client = plain.client()
    try:
        build_environment(plain_client)
        console.log("latency without isolation …")
        figures["latency_unisolated_s"] = latency_via_shipyard(plain_client, args.latency_runs)
    finally:
        plain_client.close()
        plain.stop()
    report(console, figures)
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(figures, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
