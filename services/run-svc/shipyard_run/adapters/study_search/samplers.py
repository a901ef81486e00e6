"""Katib's algorithms that Optuna's samplers provide, as Katib's own optuna service maps them.

random and hyperband → RandomSampler; tpe → TPESampler (Katib's settings n_startup_trials,
n_ei_candidates; the constant liar for pending trials, as Katib sets it); multivariate-tpe → the same,
multivariate; cmaes → CmaEsSampler; sobol → QMCSampler (scrambled Sobol); grid → GridSampler over
Katib's grid. ``random_state`` seeds them all.

Each call replays the study's trials in a fresh in-memory study and asks ``count`` times; the trials
asked stay RUNNING, so the later asks of the same call see them as pending and differ. Two samplers keep
state that a replay does not rebuild by itself, handled here:

- CmaEsSampler keeps its CMA-ES (mean, step size, covariance) in trial attributes it wrote itself.
  The distribution is rebuilt each call by warm-starting CMA-ES from the completed trials (WS-CMA-ES,
  Optuna's ``source_trials``) once ten have completed (the least it can estimate from); before that it
  samples around the centre of the space with ``sigma``. ``restart_strategy`` has no effect: Optuna 4.4
  dropped restarts.
- QMCSampler counts the points it has drawn in the study; the count is rebuilt by drawing (and
  discarding) as many points as the study has trials, so a restarted search goes on along the sequence.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import optuna
from optuna.distributions import BaseDistribution, CategoricalDistribution, FloatDistribution, IntDistribution
from optuna.trial import TrialState

from shipyard_run.domain.trials import ParameterValue, TrialHistory
from shipyard_run.domain.tuning import TuningSpec

from .library import call_seed, frozen, in_order, new_study, outcome
from .space import SearchSpace, grid_values

TPE_STARTUP_TRIALS = 10  # Optuna's defaults, which Katib's optuna service keeps
TPE_EI_CANDIDATES = 24
WARM_START_TRIALS = 10  # WS-CMA-ES estimates from the best 10 % of the trials: at least one


def suggest(spec: TuningSpec, space: SearchSpace, history: Sequence[TrialHistory], count: int,
            seed: int) -> list[dict[str, ParameterValue]]:
    """``count`` assignments from the spec's Optuna sampler (every algorithm but grid and
    bayesianoptimization)."""
    name = spec.algorithm.name
    if name == "sobol":
        return _sobol(spec, space, history, count, seed)
    study = new_study(spec, _sampler(spec, space, history, seed))
    _replay(study, space, history)
    return _ask(study, space, count)


def suggest_grid(spec: TuningSpec, history: Sequence[TrialHistory], count: int,
                 seed: int) -> list[dict[str, ParameterValue]]:
    """Up to ``count`` grid points no trial has had; none once every point has been tried."""
    values = {parameter.name: grid_values(parameter) for parameter in spec.parameters}
    grid = {name: values[name] for name in sorted(values)}
    sampler = optuna.samplers.GridSampler(grid, seed=seed)
    # GridSampler tells trials' points apart by their index in its (seeded, shuffled) grid, which a
    # replayed trial must carry; the grid is the sampler's own.
    ids = {tuple(point): index for index, point in enumerate(sampler._all_grids)}
    distributions: dict[str, BaseDistribution] = {
        name: CategoricalDistribution(choices) for name, choices in grid.items()}
    study = new_study(spec, sampler)
    taken: set[int] = set()
    for trial in in_order(history):
        point = tuple(_on_grid(choices, trial.assignment.get(name)) for name, choices in grid.items())
        if point not in ids:
            continue
        taken.add(ids[point])
        study.add_trial(frozen(trial, dict(zip(grid, point, strict=True)), distributions,
                               {"grid_id": ids[point], "search_space": grid}))
    wanted = min(count, len(ids) - len(taken))
    found: list[dict[str, ParameterValue]] = []
    # A trial numbered below the grid's size takes the grid point of its number, tried or not: those
    # already tried are skipped (they stay pending, so later asks do not return to them either).
    for _ in range(len(ids) + count):
        if len(found) == wanted:
            break
        params = study.ask(distributions).params
        index = ids[tuple(params[name] for name in grid)]
        if index not in taken:
            taken.add(index)
            found.append({parameter.name: params[parameter.name] for parameter in spec.parameters})
    return found


def _sampler(spec: TuningSpec, space: SearchSpace, history: Sequence[TrialHistory],
             seed: int) -> optuna.samplers.BaseSampler:
    name, setting = spec.algorithm.name, spec.algorithm.setting
    seed = call_seed(seed, history)
    if name in ("tpe", "multivariate-tpe"):
        return optuna.samplers.TPESampler(
            n_startup_trials=int(setting("n_startup_trials", TPE_STARTUP_TRIALS) or 0),
            n_ei_candidates=int(setting("n_ei_candidates", TPE_EI_CANDIDATES) or 0),
            multivariate=name == "multivariate-tpe", constant_liar=True, seed=seed,
        )
    if name == "cmaes":
        return _cmaes(spec, space, history, seed)
    return optuna.samplers.RandomSampler(seed=seed)


def _cmaes(spec: TuningSpec, space: SearchSpace, history: Sequence[TrialHistory],
           seed: int) -> optuna.samplers.CmaEsSampler:
    # CMA-ES searches the int and double coordinates; categorical ones are drawn at random beside it.
    numeric = {name: distribution for name, distribution in space.distributions.items()
               if isinstance(distribution, IntDistribution | FloatDistribution)}
    completed = []
    for trial in in_order(history):
        points = space.points(trial.assignment)
        if points is not None and outcome(trial)[0] is TrialState.COMPLETE:
            completed.append(frozen(trial, {name: points[name] for name in numeric}, numeric))
    if len(completed) >= WARM_START_TRIALS:
        return optuna.samplers.CmaEsSampler(source_trials=completed, seed=seed,
                                            warn_independent_sampling=False)
    sigma = spec.algorithm.setting("sigma")
    return optuna.samplers.CmaEsSampler(sigma0=None if sigma is None else float(sigma), seed=seed,
                                        warn_independent_sampling=False)


def _sobol(spec: TuningSpec, space: SearchSpace, history: Sequence[TrialHistory], count: int,
           seed: int) -> list[dict[str, ParameterValue]]:
    sampler = optuna.samplers.QMCSampler(qmc_type="sobol", scramble=True, seed=seed,
                                         warn_independent_sampling=False)
    study = new_study(spec, sampler)
    replayed = 0
    for trial in in_order(history):
        points = space.points(trial.assignment)
        if points is not None:
            # Pending, whatever became of it: the sequence ignores results, and a pending trial keeps
            # the search space known to the sampler even when every trial so far failed.
            study.add_trial(optuna.trial.create_trial(state=TrialState.RUNNING, params=points,
                                                      distributions=space.distributions))
            replayed += 1
    # The study's first trial is drawn at random (the sampler knows no search space yet); each later
    # one took the next point of the sequence.
    for _ in range(max(replayed - 1, 0)):
        study.ask(space.distributions)
    return _ask(study, space, count)


def _replay(study: optuna.Study, space: SearchSpace, history: Sequence[TrialHistory]) -> None:
    for trial in in_order(history):
        points = space.points(trial.assignment)
        if points is not None:
            study.add_trial(frozen(trial, points, space.distributions))


def _ask(study: optuna.Study, space: SearchSpace, count: int) -> list[dict[str, ParameterValue]]:
    return [space.assignment(study.ask(space.distributions).params) for _ in range(count)]


def _on_grid(choices: list[ParameterValue], value: Any) -> Any:
    """The grid's own entry for a trial's value (its number may have been written another way)."""
    for choice in choices:
        if choice == value or (not isinstance(choice, str) and _same_number(choice, value)):
            return choice
    return None


def _same_number(choice: int | float, value: Any) -> bool:
    try:
        return abs(float(value) - float(choice)) <= 1e-12 * max(1.0, abs(float(choice)))
    except (TypeError, ValueError):
        return False
