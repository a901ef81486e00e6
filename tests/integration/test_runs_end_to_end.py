"""Runs on the local executor through the whole stack: submit → the user's process → metrics and
logs → RunCompleted → the output model version (repo-svc) — and failures, stops, bad input."""

from __future__ import annotations

import csv
import textwrap
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from conftest import activity_subjects, cli, git, write_tree

from shipyard.client import transfer
from shipyard.client.connection import Client, ClientError
from shipyard.contracts.repo.v1 import repos_pb2
from shipyard.contracts.run.v1 import runs_pb2 as pb
from shipyard.contracts.serving.v1 import serving_pb2
from shipyard.local.harness import Stack, wait_for

TRAIN = textwrap.dedent("""
    import json, os, pathlib
    from shipyard.sdk import log_metrics
    data = pathlib.Path(os.environ["SHIPYARD_MOUNT_MNT_DATA"])
    rows = (data / "train.csv").read_text().splitlines()
    hp = json.loads(pathlib.Path(os.environ["SHIPYARD_HYPERPARAMS"]).read_text())
    for epoch in range(3):
        print(f"epoch {epoch}: loss={1.0 / (epoch + 1)}", flush=True)
    log_metrics(accuracy=0.75 + len(rows) / 100)
    out = pathlib.Path(os.environ["SHIPYARD_OUTPUT"])
    lr, hp_lr = os.environ["lr"], hp["lr"]
    (out / "model.txt").write_text(f"rows={len(rows)} lr={lr} hp={hp_lr}")
""")


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """A stack whose repo sources may be local (file:// git URLs), as in a test lab."""
    running = Stack(tmp_path_factory.mktemp("stack") / "data", env={
        "SHIPYARD_ALLOW_PRIVATE_SOURCES": "true", "SHIPYARD_PATH_IMPORT_ROOTS": ""}).start()
    try:
        yield running
    finally:
        running.stop()


ENDED = (pb.RUN_STATUS_COMPLETE, pb.RUN_STATUS_FAILED, pb.RUN_STATUS_STOPPED, pb.RUN_STATUS_ERROR)


def _wait_ended(admin: Client, name: str, timeout: float = 60) -> pb.Run:
    def ended() -> bool:
        run = admin.call(admin.runs.GetRun, pb.GetRunRequest(name=name))
        return run.status in ENDED

    wait_for(ended, timeout, f"run {name} to end")
    return admin.call(admin.runs.GetRun, pb.GetRunRequest(name=name))


@pytest.fixture(scope="module")
def repos(stack: Stack, admin: Client, tmp_path_factory: pytest.TempPathFactory) -> None:
    """Dataset digits (version 1: train.csv of 3 rows) and model mnist (empty version 1)."""
    upload = repos_pb2.Source(upload=repos_pb2.UploadSource(filename="digits"))
    none = repos_pb2.Source(none=repos_pb2.NoSource())
    for kind, name, source in ((repos_pb2.REPO_KIND_DATASET, "digits", upload),
                               (repos_pb2.REPO_KIND_MODEL, "mnist", none)):
        admin.call(admin.repos.CreateRepo, repos_pb2.CreateRepoRequest(repo=repos_pb2.Repo(
            kind=kind, name=name, versioning=repos_pb2.VERSIONING_DVS, source=source)))
    data = write_tree(tmp_path_factory.mktemp("digits"), {"train.csv": b"1,2\n3,4\n5,6\n"})
    transfer.push(admin, repos_pb2.REPO_KIND_DATASET, "digits", data, transfer.scan_tree(data))


