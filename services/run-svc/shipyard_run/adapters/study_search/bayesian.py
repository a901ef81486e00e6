"""bayesianoptimization: scikit-optimize's ``Optimizer``, as Katib's skopt suggestion service sets it up.

Settings and defaults are Katib's: base_estimator GP, n_initial_points 10, acq_func gp_hedge,
acq_optimizer auto, random_state. The succeeded trials are told with their objective (negated when
maximizing: skopt minimizes); trials still running are told the constant liar's value (the best
objective so far, skopt's own ``cl_min``), so the next points are not drawn where they already run;
then ``ask(n_points=count)``, which lies the same way between the points it returns. Unlike Katib's
service, a double's distribution is honoured (Katib's always searches doubles log-uniformly), and so is
its step.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import skopt
from optuna.distributions import BaseDistribution, CategoricalDistribution, IntDistribution
from optuna.trial import TrialState

from shipyard_run.domain.trials import ParameterValue, TrialHistory
from shipyard_run.domain.tuning import TuningSpec

from .library import call_seed, in_order, outcome
from .space import SearchSpace

DEFAULTS: dict[str, Any] = {"base_estimator": "GP", "n_initial_points": 10, "acq_func": "gp_hedge",
                            "acq_optimizer": "auto"}


def suggest(spec: TuningSpec, space: SearchSpace, history: Sequence[TrialHistory], count: int,
            seed: int) -> list[dict[str, ParameterValue]]:
    """``count`` assignments from a Bayesian optimizer fitted to the study's trials."""
    if not space.coordinates:
        return [space.assignment({}) for _ in range(count)]
    settings = {name: spec.algorithm.setting(name, default) for name, default in DEFAULTS.items()}
    optimizer = skopt.Optimizer([_dimension(c.distribution) for c in space.coordinates],
                                random_state=call_seed(seed, history), **settings)
    sign = -1.0 if spec.objective.type == "maximize" else 1.0
    told: list[tuple[list[Any], float]] = []
    pending: list[list[Any]] = []
    for trial in in_order(history):
        points = space.points(trial.assignment)
        state, value = outcome(trial)
        if points is None:
            continue
        point = [points[c.name] for c in space.coordinates]
        if state is TrialState.COMPLETE and value is not None:
            told.append((point, sign * value))
        elif state is TrialState.RUNNING:
            pending.append(point)
    if told:
        lie = min(value for _, value in told)
        optimizer.tell([point for point, _ in told] + pending,
                       [value for _, value in told] + [lie] * len(pending))
    asked = optimizer.ask(n_points=count)
    names = [coordinate.name for coordinate in space.coordinates]
    return [space.assignment({name: _plain(value) for name, value in zip(names, point, strict=True)})
            for point in asked]


def _dimension(distribution: BaseDistribution) -> skopt.space.Dimension:
    if isinstance(distribution, CategoricalDistribution):
        return skopt.space.Categorical(list(distribution.choices))
    prior = "log-uniform" if getattr(distribution, "log", False) else "uniform"
    low, high = distribution.low, distribution.high  # type: ignore[attr-defined]
    if isinstance(distribution, IntDistribution):
        return skopt.space.Integer(low, high, prior=prior)
    return skopt.space.Real(low, high, prior=prior)


def _plain(value: Any) -> Any:
    """numpy's scalars as Python's int, float and str."""
    return value.item() if hasattr(value, "item") else value
