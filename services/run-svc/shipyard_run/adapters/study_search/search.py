"""``StudySearch``: the ``TrialSearch`` port over Optuna and scikit-optimize."""

from __future__ import annotations

from collections.abc import Sequence

from shipyard.kit.errors import InvalidArgument
from shipyard_run.domain.trials import ParameterValue, TrialHistory
from shipyard_run.domain.tuning import TuningSpec

from . import bayesian, early_stopping, samplers
from .library import SEED_RANGE, quiet
from .space import SearchSpace, search_space


class StudySearch:
    """A study's search algorithm and early stopping, rebuilt from its trials at each call: nothing is
    kept between calls, so a restarted run-svc goes on where it was; the same history and seed give the
    same answer."""

    def check(self, spec: TuningSpec) -> None:
        """Refuses, naming the field, a spec the search could not run; called when a study is submitted."""
        if spec.algorithm.name == "hyperband":
            r_l = float(spec.algorithm.setting("r_l", 0) or 0)
            if r_l < 1:
                index = next(i for i, (name, _) in enumerate(spec.algorithm.settings) if name == "r_l")
                raise InvalidArgument(f"tuning.algorithm.algorithmSettings[{index}].value",
                                      f"r_l is the resource a trial gets, counted in reports: at least 1, "
                                      f"not {r_l:g}")
        with quiet():
            _space(spec)

    def suggest(self, spec: TuningSpec, history: Sequence[TrialHistory], count: int,
                seed: int) -> list[dict[str, ParameterValue]]:
        """Up to ``count`` new assignments (see ``TrialSearch.suggest``); ``random_state``, when the spec
        sets it, is the seed."""
        if count <= 0:
            return []
        seed = int(spec.algorithm.setting("random_state", seed) or 0) % SEED_RANGE
        name = spec.algorithm.name
        with quiet():
            if name == "grid":
                return samplers.suggest_grid(spec, history, count, seed)
            if name == "bayesianoptimization":
                return bayesian.suggest(spec, _space(spec), history, count, seed)
            return samplers.suggest(spec, _space(spec), history, count, seed)

    def stop_early(self, spec: TuningSpec, history: Sequence[TrialHistory]) -> list[int]:
        """The running trials to stop now (see ``TrialSearch.stop_early``)."""
        with quiet():
            return early_stopping.stop_early(spec, history)


def _space(spec: TuningSpec) -> SearchSpace:
    if spec.algorithm.name != "hyperband":
        return search_space(spec)
    name = str(spec.algorithm.setting("resource_name"))
    most = early_stopping.resource(spec)
    # A hyperband trial runs with all the resource and is stopped early at the rungs it does not pass.
    value: ParameterValue = most if spec.parameter(name).type == "int" else float(most)
    return search_space(spec, {name: value})
