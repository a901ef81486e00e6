"""``python -m bench.cli``: how long a ``shipyard`` command takes, beside the bare interpreter
(``python -c pass``) timed in the same run, on the same machine, interleaved.

Commands: ``shipyard --help`` and ``shipyard project list`` (against a stack this bench starts in a
temporary directory, with 20 projects), plus ``shipyard project list -o json``. Each is run
``--repeat`` times as a fresh process; the figures are medians of wall-clock time. **Goal:**
``--help`` and ``project list`` under 0.3 s above the bare interpreter.

``--source DIR`` times another checkout's ``src`` (e.g. the code before a change: ``git worktree``
or ``git archive``) against the same stack: the "before" figures.

Prints a table and writes ``bench/out/cli-last-run.json``; never fails on a figure.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from rich import box
from rich.console import Console
from rich.table import Table

from bench.procs import REPO_ROOT
from shipyard.contracts.repo.v1 import projects_pb2 as pb
from shipyard.local.harness import Stack

OUT = REPO_ROOT / "bench" / "out"
GOAL_S = 0.3
COMMANDS: dict[str, list[str]] = {
    "shipyard --help": ["--help"],
    "shipyard project list": ["project", "list"],
    "shipyard project list -o json": ["project", "list", "-o", "json"],
}
BARE = "python -c pass"
SHIPYARD = "import sys; from shipyard.cli.main import app; sys.argv[0] = 'shipyard'; app()"


def timed(argv: list[str], env: dict[str, str]) -> tuple[float, float] | None:
    """Wall-clock and CPU (user + system) seconds of one process from start to exit; None when it
    failed (an older CLI may lack an option: its row is left out). CPU time is the steadier figure
    on a busy machine: waiting for a core does not count."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    done = subprocess.run(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return (wall, cpu) if done.returncode == 0 else None


def measure(repeat: int, env: dict[str, str]) -> dict[str, dict[str, float]]:
    """Median wall-clock and CPU seconds of the bare interpreter and of each command, interleaved
    round by round so that a busy moment of the machine weighs on all alike."""
    samples: dict[str, list[tuple[float, float] | None]] = {BARE: [], **{name: [] for name in COMMANDS}}
    for _ in range(repeat):
        samples[BARE].append(timed([sys.executable, "-c", "pass"], env))
        for name, args in COMMANDS.items():
            samples[name].append(timed([sys.executable, "-c", SHIPYARD, *args], env))
    return {name: {"wall": statistics.median(s[0] for s in ok), "cpu": statistics.median(s[1] for s in ok)}
            for name, values in samples.items() if (ok := [v for v in values if v is not None])}


def report(label: str, medians: dict[str, dict[str, float]], console: Console) -> None:
    """One table: each command's medians, their excess over the interpreter and the ratio to it."""
    bare = medians[BARE]
    table = Table(title=label, box=box.SIMPLE)
    table.add_column("Command", no_wrap=True)
    for header in ("Wall", "Above bare python", "Ratio to bare python", "CPU", "CPU above bare python",
                   f"Goal (< {GOAL_S} s above)"):
        table.add_column(header)
    for name, figures in medians.items():
        above = figures["wall"] - bare["wall"]
        goal = "—" if name == BARE or "-o json" in name else (
            "[green]met[/]" if above < GOAL_S else "[red]missed[/]")
        ratio = figures["wall"] / bare["wall"]
        table.add_row(name, f"{figures['wall']:.3f} s", f"{above:.3f} s", f"{ratio:.1f}",
                      f"{figures['cpu']:.3f} s", f"{figures['cpu'] - bare['cpu']:.3f} s", goal)
    console.print(table)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=15, help="processes per command (default 15)")
    parser.add_argument("--source", type=Path, action="append", default=[],
                        help="also time the CLI of this checkout (its src/ first on PYTHONPATH)")
    args = parser.parse_args()
    console = Console(width=max(120, Console().width))
    results: dict[str, dict[str, dict[str, float]]] = {}
    with tempfile.TemporaryDirectory(prefix="bench-cli-") as work:
        stack = Stack(Path(work) / "data").start()
        try:
            client = stack.client()
            for n in range(20):
                client.call(client.projects.CreateProject,
                            pb.CreateProjectRequest(project=pb.Project(name=f"bench-project-{n:02d}")))
            client.close()
            home = Path(work) / "home"
            home.mkdir()
            env = {**os.environ, "HOME": str(home), "XDG_CONFIG_HOME": str(home / ".config"),
                   "SHIPYARD_SERVER": stack.grpc_address, "SHIPYARD_TOKEN": stack.admin_token()}
            env.pop("PYTHONPATH", None)
            for source in args.source:
                other = {**env, "PYTHONPATH": str(source.resolve() / "src")}
                results[f"{source}"] = measure(args.repeat, other)
            results["this checkout"] = measure(args.repeat, env)
        finally:
            stack.stop()
    for label, medians in results.items():
        report(f"{label}: medians of {args.repeat} processes", medians, console)
    OUT.mkdir(parents=True, exist_ok=True)
    figures = {"repeat": args.repeat, "medians_s": results}
    (OUT / "cli-last-run.json").write_text(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
