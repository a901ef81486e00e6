"""A validated, immutable tuning spec: what a study's driver needs from a Katib Experiment.

Made only by ``parse_tuning``. Values keep Katib's meaning; ``to_dict`` writes the spec back as Katib
would (camelCase, defaults filled in) so a study can show and store it.
"""

from __future__ import annotations

import copy
import json
import math
import re
import shlex
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from shipyard.kit.errors import InvalidArgument

# Katib's default StdOut/File metric line: ``name=value`` (pkg/metricscollector/v1beta1/common).
DEFAULT_METRICS_FORMAT = r"([\w|-]+)\s*=\s*([+-]?\d*(\.\d+)?([Ee][+-]?\d+)?)"
DEFAULT_METRIC_PATTERN = re.compile(DEFAULT_METRICS_FORMAT)
TRIAL_PARAMETER = re.compile(r"\$\{trialParameters\.(.+?)\}")
TRIAL_NAME_REFERENCE = "${trialSpec.Name}"

Assignment = Mapping[str, str | int | float]
Observation = tuple[str, float]


@dataclass(frozen=True)
class Objective:
    """What a study optimizes: ``type`` is minimize or maximize; ``strategies`` say, per metric, which of
    a trial's reported values stands for it (min, max or latest), in Katib's order."""

    type: str
    metric: str
    goal: float | None = None
    additional_metrics: tuple[str, ...] = ()
    strategies: tuple[tuple[str, str], ...] = ()

    @property
    def metrics(self) -> tuple[str, ...]:
        """Every metric a trial is watched for: the objective first."""
        return (self.metric, *self.additional_metrics)

    def strategy(self, metric: str) -> str:
        """min, max or latest for ``metric``."""
        return dict(self.strategies)[metric]

    def pick(self, metric: str, values: Sequence[float]) -> float | None:
        """The value standing for ``metric`` among the ``values`` a trial reported, in report order."""
        if not values:
            return None
        strategy = self.strategy(metric)
        if strategy == "min":
            return min(values)
        if strategy == "max":
            return max(values)
        return values[-1]

    def goal_reached(self, value: float) -> bool:
        """Whether an objective value meets the goal (never, without a goal)."""
        if self.goal is None:
            return False
        return value <= self.goal if self.type == "minimize" else value >= self.goal

    def to_dict(self) -> dict[str, Any]:
        body: dict[str, Any] = {"type": self.type}
        if self.goal is not None:
            body["goal"] = self.goal
        body["objectiveMetricName"] = self.metric
        if self.additional_metrics:
            body["additionalMetricNames"] = list(self.additional_metrics)
        body["metricStrategies"] = [{"name": name, "value": value} for name, value in self.strategies]
        return body


@dataclass(frozen=True)
class FeasibleSpace:
    """Where a parameter's values lie: ``min``/``max``/``step`` for int and double, ``values`` (Katib's
    ``list``) for categorical and discrete; numbers kept as the strings the file wrote."""

    min: str = ""
    max: str = ""
    step: str = ""
    values: tuple[str, ...] = ()
    distribution: str = "uniform"

    def to_dict(self) -> dict[str, Any]:
        body: dict[str, Any] = {}
        for key in ("min", "max", "step"):
            if getattr(self, key):
                body[key] = getattr(self, key)
        if self.values:
            body["list"] = list(self.values)
        body["distribution"] = self.distribution
        return body


@dataclass(frozen=True)
class Parameter:
    """A searched parameter: ``type`` is int, double, categorical or discrete."""

    name: str
    type: str
    space: FeasibleSpace

    @property
    def flag(self) -> str:
        """The command-line flag it is passed as in the product's form: the name, with ``--`` unless it
        has dashes already."""
        return self.name if self.name.startswith("-") else f"--{self.name}"

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "parameterType": self.type, "feasibleSpace": self.space.to_dict()}


@dataclass(frozen=True)
class Algorithm:
    """A search algorithm and its settings: ``settings`` as written (name, text), ``values`` typed."""

    name: str
    settings: tuple[tuple[str, str], ...] = ()
    values: tuple[tuple[str, int | float | str | None], ...] = ()

    def setting(self, name: str, default: int | float | str | None = None) -> int | float | str | None:
        """A setting's typed value, or ``default`` when the file does not set it."""
        return dict(self.values).get(name, default)

    def to_dict(self) -> dict[str, Any]:
        body: dict[str, Any] = {"algorithmName": self.name}
        if self.settings:
            body["algorithmSettings"] = [{"name": name, "value": value} for name, value in self.settings]
        return body