@pytest.mark.usefixtures("repos")
def test_a_training_run_makes_the_next_model_version(stack: Stack, home: Path, admin: Client) -> None:
    out = cli(stack, home, "run", "submit", "train-1", "--command", f"python -c '{TRAIN}'",
              "--dataset", "digits:/mnt/data", "--model-out", "mnist", "--hp", "lr=0.1").stdout
    assert "train-1" in out
    run = _wait_ended(admin, "train-1")
    assert run.status == pb.RUN_STATUS_COMPLETE, run.status_reason
    assert (run.inputs[0].repo, run.inputs[0].version) == ("digits", 1)  # pinned at submit
    assert run.metrics["accuracy"] == pytest.approx(0.78)
    assert run.metrics["loss"] == pytest.approx(1 / 3)

    def made() -> bool:
        latest = admin.call(admin.repos.GetVersion, repos_pb2.GetVersionRequest(
            kind=repos_pb2.REPO_KIND_MODEL, repo="mnist"))
        return latest.number == 2

    wait_for(made, 30, "repo-svc to make mnist version 2 from RunCompleted")
    version = admin.call(admin.repos.GetVersion, repos_pb2.GetVersionRequest(
        kind=repos_pb2.REPO_KIND_MODEL, repo="mnist", number=2))
    assert version.produced_by_run == run.id and version.params["lr"] == "0.1"
    manifest = transfer.read_manifest(admin, version.manifest_digest)
    assert [e.path for e in manifest.entries] == ["model.txt"]

    series = admin.call(admin.runs.GetRunMetrics, pb.GetRunMetricsRequest(name="train-1")).series
    loss = next(s for s in series if s.name == "loss")
    assert [(p.step, round(p.value, 3)) for p in loss.points] == [(1, 1.0), (2, 0.5), (3, 0.333)]
    logs = cli(stack, home, "run", "logs", "train-1").stdout
    assert "epoch 2: loss=0.3333333333333333" in logs
    listed = cli(stack, home, "run", "list", "--status", "complete").stdout
    assert "train-1" in listed


@pytest.mark.usefixtures("repos")
def test_a_failing_command_fails_the_run_with_its_exit_code_and_last_lines(admin: Client) -> None:
    admin.call(admin.runs.SubmitRun, pb.SubmitRunRequest(run=pb.Run(
        name="fails-1", command="echo preparing; echo something broke >&2; exit 3")))
    run = _wait_ended(admin, "fails-1")
    assert (run.status, run.exit_code) == (pb.RUN_STATUS_FAILED, 3)
    assert "exited with code 3" in run.status_reason
    logs = admin.call(admin.runs.ReadRunLogs, pb.ReadRunLogsRequest(name="fails-1"))
    # Both streams are in the log, each in its own order; across the two, in the order they reach it
    # (stdout passes through the copy that metrics are read from), as with Kubernetes' logs.
    assert sorted(logs.data.splitlines()) == [b"preparing", b"something broke"]


def test_a_killed_process_fails_the_run(admin: Client) -> None:
    admin.call(admin.runs.SubmitRun, pb.SubmitRunRequest(run=pb.Run(
        name="killed-1", command="echo started; kill -9 $$")))
    run = _wait_ended(admin, "killed-1")
    assert (run.status, run.exit_code) == (pb.RUN_STATUS_FAILED, 137)


def test_stopping_a_running_run(admin: Client) -> None:
    admin.call(admin.runs.SubmitRun, pb.SubmitRunRequest(run=pb.Run(
        name="sleeps-1", command="echo going to sleep; sleep 120")))

    def running() -> bool:
        run = admin.call(admin.runs.GetRun, pb.GetRunRequest(name="sleeps-1"))
        return run.status == pb.RUN_STATUS_RUNNING

    wait_for(running, 30, "sleeps-1 to run")
    admin.call(admin.runs.StopRun, pb.StopRunRequest(name="sleeps-1"))
    run = _wait_ended(admin, "sleeps-1", timeout=30)
    assert run.status == pb.RUN_STATUS_STOPPED


@pytest.mark.usefixtures("repos")
def _reading(*paths: str, repo: str = "digits") -> list[pb.RunInput]:
    return [pb.RunInput(repo_kind="dataset", repo=repo, mount_path=path) for path in paths]


