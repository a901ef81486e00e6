"""A study's trials as people read them, the same in the CLI and the console: Katib's words for
statuses and states, and the results table ``shipyard study download`` and the console's download give
(number, name, state, each parameter, each metric's latest/min/max, objective)."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Sequence
from typing import Any

from shipyard.contracts.run.v1 import studies_pb2 as pb


def study_status(status: int) -> str:
    """STUDY_STATUS_SUCCEEDED → ``Succeeded`` (Katib's words)."""
    try:
        return pb.StudyStatus.Name(status).removeprefix("STUDY_STATUS_").title()
    except ValueError:
        return str(status)


def trial_state(state: int) -> str:
    """TRIAL_STATE_METRICS_UNAVAILABLE → ``MetricsUnavailable`` (Katib's words)."""
    try:
        words = pb.TrialState.Name(state).removeprefix("TRIAL_STATE_").split("_")
    except ValueError:
        return str(state)
    return "".join(word.title() for word in words)


def parameter_names(study: pb.Study | None, trials: Sequence[pb.Trial]) -> list[str]:
    """The searched parameters in the tuning file's order, then any other a trial was given, sorted: a
    trial's assignment is a protobuf map, whose order is not kept."""
    spec = json.loads(study.spec_json or "{}") if study is not None else {}
    named = [str(p.get("name")) for p in spec.get("parameters", [])]
    others = sorted({k for t in trials for k in t.assignment} - set(named))
    return [*named, *others]


def result_rows(trials: Sequence[pb.Trial], study: pb.Study | None = None) -> list[dict[str, Any]]:
    """One row per trial: number, name, state, each parameter (in the order of ``parameter_names``), each
    metric's latest/min/max, objective — the columns of ``shipyard study download``."""
    parameters = parameter_names(study, trials)
    metrics = list(dict.fromkeys(m.name for t in trials for m in t.metrics))
    rows: list[dict[str, Any]] = []
    for trial in trials:
        row: dict[str, Any] = {"number": trial.number, "name": trial.name, "state": trial_state(trial.state)}
        row.update({p: trial.assignment.get(p, "") for p in parameters})
        summary = {m.name: m for m in trial.metrics}
        for metric in metrics:
            found = summary.get(metric)
            for part in ("latest", "min", "max"):
                row[f"{metric}.{part}"] = getattr(found, part) if found else None
        row["objective"] = trial.objective if trial.has_objective else None
        rows.append(row)
    return rows


def results_csv(rows: Sequence[dict[str, Any]]) -> str:
    """The rows as CSV with a header; an empty value where a trial has none."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(rows[0]) if rows else ["number", "name", "state"])
    writer.writeheader()
    writer.writerows({k: "" if v is None else v for k, v in row.items()} for row in rows)
    return buffer.getvalue()
