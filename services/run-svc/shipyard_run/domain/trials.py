"""A study's trials as the search sees them: what each was given and how it did.

A trial is a run of the study (kind trial); its state is Katib's trial condition, derived from the run's
status and the metrics it reported. The search algorithms (the ``TrialSearch`` port) read the study's
history of trials to suggest the next assignments and to pick the running trials worth stopping early.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import Enum

ParameterValue = str | int | float
"""A parameter's value in an assignment: int and double parameters as numbers, categorical and
discrete as the string given in the tuning file's ``list``."""


class TrialState(Enum):
    """Katib's trial conditions."""

    CREATED = "Created"  # its run is queued or starting
    RUNNING = "Running"
    SUCCEEDED = "Succeeded"  # its run completed and reported the objective metric
    KILLED = "Killed"  # stopped by a user, or by the study ending (goal reached, study stopped)
    FAILED = "Failed"  # its run failed or erred
    METRICS_UNAVAILABLE = "MetricsUnavailable"  # its run completed without the objective metric
    EARLY_STOPPED = "EarlyStopped"  # stopped by the early-stopping rule (medianstop, hyperband)

    @property
    def active(self) -> bool:
        """Whether the trial still counts against parallelTrialCount."""
        return self in (TrialState.CREATED, TrialState.RUNNING)


@dataclass(frozen=True)
class TrialHistory:
    """One trial of a study, as the search reads it."""

    number: int  # 1, 2, … in the order the study started them
    assignment: Mapping[str, ParameterValue]
    state: TrialState
    objective: float | None = None  # the objective metric's value by its strategy; None when never reported
    # The objective metric's values so far, as (step, value) in report order: what early stopping compares.
    intermediate: tuple[tuple[int, float], ...] = field(default=())
