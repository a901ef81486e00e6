"""Hyperparameter studies on the whole stack: a random study of 30 trials, 3 at a time, on the local executor,
through a kill -9 of run-svc, ending with exactly 30 trials and a model version from its best trial; an
objective metric no trial reports; bad tuning files refused naming the field."""

from __future__ import annotations

import csv
import json
import textwrap
from pathlib import Path

import pytest
import yaml
from conftest import cli

from shipyard.client import transfer
from shipyard.client.connection import Client, ClientError
from shipyard.contracts.repo.v1 import repos_pb2
from shipyard.contracts.run.v1 import runs_pb2 as pb
from shipyard.contracts.run.v1 import studies_pb2 as spb
from shipyard.local.harness import Stack, wait_for

# A trial: its parameters come as flags; it prints its accuracy (best at lr 0.05, 32 units), leaves a model.
TRAIN = textwrap.dedent("""
    import os, pathlib, sys
    args = dict(arg[2:].split("=", 1) for arg in sys.argv[1:])
    lr, units = float(args["lr"]), int(args["units"])
    print(f"accuracy={1 - abs(lr - 0.05) - abs(units - 32) / 1000}", flush=True)
    pathlib.Path(os.environ["SHIPYARD_OUTPUT"], "model.txt").write_text(f"lr={lr} units={units}")
""")
SILENT = "import sys\nprint('trained, but reported nothing', sys.argv[1:])\n"


def tuning(metric: str = "accuracy", trials: int = 30, parallel: int = 3) -> dict[str, object]:
    return {
        "objective": {"type": "maximize", "objectiveMetricName": metric},
        "algorithm": {"algorithmName": "random"},
        "parallelTrialCount": parallel, "maxTrialCount": trials,
        "parameters": [
            {"name": "lr", "parameterType": "double", "feasibleSpace": {"min": "0.01", "max": "0.1"}},
            {"name": "units", "parameterType": "int", "feasibleSpace": {"min": "16", "max": "64"}},
        ],
    }


def _files(tmp_path: Path, script: str, spec: dict[str, object]) -> tuple[Path, Path]:
    (tmp_path / "train.py").write_text(script)
    (tmp_path / "tuning.yaml").write_text(yaml.safe_dump(spec))
    return tmp_path / "train.py", tmp_path / "tuning.yaml"


def _study(admin: Client, name: str) -> spb.Study:
    return admin.call(admin.studies.GetStudy, spb.GetStudyRequest(name=name))


def _trial_runs(admin: Client, study: str) -> list[pb.Run]:
    reply = admin.call(admin.runs.ListRuns, pb.ListRunsRequest(study=study, page_size=1000))
    return list(reply.runs)


def _ended(admin: Client, name: str, timeout: float) -> spb.Study:
    done = (spb.STUDY_STATUS_SUCCEEDED, spb.STUDY_STATUS_FAILED, spb.STUDY_STATUS_STOPPED)
    wait_for(lambda: _study(admin, name).status in done, timeout, f"study {name} to end")
    return _study(admin, name)


@pytest.fixture(scope="module")
def model_repo(admin: Client) -> None:
    admin.call(admin.repos.CreateRepo, repos_pb2.CreateRepoRequest(repo=repos_pb2.Repo(
        kind=repos_pb2.REPO_KIND_MODEL, name="tuned", versioning=repos_pb2.VERSIONING_DVS,
        source=repos_pb2.Source(none=repos_pb2.NoSource()))))


@pytest.mark.usefixtures("model_repo")
def test_a_study_of_30_trials_survives_a_kill_9_of_run_svc_and_its_best_trial_makes_the_model(
        stack: Stack, home: Path, admin: Client, tmp_path: Path) -> None:
    script, spec = _files(tmp_path, TRAIN, tuning())
    out = cli(stack, home, "run", "submit", "tune-1", "--command", 'python "$SHIPYARD_CONFIG"',
              "--config", str(script), "--model-out", "tuned", "--tuning", str(spec)).stdout
    assert "Submitted study" in out, out

    wait_for(lambda: _study(admin, "tune-1").trials >= 7, 120, "tune-1 to start 7 trials")
    old_pid = stack.kill("run-svc")
    stack.wait_restarted("run-svc", old_pid)

    study = _ended(admin, "tune-1", 400)
    assert (study.status, study.reason) == (spb.STUDY_STATUS_SUCCEEDED, "ExperimentMaxTrialsReached"), study
    trials = _trial_runs(admin, "tune-1")
    names = sorted(t.name for t in trials)
    assert names == [f"tune-1-t{n:03d}" for n in range(1, 31)]  # exactly 30: none twice, none forgotten
    assert study.trials == 30 and all(t.kind == pb.RUN_KIND_TRIAL for t in trials)
    counts = study.counts
    assert counts.succeeded + counts.failed + counts.metrics_unavailable + counts.killed == 30
    best = study.best_trial
    assert best.state == spb.TRIAL_STATE_SUCCEEDED and best.has_objective
    study_run = admin.call(admin.runs.GetRun, pb.GetRunRequest(name="tune-1"))
    assert (study_run.status, study_run.tuning) == (pb.RUN_STATUS_COMPLETE, True)

    def version() -> repos_pb2.Version | None:
        listed = admin.call(admin.repos.ListVersions, repos_pb2.ListVersionsRequest(
            kind=repos_pb2.REPO_KIND_MODEL, repo="tuned", page_size=100))
        return next((v for v in listed.versions if v.produced_by_run), None)

    made = wait_for(version, 60, "the model version from tune-1's best trial")
    listed = admin.call(admin.repos.ListVersions, repos_pb2.ListVersionsRequest(
        kind=repos_pb2.REPO_KIND_MODEL, repo="tuned", page_size=100))
    assert [v.produced_by_run for v in listed.versions if v.produced_by_run] == [study_run.id]  # trials: none
    assert made.params["lr"] == best.assignment["lr"] and made.params["units"] == best.assignment["units"]
    manifest = transfer.read_manifest(admin, made.manifest_digest)
    assert [e.path for e in manifest.entries] == ["model.txt"]

    shown = cli(stack, home, "study", "get", "tune-1").stdout
    assert "Succeeded" in shown and best.name in shown
    ranked = json.loads(cli(stack, home, "study", "trials", "tune-1", "--sort", "accuracy", "--desc",
                            "-o", "json").stdout)
    assert len(ranked) == 30 and ranked[0]["name"] == best.name
    assert best.name in cli(stack, home, "study", "best", "tune-1").stdout
    results = tmp_path / "results.csv"
    cli(stack, home, "study", "download", "tune-1", "-o", str(results))
    rows = list(csv.DictReader(results.open()))
    assert len(rows) == 30
    assert {"number", "name", "state", "lr", "units", "accuracy.latest", "objective"} <= set(rows[0])
    listed_runs = cli(stack, home, "run", "list").stdout
    assert "tune-1" in listed_runs and "tune-1-t001" not in listed_runs  # trials only when asked for
    assert "tune-1-t001" in cli(stack, home, "run", "list", "--study", "tune-1").stdout


