"""Reading a tuning file: YAML → Katib's structure → Katib's defaults and rules → ``TuningSpec``.

The file is the body of a Katib Experiment's ``spec`` (the product's form) or a whole Experiment.
Errors name the field by its Katib path under ``tuning.`` (``tuning.spec.…`` for an Experiment). The
first error found is reported: a user fixes one field at a time, and later checks would often only
repeat the first one's consequence (e.g. a grid's size after a bad bound).
"""

from __future__ import annotations

import math
import posixpath
import re
from decimal import Decimal, InvalidOperation
from typing import Any, TypeVar

import yaml
from pydantic import ValidationError

from shipyard.kit.errors import InvalidArgument

from .algorithms import ALGORITHMS, EARLY_STOPPING, REFUSED, read_settings
from .models import (
    AlgorithmModel,
    ExperimentModel,
    ExperimentSpecModel,
    MetricsCollectorModel,
    ObjectiveModel,
    ParameterModel,
)
from .spec import (
    Algorithm,
    EarlyStopping,
    FeasibleSpace,
    MetricsCollector,
    Objective,
    Parameter,
    TuningSpec,
)
from .template import read_trial_template

M = TypeVar("M", ExperimentModel, ExperimentSpecModel)
API_VERSION = "kubeflow.org/v1beta1"
DEFAULT_PARALLEL_TRIALS = 3
GRID_LIMIT = 10_000
PARAMETER_TYPES = ("int", "double", "categorical", "discrete")
DISTRIBUTIONS = ("uniform", "logUniform", "normal", "logNormal")
RESUME_POLICIES = ("Never", "LongRunning", "FromVolume")
STRATEGIES = ("min", "max", "latest")
COLLECTORS = ("StdOut", "File", "TensorFlowEvent", "Push", "None")
DEFAULT_FILE_PATH = "/var/log/katib/metrics.log"
DEFAULT_TFEVENT_DIR = "/var/log/katib/tfevent/"


class _Loader(yaml.SafeLoader):
    """YAML without aliases: a few nested aliases expand to billions of nodes, and Katib's files
    never need them."""

    def compose_node(self, parent: Any, index: Any) -> Any:
        if self.check_event(yaml.AliasEvent):
            mark = self.peek_event().start_mark
            raise yaml.composer.ComposerError(None, None, "aliases (*name) are not accepted", mark)
        return super().compose_node(parent, index)


def parse_tuning(text: str) -> TuningSpec:
    """The validated spec a tuning file describes, or InvalidArgument naming the first wrong field."""
    try:
        document = yaml.load(text, Loader=_Loader)
    except yaml.YAMLError as error:
        raise InvalidArgument("tuning", f"is not valid YAML: {_yaml_problem(error)}") from None
    if not isinstance(document, dict):
        raise InvalidArgument("tuning", "must be a mapping: a Katib Experiment, or the body of its spec")
    if "apiVersion" in document or "kind" in document:
        return _experiment(document)
    return _read(_model(ExperimentSpecModel, document), "tuning")


def _experiment(document: dict[str, Any]) -> TuningSpec:
    if document.get("apiVersion") != API_VERSION:
        raise InvalidArgument("tuning.apiVersion",
                              f"must be {API_VERSION}, not {document.get('apiVersion')!r}")
    if document.get("kind") != "Experiment":
        raise InvalidArgument("tuning.kind", f"must be Experiment, not {document.get('kind')!r}")
    experiment = _model(ExperimentModel, document)
    return _read(experiment.spec, "tuning.spec")


def _model(model: type[M], document: dict[str, Any]) -> M:
    try:
        return model.model_validate(document)
    except ValidationError as error:
        first = error.errors()[0]
        raise InvalidArgument(_path("tuning", first["loc"]), _problem(first)) from None


def _path(prefix: str, loc: tuple[int | str, ...]) -> str:
    path = prefix
    for part in loc:
        path += f"[{part}]" if isinstance(part, int) else f".{part}"
    return path


def _problem(error: Any) -> str:
    kind = error["type"]
    if kind == "extra_forbidden":
        return "is not a field of a Katib v1beta1 Experiment"
    if kind == "missing":
        return "is required"
    given = repr(error["input"])
    given = given if len(given) <= 60 else f"{given[:57]}..."
    return f"{error['msg'][0].lower()}{error['msg'][1:]}, not {given}"