@pytest.mark.parametrize(("run", "code", "names"), [
    (pb.Run(name="bad-1", command="true", inputs=_reading("/mnt/x", repo="nope")), "NOT_FOUND",
     "run.inputs[0]"),
    (pb.Run(name="bad-2", command="true", inputs=_reading("/etc/x")), "INVALID_ARGUMENT",
     "run.inputs[0].mount_path"),
    (pb.Run(name="bad-3", command="true", inputs=_reading("/mnt/data", "/mnt/data/sub")), "INVALID_ARGUMENT",
     "overlaps"),
    (pb.Run(name="bad-4", command="true", hyperparameters={"1lr": "0.1"}), "INVALID_ARGUMENT",
     "environment variable"),
    (pb.Run(name="bad-5", command="true", gpus=1), "FAILED_PRECONDITION", "has 0"),
    (pb.Run(name="bad-6", command=""), "INVALID_ARGUMENT", "run.command"),
    (pb.Run(name="bad 7", command="true"), "INVALID_ARGUMENT", "run.name"),
])
def test_bad_input_is_refused_and_nothing_is_queued(
    admin: Client, run: pb.Run, code: str, names: str
) -> None:
    with pytest.raises(ClientError) as refused:
        admin.call(admin.runs.SubmitRun, pb.SubmitRunRequest(run=run))
    assert refused.value.code == code and names in refused.value.message
    listed = admin.call(admin.runs.ListRuns, pb.ListRunsRequest(name_prefix="bad"))
    assert list(listed.runs) == []


def test_a_config_file_over_the_limit_is_refused(admin: Client) -> None:
    with pytest.raises(ClientError, match="config_file"):
        admin.call(admin.runs.SubmitRun, pb.SubmitRunRequest(
            run=pb.Run(name="big-config", command="true"), config_file=b"x" * ((1 << 20) + 1)))


@pytest.fixture(scope="module")
def code_repo(admin: Client, tmp_path_factory: pytest.TempPathFactory) -> tuple[str, str]:
    """Code repo ``train`` (a local git repository with two commits); the first commit and the last."""
    root = tmp_path_factory.mktemp("git") / "train.git"
    root.mkdir()
    git(root, "init", "--quiet", "--initial-branch=main")
    (root / "train.py").write_text("print('version one')\n")
    (root / "run.sh").write_text("#!/bin/sh\necho shell ok\n")
    (root / "run.sh").chmod(0o755)
    git(root, "add", ".")
    git(root, "commit", "--quiet", "-m", "one")
    first = git(root, "rev-parse", "HEAD")
    (root / "train.py").write_text("import os, pathlib\nprint('version two')\n"
                                   "pathlib.Path(os.environ['SHIPYARD_OUTPUT'], 'm.txt').write_text('2')\n")
    git(root, "commit", "--quiet", "-am", "two")
    admin.call(admin.repos.CreateRepo, repos_pb2.CreateRepoRequest(repo=repos_pb2.Repo(
        kind=repos_pb2.REPO_KIND_CODE, name="train",
        source=repos_pb2.Source(git=repos_pb2.GitSource(url=f"file://{root}", branch="main")))))
    return first, git(root, "rev-parse", "HEAD")


def test_a_run_checks_out_its_code_at_the_pinned_commit(stack: Stack, home: Path, admin: Client,
                                                          code_repo: tuple[str, str]) -> None:
    first, latest = code_repo
    cli(stack, home, "run", "submit", "code-latest", "--code", "train",
        "--command", "python train.py && ./run.sh")
    run = _wait_ended(admin, "code-latest")
    assert (run.status, run.code, run.commit) == (pb.RUN_STATUS_COMPLETE, "train", latest), run.status_reason
    logs = admin.call(admin.runs.ReadRunLogs, pb.ReadRunLogsRequest(name="code-latest")).data
    assert logs == b"version two\nshell ok\n"

    cli(stack, home, "run", "submit", "code-first", "--code", "train", "--commit", first,
        "--command", "python train.py")
    run = _wait_ended(admin, "code-first")
    assert (run.status, run.commit) == (pb.RUN_STATUS_COMPLETE, first)
    logs = admin.call(admin.runs.ReadRunLogs, pb.ReadRunLogsRequest(name="code-first")).data
    assert logs == b"version one\n"


def test_an_unknown_code_repo_or_commit_is_refused(admin: Client, code_repo: tuple[str, str]) -> None:
    with pytest.raises(ClientError) as unknown:
        admin.call(admin.runs.SubmitRun, pb.SubmitRunRequest(run=pb.Run(name="no-code", command="true",
                                                                        code="nope")))
    assert unknown.value.code == "NOT_FOUND"
    with pytest.raises(ClientError) as bad_commit:
        admin.call(admin.runs.SubmitRun, pb.SubmitRunRequest(run=pb.Run(name="bad-commit", command="true",
                                                                        code="train", commit="f" * 40)))
    assert bad_commit.value.code == "FAILED_PRECONDITION" and "train" in bad_commit.value.message