def test_an_objective_metric_no_trial_reports_fails_the_study_saying_so(
        stack: Stack, home: Path, admin: Client, tmp_path: Path) -> None:
    script, spec = _files(tmp_path, SILENT, tuning(trials=3, parallel=3))
    cli(stack, home, "run", "submit", "silent-1", "--command", 'python "$SHIPYARD_CONFIG"',
        "--config", str(script), "--tuning", str(spec))
    study = _ended(admin, "silent-1", 120)
    assert (study.status, study.reason) == (spb.STUDY_STATUS_FAILED, "MetricsUnavailable")
    assert study.message == "no trial reported the objective metric accuracy"
    assert study.counts.metrics_unavailable == 3
    trials = admin.call(admin.studies.ListTrials, spb.ListTrialsRequest(study="silent-1")).trials
    assert {t.state for t in trials} == {spb.TRIAL_STATE_METRICS_UNAVAILABLE}
    run = admin.call(admin.runs.GetRun, pb.GetRunRequest(name="silent-1"))
    assert run.status == pb.RUN_STATUS_FAILED


def test_a_file_collector_reads_each_trials_metrics_file(stack: Stack, home: Path, admin: Client,
                                                          tmp_path: Path) -> None:
    # Katib's default path, under the trial's working directory (the sandbox has no /var of its own).
    script = ("import pathlib, sys\nlog = pathlib.Path('var/log/katib/metrics.log')\n"
              "log.parent.mkdir(parents=True)\nlr = float(sys.argv[1].split('=')[1])\n"
              "log.write_text(f'accuracy={lr / 2}\\naccuracy={1 - lr}\\n')\nprint('accuracy=7')\n")
    spec = {**tuning(trials=2, parallel=2), "metricsCollectorSpec": {
        "collector": {"kind": "File"},
        "source": {"fileSystemPath": {"path": "/var/log/katib/metrics.log", "kind": "File"}}}}
    script_file, spec_file = _files(tmp_path, script, spec)
    cli(stack, home, "run", "submit", "filed-1", "--command", 'python "$SHIPYARD_CONFIG"',
        "--config", str(script_file), "--tuning", str(spec_file))
    study = _ended(admin, "filed-1", 120)
    assert study.status == spb.STUDY_STATUS_SUCCEEDED, study
    trials = admin.call(admin.studies.ListTrials, spb.ListTrialsRequest(study="filed-1")).trials
    for trial in trials:  # the file's best value, never stdout's accuracy=7
        lr = float(trial.assignment["lr"])
        assert trial.objective == pytest.approx(max(lr / 2, 1 - lr)), trial


@pytest.mark.parametrize(("change", "field"), [
    ({"algorithm": {"algorithmName": "annealing"}}, "tuning.algorithm.algorithmName"),
    ({"parameters": [{"name": "lr", "parameterType": "double", "feasibleSpace": {"min": "1", "max": "0"}}]},
     "tuning.parameters[0].feasibleSpace"),
    ({"parameters": [{"name": "opt", "parameterType": "categorical", "feasibleSpace": {}}]},
     "tuning.parameters[0].feasibleSpace.list"),
    ({"apiVersion": "kubeflow.org/v1alpha3", "kind": "Experiment"}, "tuning.apiVersion"),
])
def test_a_bad_tuning_file_is_refused_naming_the_field_and_nothing_starts(
        stack: Stack, home: Path, admin: Client, tmp_path: Path, change: dict[str, object],
        field: str) -> None:
    spec = {**tuning(), **change}
    (tmp_path / "tuning.yaml").write_text(yaml.safe_dump(spec))
    with pytest.raises(ClientError) as refused:
        admin.call(admin.runs.SubmitRun, pb.SubmitRunRequest(
            run=pb.Run(name="bad-study", command="true"), tuning=(tmp_path / "tuning.yaml").read_bytes()))
    assert refused.value.code == "INVALID_ARGUMENT" and refused.value.field.startswith(field), refused.value
    failed = cli(stack, home, "run", "submit", "bad-study", "--command", "true",
                 "--tuning", str(tmp_path / "tuning.yaml"), check=False)
    assert failed.returncode != 0 and field in failed.stdout + failed.stderr
    with pytest.raises(ClientError):
        admin.call(admin.runs.GetRun, pb.GetRunRequest(name="bad-study"))
