"""The studies benchmark's records, where each side's time went, its tables and its JSON copy."""

from __future__ import annotations

import os
import statistics
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from rich import box
from rich.console import Console
from rich.table import Table

from bench.machine import Usage
from bench.studies_reference import ReferenceRun, ReferenceTrial

GOAL = 1.3  # Shipyard's wall time at most this many times the reference's
BUSY = 0.25  # others' cores from which a phase is flagged
SERVICES = ("run-svc", "gateway", "nats-server", "lineage-svc", "repo-svc", "serving-svc",
            "supervisor (shipyard up)", "load generator (bench)")
TRIAL_PROCESSES = "trials' processes (wrapper, sandbox, Python)"


@dataclass
class PlatformTrial:
    """One trial run, its moments (ns since the epoch; 0: not known)."""

    name: str
    created_ns: int  # its run stored by the driver
    running_ns: int  # marked running, after its process was launched
    started_ns: int  # the clock the script printed first
    metric_ns: int  # its loss recorded by run-svc
    ended_ns: int  # its run ended
    status: str  # its run's, or NO_LOSS when its log has no loss line


@dataclass
class PlatformRun:
    """One study: its wall time and its trials."""

    name: str
    wall_s: float  # before SubmitRun → the client saw StudyCompleted
    submit_ns: int
    seen_ns: int
    completed_ns: int  # the study's completion_time
    status: str
    reason: str
    succeeded: int
    event_seen: bool
    trials: list[PlatformTrial] = field(default_factory=list)


@dataclass
class Measured:
    """Everything one benchmark run measured, side by side."""

    args: dict[str, Any]
    stack_env: dict[str, str]
    python: str = ""
    reference: list[tuple[ReferenceRun, Usage | None]] = field(default_factory=list)
    platform: list[tuple[PlatformRun, Usage | None]] = field(default_factory=list)

    def add(self, ran: ReferenceRun | PlatformRun, usage: Usage | None) -> None:
        """One measure of a side."""
        if isinstance(ran, PlatformRun):
            self.platform.append((ran, usage))
        else:
            self.reference.append((ran, usage))

    @property
    def trials(self) -> int:
        return int(self.args["trials"])

    @property
    def parallel(self) -> int:
        return int(self.args["parallel"])

    @property
    def complete(self) -> bool:
        """Every study succeeded with every trial, every reference trial reported its loss."""
        studies = all(run.status == "STUDY_STATUS_SUCCEEDED" and run.succeeded == self.trials
                      for run, _ in self.platform)
        return bool(self.platform and self.reference) and studies and not any(
            run.failed or len(run.trials) != self.trials for run, _ in self.reference)

    def walls(self) -> tuple[list[float], list[float]]:
        """Shipyard's and the reference's wall times, in seconds."""
        return [run.wall_s for run, _ in self.platform], [run.wall_s for run, _ in self.reference]

    def as_json(self) -> dict[str, Any]:
        """Every figure and every trial's moments."""
        ours, ref = self.walls()
        return {
            "args": self.args, "stack_env": self.stack_env, "python": self.python, "cpus": os.cpu_count(),
            "load_average": os.getloadavg(), "goal": GOAL,
            "shipyard_wall_s": ours, "reference_wall_s": ref,
            "ratio_of_medians": _ratio(ours, ref),
            "overhead_per_trial_s": _overhead(ours, ref, self.trials / self.parallel),
            "steps_ms": {label: {"shipyard": _summary(p), "reference": _summary(r)}
                         for label, p, r in steps(self)},
            "study_ms": {label: _summary(values) for label, values in study_steps(self)},
            "shipyard": [{**asdict(run), "usage": _usage(use)} for run, use in self.platform],
            "reference": [{**asdict(run), "usage": _usage(use)} for run, use in self.reference],
        }


def _ratio(ours: list[float], ref: list[float]) -> float | None:
    return statistics.median(ours) / statistics.median(ref) if ours and ref else None


def _overhead(ours: list[float], ref: list[float], rounds: float) -> float | None:
    return (statistics.median(ours) - statistics.median(ref)) / rounds if ours and ref else None


def _summary(values: Sequence[float]) -> dict[str, float] | None:
    if not values:
        return None
    return {"median": statistics.median(values), "mean": statistics.fmean(values), "max": max(values),
            "count": len(values)}


def _usage(use: Usage | None) -> dict[str, Any] | None:
    return None if use is None else asdict(use)


def _ms(later: int, earlier: int) -> float | None:
    return (later - earlier) / 1e6 if later and earlier else None


def _each(values: Sequence[float | None]) -> list[float]:
    return [v for v in values if v is not None]


