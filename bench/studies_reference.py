"""The studies benchmark's trial script, its search space, and the reference: the same trials driven by
Optuna in a plain loop, each trial a subprocess.

The reference is what a user would write without a platform: ``study.ask()``, start the trial script with
``subprocess.Popen`` (``parallel`` at a time), read ``loss=`` from its output, ``study.tell()``. It waits
for its children's output pipes with a selector (a child's pipe closes when it exits), so a finished trial
is told, and its slot refilled, as soon as it ends: no polling delay.
"""

from __future__ import annotations

import os
import re
import selectors
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import optuna
from optuna.distributions import FloatDistribution

# The trial: its parameters come as flags (--x=…, --y=…, as a study appends them); it says when it began (on
# stderr, so that it is no metric), sleeps a second, and prints its loss as a Katib StdOut collector reads it.
TRIAL_SCRIPT = """\
import sys, time
print(f"started at {time.time_ns()} ns", file=sys.stderr, flush=True)
args = dict(arg[2:].split("=", 1) for arg in sys.argv[1:])
x, y = float(args["x"]), float(args["y"])
time.sleep(1.0)
print(f"loss={(x - 0.3) ** 2 + (y + 0.2) ** 2}", flush=True)
"""
LOW, HIGH = -1.0, 1.0  # both parameters' feasible space
STARTED = re.compile(rb"started at (\d+) ns")
LOSS = re.compile(rb"^loss=(\S+)$", re.MULTILINE)
ALGORITHMS = ("random", "tpe")
# Optuna's defaults, as the platform's search sets them for tpe (Katib's optuna service keeps them).
TPE_STARTUP_TRIALS, TPE_EI_CANDIDATES = 10, 24

optuna.logging.set_verbosity(optuna.logging.WARNING)


def tuning(algorithm: str, seed: int, trials: int, parallel: int) -> dict[str, Any]:
    """The study's tuning file (the body of a Katib Experiment's spec) for the same search."""
    return {
        "objective": {"type": "minimize", "objectiveMetricName": "loss"},
        "algorithm": {"algorithmName": algorithm,
                      "algorithmSettings": [{"name": "random_state", "value": str(seed)}]},
        "parallelTrialCount": parallel, "maxTrialCount": trials, "maxFailedTrialCount": trials,
        # A dict of its own each (a shared one would be dumped as a YAML alias, which the parser refuses).
        "parameters": [{"name": name, "parameterType": "double",
                        "feasibleSpace": {"min": str(LOW), "max": str(HIGH)}} for name in ("x", "y")],
    }


def sampler(algorithm: str, seed: int) -> optuna.samplers.BaseSampler:
    """The Optuna sampler the platform's search uses for ``algorithm``, seeded alike."""
    if algorithm == "tpe":
        return optuna.samplers.TPESampler(n_startup_trials=TPE_STARTUP_TRIALS,
                                          n_ei_candidates=TPE_EI_CANDIDATES, constant_liar=True, seed=seed)
    if algorithm == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    raise ValueError(f"algorithm must be one of {', '.join(ALGORITHMS)}, not {algorithm!r}")


@dataclass
class ReferenceTrial:
    """One trial of the reference, with its moments (``time.time_ns()``)."""

    number: int
    asked_ns: int  # before study.ask()
    popen_ns: int  # before Popen
    started_ns: int = 0  # the clock the script printed first
    exited_ns: int = 0  # its output closed (it exited)
    told_ns: int = 0  # study.tell() returned
    loss: float | None = None


@dataclass
class ReferenceRun:
    """The reference's wall time (first ask → last tell) and its trials."""

    wall_s: float
    trials: list[ReferenceTrial] = field(default_factory=list)

    @property
    def failed(self) -> int:
        """Trials without a loss."""
        return sum(trial.loss is None for trial in self.trials)


@dataclass
class _Running:
    trial: optuna.Trial
    record: ReferenceTrial
    process: subprocess.Popen[bytes]
    output: bytearray = field(default_factory=bytearray)


def optimize(python: str, script: Path, algorithm: str, seed: int, trials: int,
             parallel: int) -> ReferenceRun:
    """``trials`` trials of ``script`` run by ``python``, ``parallel`` at a time, suggested and told to an
    in-memory Optuna study."""
    study = optuna.create_study(direction="minimize", sampler=sampler(algorithm, seed))
    space = {"x": FloatDistribution(LOW, HIGH), "y": FloatDistribution(LOW, HIGH)}
    running: dict[int, _Running] = {}
    done: list[ReferenceTrial] = []
    with selectors.DefaultSelector() as selector:
        start = time.monotonic()
        while len(done) + len(running) < trials or running:
            while len(done) + len(running) < trials and len(running) < parallel:
                started = _start(study, space, python, script, len(done) + len(running) + 1)
                assert started.process.stdout is not None
                selector.register(started.process.stdout, selectors.EVENT_READ, started)
                running[started.process.pid] = started
            for key, _ in selector.select():
                trial: _Running = key.data
                chunk = os.read(key.fd, 1 << 16)
                if chunk:
                    trial.output += chunk
                    continue
                selector.unregister(key.fileobj)
                done.append(_tell(study, trial))
                del running[trial.process.pid]
        wall = time.monotonic() - start
    return ReferenceRun(wall, sorted(done, key=lambda t: t.number))


def _start(study: optuna.Study, space: dict[str, Any], python: str, script: Path, number: int) -> _Running:
    asked = time.time_ns()
    trial = study.ask(space)
    flags = [f"--{name}={value}" for name, value in trial.params.items()]
    popen = time.time_ns()
    process = subprocess.Popen([python, str(script), *flags], stdin=subprocess.DEVNULL,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    return _Running(trial, ReferenceTrial(number, asked, popen), process)


def _tell(study: optuna.Study, running: _Running) -> ReferenceTrial:
    """The trial's output is closed: reap it, read its loss, tell the study."""
    record, output = running.record, bytes(running.output)
    record.exited_ns = time.time_ns()
    assert running.process.stdout is not None
    running.process.stdout.close()
    code = running.process.wait()
    if began := STARTED.search(output):
        record.started_ns = int(began.group(1))
    found = LOSS.findall(output)
    if code == 0 and found:
        record.loss = float(found[-1])
        study.tell(running.trial, record.loss)
    else:
        study.tell(running.trial, state=optuna.trial.TrialState.FAIL)
    record.told_ns = time.time_ns()
    return record
