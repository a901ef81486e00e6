"""Hyperparameter studies' tuning spec: Katib v1beta1 Experiments, parsed and validated."""

from .parse import parse_tuning
from .spec import (
    DEFAULT_METRIC_PATTERN,
    Algorithm,
    EarlyStopping,
    FeasibleSpace,
    MetricsCollector,
    Objective,
    Parameter,
    TrialParameter,
    TrialTemplate,
    TuningSpec,
)

__all__ = [
    "DEFAULT_METRIC_PATTERN",
    "Algorithm",
    "EarlyStopping",
    "FeasibleSpace",
    "MetricsCollector",
    "Objective",
    "Parameter",
    "TrialParameter",
    "TrialTemplate",
    "TuningSpec",
    "parse_tuning",
]