@pytest.mark.usefixtures("repos")
def test_a_run_survives_a_kill_9_of_run_svc_and_makes_one_version(stack: Stack, admin: Client) -> None:
    # The run sees only its own files: it waits for a flag in its working directory (the
    # workspace's code/), which the test, outside, can write.
    script = ("import os, pathlib, time\nprint('waiting', flush=True)\n"
              "while not pathlib.Path('go-on').exists(): time.sleep(0.05)\n"
              "pathlib.Path(os.environ['SHIPYARD_OUTPUT'], 'model.txt').write_text('survived')\n")
    submitted = admin.call(admin.runs.SubmitRun, pb.SubmitRunRequest(run=pb.Run(
        name="survivor", command='python "$SHIPYARD_CONFIG"', config_file_name="survive.py",
        outputs=[pb.RunOutputTarget(repo_kind="model", repo="mnist")]), config_file=script.encode()))

    def running() -> bool:
        found = admin.call(admin.runs.GetRun, pb.GetRunRequest(name="survivor"))
        return found.status == pb.RUN_STATUS_RUNNING

    wait_for(running, 30, "survivor to run")
    old_pid = stack.kill("run-svc")
    stack.wait_restarted("run-svc", old_pid)
    # the run may finish now, watched by the new run-svc
    (stack.data_dir / "run-svc" / "workspaces" / submitted.id / "code" / "go-on").touch()
    run = _wait_ended(admin, "survivor")
    assert run.status == pb.RUN_STATUS_COMPLETE, run.status_reason

    def produced() -> list[int]:
        listed = admin.call(admin.repos.ListVersions, repos_pb2.ListVersionsRequest(
            kind=repos_pb2.REPO_KIND_MODEL, repo="mnist", page_size=100))
        return [v.number for v in listed.versions if v.produced_by_run == run.id]

    wait_for(lambda: produced(), 30, "the survivor's model version")
    assert len(produced()) == 1


def test_the_demo_trains_a_model_from_a_prepared_dataset(stack: Stack, home: Path, admin: Client) -> None:
    out = cli(stack, home, "demo", "--epochs", "3").stdout
    assert "digits-model@" in out and "accuracy=" in out, out
    listed = admin.call(admin.runs.ListRuns, pb.ListRunsRequest(name_prefix="digits-train-"))
    (train,) = listed.runs
    assert train.status == pb.RUN_STATUS_COMPLETE
    series = admin.call(admin.runs.GetRunMetrics, pb.GetRunMetricsRequest(name=train.name)).series
    accuracy = next(s for s in series if s.name == "accuracy")
    assert [p.step for p in accuracy.points] == [1, 2, 3] and accuracy.points[-1].value > 0.8
    model = admin.call(admin.repos.GetVersion, repos_pb2.GetVersionRequest(
        kind=repos_pb2.REPO_KIND_MODEL, repo="digits-model"))
    files = transfer.read_manifest(admin, model.manifest_digest)
    assert sorted(e.path for e in files.entries) == ["metrics.json", "model.joblib"]
    # ... and goes on to serve it: a test inference, a catalog entry, a deployment that answered.
    assert "says the first digit of the dataset is a" in out
    assert "/serving/digits-live/v2/models/digits-model" in out
    live = admin.call(admin.serving.GetDeployment, serving_pb2.GetDeploymentRequest(name="digits-live"))
    assert live.status == serving_pb2.SERVING_STATUS_RUNNING and live.model.version == model.number


