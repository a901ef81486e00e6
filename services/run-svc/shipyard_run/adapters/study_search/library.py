"""What every search call does with Optuna: a quiet in-memory study, and a study's trials replayed in it.

Optuna's studies live for one call: the history is replayed (``study.add_trial``) each time, so nothing
but the history is state. The study's name is fixed because Optuna hashes it (hyperband's brackets).
"""

from __future__ import annotations

import contextlib
import logging
import warnings
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import optuna
from optuna.distributions import BaseDistribution
from optuna.study import StudyDirection
from optuna.trial import FrozenTrial, TrialState

from shipyard_run.domain.trials import TrialHistory
from shipyard_run.domain.trials import TrialState as Condition
from shipyard_run.domain.tuning import TuningSpec

STUDY_NAME = "shipyard-study"
SEED_RANGE = 2**32  # numpy's RandomState takes seeds below 2**32

optuna.logging.set_verbosity(logging.WARNING)


@contextlib.contextmanager
def quiet() -> Iterator[None]:
    """Optuna's experimental and deprecation warnings, and scikit-optimize's 'evaluated before' notices,
    are for a programmer tuning by hand: a study's user cannot act on them."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        warnings.simplefilter("ignore", FutureWarning)
        warnings.simplefilter("ignore", UserWarning)
        yield


def new_study(spec: TuningSpec, sampler: optuna.samplers.BaseSampler,
              pruner: optuna.pruners.BasePruner | None = None) -> optuna.Study:
    """An in-memory study optimizing in the spec's direction."""
    direction = StudyDirection.MAXIMIZE if spec.objective.type == "maximize" else StudyDirection.MINIMIZE
    return optuna.create_study(direction=direction, sampler=sampler, pruner=pruner, study_name=STUDY_NAME)


def call_seed(seed: int, history: Sequence[TrialHistory]) -> int:
    """A seed for one call: the same history gives the same suggestions, a longer one new ones."""
    return (seed + len(history)) % SEED_RANGE


def in_order(history: Sequence[TrialHistory]) -> list[TrialHistory]:
    return sorted(history, key=lambda trial: trial.number)


def frozen(trial: TrialHistory, points: Mapping[str, Any], distributions: Mapping[str, BaseDistribution],
           system_attrs: Mapping[str, Any] | None = None) -> FrozenTrial:
    """An earlier trial as Optuna records one: succeeded → COMPLETE with its objective, early-stopped →
    PRUNED, created or running → RUNNING (pending: samplers that must not repeat skip it, TPE's
    constant liar counts it), failed, killed or without metrics → FAIL. Intermediate values are keyed
    by report (1, 2, …), as Katib's start_step counts reports."""
    state, value = outcome(trial)
    return optuna.trial.create_trial(
        state=state, value=value, params=dict(points), distributions=dict(distributions),
        intermediate_values=intermediate(trial), system_attrs=dict(system_attrs or {}),
    )


def outcome(trial: TrialHistory) -> tuple[TrialState, float | None]:
    """Optuna's state for a trial, and its value where Optuna keeps one."""
    if trial.state.active:
        return TrialState.RUNNING, None
    if trial.state is Condition.SUCCEEDED and trial.objective is not None:
        return TrialState.COMPLETE, trial.objective
    if trial.state is Condition.EARLY_STOPPED:
        return TrialState.PRUNED, None
    return TrialState.FAIL, None


def intermediate(trial: TrialHistory) -> dict[int, float]:
    return {position: value for position, (_, value) in enumerate(trial.intermediate, start=1)}
