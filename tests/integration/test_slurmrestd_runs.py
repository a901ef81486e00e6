"""Runs on a real Slurm through its real slurmrestd (JWT), with the whole stack on a real S3 blob store
(SeaweedFS): the cluster is added with a slurmrestd URL and the operator's stored token; run-svc submits
over HTTP, the job fetches its files from S3 through presigned URLs and sends its log, metrics, outputs
and exit code back the same way. Runs complete (an input, metrics, an output version), fail with their
exit code, are stopped (the job cancelled), survive kill -9 of run-svc without a second job, and a bad
token ends the run in an error naming the cause. A study's File collector reads what its trials' jobs send
of their metrics files, while they run and at their end."""

from __future__ import annotations

import subprocess
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from conftest import cli, write_tree

from shipyard.client import transfer
from shipyard.client.connection import Client
from shipyard.contracts.repo.v1 import repos_pb2
from shipyard.contracts.run.v1 import runs_pb2 as pb
from shipyard.contracts.run.v1 import studies_pb2 as spb
from shipyard.local.harness import Stack, wait_for
from shipyard.local.slurm import LoopbackSlurm
from tests.support.seaweed import S3Server, SeaweedS3, blob_url
from tests.support.slurm import add_rest_cluster

BUCKET = "shipyard-rest"
ENDED = (pb.RUN_STATUS_COMPLETE, pb.RUN_STATUS_FAILED, pb.RUN_STATUS_STOPPED, pb.RUN_STATUS_ERROR)
TRAIN = textwrap.dedent("""
    import os, pathlib
    from shipyard.sdk import log_metrics
    rows = (pathlib.Path(os.environ["SHIPYARD_MOUNT_MNT_DATA"]) / "train.csv").read_text().splitlines()
    for epoch in range(3):
        print(f"epoch {epoch}: loss={1.0 / (epoch + 1)}", flush=True)
    log_metrics(accuracy=0.5 + len(rows) / 10)
    out = pathlib.Path(os.environ["SHIPYARD_OUTPUT"])
    job = os.environ["SLURM_JOB_ID"]
    (out / "model.txt").write_text(f"rows={len(rows)} job={job}")
    print("urls seen:", sorted(k for k in os.environ if "URL" in k and "SHIPYARD_API" not in k))
""")


@pytest.fixture(scope="module")
def s3(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Server]:
    weed = SeaweedS3(tmp_path_factory.mktemp("seaweed"))
    try:
        yield weed.start()
    finally:
        weed.stop()


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory, s3: S3Server) -> Iterator[Stack]:
    """The module's stack on the S3 blob store (a slurmrestd cluster's jobs exchange files through it)."""
    running = Stack(tmp_path_factory.mktemp("stack") / "data",
                    env={"SHIPYARD_PATH_IMPORT_ROOTS": "", "SHIPYARD_BLOB_URL": blob_url(s3, BUCKET)}).start()
    try:
        yield running
    finally:
        running.stop()


@pytest.fixture(scope="module")
def cluster(stack: Stack, admin: Client, loopback_slurm_rest: LoopbackSlurm) -> str:
    return add_rest_cluster(admin, loopback_slurm_rest, "rest")


@pytest.fixture(scope="module")
def repos(stack: Stack, admin: Client, tmp_path_factory: pytest.TempPathFactory) -> None:
    """Dataset digits (train.csv, 3 rows) and model mnist."""
    upload = repos_pb2.Source(upload=repos_pb2.UploadSource(filename="digits"))
    none = repos_pb2.Source(none=repos_pb2.NoSource())
    for kind, name, source in ((repos_pb2.REPO_KIND_DATASET, "digits", upload),
                               (repos_pb2.REPO_KIND_MODEL, "mnist", none)):
        admin.call(admin.repos.CreateRepo, repos_pb2.CreateRepoRequest(repo=repos_pb2.Repo(
            kind=kind, name=name, versioning=repos_pb2.VERSIONING_DVS, source=source)))
    data = write_tree(tmp_path_factory.mktemp("digits"), {"train.csv": b"1,2\n3,4\n5,6\n"})
    transfer.push(admin, repos_pb2.REPO_KIND_DATASET, "digits", data, transfer.scan_tree(data))


def _run(admin: Client, name: str) -> pb.Run:
    return admin.call(admin.runs.GetRun, pb.GetRunRequest(name=name))


def _wait_ended(admin: Client, name: str, timeout: float = 90) -> pb.Run:
    wait_for(lambda: _run(admin, name).status in ENDED, timeout, f"run {name} to end")
    return _run(admin, name)


def _logs(admin: Client, name: str) -> str:
    return admin.call(admin.runs.ReadRunLogs, pb.ReadRunLogsRequest(name=name)).data.decode()