@dataclass(frozen=True)
class EarlyStopping(Algorithm):
    """An early-stopping algorithm (medianstop) and its settings, read like an ``Algorithm``'s."""


@dataclass(frozen=True)
class MetricsCollector:
    """Where trial metrics come from. ``kind``: StdOut (the trial's output), File (``path``, ``format``
    TEXT or JSON), TensorFlowEvent (event files under the directory ``path``), Push or None (the trial
    reports them itself: Shipyard's SDK, MLflow). ``filters`` are regexes whose first two groups are a
    metric's name and value (Katib's ``metricsFormat``)."""

    kind: str = "StdOut"
    path: str = ""
    path_kind: str = ""
    format: str = ""
    filters: tuple[str, ...] = ()

    @property
    def patterns(self) -> tuple[re.Pattern[str], ...]:
        """The metric-line patterns in use: the filters, or Katib's default ``name=value``."""
        if not self.filters:
            return (DEFAULT_METRIC_PATTERN,)
        return tuple(re.compile(pattern) for pattern in self.filters)

    def to_dict(self) -> dict[str, Any]:
        body: dict[str, Any] = {"collector": {"kind": self.kind}}
        source: dict[str, Any] = {}
        if self.path:
            path: dict[str, Any] = {"path": self.path, "kind": self.path_kind}
            if self.format:
                path["format"] = self.format
            source["fileSystemPath"] = path
        if self.filters:
            source["filter"] = {"metricsFormat": list(self.filters)}
        if source:
            body["source"] = source
        return body


@dataclass(frozen=True)
class TrialParameter:
    """``${trialParameters.NAME}`` in the trial template stands for ``reference``: a parameter's name, or
    ``${trialSpec.Name}`` (the trial's name)."""

    name: str
    reference: str
    description: str = ""

    def to_dict(self) -> dict[str, Any]:
        body = {"name": self.name, "reference": self.reference}
        if self.description:
            body["description"] = self.description
        return body


@dataclass(frozen=True)
class TrialTemplate:
    """A Katib trial template, read for its primary container's command only.

    ``words`` are the container's ``command`` then ``args``; when they are a shell's ``-c`` form the
    script is ``script`` and stays one string. The container's image, its environment and the rest of
    the resource are not used: a trial runs the study's own image, on the study's executor or cluster.
    ``trial_spec``, the conditions and the labels are kept to be shown back as Katib wrote them.
    """

    primary_container_name: str
    words: tuple[str, ...]
    script: str | None
    trial_parameters: tuple[TrialParameter, ...]
    trial_spec: Mapping[str, Any] = field(default_factory=dict)
    success_condition: str = ""
    failure_condition: str = ""
    primary_pod_labels: tuple[tuple[str, str], ...] = ()
    retain: bool = False

    def command(self, assignment: Assignment, trial_name: str) -> str:
        """The trial's shell command: references replaced by the trial's values, each quoted."""
        values = {
            parameter.name: trial_name if parameter.reference == TRIAL_NAME_REFERENCE
            else _text(_assigned(assignment, parameter.reference))
            for parameter in self.trial_parameters
        }
        if self.script is not None:
            return TRIAL_PARAMETER.sub(lambda found: shlex.quote(values[found.group(1)]), self.script)
        return shlex.join(TRIAL_PARAMETER.sub(lambda found: values[found.group(1)], word)
                          for word in self.words)

    def to_dict(self) -> dict[str, Any]:
        body: dict[str, Any] = {}
        if self.retain:
            body["retain"] = True
        body["primaryContainerName"] = self.primary_container_name
        if self.primary_pod_labels:
            body["primaryPodLabels"] = dict(self.primary_pod_labels)
        if self.success_condition:
            body["successCondition"] = self.success_condition
        if self.failure_condition:
            body["failureCondition"] = self.failure_condition
        body["trialParameters"] = [parameter.to_dict() for parameter in self.trial_parameters]
        body["trialSpec"] = copy.deepcopy(dict(self.trial_spec))
        return body