def _yaml_problem(error: yaml.YAMLError) -> str:
    mark = getattr(error, "problem_mark", None)
    where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark is not None else ""
    return f"{getattr(error, 'problem', None) or error}{where}"


def _read(model: ExperimentSpecModel, path: str) -> TuningSpec:
    if model.nas_config is not None:
        raise InvalidArgument(f"{path}.nasConfig", "neural architecture search is not supported")
    counts = _counts(model, path)
    objective = _objective(model.objective, f"{path}.objective")
    if not model.parameters:
        raise InvalidArgument(f"{path}.parameters", "is required: at least one parameter to search")
    parameters = tuple(_parameter(item, f"{path}.parameters[{index}]")
                       for index, item in enumerate(model.parameters))
    _check_unique_names(parameters, f"{path}.parameters")
    algorithm = _algorithm(model.algorithm, f"{path}.algorithm")
    _check_algorithm_fits(algorithm, parameters, counts, path)
    early_stopping = _early_stopping(model.early_stopping, f"{path}.earlyStopping")
    if model.resume_policy and model.resume_policy not in RESUME_POLICIES:
        raise InvalidArgument(f"{path}.resumePolicy", f"must be one of {', '.join(RESUME_POLICIES)}")
    collector = _collector(model.metrics_collector_spec, f"{path}.metricsCollectorSpec")
    template = None
    if model.trial_template is not None:
        names = [parameter.name for parameter in parameters]
        template = read_trial_template(model.trial_template, names, f"{path}.trialTemplate")
    return TuningSpec(
        objective=objective, algorithm=algorithm, parameters=parameters, parallel_trial_count=counts[0],
        max_trial_count=counts[1], max_failed_trial_count=counts[2], early_stopping=early_stopping,
        metrics_collector=collector, trial_template=template, resume_policy=model.resume_policy or "Never",
    )


def _counts(model: ExperimentSpecModel, path: str) -> tuple[int, int | None, int | None]:
    parallel = DEFAULT_PARALLEL_TRIALS if model.parallel_trial_count is None else model.parallel_trial_count
    most, failed = model.max_trial_count, model.max_failed_trial_count
    if failed is not None and failed < 0:
        raise InvalidArgument(f"{path}.maxFailedTrialCount", "must not be less than 0")
    if most is not None and most <= 0:
        raise InvalidArgument(f"{path}.maxTrialCount", "must be greater than 0")
    if parallel <= 0:
        raise InvalidArgument(f"{path}.parallelTrialCount", "must be greater than 0")
    if most is not None and failed is not None and failed > most:
        raise InvalidArgument(f"{path}.maxFailedTrialCount", f"must not exceed maxTrialCount ({most})")
    if most is not None and parallel > most:
        what = "the default 3" if model.parallel_trial_count is None else str(parallel)
        raise InvalidArgument(f"{path}.parallelTrialCount", f"{what} must not exceed maxTrialCount ({most})")
    return parallel, most, failed


def _objective(model: ObjectiveModel | None, path: str) -> Objective:
    if model is None:
        raise InvalidArgument(path, "is required: the metric to minimize or maximize")
    if model.type not in ("minimize", "maximize"):
        raise InvalidArgument(f"{path}.type", f"must be minimize or maximize, not {model.type!r}")
    if not model.objective_metric_name:
        raise InvalidArgument(f"{path}.objectiveMetricName", "is required")
    if model.goal is not None and not math.isfinite(model.goal):
        raise InvalidArgument(f"{path}.goal", "must be a finite number")
    metric = model.objective_metric_name
    if metric in model.additional_metric_names:
        raise InvalidArgument(f"{path}.additionalMetricNames",
                              f"must not repeat objectiveMetricName {metric!r}")
    if len(set(model.additional_metric_names)) != len(model.additional_metric_names):
        raise InvalidArgument(f"{path}.additionalMetricNames", "names a metric twice")
    metrics = (metric, *model.additional_metric_names)
    given: dict[str, str] = {}
    for index, strategy in enumerate(model.metric_strategies):
        at = f"{path}.metricStrategies[{index}]"
        if strategy.name not in metrics:
            raise InvalidArgument(f"{at}.name", f"{strategy.name!r} is neither the objective metric nor an "
                                  "additional metric")
        if strategy.name in given:
            raise InvalidArgument(f"{at}.name", f"{strategy.name!r} has a strategy already")
        if strategy.value not in STRATEGIES:
            raise InvalidArgument(f"{at}.value", f"must be min, max or latest, not {strategy.value!r}")
        given[strategy.name] = strategy.value
    # Katib's defaults: by the objective's direction, for the objective and additional metrics alike.
    default = "min" if model.type == "minimize" else "max"
    strategies = [(strategy.name, strategy.value) for strategy in model.metric_strategies]
    strategies += [(name, default) for name in metrics if name not in given]
    return Objective(model.type, metric, model.goal, tuple(model.additional_metric_names), tuple(strategies))