def _slot_gaps(starts: Sequence[int], ends: Sequence[int], parallel: int) -> list[float]:
    """From a trial's end to the start of the trial that took its slot: the k-th trial to end frees the
    slot of the (parallel + k)-th trial to start."""
    starts, ends = sorted(starts), sorted(ends)
    return _each([_ms(starts[k], ends[k - parallel]) for k in range(parallel, min(len(starts),
                                                                                   len(ends) + parallel))])


def _platform(runs: Sequence[PlatformRun], parallel: int,
              step: Callable[[PlatformTrial], float | None]) -> list[float]:
    return _each([step(t) for run in runs for t in run.trials])


def _reference(runs: Sequence[ReferenceRun], step: Callable[[ReferenceTrial], float | None]) -> list[float]:
    return _each([step(t) for run in runs for t in run.trials])


def steps(measured: Measured) -> list[tuple[str, list[float], list[float]]]:
    """Each step of a trial's path (ms), Shipyard's and the reference's, pooled over the measures."""
    ours = [run for run, _ in measured.platform]
    ref = [run for run, _ in measured.reference]
    k = measured.parallel
    return [
        ("a trial ended → the trial taking its slot created | exit seen → next Popen (tell, ask)",
         [g for run in ours for g in _slot_gaps([t.created_ns for t in run.trials],
                                                [t.ended_ns for t in run.trials], k)],
         [g for run in ref for g in _slot_gaps([t.popen_ns for t in run.trials],
                                               [t.exited_ns for t in run.trials], k)]),
        ("created → marked running (scheduler: workspace, sandbox, launch)",
         _platform(ours, k, lambda t: _ms(t.running_ns, t.created_ns)), []),
        ("created → the script's first clock | Popen → the script's first clock",
         _platform(ours, k, lambda t: _ms(t.started_ns, t.created_ns)),
         _reference(ref, lambda t: _ms(t.started_ns, t.popen_ns))),
        ("first clock → loss recorded | first clock → exit seen (the 1 s sleep, the exit)",
         _platform(ours, k, lambda t: _ms(t.metric_ns, t.started_ns)),
         _reference(ref, lambda t: _ms(t.exited_ns, t.started_ns))),
        ("loss recorded → run ended | exit seen → told",
         _platform(ours, k, lambda t: _ms(t.ended_ns, t.metric_ns)),
         _reference(ref, lambda t: _ms(t.told_ns, t.exited_ns))),
        ("a trial's life: created → ended | Popen → told",
         _platform(ours, k, lambda t: _ms(t.ended_ns, t.created_ns)),
         _reference(ref, lambda t: _ms(t.told_ns, t.popen_ns))),
    ]


def study_steps(measured: Measured) -> list[tuple[str, list[float]]]:
    """The study's own steps (ms), one value per study."""
    runs = [run for run, _ in measured.platform]
    return [
        ("submit → first trial created", _each([_ms(min(t.created_ns for t in r.trials), r.submit_ns)
                                                for r in runs if r.trials])),
        ("last trial ended → study completed", _each([_ms(r.completed_ns, max(t.ended_ns for t in r.trials))
                                                      for r in runs if r.trials])),
        ("study completed → StudyCompleted seen by the client",
         _each([_ms(r.seen_ns, r.completed_ns) for r in runs if r.event_seen])),
    ]


def _cell(values: Sequence[float]) -> str:
    if not values:
        return "—"
    return f"{statistics.median(values):,.0f} / {statistics.fmean(values):,.0f}"


