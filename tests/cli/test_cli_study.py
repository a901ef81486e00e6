"""``shipyard study get|trials|best|download|stop`` and ``run submit --tuning`` against canned replies: the
requests sent, what is shown, and the results file."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

from google.protobuf.message import Message
from typer.testing import CliRunner

from shipyard.cli.main import app
from shipyard.contracts.run.v1 import runs_pb2 as rpb
from shipyard.contracts.run.v1 import studies_pb2 as pb
from tests.cli.conftest import Replies


def invoke(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, list(args))
    return result.exit_code, result.output


def _trial(number: int, lr: str, accuracy: float | None) -> pb.Trial:
    state = pb.TRIAL_STATE_SUCCEEDED if accuracy is not None else pb.TRIAL_STATE_METRICS_UNAVAILABLE
    trial = pb.Trial(name=f"tune-t{number:03d}", number=number, assignment={"lr": lr}, state=state,
                     run_status=rpb.RUN_STATUS_COMPLETE)
    if accuracy is not None:
        trial.metrics.append(pb.TrialMetric(name="accuracy", min=accuracy - 0.1, max=accuracy,
                                            latest=accuracy))
        trial.objective, trial.has_objective = accuracy, True
    return trial


TRIALS = [_trial(1, "0.01", 0.7), _trial(2, "0.05", 0.9), _trial(3, "0.09", None)]
STUDY = pb.Study(name="tune", status=pb.STUDY_STATUS_RUNNING, reason="ExperimentRunning",
                 objective_metric="accuracy", objective_type="maximize", algorithm="random",
                 parallel_trial_count=2, max_trial_count=4,
                 trials=3, counts=pb.TrialCounts(succeeded=2, metrics_unavailable=1), best_trial=TRIALS[1],
                 spec_json=json.dumps({"objective": {"objectiveMetricName": "accuracy"}}), owner="alice")


def _trials(request: Message) -> pb.ListTrialsResponse:
    assert isinstance(request, pb.ListTrialsRequest)
    ranked = TRIALS
    if request.order_by == "objective":
        ranked = sorted(TRIALS, key=lambda t: (not t.has_objective, -t.objective if request.descending
                                                else t.objective))
    return pb.ListTrialsResponse(trials=ranked)


def test_submit_with_a_tuning_file_sends_it_and_says_it_is_a_study(replies: dict[str, Any],
                                                                    tmp_path: Path) -> None:
    (tmp_path / "tuning.yaml").write_text("objective: {type: maximize}\n")
    replies["SubmitRun"] = rpb.Run(name="tune", tuning=True, status=rpb.RUN_STATUS_RUNNING)
    code, out = invoke("run", "submit", "tune", "--command", "python train.py", "--tuning",
                       str(tmp_path / "tuning.yaml"), "--keep-trial-outputs")
    assert code == 0, out
    assert "Submitted study tune" in out and "shipyard study get tune" in out
    (_, request), = Replies.calls
    assert isinstance(request, rpb.SubmitRunRequest)
    assert (request.tuning, request.keep_trial_outputs) == (b"objective: {type: maximize}\n", True)


def test_get_shows_status_counts_and_the_best_so_far(replies: dict[str, Any]) -> None:
    replies["GetStudy"], replies["ListTrials"] = STUDY, _trials
    code, out = invoke("study", "get", "tune")
    assert code == 0, out
    assert "Running" in out and "3 of 4 started" in out and "2 succeeded, 1 metrics unavailable" in out
    assert "tune-t002: 0.9 (lr=0.05)" in out and "MetricsUnavailable" in out


def test_trials_sorted_by_a_metric_as_json(replies: dict[str, Any]) -> None:
    replies["GetStudy"], replies["ListTrials"] = STUDY, _trials
    code, out = invoke("study", "trials", "tune", "--sort", "objective", "--desc", "-o", "json")
    assert code == 0, out
    assert [t["name"] for t in json.loads(out)] == ["tune-t002", "tune-t001", "tune-t003"]


def test_best_shows_the_best_succeeded_trial(replies: dict[str, Any]) -> None:
    replies["GetStudy"], replies["ListTrials"] = STUDY, _trials
    code, out = invoke("study", "best", "tune")
    assert code == 0, out
    assert "tune-t002" in out and "--lr" in out and "0.05" in out and "tune-t001" not in out


def test_download_writes_one_row_per_trial_as_csv_or_json(replies: dict[str, Any], tmp_path: Path) -> None:
    replies["GetStudy"], replies["ListTrials"] = STUDY, _trials
    code, out = invoke("study", "download", "tune", "-o", str(tmp_path / "results.csv"))
    assert code == 0, out
    rows = list(csv.DictReader((tmp_path / "results.csv").open()))
    assert [r["name"] for r in rows] == ["tune-t001", "tune-t002", "tune-t003"]
    assert (rows[1]["lr"], rows[1]["accuracy.latest"], rows[1]["accuracy.min"], rows[1]["objective"]) == (
        "0.05", "0.9", "0.8", "0.9")
    assert (rows[2]["state"], rows[2]["objective"]) == ("MetricsUnavailable", "")
    invoke("study", "download", "tune", "-o", str(tmp_path / "results.json"))
    assert json.loads((tmp_path / "results.json").read_text())[0]["accuracy.max"] == 0.7
    code, out = invoke("study", "download", "tune", "-o", str(tmp_path / "results.txt"))
    assert code != 0 and ".csv or .json" in out


def test_stop_sends_the_name(replies: dict[str, Any]) -> None:
    replies["StopStudy"] = pb.Study(name="tune", status=pb.STUDY_STATUS_RUNNING)
    code, out = invoke("study", "stop", "tune")
    assert code == 0 and "Stopping study tune" in out, out


def test_run_list_asks_run_svc_to_leave_trials_out_unless_asked_for(replies: dict[str, Any]) -> None:
    study_run = rpb.Run(name="tune", kind=rpb.RUN_KIND_TRAINING, tuning=True, status=rpb.RUN_STATUS_RUNNING)
    trial = rpb.Run(name="tune-t001", kind=rpb.RUN_KIND_TRIAL, study="tune", status=rpb.RUN_STATUS_RUNNING)

    def list_runs(request: Message) -> rpb.ListRunsResponse:  # run-svc honours exclude_trials
        assert isinstance(request, rpb.ListRunsRequest)
        return rpb.ListRunsResponse(runs=[study_run] if request.exclude_trials else [trial, study_run])

    replies["ListRuns"] = list_runs
    code, out = invoke("run", "list")
    assert code == 0 and "tune-t001" not in out and "training (study)" in out, out
    (_, request) = Replies.calls[-1]
    assert isinstance(request, rpb.ListRunsRequest) and request.exclude_trials
    code, out = invoke("run", "list", "--study", "tune")
    assert code == 0 and "tune-t001" in out, out
    (_, request) = Replies.calls[-1]
    assert isinstance(request, rpb.ListRunsRequest) and request.study == "tune" and not request.exclude_trials
    code, out = invoke("run", "list", "--kind", "trial")
    assert code == 0 and "tune-t001" in out, out
