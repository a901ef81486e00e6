"""The study's search (StudySearch over Optuna and scikit-optimize): suggestions in the feasible space,
grid and sobol without repeats, progress toward the optimum, parallel asks, determinism, early stopping
(medianstop, hyperband) and refusals."""

from __future__ import annotations

import textwrap
from collections.abc import Callable, Mapping, Sequence
from decimal import Decimal

import optuna
import pytest
from shipyard_run.adapters.study_search import StudySearch
from shipyard_run.app.ports import TrialSearch
from shipyard_run.domain.trials import ParameterValue, TrialHistory, TrialState
from shipyard_run.domain.tuning import TuningSpec, parse_tuning

from shipyard.kit.errors import InvalidArgument

SEARCH = StudySearch()
_PORT: TrialSearch = SEARCH  # mypy: StudySearch is the TrialSearch port
ALGORITHMS = ("random", "tpe", "multivariate-tpe", "cmaes", "sobol", "bayesianoptimization", "grid",
              "hyperband")

# Every parameter shape Katib has: int/double with and without step, each distribution, lists.
PARAMETERS = """
- {name: lr, parameterType: double, feasibleSpace: {min: "0.0001", max: "0.1", distribution: logUniform}}
- {name: momentum, parameterType: double, feasibleSpace: {min: "0.5", max: "0.9", step: "0.05"}}
- {name: dropout, parameterType: double, feasibleSpace: {min: "0.1", max: "0.5", distribution: normal}}
- {name: decay, parameterType: double, feasibleSpace: {min: "0.001", max: "1", step: "0.001",
   distribution: logNormal}}
- {name: layers, parameterType: int, feasibleSpace: {min: "1", max: "8"}}
- {name: batch, parameterType: int, feasibleSpace: {min: "16", max: "256", step: "16"}}
- {name: units, parameterType: int, feasibleSpace: {min: "8", max: "1024", distribution: logUniform}}
- {name: width, parameterType: int, feasibleSpace: {min: "10", max: "50", step: "5", distribution: normal}}
- {name: epochs, parameterType: int, feasibleSpace: {min: "1", max: "9"}}
- {name: optimizer, parameterType: categorical, feasibleSpace: {list: [sgd, adam, ftrl]}}
- {name: scale, parameterType: discrete, feasibleSpace: {list: ["0.5", "1", "2.50"]}}
- {name: fixed, parameterType: int, feasibleSpace: {min: "3", max: "3"}}
"""
GRID_PARAMETERS = """
- {name: momentum, parameterType: double, feasibleSpace: {min: "0.5", max: "0.7", step: "0.1"}}
- {name: batch, parameterType: int, feasibleSpace: {min: "16", max: "64", step: "16"}}
- {name: optimizer, parameterType: categorical, feasibleSpace: {list: [sgd, adam]}}
- {name: scale, parameterType: discrete, feasibleSpace: {list: ["0.5", "2.50"]}}
"""
XY = """
- {name: x, parameterType: double, feasibleSpace: {min: "-5", max: "5"}}
- {name: y, parameterType: double, feasibleSpace: {min: "-5", max: "5"}}
"""
SETTINGS = {
    "hyperband": [("resource_name", "epochs"), ("eta", "3"), ("r_l", "9")],
    "bayesianoptimization": [("n_initial_points", "5"), ("acq_optimizer", "sampling")],
}


def _spec(algorithm: str, parameters: str = PARAMETERS, *, objective: str = "minimize",
          settings: Sequence[tuple[str, str]] | None = None, early_stopping: str = "",
          parallel: int = 9) -> TuningSpec:
    pairs = SETTINGS.get(algorithm, []) if settings is None else settings
    listed = ", ".join(f'{{name: {name}, value: "{value}"}}' for name, value in pairs)
    return parse_tuning(
        f"objective: {{type: {objective}, objectiveMetricName: loss}}\n"
        f"algorithm: {{algorithmName: {algorithm}, algorithmSettings: [{listed}]}}\n"
        f"parallelTrialCount: {parallel}\n{early_stopping}"
        f"parameters:\n{textwrap.indent(parameters.strip(), '  ')}\n")