def main_table(measured: Measured) -> Table:
    """Wall times, the ratio, the goal; the overhead per trial; the study's own steps."""
    t = Table(title=f"Hyperparameter study on the local executor vs Optuna in a plain loop "
                    f"({measured.args['algorithm']}, {measured.trials} one-second trials, "
                    f"{measured.parallel} at a time)", box=box.SIMPLE_HEAVY, title_justify="left")
    for column in ("figure", "Shipyard", "Optuna + subprocess", "ratio", "goal"):
        t.add_column(column, justify="left" if column == "figure" else "right")
    ours, ref = measured.walls()
    ratio = _ratio(ours, ref)
    if ratio is not None:
        met = "[green]met[/]" if ratio <= GOAL else "[red]not met[/]"
        t.add_row(f"wall time (s), median of {len(ours)} / {len(ref)}", f"{statistics.median(ours):.2f}",
                  f"{statistics.median(ref):.2f}", f"{ratio:.2f}x", f"≤ {GOAL}x: {met}")
        pairs = ", ".join(f"{a / b:.2f}x" for a, b in zip(ours, ref, strict=False))
        t.add_row("  each measure (s), in turns", ", ".join(f"{w:.2f}" for w in ours),
                  ", ".join(f"{w:.2f}" for w in ref), pairs, "")
        rounds = measured.trials / measured.parallel
        t.add_row(f"  per trial: (Shipyard - reference) / ({measured.trials}/{measured.parallel})",
                  f"{_overhead(ours, ref, rounds) or 0.0:+.3f} s", "", "", "")
        t.add_row(f"  per trial slot: wall / ({measured.trials}/{measured.parallel})",
                  f"{statistics.median(ours) / rounds:.3f} s", f"{statistics.median(ref) / rounds:.3f} s",
                  "", "")
    done = [f"{run.succeeded}" for run, _ in measured.platform]
    reasons = sorted({run.reason or run.status for run, _ in measured.platform})
    ref_done = [f"{len(run.trials) - run.failed}" for run, _ in measured.reference]
    t.add_row(f"trials succeeded, of {measured.trials}", ", ".join(done), ", ".join(ref_done), "",
              ", ".join(reasons))
    for label, values in study_steps(measured):
        t.add_row(f"  {label} (ms, median / mean)", _cell(values), "", "", "")
    return t


def steps_table(measured: Measured) -> Table:
    """Where a trial's time goes, step by step."""
    t = Table(title="A trial's path, ms (median / mean over every trial of every measure); "
                    "'|' separates Shipyard's step from the reference's", box=box.SIMPLE,
              title_justify="left")
    for column in ("step", "Shipyard", "reference"):
        t.add_column(column, justify="left" if column == "step" else "right")
    for label, ours, ref in steps(measured):
        t.add_row(label, _cell(ours), _cell(ref))
    return t


def _grouped(use: Usage) -> dict[str, float]:
    grouped: dict[str, float] = {}
    for label, cores in use.by_process.items():
        key = label if label in SERVICES else TRIAL_PROCESSES
        grouped[key] = grouped.get(key, 0.0) + cores * use.seconds
    return grouped


def cpu_table(measured: Measured) -> Table | None:
    """CPU seconds per trial by process, each side over its measured windows; others' cores."""
    sides = {"Shipyard": [u for _, u in measured.platform if u],
             "reference": [u for _, u in measured.reference if u]}
    if not any(sides.values()):
        return None
    t = Table(title="CPU by process: ms of CPU per trial (cores busy on average)", box=box.SIMPLE,
              title_justify="left")
    t.add_column("process", no_wrap=True)
    for side in sides:
        t.add_column(side, justify="right")
    totals = {side: _totals(uses) for side, uses in sides.items()}
    seconds = {side: sum(u.seconds for u in uses) for side, uses in sides.items()}
    trials = {side: measured.trials * len(uses) for side, uses in sides.items()}
    labels = sorted({label for total in totals.values() for label in total},
                    key=lambda label: -max(total.get(label, 0.0) for total in totals.values()))

    def cell(side: str, cpu_s: float) -> str:
        if not trials[side] or not seconds[side]:
            return "—"
        return f"{cpu_s / trials[side] * 1e3:,.1f} ({cpu_s / seconds[side]:.2f})"

    for label in labels:
        t.add_row(label, *(cell(side, totals[side].get(label, 0.0)) for side in sides))
    t.add_row("other processes on the machine",
              *(cell(side, sum(u.others * u.seconds for u in uses)) for side, uses in sides.items()))
    return t


def _totals(uses: list[Usage]) -> dict[str, float]:
    total: dict[str, float] = {}
    for use in uses:
        for label, cpu_s in _grouped(use).items():
            total[label] = total.get(label, 0.0) + cpu_s
    return total


def print_report(console: Console, measured: Measured) -> None:
    """The tables and the notes."""
    console.print(main_table(measured))
    console.print(steps_table(measured))
    if (cpu := cpu_table(measured)) is not None:
        console.print(cpu)
    sides = (("Shipyard", [u for _, u in measured.platform]),
             ("reference", [u for _, u in measured.reference]))
    busy = [f"{side} {n + 1}" for side, uses in sides
            for n, use in enumerate(uses) if use is not None and use.others >= BUSY]
    if busy:
        console.print(f"[yellow]Other processes used ≥ {BUSY} cores during: {', '.join(busy)}; "
                      "those figures are slow by about that share of the machine.[/]")
    if not measured.complete:
        console.print("[red]Not every trial succeeded: the figures are not comparable.[/]")
    console.print(f"Both sides run the trial script with {measured.python}; the stack's settings: "
                  f"{measured.stack_env}. {os.cpu_count()} CPUs, load average now "
                  f"{os.getloadavg()[0]:.2f}.")