def _jobs(slurm: LoopbackSlurm, run_id: str) -> list[str]:
    """Slurm's jobs of the run: "id state user" lines."""
    out = subprocess.run(["squeue", "-h", "-t", "all", "-n", f"shipyard-{run_id}", "-o", "%i %T %u"],
                         env=slurm.env(), capture_output=True, text=True, check=True).stdout
    return out.split("\n")[:-1]


def _staged(s3: S3Server, run_id: str) -> list[str]:
    found = s3.client().list_objects(BUCKET, prefix="staging/runs/", recursive=True)
    return [obj.object_name for obj in found if obj.object_name and f"/{run_id}/" in obj.object_name]


@pytest.mark.usefixtures("repos")
def test_a_run_through_slurmrestd_completes_with_its_metrics_and_output_version(
        stack: Stack, home: Path, admin: Client, cluster: str, loopback_slurm_rest: LoopbackSlurm,
        s3: S3Server, tmp_path: Path) -> None:
    cli(stack, home, "run", "submit", "rest-1", "--cluster", cluster, "--command", f"python3 -c '{TRAIN}'",
        "--dataset", "digits:/mnt/data", "--model-out", "mnist", "--time-limit", "10")
    run = _wait_ended(admin, "rest-1")
    assert run.status == pb.RUN_STATUS_COMPLETE, (run.status_reason, _logs(admin, "rest-1"))
    assert run.metrics["accuracy"] == pytest.approx(0.8) and run.metrics["loss"] == pytest.approx(1 / 3)
    assert any("submitted through slurmrestd as shipyard-hpc" in note for note in run.notes), run.notes
    [job] = _jobs(loopback_slurm_rest, run.id)
    job_id, state, user = job.split()
    assert (state, user) == ("COMPLETED", loopback_slurm_rest.ssh_user)

    def made() -> bool:
        latest = admin.call(admin.repos.GetVersion, repos_pb2.GetVersionRequest(
            kind=repos_pb2.REPO_KIND_MODEL, repo="mnist"))
        return latest.number == 2

    wait_for(made, 30, "mnist version 2 from the run")
    version = admin.call(admin.repos.GetVersion, repos_pb2.GetVersionRequest(
        kind=repos_pb2.REPO_KIND_MODEL, repo="mnist", number=2))
    assert version.produced_by_run == run.id
    transfer.pull(admin, transfer.read_manifest(admin, version.manifest_digest), tmp_path)
    assert (tmp_path / "model.txt").read_text() == f"rows=3 job={job_id}"
    logs = cli(stack, home, "run", "logs", "rest-1").stdout
    assert "epoch 2: loss=0.3333333333333333" in logs
    assert "urls seen: []" in logs  # the presigned URLs left before the command started
    # Nothing of the run stays on the cluster nor in the staging area; its log stayed home. Both go after
    # the run's end is recorded, so they may still be going.
    job_dir = loopback_slurm_rest.work_dir / "runs" / run.id
    wait_for(lambda: not job_dir.exists(), 30, "the job directory to go")
    wait_for(lambda: _staged(s3, run.id) == [], 30, "the run's staged objects to go")


def test_a_failing_command_fails_with_its_exit_code(admin: Client, cluster: str) -> None:
    admin.call(admin.runs.SubmitRun, pb.SubmitRunRequest(run=pb.Run(
        name="rest-fails", command="echo preparing; echo broke >&2; exit 3", cluster=cluster)))
    run = _wait_ended(admin, "rest-fails")
    assert (run.status, run.exit_code) == (pb.RUN_STATUS_FAILED, 3), run.status_reason
    assert "exited with code 3" in run.status_reason
    assert sorted(_logs(admin, "rest-fails").splitlines()) == ["broke", "preparing"]


def test_stopping_a_run_cancels_its_job(admin: Client, cluster: str,
                                        loopback_slurm_rest: LoopbackSlurm) -> None:
    admin.call(admin.runs.SubmitRun, pb.SubmitRunRequest(run=pb.Run(
        name="rest-stop", command="echo started; sleep 600", cluster=cluster)))
    wait_for(lambda: "started" in _logs(admin, "rest-stop"), 60, "the job to start and send its log")
    admin.call(admin.runs.StopRun, pb.StopRunRequest(name="rest-stop"))
    run = _wait_ended(admin, "rest-stop")
    assert run.status == pb.RUN_STATUS_STOPPED, run.status_reason
    [job] = _jobs(loopback_slurm_rest, run.id)
    assert job.split()[1] == "CANCELLED"
    assert "started" in _logs(admin, "rest-stop")  # the log sent when the job was cancelled came home


