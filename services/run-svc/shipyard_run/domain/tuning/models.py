"""Katib v1beta1's Experiment, as its YAML reads: the structure only (defaults and rules live elsewhere).

Field names are Katib's camelCase (``experiment_types.go``, ``common_types.go``); anything Katib does not
have is refused. Katib writes feasible-space bounds and setting values as strings; numbers are accepted
too (a product-form file is often written by hand) and read as the strings they spell.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt
from pydantic.alias_generators import to_camel


class KatibModel(BaseModel):
    """Katib's spelling (camelCase), nothing unknown, numbers read as strings where Katib has strings."""

    model_config = ConfigDict(
        alias_generator=to_camel, populate_by_name=True, extra="forbid", frozen=True,
        coerce_numbers_to_str=True,
    )


class MetricStrategyModel(KatibModel):
    name: str = ""
    value: str = ""


class ObjectiveModel(KatibModel):
    type: str = ""
    goal: float | None = None
    objective_metric_name: str = ""
    additional_metric_names: list[str] = Field(default_factory=list)
    metric_strategies: list[MetricStrategyModel] = Field(default_factory=list)


class SettingModel(KatibModel):
    name: str = ""
    value: str = ""


class AlgorithmModel(KatibModel):
    algorithm_name: str = ""
    algorithm_settings: list[SettingModel] = Field(default_factory=list)


class FeasibleSpaceModel(KatibModel):
    min: str = ""
    max: str = ""
    step: str = ""
    # "list" would shadow the builtin inside the class body.
    values: list[str] = Field(default_factory=list, alias="list")
    distribution: str = ""


class ParameterModel(KatibModel):
    name: str = ""
    parameter_type: str = ""
    feasible_space: FeasibleSpaceModel | None = None


class FileSystemPathModel(KatibModel):
    path: str = ""
    kind: str = ""
    format: str = ""


class FilterModel(KatibModel):
    metrics_format: list[str] = Field(default_factory=list)


class SourceModel(KatibModel):
    # Katib's field is spelled httpGet, which the camelCase generator cannot guess.
    http_get: dict[str, Any] | None = Field(default=None, alias="httpGet")
    file_system_path: FileSystemPathModel | None = None
    filter: FilterModel | None = None


class CollectorModel(KatibModel):
    kind: str = ""
    custom_collector: dict[str, Any] | None = None


class MetricsCollectorModel(KatibModel):
    source: SourceModel | None = None
    collector: CollectorModel | None = None


class TrialParameterModel(KatibModel):
    name: str = ""
    description: str = ""
    reference: str = ""


class ConfigMapModel(KatibModel):
    config_map_name: str = ""
    config_map_namespace: str = ""
    template_path: str = ""


class TrialTemplateModel(KatibModel):
    retain: StrictBool = False
    trial_spec: dict[str, Any] | None = None
    config_map: ConfigMapModel | None = None
    trial_parameters: list[TrialParameterModel] | None = None
    primary_pod_labels: dict[str, str] = Field(default_factory=dict)
    primary_container_name: str = ""
    success_condition: str = ""
    failure_condition: str = ""


class ExperimentSpecModel(KatibModel):
    """The body of an Experiment's ``spec``: the product's own form of a tuning file."""

    parameters: list[ParameterModel] = Field(default_factory=list)
    objective: ObjectiveModel | None = None
    algorithm: AlgorithmModel | None = None
    early_stopping: AlgorithmModel | None = None
    trial_template: TrialTemplateModel | None = None
    parallel_trial_count: StrictInt | None = None
    max_trial_count: StrictInt | None = None
    max_failed_trial_count: StrictInt | None = None
    metrics_collector_spec: MetricsCollectorModel | None = None
    nas_config: dict[str, Any] | None = None
    resume_policy: str = ""


class ExperimentModel(KatibModel):
    """A whole Katib Experiment document."""

    api_version: str = ""
    kind: str = ""
    metadata: dict[str, Any] = Field(default_factory=dict)
    spec: ExperimentSpecModel