def _parameter(model: ParameterModel, path: str) -> Parameter:
    if not model.name:
        raise InvalidArgument(f"{path}.name", "is required")
    if model.parameter_type not in PARAMETER_TYPES:
        raise InvalidArgument(f"{path}.parameterType",
                              f"must be one of {', '.join(PARAMETER_TYPES)}, not {model.parameter_type!r}")
    space = model.feasible_space
    if space is None:
        raise InvalidArgument(f"{path}.feasibleSpace", "is required")
    at = f"{path}.feasibleSpace"
    distribution = space.distribution or "uniform"
    if distribution not in DISTRIBUTIONS:
        raise InvalidArgument(f"{at}.distribution",
                              f"must be one of {', '.join(DISTRIBUTIONS)}, not {distribution!r}")
    feasible = FeasibleSpace(space.min, space.max, space.step, tuple(space.values), distribution)
    if model.parameter_type in ("categorical", "discrete"):
        _check_list(model.parameter_type, feasible, at)
    else:
        _check_range(model.parameter_type, feasible, at)
    return Parameter(model.name, model.parameter_type, feasible)


def _check_list(kind: str, space: FeasibleSpace, path: str) -> None:
    for key in ("min", "max", "step"):
        if getattr(space, key):
            raise InvalidArgument(f"{path}.{key}",
                                  f"is not used by a {kind} parameter: give its values in list")
    if not space.values:
        raise InvalidArgument(f"{path}.list", f"is required: the values a {kind} parameter takes")
    if len(set(space.values)) != len(space.values):
        raise InvalidArgument(f"{path}.list", "holds a value twice")
    if kind == "discrete":
        for index, value in enumerate(space.values):
            if _decimal(value) is None:
                raise InvalidArgument(f"{path}.list[{index}]", f"discrete values are numbers, not {value!r}")


def _check_range(kind: str, space: FeasibleSpace, path: str) -> None:
    if space.values:
        raise InvalidArgument(f"{path}.list", f"is not used by a {kind} parameter: give min and max")
    bounds: dict[str, Decimal] = {}
    for key in ("min", "max", "step"):
        text = getattr(space, key)
        if not text:
            if key != "step":
                raise InvalidArgument(f"{path}.{key}", f"is required for a {kind} parameter")
            continue
        value = _decimal(text)
        if value is None:
            raise InvalidArgument(f"{path}.{key}", f"must be a number, not {text!r}")
        if kind == "int" and not re.fullmatch(r"[+-]?\d+", text.strip()):
            raise InvalidArgument(f"{path}.{key}", f"must be an integer for an int parameter, not {text!r}")
        bounds[key] = value
    low, high = bounds["min"], bounds["max"]
    if low > high:
        raise InvalidArgument(f"{path}.max", f"must not be less than min ({space.min}), not {space.max!r}")
    step = bounds.get("step")
    if step is not None and step <= 0:
        raise InvalidArgument(f"{path}.step", f"must be greater than 0, not {space.step!r}")
    if step is not None and high > low and step > high - low:
        raise InvalidArgument(f"{path}.step",
                              f"{space.step} is larger than the range {space.min}..{space.max}")
    if space.distribution in ("logUniform", "logNormal") and low <= 0:
        raise InvalidArgument(f"{path}.min", f"must be greater than 0 for a {space.distribution} "
                              f"distribution, not {space.min!r}")


def _decimal(text: str) -> Decimal | None:
    try:
        value = Decimal(text.strip())
    except InvalidOperation:
        return None
    return value if value.is_finite() else None


def _check_unique_names(parameters: tuple[Parameter, ...], path: str) -> None:
    seen: set[str] = set()
    for index, parameter in enumerate(parameters):
        if parameter.name in seen:
            raise InvalidArgument(f"{path}[{index}].name", f"{parameter.name!r} is a parameter already")
        seen.add(parameter.name)