def _trial(number: int, assignment: Mapping[str, ParameterValue], state: TrialState = TrialState.SUCCEEDED,
           objective: float | None = None, reports: Sequence[float] = ()) -> TrialHistory:
    return TrialHistory(number, dict(assignment), state, objective,
                        tuple((step, value) for step, value in enumerate(reports)))


def _key(assignment: Mapping[str, ParameterValue]) -> tuple[tuple[str, ParameterValue], ...]:
    return tuple(sorted(assignment.items()))


def _on_grid(value: ParameterValue, low: str, step: str) -> bool:
    """Whether ``value`` is exactly ``low + k·step`` for a whole k, as the decimal the file wrote: 0.1 + 2·0.1
    is 0.3, not 0.30000000000000004."""
    steps = (Decimal(repr(value)) - Decimal(low)) / Decimal(step)
    return steps == steps.to_integral_value() and value == type(value)(Decimal(low) + steps * Decimal(step))


def _check_feasible(assignment: Mapping[str, ParameterValue], spec: TuningSpec,
                    resource: tuple[str, ParameterValue] | None = None) -> None:
    assert set(assignment) == {parameter.name for parameter in spec.parameters}
    for parameter in spec.parameters:
        value, space = assignment[parameter.name], parameter.space
        if resource is not None and parameter.name == resource[0]:
            assert value == resource[1] and type(value) is type(resource[1])
        elif parameter.type in ("categorical", "discrete"):
            assert isinstance(value, str) and value in space.values, (parameter.name, value)
        else:
            assert type(value) is (int if parameter.type == "int" else float), (parameter.name, value)
            assert float(space.min) <= float(value) <= float(space.max), (parameter.name, value)
            if space.step:
                assert _on_grid(value, space.min, space.step), (parameter.name, value)


@pytest.mark.parametrize("algorithm", [name for name in ALGORITHMS if name != "grid"])
def test_suggestions_lie_in_the_feasible_space(algorithm: str) -> None:
    spec = _spec(algorithm)
    resource = ("epochs", 9) if algorithm == "hyperband" else None
    history: list[TrialHistory] = []
    for round_ in range(4 if algorithm == "bayesianoptimization" else 8):
        suggested = SEARCH.suggest(spec, history, 3, seed=11)
        assert len(suggested) == 3
        for assignment in suggested:
            _check_feasible(assignment, spec, resource)
            history.append(_trial(len(history) + 1, assignment, objective=float(round_ + len(history) % 5)))
    assert all(trial.assignment["fixed"] == 3 for trial in history)


def test_log_and_normal_shapes_are_followed() -> None:
    """logUniform spreads over the decades; normal gathers around the middle of the range."""
    spec = _spec("random")
    assignments = SEARCH.suggest(spec, [], 400, seed=5)
    lrs = [float(a["lr"]) for a in assignments]
    assert sum(lr < 0.001 for lr in lrs) > 0.25 * len(lrs)  # uniform would give 0.9 %
    dropouts = [float(a["dropout"]) for a in assignments]
    middle = sum(0.2 <= d <= 0.4 for d in dropouts) / len(dropouts)
    assert middle > 0.8  # ±1.5 sigma of the truncated normal; uniform would give 50 %


def test_grid_enumerates_every_point_once_then_nothing() -> None:
    spec = _spec("grid", GRID_PARAMETERS)
    history: list[TrialHistory] = []
    while suggested := SEARCH.suggest(spec, history, 5, seed=3):
        for assignment in suggested:
            _check_feasible(assignment, spec)
            # Some trials still running, some done: neither kind is suggested again.
            state = TrialState.RUNNING if len(history) % 2 else TrialState.FAILED
            history.append(_trial(len(history) + 1, assignment, state))
    points = [_key(trial.assignment) for trial in history]
    assert len(points) == 3 * 4 * 2 * 2 == len(set(points))
    assert {trial.assignment["momentum"] for trial in history} == {0.5, 0.6, 0.7}
    assert {trial.assignment["batch"] for trial in history} == {16, 32, 48, 64}
    assert {trial.assignment["scale"] for trial in history} == {"0.5", "2.50"}
    assert SEARCH.suggest(spec, history, 1, seed=3) == []