def test_a_run_survives_kill_9_of_run_svc_and_is_submitted_once(
        stack: Stack, admin: Client, cluster: str, loopback_slurm_rest: LoopbackSlurm) -> None:
    admin.call(admin.runs.SubmitRun, pb.SubmitRunRequest(run=pb.Run(
        name="rest-survives", command="echo begun; sleep 6; echo done=1", cluster=cluster)))
    wait_for(lambda: _run(admin, "rest-survives").status == pb.RUN_STATUS_RUNNING, 60, "the run to run")
    old = stack.kill("run-svc")
    stack.wait_restarted("run-svc", old)
    run = _wait_ended(admin, "rest-survives")
    assert run.status == pb.RUN_STATUS_COMPLETE, run.status_reason
    assert run.metrics["done"] == 1.0
    assert len(_jobs(loopback_slurm_rest, run.id)) == 1


def test_a_bad_token_errs_the_run_naming_the_cause(admin: Client, loopback_slurm_rest: LoopbackSlurm) -> None:
    add_rest_cluster(admin, loopback_slurm_rest, "rest-bad", token="eyJub3QiOiJhIHRva2VuIn0.x.y")
    admin.call(admin.runs.SubmitRun, pb.SubmitRunRequest(run=pb.Run(
        name="rest-bad-token", command="true", cluster="rest-bad")))
    run = _wait_ended(admin, "rest-bad-token")
    assert run.status == pb.RUN_STATUS_ERROR
    assert "HTTP 500" in run.status_reason and "a JWT it cannot use" in run.status_reason, run.status_reason
    assert _jobs(loopback_slurm_rest, run.id) == []


# The trial writes one value, waits for the test to see it (the file ``go`` appears), then writes its last.
TRIAL = """
mkdir -p log
value="${1#--lr=}"
echo "accuracy=$value" >> log/metrics.log
echo "accuracy=0.99 printed, not in the file"
while [ ! -e go ]; do sleep 0.2; done
echo "accuracy=0.$(( ${value#0.} + 1 ))" >> log/metrics.log
"""


def _file_tuning() -> bytes:
    return yaml.safe_dump({
        "objective": {"type": "maximize", "objectiveMetricName": "accuracy"},
        "algorithm": {"algorithmName": "grid"}, "parallelTrialCount": 2, "maxTrialCount": 2,
        "parameters": [{"name": "lr", "parameterType": "categorical",
                        "feasibleSpace": {"list": ["0.3", "0.5"]}}],
        "metricsCollectorSpec": {"collector": {"kind": "File"},
                                 "source": {"fileSystemPath": {"path": "/log/metrics.log", "kind": "File"}}},
    }).encode()


def _trials(admin: Client, study: str) -> list[spb.Trial]:
    return list(admin.call(admin.studies.ListTrials, spb.ListTrialsRequest(study=study)).trials)


def _latest(trial: spb.Trial) -> float | None:
    return next((m.latest for m in trial.metrics if m.name == "accuracy"), None)


def test_a_study_reads_its_trials_metrics_files_sent_by_their_jobs_while_they_run_and_at_their_end(
        admin: Client, cluster: str, loopback_slurm_rest: LoopbackSlurm, s3: S3Server) -> None:
    admin.call(admin.runs.SubmitRun, pb.SubmitRunRequest(
        run=pb.Run(name="rest-files", cluster=cluster, command='sh "$SHIPYARD_CONFIG"',
                   config_file_name="trial.sh"),
        config_file=TRIAL.encode(), tuning=_file_tuning()))
    wait_for(lambda: sorted((t.state, _latest(t) or 0.0) for t in _trials(admin, "rest-files")) == [
        (spb.TRIAL_STATE_RUNNING, 0.3), (spb.TRIAL_STATE_RUNNING, 0.5)], 120,
        "both trials to run, their first values read from the files their jobs sent")
    for trial in _trials(admin, "rest-files"):
        run = _run(admin, trial.name)
        (loopback_slurm_rest.work_dir / "runs" / run.id / "code" / "go").touch()
    wait_for(lambda: admin.call(admin.studies.GetStudy, spb.GetStudyRequest(name="rest-files")).status
             == spb.STUDY_STATUS_SUCCEEDED, 120, "the study to succeed")
    assert sorted((t.state, t.objective) for t in _trials(admin, "rest-files")) == [
        (spb.TRIAL_STATE_SUCCEEDED, 0.4), (spb.TRIAL_STATE_SUCCEEDED, 0.6)]
    assert _run(admin, "rest-files").metrics["accuracy"] == 0.6
    run_ids = [_run(admin, trial.name).id for trial in _trials(admin, "rest-files")]
    wait_for(lambda: all(_staged(s3, run_id) == [] for run_id in run_ids), 30,
             "what the trials' jobs sent to go with the rest of their staged objects")