def _algorithm(model: AlgorithmModel | None, path: str) -> Algorithm:
    if model is None or not model.algorithm_name:
        raise InvalidArgument(f"{path}.algorithmName", f"is required: one of {', '.join(ALGORITHMS)}")
    name = model.algorithm_name
    if name not in ALGORITHMS:
        why = f"{REFUSED[name]}; " if name in REFUSED else ""
        raise InvalidArgument(f"{path}.algorithmName",
                              f"{name!r} is not supported ({why}supported: {', '.join(ALGORITHMS)})")
    settings = [(setting.name, setting.value) for setting in model.algorithm_settings]
    values = read_settings(name, settings, ALGORITHMS[name], f"{path}.algorithmSettings")
    return Algorithm(name, tuple(settings), values)


def _early_stopping(model: AlgorithmModel | None, path: str) -> EarlyStopping | None:
    if model is None:
        return None
    name = model.algorithm_name
    if name not in EARLY_STOPPING:
        raise InvalidArgument(f"{path}.algorithmName",
                              f"{name!r} is not supported (supported: {', '.join(EARLY_STOPPING)})")
    settings = [(setting.name, setting.value) for setting in model.algorithm_settings]
    values = read_settings(name, settings, EARLY_STOPPING[name], f"{path}.algorithmSettings")
    return EarlyStopping(name, tuple(settings), values)


def _check_algorithm_fits(
    algorithm: Algorithm, parameters: tuple[Parameter, ...], counts: tuple[int, int | None, int | None],
    path: str,
) -> None:
    if algorithm.name == "grid":
        _check_grid(parameters, counts[1], path)
    elif algorithm.name == "cmaes" and sum(p.type in ("int", "double") for p in parameters) < 2:
        raise InvalidArgument(f"{path}.parameters", "cmaes needs two or more int or double parameters")
    elif algorithm.name == "hyperband":
        _check_hyperband(algorithm, parameters, counts[0], path)


def _check_grid(parameters: tuple[Parameter, ...], most: int | None, path: str) -> None:
    points = 1
    for index, parameter in enumerate(parameters):
        space = parameter.space
        if parameter.type == "double" and not space.step:
            raise InvalidArgument(f"{path}.parameters[{index}].feasibleSpace.step",
                                  "is required for a double parameter of a grid search")
        if parameter.type in ("categorical", "discrete"):
            points *= len(space.values)
        else:
            low, high, step = Decimal(space.min), Decimal(space.max), Decimal(space.step or "1")
            points *= int((high - low) / step) + 1
        if points > GRID_LIMIT:
            raise InvalidArgument(f"{path}.parameters", f"the grid has more than {GRID_LIMIT:,} points: "
                                  "give larger steps or fewer values")
    if most is not None and most > points:
        raise InvalidArgument(f"{path}.maxTrialCount", f"{most} is more than the grid's {points} points")


def _check_hyperband(
    algorithm: Algorithm, parameters: tuple[Parameter, ...], parallel: int, path: str,
) -> None:
    at = f"{path}.algorithm.algorithmSettings"
    resource, r_l = algorithm.setting("resource_name"), algorithm.setting("r_l")
    if resource is None or r_l is None:
        raise InvalidArgument(at, "hyperband needs the settings resource_name and r_l")
    index = next((i for i, p in enumerate(algorithm.settings) if p[0] == "resource_name"), 0)
    if not any(p.name == resource and p.type in ("int", "double") for p in parameters):
        raise InvalidArgument(f"{at}[{index}].value",
                              f"resource_name {resource!r} must name an int or double parameter")
    eta = int(algorithm.setting("eta", 3) or 3)
    r_l = float(r_l)
    brackets = int(math.log(r_l) / math.log(eta)) if r_l >= 1 else 0
    needed = math.ceil(eta ** brackets)
    if parallel < needed:
        raise InvalidArgument(f"{path}.parallelTrialCount",
                              f"must be at least {needed} for hyperband with eta {eta} and r_l {r_l:g}")


