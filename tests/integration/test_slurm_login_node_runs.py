"""Runs on a real Slurm cluster whose login node run-svc itself runs on (``cluster add --on-login-node``):
no SSH, run-svc submits with ``sbatch`` here as the cluster's local account. The stack runs as root here,
so run-svc switches to that account for every command and file — the production case — and the job
runs as that account, never as root. run-svc finds ``SLURM_CONF`` in its environment, as it would on a
login node (sshd's configuration sets it for the SSH tests)."""

from __future__ import annotations

import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import cli, write_tree

from shipyard.client import transfer
from shipyard.client.connection import Client
from shipyard.contracts.repo.v1 import repos_pb2
from shipyard.contracts.run.v1 import runs_pb2 as pb
from shipyard.local.harness import Stack, wait_for
from shipyard.local.slurm import LoopbackSlurm

ENDED = (pb.RUN_STATUS_COMPLETE, pb.RUN_STATUS_FAILED, pb.RUN_STATUS_STOPPED, pb.RUN_STATUS_ERROR)
TRAIN = textwrap.dedent("""
    import os, pathlib, pwd
    rows = (pathlib.Path(os.environ["SHIPYARD_MOUNT_MNT_DATA"]) / "train.csv").read_text().splitlines()
    print(f"loss={1.0 / len(rows)}", flush=True)
    user = pwd.getpwuid(os.getuid()).pw_name
    (pathlib.Path(os.environ["SHIPYARD_OUTPUT"]) / "model.txt").write_text(f"rows={len(rows)} by {user}")
""")


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory, loopback_slurm: LoopbackSlurm) -> Iterator[Stack]:
    """The stack with SLURM_CONF in its services' environment, as on the cluster's login node."""
    running = Stack(tmp_path_factory.mktemp("stack") / "data", env={
        "SHIPYARD_PATH_IMPORT_ROOTS": "", "SLURM_CONF": str(loopback_slurm.slurm_conf)}).start()
    try:
        yield running
    finally:
        running.stop()


@pytest.fixture(scope="module")
def cluster(stack: Stack, home: Path, loopback_slurm: LoopbackSlurm) -> str:
    cli(stack, home, "cluster", "add", "here", "--kind", "slurm", "--on-login-node", "--ssh-user",
        loopback_slurm.ssh_user, "--work-dir", str(loopback_slurm.work_dir), "--partition",
        loopback_slurm.partition)
    return "here"


def _run(admin: Client, name: str) -> pb.Run:
    return admin.call(admin.runs.GetRun, pb.GetRunRequest(name=name))


def _ended(admin: Client, name: str) -> pb.Run:
    wait_for(lambda: _run(admin, name).status in ENDED, 60, f"run {name} to end")
    return _run(admin, name)


def _logs(admin: Client, name: str) -> str:
    return admin.call(admin.runs.ReadRunLogs, pb.ReadRunLogsRequest(name=name)).data.decode()


def test_a_run_submitted_on_the_login_node_runs_as_its_account_and_makes_its_version(
        stack: Stack, home: Path, admin: Client, cluster: str, loopback_slurm: LoopbackSlurm,
        tmp_path: Path) -> None:
    shown = cli(stack, home, "cluster", "get", cluster).stdout
    assert "run-svc's own login node, no SSH" in shown and loopback_slurm.ssh_user in shown
    for kind, name in ((repos_pb2.REPO_KIND_DATASET, "digits"), (repos_pb2.REPO_KIND_MODEL, "mnist")):
        source = repos_pb2.Source(upload=repos_pb2.UploadSource(filename=name)) \
            if kind == repos_pb2.REPO_KIND_DATASET else repos_pb2.Source(none=repos_pb2.NoSource())
        admin.call(admin.repos.CreateRepo, repos_pb2.CreateRepoRequest(repo=repos_pb2.Repo(
            kind=kind, name=name, versioning=repos_pb2.VERSIONING_DVS, source=source)))
    data = write_tree(tmp_path / "digits", {"train.csv": b"1,2\n3,4\n"})
    transfer.push(admin, repos_pb2.REPO_KIND_DATASET, "digits", data, transfer.scan_tree(data))

    cli(stack, home, "run", "submit", "here-1", "--cluster", cluster, "--command",
        f"id -un; python3 -c '{TRAIN}'", "--dataset", "digits:/mnt/data", "--model-out", "mnist")
    run = _ended(admin, "here-1")
    log = _logs(admin, "here-1")
    assert run.status == pb.RUN_STATUS_COMPLETE, (run.status_reason, log)
    assert log.splitlines()[0] == loopback_slurm.ssh_user  # the cluster's account, not root
    assert run.metrics["loss"] == pytest.approx(0.5)
    assert any(note.startswith("Slurm job ") and f"as {loopback_slurm.ssh_user} on the login node" in note
               for note in run.notes), run.notes

    def made() -> bool:
        latest = admin.call(admin.repos.GetVersion, repos_pb2.GetVersionRequest(
            kind=repos_pb2.REPO_KIND_MODEL, repo="mnist"))
        return latest.number == 2

    wait_for(made, 30, "mnist version 2 from the run")
    version = admin.call(admin.repos.GetVersion, repos_pb2.GetVersionRequest(
        kind=repos_pb2.REPO_KIND_MODEL, repo="mnist", number=2))
    assert version.produced_by_run == run.id
    transfer.pull(admin, transfer.read_manifest(admin, version.manifest_digest), tmp_path / "out")
    assert (tmp_path / "out" / "model.txt").read_text() == f"rows=2 by {loopback_slurm.ssh_user}"
    # The scheduler removes it after recording the run's end, so it may still be going.
    wait_for(lambda: not (loopback_slurm.work_dir / "runs" / run.id).exists(), 30, "the job directory to go")


def test_a_failing_command_fails_with_its_exit_code(admin: Client, cluster: str) -> None:
    admin.call(admin.runs.SubmitRun, pb.SubmitRunRequest(run=pb.Run(
        name="here-fails", command="echo broke >&2; exit 3", cluster=cluster)))
    run = _ended(admin, "here-fails")
    assert (run.status, run.exit_code) == (pb.RUN_STATUS_FAILED, 3), run.status_reason
    assert _logs(admin, "here-fails").strip() == "broke"


def test_stopping_a_run_cancels_its_job_as_the_account(admin: Client, cluster: str) -> None:
    admin.call(admin.runs.SubmitRun, pb.SubmitRunRequest(run=pb.Run(
        name="here-stop", command="echo started; sleep 600", cluster=cluster)))
    wait_for(lambda: "started" in _logs(admin, "here-stop"), 60, "the job to start")  # its log, read live
    admin.call(admin.runs.StopRun, pb.StopRunRequest(name="here-stop"))
    run = _ended(admin, "here-stop")
    assert run.status == pb.RUN_STATUS_STOPPED, run.status_reason
