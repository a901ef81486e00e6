"""The figures of ``python -m bench.mlflow`` (per target and phase), their tables and their JSON copy."""

from __future__ import annotations

import argparse
import math
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

from rich import box
from rich.console import Console
from rich.table import Table

from bench.machine import Usage

LOG_GOAL = 3.0
SEARCH_GOAL = 2.0
BUSY = 0.25  # cores used by other processes above which a figure is flagged
FILTER = "metrics.acc > 0.5"
ORDER = ["metrics.acc DESC"]
PAGE = 1000
TITLES = {"mlflow": "MLflow server", "shipyard": "Shipyard"}


@dataclass
class Phase:
    """One measured phase of one target."""

    seconds: list[float] = field(default_factory=list)  # of each timed call or scan
    total_s: float = 0.0
    usage: Usage | None = None
    error: str = ""
    wrong: str = ""  # what was wrong with the answers of the timed calls or scans, checked afterwards


@dataclass
class Figures:
    """What one target measured."""

    target: str
    log: Phase = field(default_factory=Phase)
    seed_s: float = 0.0
    seed_error: str = ""
    search: Phase = field(default_factory=Phase)
    scan_all: Phase = field(default_factory=Phase)
    error: str = ""  # the target could not be measured at all
    notes: list[str] = field(default_factory=list)


def _rate(count: float, phase: Phase) -> float | None:
    return count / phase.total_s if phase.total_s > 0 and not phase.error else None


def _quantile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, math.ceil(q * len(ordered)) - 1)]


def rates(figures: Figures, args: argparse.Namespace) -> dict[str, float | None]:
    """The figures of one target: metrics/s, scans/s, runs created/s."""
    return {
        "log_metrics_per_s": _rate(args.calls * args.batch, figures.log),
        "search_scans_per_s": _rate(len(figures.search.seconds), figures.search),
        "scan_all_scans_per_s": _rate(len(figures.scan_all.seconds), figures.scan_all),
        "seed_runs_per_s": args.runs / figures.seed_s if figures.seed_s > 0 else None,
    }


def _ratio(ours: float | None, theirs: float | None) -> float | None:
    return ours / theirs if ours and theirs else None


def _cell(value: float | None, spec: str = ",.0f") -> str:
    return "—" if value is None else format(value, spec)


def _verdict(ratio: float | None, goal: float | None, wrong: bool) -> str:
    if wrong:
        return "[red]answers wrong[/]"
    if goal is None:
        return "for information"
    if ratio is None:
        return "[red]not measured[/]"
    return "[green]met[/]" if ratio >= goal else "[red]not met[/]"


def _others(phases: list[Phase]) -> str:
    cells = []
    for phase in phases:
        use = phase.usage
        text = "—" if use is None else f"{use.others:.2f}"
        cells.append(f"[yellow]{text}[/]" if use is not None and use.others >= BUSY else text)
    return " / ".join(cells)


def main_table(by_target: dict[str, Figures], args: argparse.Namespace) -> Table:
    """Figure, Shipyard, MLflow server, ratio, goal, verdict."""
    t = Table(title="MLflow tracking: Shipyard's MLflow API vs mlflow server (SQLite), the same client",
              box=box.SIMPLE_HEAVY, title_justify="left")
    for column in ("figure", "Shipyard", "MLflow server", "ratio", "goal", "met?", "others' CPU (S / M)"):
        t.add_column(column, justify="left" if column in ("figure", "met?") else "right")
    ours, theirs = by_target.get("shipyard", Figures("shipyard")), by_target.get("mlflow", Figures("mlflow"))
    mine, ref = rates(ours, args), rates(theirs, args)

    def row(title: str, key: str, goal: float | None, phase: str | None, spec: str = ",.0f") -> None:
        ratio = _ratio(mine[key], ref[key])
        phases = [getattr(f, phase) for f in (ours, theirs)] if phase else []
        shown = "—" if ratio is None else f"{ratio:.2f}x"
        t.add_row(title, _cell(mine[key], spec), _cell(ref[key], spec), shown,
                  f"≥ {goal:g}x" if goal else "", _verdict(ratio, goal, any(p.wrong for p in phases)),
                  _others(phases))

    def detail(title: str, phase: str, scale: float, q: float | None = None, spec: str = ",.1f") -> None:
        cells = []
        for figures in (ours, theirs):
            seconds = getattr(figures, phase).seconds
            if not seconds:
                cells.append("—")
                continue
            value = _quantile(seconds, q) if q is not None else sum(seconds) / len(seconds)
            cells.append(_cell(value * scale, spec))
        t.add_row(f"  {title}", *cells, "", "", "", "")

    row(f"log_batch: metrics/s ({args.calls} calls x {args.batch:,})", "log_metrics_per_s", LOG_GOAL, "log")
    detail("per call, p50 (ms)", "log", 1e3, 0.5)
    detail("per call, p99 (ms)", "log", 1e3, 0.99)
    row(f"search_runs {FILTER!r}, by acc: full scans/s ({args.runs:,} runs)", "search_scans_per_s",
        SEARCH_GOAL, "search", ",.3f")
    detail("seconds per full scan (mean)", "search", 1.0, spec=",.3f")
    row("search_runs, no filter, by acc: full scans/s", "scan_all_scans_per_s", None, "scan_all", ",.3f")
    detail("seconds per full scan (mean)", "scan_all", 1.0, spec=",.3f")
    row(f"setup: runs created/s ({args.threads} threads; not a goal)", "seed_runs_per_s", None, None)
    return t