def _collector(model: MetricsCollectorModel | None, path: str) -> MetricsCollector:
    kind = model.collector.kind if model is not None and model.collector is not None else ""
    kind = kind or "StdOut"
    at = f"{path}.collector"
    if kind in ("PrometheusMetric", "Custom"):
        raise InvalidArgument(f"{at}.kind", f"{kind} is not supported (supported: {', '.join(COLLECTORS)})")
    if kind not in COLLECTORS:
        raise InvalidArgument(f"{at}.kind", f"must be one of {', '.join(COLLECTORS)}, not {kind!r}")
    if model is not None and model.collector is not None and model.collector.custom_collector is not None:
        raise InvalidArgument(f"{at}.customCollector",
                              "is used only by the Custom kind, which is not supported")
    source = model.source if model is not None else None
    if source is not None and source.http_get is not None:
        raise InvalidArgument(f"{path}.source.httpGet", "is used only by the PrometheusMetric kind")
    filters = tuple(source.filter.metrics_format) if source is not None and source.filter is not None else ()
    for index, pattern in enumerate(filters):
        _check_filter(pattern, f"{path}.source.filter.metricsFormat[{index}]")
    files = source.file_system_path if source is not None else None
    files_path = f"{path}.source.fileSystemPath"
    if kind in ("StdOut", "Push", "None"):
        if files is not None:
            raise InvalidArgument(f"{path}.source.fileSystemPath", f"is not used by the {kind} collector")
        if filters and kind != "StdOut":
            raise InvalidArgument(f"{path}.source.filter", f"is not used by the {kind} collector")
        return MetricsCollector(kind, filters=filters)
    if kind == "File":
        path_text = (files.path if files else "") or DEFAULT_FILE_PATH
        _check_file_system_path(path_text, files.kind if files else "", "File", files_path)
        file_format = (files.format if files else "") or "TEXT"
        if file_format not in ("TEXT", "JSON"):
            raise InvalidArgument(f"{files_path}.format", f"must be TEXT or JSON, not {file_format!r}")
        if file_format == "JSON" and filters:
            raise InvalidArgument(f"{path}.source.filter", "must be left out when the metrics file is JSON")
        return MetricsCollector(kind, path_text, "File", file_format, filters)
    path_text = (files.path if files else "") or DEFAULT_TFEVENT_DIR
    _check_file_system_path(path_text, files.kind if files else "", "Directory", files_path)
    if files is not None and files.format:
        raise InvalidArgument(f"{path}.source.fileSystemPath.format", "must be left out for TensorFlowEvent")
    if filters:
        raise InvalidArgument(f"{path}.source.filter", "is not used by the TensorFlowEvent collector")
    return MetricsCollector(kind, path_text, "Directory")


def _check_file_system_path(text: str, kind: str, expected: str, path: str) -> None:
    if kind and kind != expected:
        raise InvalidArgument(f"{path}.kind", f"must be {expected}, not {kind!r}")
    if not posixpath.isabs(text):
        raise InvalidArgument(f"{path}.path", f"must be an absolute path, not {text!r}")


def _check_filter(pattern: str, path: str) -> None:
    try:
        re.compile(pattern)
    except re.error as error:
        raise InvalidArgument(path, f"is not a valid regular expression: {error}") from None
    groups = _top_level_groups(pattern)
    if len(groups) != 2 or groups[0][1]:
        raise InvalidArgument(path, "needs exactly two top-level groups, the metric's name then its value "
                              "(groups nested in the value are fine)")


def _top_level_groups(pattern: str) -> list[tuple[int, bool]]:
    """Each top-level capturing group's position and whether another capturing group is nested in it."""
    groups: list[tuple[int, bool]] = []
    stack: list[bool] = []  # per open parenthesis: does it capture?
    index, in_class = 0, False
    while index < len(pattern):
        char = pattern[index]
        if char == "\\":
            index += 2
            continue
        if in_class:
            in_class = char != "]"
        elif char == "[":
            in_class = True
            index += 1 if pattern[index + 1:index + 2] != "]" else 2
            continue
        elif char == "(":
            lookbehind = pattern.startswith(("(?<=", "(?<!"), index)
            named = pattern.startswith(("(?P<", "(?<"), index) and not lookbehind
            captures = named or not pattern.startswith("(?", index)
            if captures and not any(stack):
                groups.append((index, False))
            elif captures and groups:
                groups[-1] = (groups[-1][0], True)
            stack.append(captures)
        elif char == ")" and stack:
            stack.pop()
        index += 1
    return groups