def test_200_runs_at_once_all_complete_once_in_submission_order(admin: Client) -> None:
    names = [f"many-{n:03d}" for n in range(200)]
    def submit(name: str) -> pb.Run:
        request = pb.SubmitRunRequest(run=pb.Run(name=name, command="true"), request_id=f"req-{name}")
        return admin.call(admin.runs.SubmitRun, request)

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(submit, names))

    def listed() -> list[pb.Run]:
        request = pb.ListRunsRequest(name_prefix="many-", page_size=1000)
        return list(admin.call(admin.runs.ListRuns, request).runs)

    def all_ended() -> bool:
        runs = listed()
        return len(runs) == 200 and all(r.status in ENDED for r in runs)

    wait_for(all_ended, 180, "200 runs to end")
    runs = listed()
    assert sorted(r.name for r in runs) == names and {r.status for r in runs} == {pb.RUN_STATUS_COMPLETE}
    by_submission = sorted(runs, key=lambda r: (r.create_time.ToNanoseconds(), r.id))
    by_start = sorted(runs, key=lambda r: (r.start_time.ToNanoseconds(), r.id))
    assert [r.name for r in by_start] == [r.name for r in by_submission]
    def completed() -> Counter[str]:
        return activity_subjects(admin, "io.shipyard.run.completed.v1")

    wait_for(lambda: sum(completed()[f"runs/{n}"] for n in names) >= 200, 60,
             "lineage-svc to see 200 RunCompleted")
    counts = completed()
    assert all(counts[f"runs/{name}"] == 1 for name in names)


@pytest.mark.usefixtures("repos")
def test_templates_clones_and_compare(stack: Stack, home: Path, admin: Client) -> None:
    admin.call(admin.runs.SubmitRun, pb.SubmitRunRequest(run=pb.Run(
        name="base-1", command=f"python -c '{TRAIN}'", hyperparameters={"lr": "0.1"},
        inputs=[pb.RunInput(repo_kind="dataset", repo="digits", version=1, mount_path="/mnt/data")],
        outputs=[pb.RunOutputTarget(repo_kind="model", repo="mnist")]), config_file=b"epochs: 3\n"))
    assert _wait_ended(admin, "base-1").status == pb.RUN_STATUS_COMPLETE
    cli(stack, home, "template", "create", "small", "--from", "base-1", "--description", "the small one")
    # The template takes digits' latest version (the demo made one of another shape): pin it again.
    assert "small" in cli(stack, home, "template", "list").stdout
    cli(stack, home, "run", "submit", "from-template", "--template", "small", "--hp", "lr=0.2",
        "--dataset", "digits@1:/mnt/data")
    templated = _wait_ended(admin, "from-template")
    assert templated.status == pb.RUN_STATUS_COMPLETE and templated.hyperparameters["lr"] == "0.2"
    assert templated.config_file_name == "config" and templated.inputs[0].repo == "digits"

    unnamed = cli(stack, home, "run", "submit", "--template", "small",
                  "--dataset", "digits@1:/mnt/data").stdout
    assert "Submitted run small-" in unnamed

    cli(stack, home, "run", "clone", "base-1", "--name", "base-2", "--hp", "lr=0.05")
    clone = _wait_ended(admin, "base-2")
    assert clone.status == pb.RUN_STATUS_COMPLETE and clone.hyperparameters["lr"] == "0.05"
    table_csv, points_csv = home / "compare.csv", home / "points.csv"
    compared = cli(stack, home, "run", "compare", "base-1", "base-2", "--csv", str(table_csv),
                   "--series-csv", str(points_csv)).stdout
    assert "hp lr" in compared and "0.1" in compared and "0.05" in compared and "accuracy" in compared
    rows = list(csv.reader(table_csv.open()))
    assert rows[0] == ["", "base-1", "base-2"] and ["hp lr", "0.1", "0.05"] in rows
    points = list(csv.reader(points_csv.open()))
    assert points[0] == ["run", "metric", "step", "value"]
    assert {(run, metric) for run, metric, _, _ in points[1:]} >= {("base-1", "loss"), ("base-2", "loss")}
    cli(stack, home, "template", "delete", "small")
    with pytest.raises(ClientError, match="no run template named 'small'"):
        admin.call(admin.runs.GetTemplate, pb.GetTemplateRequest(name="small"))


