"""MLflow's own client against Shipyard: from a laptop (MLFLOW_TRACKING_URI at the gateway's /mlflow)
and from inside a run (the variables every run gets), through the whole stack.

Only MLflow's public API is used here (mlflow.*, MlflowClient): what users' unmodified code calls."""

from __future__ import annotations

import math
import textwrap
from collections.abc import Iterator
from pathlib import Path

import mlflow
import numpy as np
import pytest
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException
from sklearn.linear_model import LogisticRegression

from shipyard.client.connection import Client
from shipyard.contracts.repo.v1 import images_pb2, repos_pb2
from shipyard.contracts.run.v1 import runs_pb2 as pb
from shipyard.local.harness import Stack, wait_for

ENDED = (pb.RUN_STATUS_COMPLETE, pb.RUN_STATUS_FAILED, pb.RUN_STATUS_STOPPED, pb.RUN_STATUS_ERROR)
# The smallest set that runs MLflow's scikit-learn flavor (skops: log_model's default format; pandas:
# mlflow.sklearn imports it), from the test wheelhouse.
MLFLOW_IMAGE = ("mlflow-skinny==3.17.2", "scikit-learn==1.9.1", "skops", "pandas")


@pytest.fixture(scope="module")
def tracking(stack: Stack) -> Iterator[MlflowClient]:
    """MLflow's client pointed at the stack, as the admin (MLFLOW_TRACKING_TOKEN)."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MLFLOW_TRACKING_URI", f"{stack.http_url}/mlflow")
        patch.setenv("MLFLOW_TRACKING_TOKEN", stack.admin_token())
        patch.setenv("MLFLOW_DISABLE_TELEMETRY", "true")
        patch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
        mlflow.set_tracking_uri(f"{stack.http_url}/mlflow")
        yield MlflowClient()


def _run(admin: Client, name: str) -> pb.Run:
    return admin.call(admin.runs.GetRun, pb.GetRunRequest(name=name))


def test_a_laptop_run_lands_in_its_project_with_everything_it_logged(tracking: MlflowClient, admin: Client,
                                                                      tmp_path: Path) -> None:
    experiment = mlflow.set_experiment("vision")
    assert experiment.experiment_id == "vision" and experiment.name == "vision"
    note = tmp_path / "confusion.txt"
    note.write_text("tp=3 fp=1")
    with mlflow.start_run(run_name="laptop-fit") as active:
        mlflow.log_param("lr", 0.1)
        mlflow.log_metric("loss", 0.5, step=1)
        mlflow.log_metric("loss", 0.3, step=2)
        mlflow.log_metric("diverged", float("nan"))
        mlflow.log_metric("ratio", float("inf"))
        mlflow.set_tag("team", "vision")
        mlflow.log_artifact(str(note), artifact_path="reports")
    run_id = active.info.run_id

    # Shipyard's API: an external run of project vision, ended complete, with the same series.
    run = _run(admin, "laptop-fit")
    assert (run.id, run.project, run.external, run.status) == (run_id, "vision", True, pb.RUN_STATUS_COMPLETE)
    assert run.params == {"lr": "0.1"} and run.labels["team"] == "vision"
    series = {s.name: [(p.step, p.value) for p in s.points]
              for s in admin.call(admin.runs.GetRunMetrics, pb.GetRunMetricsRequest(name=run.name)).series}
    assert series["loss"] == [(1, 0.5), (2, 0.3)]

    # MLflow's search, history and artifacts.
    frame = mlflow.search_runs(experiment_names=["vision"])
    row = frame[frame.run_id == run_id].iloc[0]
    assert row["metrics.loss"] == 0.3 and row["params.lr"] == "0.1" and row["tags.team"] == "vision"
    assert math.isnan(row["metrics.diverged"]) and row["metrics.ratio"] == math.inf
    assert [(m.step, m.value) for m in tracking.get_metric_history(run_id, "loss")] == [(1, 0.5), (2, 0.3)]
    assert [f.path for f in tracking.list_artifacts(run_id)] == ["reports"]
    assert [(f.path, f.file_size) for f in tracking.list_artifacts(run_id, "reports")] == [
        ("reports/confusion.txt", 9)]
    fetched = Path(mlflow.artifacts.download_artifacts(run_id=run_id, artifact_path="reports/confusion.txt",
                                                       dst_path=str(tmp_path / "out")))
    assert fetched.read_text() == "tp=3 fp=1"

    found = tracking.search_runs(["vision"], filter_string="metrics.loss < 0.4 and params.lr = '0.1'",
                                 order_by=["metrics.loss ASC"])
    assert [r.info.run_id for r in found] == [run_id]
    assert tracking.search_runs(["vision"], filter_string="metrics.loss > 0.4") == []


def test_a_logged_model_is_registered_aliased_and_loaded_back(tracking: MlflowClient, admin: Client) -> None:
    mlflow.set_experiment("vision")
    model = LogisticRegression().fit(np.array([[0.0], [1.0], [2.0], [3.0]]), [0, 0, 1, 1])
    with mlflow.start_run(run_name="churn-fit") as active:
        mlflow.log_metric("loss", 0.5, step=0)
        mlflow.log_metric("loss", 0.3, step=1)
        mlflow.sklearn.log_model(model, name="model")  # logs the run's metrics again, for the model
    # The latest value is MLflow's (highest step), and the points logged again are not doubled.
    assert tracking.get_run(active.info.run_id).data.metrics["loss"] == 0.3
    assert [(m.step, m.value) for m in tracking.get_metric_history(active.info.run_id, "loss")] == [
        (0, 0.5), (1, 0.3)]
    version = mlflow.register_model(f"runs:/{active.info.run_id}/model", "churn")
    assert version.version == "1"  # MLflow's numbering: no empty placeholder version first
    tracking.set_registered_model_alias("churn", "champion", version.version)

    loaded = mlflow.pyfunc.load_model("models:/churn@champion")
    assert list(loaded.predict(np.array([[0.0], [3.0]]))) == [0, 1]
    assert tracking.get_model_version_by_alias("churn", "champion").version == version.version

    # The catalog's side: a version of model repo churn, produced by that run.
    made = admin.call(admin.repos.GetVersion, repos_pb2.GetVersionRequest(
        kind=repos_pb2.REPO_KIND_MODEL, repo="churn", number=int(version.version)))
    assert made.produced_by_run == active.info.run_id and made.file_count >= 3
    repo = admin.call(admin.repos.GetRepo,
                      repos_pb2.GetRepoRequest(kind=repos_pb2.REPO_KIND_MODEL, name="churn"))
    assert repo.aliases == {"champion": int(version.version)} and repo.status == repos_pb2.REPO_STATUS_READY


def test_autolog_records_a_scikit_learn_fit(tracking: MlflowClient) -> None:
    mlflow.set_experiment("vision")
    mlflow.sklearn.autolog(log_models=False)
    try:
        with mlflow.start_run(run_name="autologged") as active:
            LogisticRegression(C=0.5).fit(np.array([[0.0], [1.0], [2.0], [3.0]]), np.array([0, 0, 1, 1]))
    finally:
        mlflow.sklearn.autolog(disable=True)
    run = tracking.get_run(active.info.run_id)
    assert run.data.params["C"] == "0.5"
    assert "training_accuracy_score" in run.data.metrics
    # The training data autolog logged as the run's input (log-inputs), with its context.
    [dataset] = run.inputs.dataset_inputs
    assert dataset.dataset.digest and [t.value for t in dataset.tags] == ["train"]


def test_bad_input_gets_mlflows_error_codes_and_writes_nothing(tracking: MlflowClient, admin: Client) -> None:
    with pytest.raises(MlflowException) as unknown:
        tracking.log_metric("0" * 32, "loss", 1.0)
    assert unknown.value.error_code == "RESOURCE_DOES_NOT_EXIST"

    run = tracking.create_run("0", run_name="bad-input")
    with pytest.raises(MlflowException) as climbing:
        tracking.log_param(run.info.run_id, "../escape", "x")
    assert climbing.value.error_code == "INVALID_PARAMETER_VALUE"
    tracking.log_param(run.info.run_id, "lr", "0.1")
    with pytest.raises(MlflowException) as changed:
        tracking.log_param(run.info.run_id, "lr", "0.2")
    assert changed.value.error_code == "INVALID_PARAMETER_VALUE"
    assert _run(admin, run.info.run_name).params == {"lr": "0.1"}

    with pytest.raises(MlflowException) as missing:
        tracking.get_experiment_by_name("no-such-project") or tracking.get_experiment("no-such-project")
    assert missing.value.error_code == "RESOURCE_DOES_NOT_EXIST"


def test_an_endpoint_shipyard_does_not_offer_says_so(tracking: MlflowClient) -> None:
    run = tracking.create_run("0", run_name="unsupported")
    with pytest.raises(MlflowException) as refused:
        tracking.restore_run(run.info.run_id)
    assert refused.value.error_code == "ENDPOINT_NOT_FOUND"


SCRIPT = """
import mlflow, numpy as np
from sklearn.linear_model import LogisticRegression
with mlflow.start_run():
    mlflow.log_param("lr", 0.1)
    mlflow.log_metric("loss", 0.3, step=1)
    with open("confusion.txt", "w") as f:
        f.write("ok")
    mlflow.log_artifact("confusion.txt")
    model = LogisticRegression().fit(np.array([[0.0], [1.0], [2.0], [3.0]]), [0, 0, 1, 1])
    mlflow.sklearn.log_model(model, name="model")