def cpu_table(by_target: dict[str, Figures], args: argparse.Namespace) -> Table | None:
    """Cores each process kept busy during each measured phase, and its CPU per unit of work."""
    columns = [(f"{TITLES[f.target]} {what}", phase, unit, per)
               for what, name, unit, per in (("logging", "log", "ms/call", args.calls),
                                             ("search", "search", "ms/scan", args.searches),
                                             ("no filter", "scan_all", "ms/scan", args.scans_all))
               for f in by_target.values() if (phase := getattr(f, name)).usage is not None]
    if not columns:
        return None
    t = Table(title="CPU by process during each phase: cores busy (CPU ms per call or per scan)",
              box=box.SIMPLE_HEAVY, title_justify="left")
    t.add_column("process")
    for title, *_ in columns:
        t.add_column(title, justify="right")
    labels = sorted({label for _, phase, *_ in columns if phase.usage
                     for label, cores in phase.usage.by_process.items() if cores >= 0.005})
    for label in labels:
        cells = []
        for _, phase, _, per in columns:
            cores = phase.usage.by_process.get(label, 0.0) if phase.usage else 0.0
            cells.append(f"{cores:.2f} ({cores * phase.total_s / per * 1e3:,.1f})" if cores >= 0.005 else "")
        t.add_row(label, *cells)
    t.add_row("other processes on the machine", *(
        f"{phase.usage.others:.2f}" if phase.usage else "—" for _, phase, *_ in columns))
    return t


def as_json(by_target: dict[str, Figures], args: argparse.Namespace) -> dict[str, Any]:
    """The figures, the settings, every timing, for bench/out/mlflow-last-run.json."""
    mine = rates(by_target.get("shipyard", Figures("shipyard")), args)
    ref = rates(by_target.get("mlflow", Figures("mlflow")), args)
    return {
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "settings": {"calls": args.calls, "batch": args.batch, "runs": args.runs, "searches": args.searches,
                     "scans_all": args.scans_all, "leave_running": args.leave_running,
                     "threads": args.threads, "targets": args.targets, "stack_env": args.stack_env,
                     "filter": FILTER, "order_by": ORDER, "page": PAGE},
        "ratios": {key: _ratio(mine[key], ref[key]) for key in mine},
        "goals": {"log_metrics_per_s": LOG_GOAL, "search_scans_per_s": SEARCH_GOAL},
        "targets": {key: {**asdict(figures), "rates": rates(figures, args)}
                    for key, figures in by_target.items()},
    }


def print_report(console: Console, by_target: dict[str, Figures], args: argparse.Namespace) -> None:
    """The tables and the notes under them."""
    console.print(main_table(by_target, args))
    if (cpu := cpu_table(by_target, args)) is not None:
        console.print(cpu)
    for figures in by_target.values():
        name = TITLES[figures.target]
        problems = [figures.error, figures.seed_error and f"creating the runs: {figures.seed_error}",
                    *(f"{what}: {problem}" for what, p in (
                        ("logging", figures.log), ("search", figures.search), ("no filter", figures.scan_all))
                      for problem in (p.error, p.wrong) if problem),
                    *figures.notes]
        for problem in filter(None, problems):
            console.print(f"[red]{name}: {problem}[/]")
    console.print("The client is mlflow.MlflowClient in this process for both targets; its CPU is the "
                  f"load generator's. Others' CPU ≥ {BUSY} cores (yellow) makes a figure unreliable.")
