"""A study's trials as the console shows and downloads them: Katib's words for statuses and states, the
results table (the same columns as ``shipyard study download``), and the trials graph's points."""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from typing import Any

from shipyard.contracts.run.v1 import studies_pb2 as pb
from shipyard.kit.study_results import trial_state

LIVE_STATUSES = frozenset({pb.STUDY_STATUS_CREATED, pb.STUDY_STATUS_RUNNING})
# A trial's state as the graph colours it: the order is the legend's.
GRAPHED_STATES = ("Succeeded", "Running", "Created", "Failed", "MetricsUnavailable", "Killed", "EarlyStopped")


def is_live(study: pb.Study) -> bool:
    """Whether the study may still start or end trials (the page refreshes while it does): a stopped study's
    trials are killed after it ended."""
    return study.status in LIVE_STATUSES or bool(study.counts.created or study.counts.running)


def watched_metrics(study: pb.Study) -> list[str]:
    """The objective metric, then the additional metrics the tuning file names."""
    spec = json.loads(study.spec_json or "{}")
    return [study.objective_metric, *spec.get("objective", {}).get("additionalMetricNames", [])]


def objective_goal(study: pb.Study) -> float | None:
    """The objective's goal: the study succeeds once a trial reaches it; None when it has none."""
    goal = json.loads(study.spec_json or "{}").get("objective", {}).get("goal")
    return float(goal) if goal is not None else None


def spec_parameters(study: pb.Study) -> list[dict[str, Any]]:
    """The searched parameters as the spec writes them: ``name``, ``parameterType``, ``feasibleSpace``."""
    return list(json.loads(study.spec_json or "{}").get("parameters", []))


def _finite(value: float) -> float | None:
    return value if math.isfinite(value) else None


def trials_graph(study: pb.Study, trials: Sequence[pb.Trial]) -> dict[str, Any]:
    """The trials graph (uPlot): x the trial's number, one series of points per state (None where a trial
    is in another state or has no objective yet), and the best objective so far among succeeded trials."""
    trials = sorted(trials, key=lambda t: t.number)
    maximize = study.objective_type == "maximize"
    states = [s for s in GRAPHED_STATES if any(trial_state(t.state) == s for t in trials)]
    best: float | None = None
    best_so_far: list[float | None] = []
    for trial in trials:
        value = _finite(trial.objective) if trial.has_objective else None
        if value is not None and trial.state == pb.TRIAL_STATE_SUCCEEDED:
            best = value if best is None else (max if maximize else min)(best, value)
        best_so_far.append(best)
    return {
        "metric": study.objective_metric,
        "numbers": [t.number for t in trials],
        "states": [
            {"state": state, "values": [
                _finite(t.objective) if t.has_objective and trial_state(t.state) == state else None
                for t in trials]}
            for state in states
        ],
        "best": best_so_far,
    }
