"""Early stopping: Katib's medianstop as Optuna's MedianPruner, hyperband as Optuna's HyperbandPruner.

medianstop (min_trials_required, default 3; start_step, default 4): a running trial is stopped when its
best objective value so far is worse than the median of the succeeded trials' values at the same
report, once it has made ``start_step`` reports and ``min_trials_required`` trials have succeeded.
Katib's own rule differs a little: it compares the running trial's values with the mean of the
succeeded trials' averages over their first ``start_step`` reports.

hyperband stops, at each rung (min_resource·ηᵏ reports), the running trials that are not in their
bracket's best 1/η, as successive halving does (see the package's docstring).

Each call replays the trials in number order. medianstop judges each running trial on its latest
report against every succeeded trial. Successive halving keeps state in the trials it judged (each
trial's value at each rung it reached), so each report is judged as it comes in the replay: a trial is
compared, at a rung, with the lower-numbered trials of its bracket, as if trials reached their rungs in
the order they started. Reports are counted 1, 2, … whatever step the trial gave them.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import optuna
from optuna.trial import TrialState

from shipyard_run.domain.trials import TrialHistory
from shipyard_run.domain.tuning import TuningSpec

from .library import in_order, new_study, outcome

MIN_TRIALS_REQUIRED = 3  # Katib's medianstop defaults
START_STEP = 4


def stop_early(spec: TuningSpec, history: Sequence[TrialHistory]) -> list[int]:
    """The numbers of the running trials that the spec's early stopping would stop now."""
    stopped: set[int] = set()
    if spec.algorithm.name == "hyperband":
        halving, most = hyperband(spec)
        stopped |= _judged(spec, history, halving, stepwise=True, most=most)
    if spec.early_stopping is not None and spec.early_stopping.name == "medianstop":
        setting = spec.early_stopping.setting
        pruner = optuna.pruners.MedianPruner(
            n_startup_trials=int(setting("min_trials_required", MIN_TRIALS_REQUIRED) or 0),
            n_warmup_steps=int(setting("start_step", START_STEP) or 0),
        )
        stopped |= _judged(spec, history, pruner, stepwise=False, most=None)
    return sorted(stopped)


def hyperband(spec: TuningSpec) -> tuple[optuna.pruners.HyperbandPruner, int]:
    """Hyperband's pruner and its most resource: Katib's r_l is the most resource a trial gets (R in
    the paper), its brackets reach down to R/η^s_max with s_max = ⌊log_η R⌋."""
    most = resource(spec)
    eta = int(spec.algorithm.setting("eta", 3) or 3)
    brackets = int(math.log(most) / math.log(eta))
    least = max(1, int(most / eta**brackets))
    return optuna.pruners.HyperbandPruner(min_resource=least, max_resource=most, reduction_factor=eta), most


def resource(spec: TuningSpec) -> int:
    """The resource each hyperband trial gets (r_l, whole reports); the check refuses r_l below 1."""
    return int(float(spec.algorithm.setting("r_l", 1) or 1))


def _judged(spec: TuningSpec, history: Sequence[TrialHistory], pruner: optuna.pruners.BasePruner, *,
            stepwise: bool, most: int | None) -> set[int]:
    study = new_study(spec, optuna.samplers.RandomSampler(seed=0), pruner)
    running: list[tuple[TrialHistory, optuna.Trial, bool]] = []
    for trial in in_order(history):
        asked = study.ask()
        judged_out = False
        for position, (_, reported) in enumerate(trial.intermediate, start=1):
            asked.report(reported, position)
            # Successive halving judges a trial once per rung, when it reaches it; asked again at the
            # same rung it answers no: the verdict is kept from the report that reached the rung.
            judged_out = (stepwise and asked.should_prune()) or judged_out
        state, value = outcome(trial)
        if state is TrialState.RUNNING:
            running.append((trial, asked, judged_out))
        elif state is TrialState.COMPLETE:
            study.tell(asked, value)
        else:
            study.tell(asked, state=state)
    # A trial that has had all its resource has finished as far as hyperband is concerned.
    return {trial.number for trial, asked, judged_out in running
            if trial.intermediate and (most is None or len(trial.intermediate) < most)
            and (judged_out or (not stepwise and asked.should_prune()))}