@pytest.mark.usefixtures("repos")
def test_inputs_and_outputs_are_at_their_mount_paths(admin: Client) -> None:
    admin.call(admin.runs.SubmitRun, pb.SubmitRunRequest(run=pb.Run(
        name="mounted-1",
        command="cat /mnt/data/train.csv > /model/copy.csv && ls /mnt && "
                "(touch /mnt/data/x 2>/dev/null && echo new-file-beside-input || echo input-read-only)",
        inputs=[pb.RunInput(repo_kind="dataset", repo="digits", version=1, mount_path="/mnt/data")],
        outputs=[pb.RunOutputTarget(repo_kind="model", repo="mnist", mount_path="/model")])))
    run = _wait_ended(admin, "mounted-1")
    assert run.status == pb.RUN_STATUS_COMPLETE, run.status_reason
    assert any("bubblewrap" in note for note in run.notes)
    logs = admin.call(admin.runs.ReadRunLogs, pb.ReadRunLogsRequest(name="mounted-1")).data
    *listing, verdict = logs.decode().splitlines()  # ls /mnt, then whether a file could be added
    assert "data" in listing and verdict == "new-file-beside-input"
    digits = admin.call(admin.repos.GetVersion, repos_pb2.GetVersionRequest(
        kind=repos_pb2.REPO_KIND_DATASET, repo="digits", number=1))
    assert [e.path for e in transfer.read_manifest(admin, digits.manifest_digest).entries] == ["train.csv"]

    def made() -> repos_pb2.Version | None:
        listed = admin.call(admin.repos.ListVersions, repos_pb2.ListVersionsRequest(
            kind=repos_pb2.REPO_KIND_MODEL, repo="mnist", page_size=100))
        return next((v for v in listed.versions if v.produced_by_run == run.id), None)

    version = wait_for(made, 30, "mounted-1's model version")
    manifest = transfer.read_manifest(admin, version.manifest_digest)
    assert [(e.path, e.size) for e in manifest.entries] == [("copy.csv", len(b"1,2\n3,4\n5,6\n"))]
    assert not Path("/model").exists() and not Path("/mnt/data").exists()  # nothing made on the host


def _get(url: str, token: str | None = None) -> tuple[int, bytes]:
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"} if token else {})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


@pytest.mark.usefixtures("repos")
def test_a_runs_tensorboard_through_the_gateway(stack: Stack, home: Path, admin: Client) -> None:
    admin.call(admin.runs.SubmitRun, pb.SubmitRunRequest(run=pb.Run(name="board-1", command="true")))
    _wait_ended(admin, "board-1")
    out = cli(stack, home, "tensorboard", "start", "board-1").stdout
    assert f"{stack.http_url}/tensorboard/board-1/" in out
    url = f"{stack.http_url}/tensorboard/board-1/data/logdir"
    token = stack.admin_token()
    _, body = wait_for(lambda: (found := _get(url, token))[0] == 200 and found, 90,
                            "TensorBoard to answer through the gateway")
    assert b"logdir" in body
    assert _get(url)[0] == 401  # no credentials, no TensorBoard
    assert _get(url, "not-a-token")[0] == 401
    assert "stopped" in cli(stack, home, "tensorboard", "stop", "board-1").stdout
    assert _get(url, token)[0] == 409


def test_deleting_a_run(stack: Stack, home: Path, admin: Client) -> None:
    admin.call(admin.runs.SubmitRun, pb.SubmitRunRequest(run=pb.Run(name="to-delete", command="echo bye")))
    run = _wait_ended(admin, "to-delete")
    workspace = stack.data_dir / "run-svc" / "workspaces" / run.id
    assert (workspace / "log").read_bytes() == b"bye\n"
    cli(stack, home, "run", "delete", "to-delete", "--yes")
    with pytest.raises(ClientError, match="no run named 'to-delete'"):
        admin.call(admin.runs.GetRun, pb.GetRunRequest(name="to-delete"))
    assert not workspace.exists()
    admin.call(admin.runs.SubmitRun, pb.SubmitRunRequest(run=pb.Run(name="busy-1", command="sleep 60")))
    with pytest.raises(ClientError, match="stop it, then delete it"):
        admin.call(admin.runs.DeleteRun, pb.DeleteRunRequest(name="busy-1"))
    admin.call(admin.runs.StopRun, pb.StopRunRequest(name="busy-1"))
