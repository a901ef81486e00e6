"""``python -m bench.studies``: a hyperparameter study on the local executor beside the same trials driven by
Optuna in a plain loop, in one run, on one machine, with the same trial script and the same Python.

* **Reference**: ``bench.studies_reference.optimize``: an in-memory Optuna study (the same sampler and seed
  as the platform's search), ``study.ask()``, the trial script started with ``subprocess.Popen``
  (``--parallel`` at a time), ``loss=`` read from its output, ``study.tell()``; wall time from the first
  ask to the last tell.
* **Shipyard**: a stack as ``make up`` runs it (``shipyard.local.harness.Stack``, with
  ``SHIPYARD_LOCAL_RUN_SLOTS`` = ``--parallel``: the local executor runs one run per core by default, 2
  here), and a study of the same trials (``parallelTrialCount``, ``maxTrialCount``, the algorithm and its
  ``random_state``) submitted with SubmitRun (the trial script as the run's config file, the command
  ``python "$SHIPYARD_CONFIG"``); wall time from before SubmitRun until the client saw the study's
  StudyCompleted event (EventService.Watch, from the stream's start, filtered to the study).

**Goal: Shipyard's wall time ≤ 1.3x the reference's.** The overhead per trial is (Shipyard - reference) /
(trials / parallel): what each of a slot's trials costs beyond the reference's. Where it goes is read from
the records after the clock stopped: the trial runs' create, start and end times, their ``loss`` point's
time (when run-svc recorded it), and the clock each trial script printed first (from its log).

Fairness: both sides run the trial script with the same interpreter: the environment of the platform's
default image (the platform's own Python, nothing installed), built by an untimed warm-up study of two
trials before any clock starts (which also loads the search library in run-svc, as the reference imports
Optuna before its clock). Trials run in run-svc's sandbox (bubblewrap) on the platform, unconfined in the
reference. Before each measured phase the benchmark waits for the stack to settle and for other processes
to leave the CPUs alone (bounded waits). Prints Rich tables, writes ``bench/out/studies-last-run.json``;
never fails on a figure (exit 1 only when a side could not be measured: a study that did not complete, a
trial that did not succeed).
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import grpc
import yaml
from rich.console import Console

from bench.machine import CpuWatch, Usage
from bench.procs import REPO_ROOT
from bench.studies_reference import ALGORITHMS, LOSS, STARTED, TRIAL_SCRIPT, ReferenceRun, optimize, tuning
from bench.studies_report import Measured, PlatformRun, PlatformTrial, print_report
from shipyard.client.connection import Client
from shipyard.contracts.gateway.v1 import gateway_pb2
from shipyard.contracts.run.v1 import runs_pb2 as pb
from shipyard.contracts.run.v1 import studies_pb2 as spb
from shipyard.local.harness import Stack, wait_for

OUT = REPO_ROOT / "bench" / "out"
COMMAND = 'python "$SHIPYARD_CONFIG"'
STUDY_COMPLETED = "io.shipyard.study.completed.v1"
FINAL = (spb.STUDY_STATUS_SUCCEEDED, spb.STUDY_STATUS_FAILED, spb.STUDY_STATUS_STOPPED)
LOAD = "load generator (bench)"  # bench.machine's label of this process
SETTLED = 0.1  # cores the stack's processes may use while it is idle
BUSY = 0.25  # others' cores from which a phase is flagged
WIDTH = 150  # of the tables when the output is not a terminal (a log file)
LOG_MAX = 1 << 16  # of a trial's log: its first clock and its loss


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The command line."""
    p = argparse.ArgumentParser(prog="python -m bench.studies", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--trials", type=int, default=50, help="trials of each study (50)")
    p.add_argument("--parallel", type=int, default=5, help="trials at once (5)")
    p.add_argument("--algorithm", choices=ALGORITHMS, default="random", help="the search (random)")
    p.add_argument("--seed", type=int, default=20, help="the sampler's seed, random_state (20)")
    p.add_argument("--repeat", type=int, default=3, help="measures of each side, in turns; medians (3)")
    p.add_argument("--timeout", type=float, default=600.0, help="seconds a study may take (600)")
    p.add_argument("--quiet-wait", type=float, default=60.0,
                   help="seconds to wait for other processes to leave the CPUs before each phase (60)")
    p.add_argument("--settle-wait", type=float, default=30.0,
                   help="seconds to wait for the stack to go idle before each phase (30)")
    p.add_argument("--stack-env", action="append", default=[], metavar="NAME=VALUE",
                   help="an extra setting of the stack's processes (an experiment), repeatable")
    p.add_argument("--json", type=Path, default=OUT / "studies-last-run.json", help="where the figures go")
    return p.parse_args(argv)


class Completion:
    """Watches the event stream (from its start) for the study's StudyCompleted; the moment it came."""

    def __init__(self, client: Client, study: str) -> None:
        self._subject = f"studies/{study}"
        request = gateway_pb2.WatchRequest(types=[STUDY_COMPLETED], from_start=True,
                                           subject_prefix=self._subject)
        self._call = client.events.Watch(request, metadata=client.metadata)
        self._seen = threading.Event()
        self.seen_ns = 0
        self._thread = threading.Thread(target=self._watch, name="study-completion", daemon=True)
        self._thread.start()

    def _watch(self) -> None:
        try:
            for event in self._call:
                if event.subject == self._subject:
                    self.seen_ns = time.time_ns()
                    self._seen.set()
                    return
        except grpc.RpcError:
            return  # cancelled, or the stream broke: the caller reads the study instead

    def wait(self, timeout: float) -> bool:
        """Whether the event came within ``timeout`` seconds."""
        return self._seen.wait(timeout)

    def close(self) -> None:
        """Stop watching."""
        self._call.cancel()
        self._thread.join(5)


def _study(client: Client, name: str) -> spb.Study:
    return client.call(client.studies.GetStudy, spb.GetStudyRequest(name=name))


def _ended(client: Client, name: str) -> spb.Study | None:
    study = _study(client, name)
    return study if study.status in FINAL else None


def submit_study(client: Client, name: str, script: bytes, spec: dict[str, Any]) -> None:
    """The study's run: the trial script as its config file, the tuning file beside it."""
    client.call(client.runs.SubmitRun, pb.SubmitRunRequest(
        run=pb.Run(name=name, command=COMMAND), config_file=script, tuning=yaml.safe_dump(spec).encode()))


def warm_up(client: Client, args: argparse.Namespace, timeout: float) -> None:
    """An untimed study of two trials: the default image's environment is built, run-svc's search library
    loaded, the trial script's interpreter in the page cache."""
    spec = tuning(args.algorithm, args.seed, 2, 2)
    submit_study(client, "warm-up", TRIAL_SCRIPT.encode(), spec)
    done = wait_for(partial(_ended, client, "warm-up"), timeout, "the warm-up study to end", 0.5)
    if done.status != spb.STUDY_STATUS_SUCCEEDED or done.counts.succeeded != 2:
        raise RuntimeError(f"the warm-up study ended {spb.StudyStatus.Name(done.status)} ({done.message}): "
                           f"{done.counts.succeeded} of 2 trials succeeded")


def environment_python(stack: Stack) -> Path | None:
    """The interpreter of the environment the warm-up built (the default image's): the reference runs the
    trial script with it too."""
    found = sorted(stack.data_dir.glob("*/environments/*/bin/python")) or sorted(
        stack.data_dir.glob("**/environments/*/bin/python"))
    return found[0] if len(found) == 1 else None


def run_study(client: Client, name: str, args: argparse.Namespace) -> PlatformRun:
    """Submit the study and wait for its StudyCompleted; then read where the time went."""
    completion = Completion(client, name)
    try:
        submit_ns = time.time_ns()
        submit_study(client, name, TRIAL_SCRIPT.encode(), tuning(args.algorithm, args.seed, args.trials,
                                                                  args.parallel))
        seen = completion.wait(args.timeout)
    finally:
        completion.close()
    study = _study(client, name)
    if not seen and study.status not in FINAL:
        raise RuntimeError(f"study {name} did not end within {args.timeout:.0f} s "
                           f"({study.trials} trials started, {study.counts.succeeded} succeeded)")
    completed_ns = study.completion_time.ToNanoseconds()
    seen_ns = completion.seen_ns if seen else completed_ns
    return PlatformRun(
        name=name, wall_s=(seen_ns - submit_ns) / 1e9, submit_ns=submit_ns, seen_ns=seen_ns,
        completed_ns=completed_ns, status=spb.StudyStatus.Name(study.status), reason=study.reason,
        succeeded=study.counts.succeeded, event_seen=seen, trials=trial_moments(client, name))


def trial_moments(client: Client, study: str) -> list[PlatformTrial]:
    """Each trial's moments, from its run, its metric and its log."""
    runs = client.call(client.runs.ListRuns, pb.ListRunsRequest(study=study, page_size=1000)).runs
    trials = []
    for run in sorted(runs, key=lambda r: r.name):
        series = client.call(client.runs.GetRunMetrics, pb.GetRunMetricsRequest(name=run.name)).series
        points = [p for s in series if s.name == "loss" for p in s.points]
        log = client.call(client.runs.ReadRunLogs,
                          pb.ReadRunLogsRequest(name=run.name, max_bytes=LOG_MAX)).data
        began = STARTED.search(log)
        trials.append(PlatformTrial(
            name=run.name, created_ns=run.create_time.ToNanoseconds(),
            running_ns=run.start_time.ToNanoseconds(), started_ns=int(began.group(1)) if began else 0,
            metric_ns=points[-1].time.ToNanoseconds() if points else 0, ended_ns=run.end_time.ToNanoseconds(),
            status=pb.RunStatus.Name(run.status) if LOSS.search(log) else "NO_LOSS"))
    return trials


class Bench:
    """The phases, in turns, each after the stack settled and the machine went quiet."""

    def __init__(self, args: argparse.Namespace, cpu: CpuWatch, say: Console) -> None:
        self.args = args
        self.cpu = cpu
        self.say = say

    def wait_idle(self) -> float:
        """Wait (bounded) for the stack to settle and the others to leave the CPUs; others' cores then."""
        start, window = time.monotonic(), 2.0
        while time.monotonic() < start + self.args.settle_wait:
            time.sleep(window)
            now = time.monotonic()
            use = self.cpu.usage(now - window, now)
            ours = sum(c for label, c in (use.by_process if use else {}).items() if label != LOAD)
            if ours < SETTLED:
                break
        others = self.cpu.wait_quiet(self.args.quiet_wait) if self.args.quiet_wait > 0 else 0.0
        if others >= BUSY:
            self.say.log(f"[yellow]other processes still use {others:.2f} cores; measuring anyway[/]")
        return others

    def reference(self, python: str, script: Path) -> tuple[ReferenceRun, Usage | None]:
        """The Optuna loop, once."""
        self.wait_idle()
        start = time.monotonic()
        ran = optimize(python, script, self.args.algorithm, self.args.seed, self.args.trials,
                       self.args.parallel)
        return ran, self.cpu.usage(start, time.monotonic())

    def platform(self, client: Client, name: str) -> tuple[PlatformRun, Usage | None]:
        """The study, once."""
        self.wait_idle()
        start = time.monotonic()
        ran = run_study(client, name, self.args)
        return ran, self.cpu.usage(start, start + ran.wall_s)


def measure(args: argparse.Namespace, say: Console, work: Path) -> Measured:
    """Start the stack, warm up, then both sides ``--repeat`` times in turns."""
    script = work / "trial.py"
    script.write_text(TRIAL_SCRIPT)
    env = {"SHIPYARD_LOCAL_RUN_SLOTS": str(args.parallel),
           **dict(item.split("=", 1) for item in args.stack_env)}
    say.log(f"starting a stack in {work} (settings: {env}) …")
    stack = Stack(work / "data", env=env).start()
    client = stack.client()
    measured = Measured(args=vars(args) | {"json": str(args.json)}, stack_env=env)
    try:
        with CpuWatch() as cpu:
            bench = Bench(args, cpu, say)
            say.log("warm-up study (2 trials: the environment, the search library) …")
            warm_up(client, args, args.timeout)
            python = environment_python(stack)
            measured.python = str(python) if python else sys.executable
            if python is None:
                say.log("[yellow]the default image's environment was not found: the reference runs the "
                        f"trial with {sys.executable}[/]")
            for n in range(args.repeat):
                # Each side goes first as often as the other.
                sides: list[Callable[[], tuple[ReferenceRun | PlatformRun, Usage | None]]] = [
                    partial(bench.reference, measured.python, script),
                    partial(bench.platform, client, f"study-{n + 1}")]
                for phase in sides if n % 2 == 0 else reversed(sides):
                    ran, usage = phase()
                    measured.add(ran, usage)
                    say.log(f"  {type(ran).__name__} {n + 1}/{args.repeat}: {ran.wall_s:.2f} s")
    finally:
        client.close()
        stack.stop()
    return measured


def main(argv: list[str] | None = None) -> int:
    """Measure, print, save; exit 1 when a side could not be measured."""
    args = parse_args(argv)
    say = Console(stderr=True)
    work = Path(tempfile.mkdtemp(prefix="shipyard-bench-studies-", dir="/var/tmp"))
    try:
        measured = measure(args, say, work)
    except (RuntimeError, TimeoutError) as exc:
        say.log(f"[red]could not be measured: {exc}[/]")
        return 1
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print_report(Console(width=None if sys.stdout.isatty() else WIDTH), measured)
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(measured.as_json(), indent=2))
    return 0 if measured.complete else 1


if __name__ == "__main__":
    sys.exit(main())