def test_grid_fills_in_around_trials_of_any_order() -> None:
    spec = _spec("grid", GRID_PARAMETERS)
    every = SEARCH.suggest(spec, [], 48, seed=3)
    scattered = [_trial(number, assignment, TrialState.RUNNING)
                 for number, assignment in enumerate(every[::-3], start=1)]
    rest = SEARCH.suggest(spec, scattered, 48, seed=3)
    assert len(rest) == 48 - len(scattered)
    assert {_key(a) for a in rest} | {_key(t.assignment) for t in scattered} == {_key(a) for a in every}


def test_sobol_does_not_repeat_across_calls() -> None:
    spec = _spec("sobol", XY)
    history: list[TrialHistory] = []
    for _ in range(10):
        for assignment in SEARCH.suggest(spec, history, 3, seed=2):
            history.append(_trial(len(history) + 1, assignment, TrialState.RUNNING))
    assert len({_key(trial.assignment) for trial in history}) == 30
    # A restarted search goes on along the same sequence: the next points are those one long call gives.
    assert SEARCH.suggest(spec, history[:10], 3, seed=2) == [t.assignment for t in history[10:13]]


def _bowl(assignment: Mapping[str, ParameterValue]) -> float:
    return (float(assignment["x"]) - 1.5) ** 2 + (float(assignment["y"]) + 2) ** 2


Score = Callable[[Mapping[str, ParameterValue]], float]


def _run(spec: TuningSpec, trials: int, score: Score) -> list[float]:
    history: list[TrialHistory] = []
    for number in range(1, trials + 1):
        [assignment] = SEARCH.suggest(spec, history, 1, seed=17)
        history.append(_trial(number, assignment, objective=score(assignment)))
    return [trial.objective for trial in history if trial.objective is not None]


@pytest.mark.parametrize(("algorithm", "trials"), [("tpe", 30), ("multivariate-tpe", 30), ("cmaes", 30),
                                                   ("bayesianoptimization", 12)])
def test_model_based_search_moves_toward_the_optimum(algorithm: str, trials: int) -> None:
    spec = _spec(algorithm, XY)
    found = _run(spec, trials, _bowl)
    randomly = _run(_spec("random", XY), trials, _bowl)
    third = trials // 3
    last = sum(found[-third:]) / third
    assert last < sum(found[:third]) / third
    assert last < sum(randomly[-third:]) / third


def test_maximize_moves_toward_the_optimum_too() -> None:
    spec = _spec("tpe", XY, objective="maximize")
    found = _run(spec, 30, lambda assignment: -_bowl(assignment))
    assert sum(found[-10:]) / 10 > sum(found[:10]) / 10


@pytest.mark.parametrize("algorithm", [name for name in ALGORITHMS if name != "grid"])
def test_parallel_asks_differ_and_repeat_for_the_same_history(algorithm: str) -> None:
    # A Gaussian process is fitted at each ask: kept to two parameters to keep it quick.
    spec = _spec(algorithm, XY if algorithm == "bayesianoptimization" else PARAMETERS)
    history = [_trial(number, assignment, objective=float(number % 4))
               for number, assignment in enumerate(SEARCH.suggest(spec, [], 12, seed=1), start=1)]
    history.append(_trial(13, history[0].assignment, TrialState.RUNNING))
    asked = SEARCH.suggest(spec, history, 3, seed=4)
    assert len({_key(assignment) for assignment in asked}) == 3
    assert SEARCH.suggest(spec, history, 3, seed=4) == asked
    assert SEARCH.suggest(spec, history, 3, seed=5) != asked


def test_random_state_setting_is_the_seed() -> None:
    spec = _spec("random", XY, settings=[("random_state", "42")])
    assert SEARCH.suggest(spec, [], 2, seed=1) == SEARCH.suggest(spec, [], 2, seed=2)
    unseeded = _spec("random", XY)
    assert SEARCH.suggest(unseeded, [], 2, seed=1) != SEARCH.suggest(unseeded, [], 2, seed=2)