print("accuracy=0.75")
"""


def test_unmodified_mlflow_code_inside_a_run_logs_into_that_run(admin: Client,
                                                                 tracking: MlflowClient) -> None:
    admin.call(admin.images.AddImage, images_pb2.AddImageRequest(image=images_pb2.Image(
        name="mlflow-sklearn", url="registry.example.org/mlflow-sklearn:3.17", framework="sklearn",
        requirements=list(MLFLOW_IMAGE))))
    command = f"cat > train.py <<'EOF'\n{textwrap.dedent(SCRIPT)}\nEOF\npython train.py"
    admin.call(admin.runs.SubmitRun, pb.SubmitRunRequest(run=pb.Run(
        name="in-run", kind=pb.RUN_KIND_TRAINING, command=command, image="mlflow-sklearn")))

    def ended() -> bool:
        return _run(admin, "in-run").status in ENDED

    wait_for(ended, 300, "the run to end")
    run = _run(admin, "in-run")
    logs = admin.call(admin.runs.ReadRunLogs, pb.ReadRunLogsRequest(name="in-run", max_bytes=1 << 20)).data
    assert run.status == pb.RUN_STATUS_COMPLETE, logs.decode()[-3000:]
    assert run.params == {"lr": "0.1"} and not run.external
    # One series per name: the MLflow metric and the stdout one side by side.
    assert run.metrics["loss"] == 0.3 and run.metrics["accuracy"] == 0.75
    assert [f.path for f in tracking.list_artifacts(run.id)] == ["confusion.txt"]
    models = tracking.search_logged_models(experiment_ids=["0"], filter_string="name = 'model'")
    assert [m.source_run_id for m in models if m.source_run_id == run.id] == [run.id]
