"""``python -m bench.environments``: how long run-svc takes to build a run's Python environment, beside
``python -m venv`` + ``pip install`` of the same packages timed in the same run, interleaved.

The set is the typical data-science one: pandas, scikit-learn and matplotlib (with NumPy, SciPy and
the rest of their dependencies), from the test wheelhouse (``.venv/wheelhouse``, which
``tools/install-test-deps.sh`` fills), offline on both sides: the figures are installs, not downloads.
Both sides compile bytecode (pip does by default; run-svc does because a run's environment is
read-only to it, so a run could not write it at import).

* **cold**: run-svc's ``LocalEnvironments`` in a new folder, uv's cache empty, until the environment
  is ready (a run can start: its bytecode is then compiled in the background). **Goal: ≤ 0.5x venv + pip.**
  Beside it, for information: until that bytecode is compiled too.
* **warm**: a second environment of the same packages (another digest), uv's cache filled by the
  first: hard links from the cache, the first's bytecode hard-linked too. **Goal: ≤ 0.1x venv + pip.**
* **ready**: asking for an environment that is built already (what every later run pays).

Prints a table and writes ``bench/out/environments-last-run.json``; never fails on a figure.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from rich import box
from rich.console import Console
from rich.table import Table
from shipyard_run.adapters.environments import LocalEnvironments, PackageSources
from shipyard_run.app.ports import JobEnvironment

from bench.procs import REPO_ROOT
from shipyard.kit.environments import environment_digest
from shipyard.local.harness import WHEELHOUSE

OUT = REPO_ROOT / "bench" / "out"
PACKAGES = ("pandas", "scikit-learn", "matplotlib")
COLD_GOAL, WARM_GOAL = 0.5, 0.1
BASE_PYTHON = getattr(sys, "_base_executable", sys.executable)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The command line."""
    p = argparse.ArgumentParser(prog="python -m bench.environments", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--repeat", type=int, default=3, help="builds of each kind (3); the figures are medians")
    p.add_argument("--json", type=Path, default=OUT / "environments-last-run.json",
                   help="where the figures go")
    return p.parse_args(argv)


def _environment(requirements: tuple[str, ...]) -> JobEnvironment:
    return JobEnvironment("bench", "", requirements, environment_digest("", requirements))


def venv_and_pip(work: Path) -> float:
    """Seconds for ``python -m venv`` + ``pip install --no-index --find-links`` of the set."""
    target = work / "pip-venv"
    started = time.perf_counter()
    subprocess.run([BASE_PYTHON, "-m", "venv", str(target)], check=True)
    subprocess.run([str(target / "bin" / "python"), "-m", "pip", "install", "--quiet",
                    "--disable-pip-version-check", "--no-index", "--find-links", str(WHEELHOUSE), *PACKAGES],
                   check=True)
    seconds = time.perf_counter() - started
    shutil.rmtree(target)
    return seconds


async def shipyard_builds(work: Path) -> dict[str, float]:
    """Seconds for a cold build (empty uv cache) until ready and until its bytecode is compiled, a warm
    one (same packages, another environment) and asking for an environment already built."""
    environments = LocalEnvironments(work / "environments", PackageSources(find_links=str(WHEELHOUSE),
                                                                           offline=True))
    first, second = _environment(PACKAGES), _environment(tuple(reversed(PACKAGES)))
    figures: dict[str, float] = {}
    started = time.perf_counter()
    await environments.build(first)
    figures["cold"] = time.perf_counter() - started
    await environments.compiled()
    figures["cold_bytecode"] = time.perf_counter() - started
    for label, environment in (("warm", second), ("ready", second)):
        started = time.perf_counter()
        await environments.build(environment)
        figures[label] = time.perf_counter() - started
    await environments.compiled()
    shutil.rmtree(environments.root)
    return figures


def report(console: Console, figures: dict[str, Any]) -> None:
    """The table: figure, Shipyard, venv + pip, ratio, goal."""
    t = Table(title=f"Run environments ({' + '.join(PACKAGES)}, offline): uv beside venv + pip, "
                    f"medians of {figures['repeat']}", box=box.SIMPLE_HEAVY, title_justify="left")
    for column in ("figure", "Shipyard (uv)", "venv + pip", "ratio", "goal"):
        t.add_column(column, justify="left" if column == "figure" else "right")
    reference = statistics.median(figures["venv_pip_s"])
    rows = (("cold", "cold build, until ready", COLD_GOAL),
            ("cold_bytecode", "  and until its bytecode is compiled", None),
            ("warm", "warm build (uv's cache filled)", WARM_GOAL),
            ("ready", "already built (the cache hit)", None))
    for key, label, goal in rows:
        ours = statistics.median(figures[f"{key}_s"])
        ratio = ours / reference
        verdict = "for information" if goal is None else (
            f"≤ {goal}x: " + ("[green]met[/]" if ratio <= goal else "[red]not met[/]"))
        shown = f"{ours * 1e3:,.1f} ms" if key == "ready" else f"{ours:,.2f} s"
        t.add_row(label, shown, f"{reference:,.2f} s", f"{ratio:.3f}x", verdict)
    console.print(t)


def main(argv: list[str] | None = None) -> int:
    """Measure, print, write the figures."""
    args = parse_args(argv)
    console = Console()
    if not any(WHEELHOUSE.glob("pandas-*.whl")):
        console.print(f"no wheels in {WHEELHOUSE}: run bash tools/install-test-deps.sh first")
        return 1
    figures: dict[str, Any] = {"repeat": args.repeat, "packages": PACKAGES, "venv_pip_s": [], "cold_s": [],
                               "cold_bytecode_s": [], "warm_s": [], "ready_s": []}
    for n in range(args.repeat):
        with tempfile.TemporaryDirectory(prefix="shipyard-bench-environments-", dir="/var/tmp") as work:
            console.log(f"round {n + 1}: venv + pip …")
            figures["venv_pip_s"].append(venv_and_pip(Path(work)))
            console.log(f"round {n + 1}: Shipyard cold, warm, ready …")
            for label, seconds in asyncio.run(shipyard_builds(Path(work))).items():
                figures[f"{label}_s"].append(seconds)
    report(console, figures)
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(figures, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