@pytest.mark.parametrize("algorithm", ["random", "grid", "sobol"])
def test_any_seed_is_taken(algorithm: str) -> None:
    spec = _spec(algorithm, GRID_PARAMETERS)
    assert len(SEARCH.suggest(spec, [], 2, seed=2**40 + 3)) == 2


def test_no_count_no_suggestions() -> None:
    assert SEARCH.suggest(_spec("tpe"), [], 0, seed=1) == []


MEDIANSTOP = """earlyStopping:
  algorithmName: medianstop
  algorithmSettings:
    - {name: min_trials_required, value: "2"}
    - {name: start_step, value: "3"}
"""


def _succeeded(number: int, reports: Sequence[float]) -> TrialHistory:
    return _trial(number, {"x": 0.0, "y": 0.0}, objective=min(reports), reports=reports)


def _running(number: int, reports: Sequence[float], state: TrialState = TrialState.RUNNING) -> TrialHistory:
    return _trial(number, {"x": 0.0, "y": 0.0}, state, reports=reports)


def test_medianstop_stops_a_trial_worse_than_the_median_at_its_step() -> None:
    spec = _spec("random", XY, early_stopping=MEDIANSTOP)
    done = [_succeeded(1, [5, 4, 3, 2]), _succeeded(2, [6, 5, 4, 3]), _running(3, [9, 9, 9]),
            _running(4, [9, 9]), _running(5, [6, 5, 3]), _running(6, [9, 9, 9, 9, 9, 9])]
    # At report 3 the median of the succeeded trials is 3.5: trial 3 (best 9) is worse, trial 5 (best 3)
    # is not; trial 4 has made 2 reports, fewer than start_step; trial 6 has no succeeded trial to meet
    # at report 6. Failed and stopped trials do not count toward the median.
    others = [_trial(7, {"x": 0.0, "y": 0.0}, TrialState.FAILED, reports=[0, 0, 0]),
              _trial(8, {"x": 0.0, "y": 0.0}, TrialState.EARLY_STOPPED, reports=[0, 0, 0])]
    assert SEARCH.stop_early(spec, done + others) == [3]


def test_medianstop_waits_for_min_trials_required() -> None:
    spec = _spec("random", XY, early_stopping=MEDIANSTOP)
    assert SEARCH.stop_early(spec, [_succeeded(1, [1, 1, 1]), _running(2, [9, 9, 9])]) == []
    assert SEARCH.stop_early(spec, [_succeeded(1, [1, 1, 1]), _succeeded(2, [1, 1, 1]),
                                    _running(3, [9, 9, 9])]) == [3]


def test_medianstop_follows_the_direction() -> None:
    spec = _spec("random", XY, objective="maximize", early_stopping=MEDIANSTOP)
    history = [_trial(1, {"x": 0.0, "y": 0.0}, objective=9, reports=[9, 9, 9]),
               _trial(2, {"x": 0.0, "y": 0.0}, objective=8, reports=[8, 8, 8]),
               _running(3, [1, 1, 1]), _running(4, [9.5, 9.5, 9.5])]
    assert SEARCH.stop_early(spec, history) == [3]


def test_no_early_stopping_stops_nothing() -> None:
    history = [_succeeded(1, [1, 1, 1]), _succeeded(2, [1, 1, 1]), _running(3, [9, 9, 9, 9, 9])]
    assert SEARCH.stop_early(_spec("tpe", XY), history) == []


HYPERBAND_PARAMETERS = XY + "- {name: epochs, parameterType: int, feasibleSpace: {min: \"1\", max: \"3\"}}\n"


def _optuna_hyperband_verdicts(spec: TuningSpec, runs: Sequence[Sequence[float]]) -> set[int]:
    """Optuna's own HyperbandPruner, driven as a plain loop would: trials in order, each report judged."""
    maximize = spec.objective.type == "maximize"
    study = optuna.create_study(direction="maximize" if maximize else "minimize", study_name="shipyard-study",
                                pruner=optuna.pruners.HyperbandPruner(min_resource=1, max_resource=9,
                                                                      reduction_factor=3))
    stopped = set()
    for number, reports in enumerate(runs, start=1):
        trial = study.ask()
        for step, value in enumerate(reports, start=1):
            trial.report(value, step)
            if trial.should_prune():
                stopped.add(number)
    return stopped