@dataclass(frozen=True)
class TuningSpec:
    """A hyperparameter study's spec (Katib v1beta1 ``Experiment.spec``), validated, defaults applied.

    ``max_trial_count`` None: no limit (the study ends at its goal or when stopped), as in Katib.
    ``max_failed_trial_count`` None: failed trials never fail the study. Without a ``trial_template``
    parameters are appended to the run's command as flags (the product's form). With one, a trial runs
    the template's primary container's command; that container's image and the rest of the resource
    (environment, volumes, resources, replicas) are not used: trials run the study's own image on the
    executor or cluster the study was submitted to.
    """

    objective: Objective
    algorithm: Algorithm
    parameters: tuple[Parameter, ...]
    parallel_trial_count: int = 3
    max_trial_count: int | None = None
    max_failed_trial_count: int | None = None
    early_stopping: EarlyStopping | None = None
    metrics_collector: MetricsCollector = field(default_factory=MetricsCollector)
    trial_template: TrialTemplate | None = None
    resume_policy: str = "Never"

    def parameter(self, name: str) -> Parameter:
        """The parameter called ``name``."""
        return next(parameter for parameter in self.parameters if parameter.name == name)

    def trial_command(self, base_command: str, assignment: Assignment, trial_name: str) -> str:
        """The shell command a trial runs: with a trial template, the template's command with its
        references replaced (``base_command`` is then unused); otherwise ``base_command`` followed by each
        parameter as ``--name=value``. Values are shell-quoted, so none can inject shell syntax."""
        if self.trial_template is not None:
            return self.trial_template.command(assignment, trial_name)
        flags = [
            shlex.quote(f"{parameter.flag}={_text(_assigned(assignment, parameter.name))}")
            for parameter in self.parameters
        ]
        return " ".join([base_command, *flags])

    def metric_lines(self, text: str) -> list[Observation]:
        """The (metric, value) pairs in a trial's output or metrics file, in order, for the metrics this
        study watches; lines that are not metrics, other metrics and values that are not numbers are
        skipped, as Katib's collector does. JSON files hold one object per line (Katib's JSON format)."""
        watched = set(self.objective.metrics)
        found = _json_metrics(text) if self.metrics_collector.format == "JSON" else _text_metrics(
            text, self.metrics_collector.patterns)
        return [(name, value) for name, value in found if name in watched]

    def metric_values(self, observations: Iterable[Observation]) -> dict[str, float]:
        """Each watched metric's value by its strategy, from (metric, value) pairs in report order;
        metrics never reported are absent."""
        series: dict[str, list[float]] = {}
        for name, value in observations:
            series.setdefault(name, []).append(value)
        picked = {name: self.objective.pick(name, series.get(name, [])) for name in self.objective.metrics}
        return {name: value for name, value in picked.items() if value is not None}

    def objective_value(self, observations: Iterable[Observation]) -> float | None:
        """The trial's objective value by the objective metric's strategy; None when the trial never
        reported it (the trial is then MetricsUnavailable)."""
        return self.metric_values(observations).get(self.objective.metric)

    def goal_reached(self, value: float) -> bool:
        """Whether an objective value meets the objective's goal."""
        return self.objective.goal_reached(value)

    def to_dict(self) -> dict[str, Any]:
        """The spec as Katib writes an Experiment's ``spec``: camelCase, defaults filled in."""
        body: dict[str, Any] = {
            "objective": self.objective.to_dict(),
            "algorithm": self.algorithm.to_dict(),
            "parallelTrialCount": self.parallel_trial_count,
        }
        if self.max_trial_count is not None:
            body["maxTrialCount"] = self.max_trial_count
        if self.max_failed_trial_count is not None:
            body["maxFailedTrialCount"] = self.max_failed_trial_count
        body["parameters"] = [parameter.to_dict() for parameter in self.parameters]
        if self.early_stopping is not None:
            body["earlyStopping"] = self.early_stopping.to_dict()
        body["metricsCollectorSpec"] = self.metrics_collector.to_dict()
        if self.trial_template is not None:
            body["trialTemplate"] = self.trial_template.to_dict()
        body["resumePolicy"] = self.resume_policy
        return body


def _assigned(assignment: Assignment, name: str) -> str | int | float:
    if name not in assignment:
        raise InvalidArgument("assignment", f"has no value for parameter {name!r}")
    return assignment[name]


def _text(value: str | int | float) -> str:
    return str(value)


def _number(text: str) -> float | None:
    try:
        value = float(text)
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def _text_metrics(text: str, patterns: Sequence[re.Pattern[str]]) -> list[Observation]:
    found: list[Observation] = []
    for line in text.splitlines():
        for pattern in patterns:
            for match in pattern.finditer(line):
                value = _number((match.group(2) or "").strip())
                if value is not None:
                    found.append(((match.group(1) or "").strip(), value))
    return found


def _json_metrics(text: str) -> list[Observation]:
    found: list[Observation] = []
    for line in text.splitlines():
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if not isinstance(record, dict):
            continue
        for name, raw in record.items():
            value = _number(str(raw))
            if value is not None:
                found.append((name, value))
    return found