def test_hyperband_gives_every_trial_the_whole_resource() -> None:
    spec = _spec("hyperband", HYPERBAND_PARAMETERS)
    assert {a["epochs"] for a in SEARCH.suggest(spec, [], 5, seed=1)} == {9}


@pytest.mark.parametrize("objective", ["minimize", "maximize"])
def test_hyperband_stops_the_trials_behind_at_each_rung(objective: str) -> None:
    spec = _spec("hyperband", HYPERBAND_PARAMETERS, objective=objective)
    sign = 1 if objective == "minimize" else -1
    assignment = {"x": 0.0, "y": 0.0, "epochs": 9}
    # Each trial worse than every earlier one: behind at its first rung unless first in its bracket.
    worse = [[sign * (number + step) for step in range(3)] for number in range(1, 13)]
    history = [_trial(number, assignment, TrialState.RUNNING, reports=reports)
               for number, reports in enumerate(worse, start=1)]
    stopped = SEARCH.stop_early(spec, history)
    assert 1 not in stopped and len(stopped) >= 6
    assert set(stopped) == _optuna_hyperband_verdicts(spec, worse)
    # Each trial better than every earlier one: never behind.
    better = [_trial(number, assignment, TrialState.RUNNING, reports=[-value for value in reports])
              for number, reports in enumerate(worse, start=1)]
    assert SEARCH.stop_early(spec, better) == []
    # Trials that have not reported, or that have had the whole resource, are not stopped.
    created = [_trial(number, assignment, TrialState.CREATED) for number in (1, 2)]
    assert SEARCH.stop_early(spec, created) == []
    whole = [_trial(number, assignment, TrialState.RUNNING, reports=[*reports, *reports, *reports])
             for number, reports in enumerate(worse, start=1)]
    assert SEARCH.stop_early(spec, whole) == []


def test_hyperband_judges_running_trials_against_finished_ones_at_each_rung() -> None:
    spec = _spec("hyperband", HYPERBAND_PARAMETERS)
    assignment = {"x": 0.0, "y": 0.0, "epochs": 9}
    # Six trials that did well from their first report on, then six that start well and fall behind:
    # each rung is judged on the value reported on reaching it, not on the latest one.
    good = [[1.0] * 9 for _ in range(6)]
    falling = [[0.5, 5.0, 5.0] for _ in range(6)]
    history = [_trial(number, assignment, objective=1.0, reports=reports)
               for number, reports in enumerate(good, start=1)]
    history += [_trial(number, assignment, TrialState.RUNNING, reports=reports)
                for number, reports in enumerate(falling, start=7)]
    stopped = SEARCH.stop_early(spec, history)
    assert stopped and set(stopped) <= set(range(7, 13))
    assert set(stopped) == _optuna_hyperband_verdicts(spec, good + falling)


def test_hyperband_follows_katibs_example_settings() -> None:
    """Katib's hyperband example: r_l 2, eta 2, a resource parameter whose range is 1..1."""
    spec = _spec("hyperband", XY + "- {name: num-epochs, parameterType: int, feasibleSpace: {min: \"1\", "
                 "max: \"1\"}}\n", settings=[("resource_name", "num-epochs"), ("eta", "2"), ("r_l", "2")],
                 parallel=2)
    SEARCH.check(spec)
    assert {a["num-epochs"] for a in SEARCH.suggest(spec, [], 2, seed=1)} == {2}


def test_hyperband_resource_below_one_report_is_refused() -> None:
    spec = _spec("hyperband", HYPERBAND_PARAMETERS, settings=[("resource_name", "epochs"), ("r_l", "0.5")],
                 parallel=1)
    with pytest.raises(InvalidArgument) as refused:
        SEARCH.check(spec)
    assert refused.value.field == "tuning.algorithm.algorithmSettings[1].value"
    assert "at least 1" in str(refused.value)


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_every_algorithm_passes_the_check(algorithm: str) -> None:
    SEARCH.check(_spec(algorithm, GRID_PARAMETERS if algorithm == "grid" else PARAMETERS))
