"""Runs on a real Slurm cluster through the whole stack: a single-node Slurm and an sshd on loopback
(``loopback_slurm``), added as a cluster with the operator's stored SSH key; run-svc submits with
``sbatch`` over SSH. Runs complete (inputs staged, metrics, outputs staged back into a version), fail
with their exit code, are stopped (scancel), time out, and survive kill -9 of run-svc."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from conftest import cli, write_tree

from shipyard.client import transfer
from shipyard.client.connection import Client, ClientError
from shipyard.contracts.repo.v1 import repos_pb2
from shipyard.contracts.run.v1 import clusters_pb2 as cpb
from shipyard.contracts.run.v1 import runs_pb2 as pb
from shipyard.local.harness import Stack, wait_for
from shipyard.local.slurm import LoopbackSlurm
from tests.support.slurm import OWN_ACCOUNT, add_loopback_cluster
from tests.support.users import new_user, signed_in

ENDED = (pb.RUN_STATUS_COMPLETE, pb.RUN_STATUS_FAILED, pb.RUN_STATUS_STOPPED, pb.RUN_STATUS_ERROR)
TRAIN = textwrap.dedent("""
    import os, pathlib
    from shipyard.sdk import log_metrics
    rows = (pathlib.Path(os.environ["SHIPYARD_MOUNT_MNT_DATA"]) / "train.csv").read_text().splitlines()
    for epoch in range(3):
        print(f"epoch {epoch}: loss={1.0 / (epoch + 1)}", flush=True)
    log_metrics(accuracy=0.5 + len(rows) / 10)
    out = pathlib.Path(os.environ["SHIPYARD_OUTPUT"])
    lr, job = os.environ["lr"], os.environ["SLURM_JOB_ID"]
    (out / "model.txt").write_text(f"rows={len(rows)} lr={lr} job={job}")
    print("secrets seen:", sorted(k for k in os.environ if "NATS" in k or "SECRET" in k))
""")


@pytest.fixture(scope="module")
def cluster(stack: Stack, admin: Client, loopback_slurm: LoopbackSlurm) -> str:
    """The loopback Slurm as cluster ``hpc``, its key stored by the operator who adds it; its host key
    left out: the first connection pins it."""
    return add_loopback_cluster(admin, loopback_slurm, "hpc", gpus=2)


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


def _wait_ended(admin: Client, name: str, timeout: float = 60) -> pb.Run:
    wait_for(lambda: _run(admin, name).status in ENDED, timeout, f"run {name} to end")
    return _run(admin, name)


def _logs(admin: Client, name: str) -> str:
    return admin.call(admin.runs.ReadRunLogs, pb.ReadRunLogsRequest(name=name)).data.decode()


def _run(admin: Client, name: str) -> pb.Run:
    return admin.call(admin.runs.GetRun, pb.GetRunRequest(name=name))


def _jobs(slurm: LoopbackSlurm, run_id: str) -> list[str]:
    """Slurm's jobs of the run: "id state" lines."""
    out = subprocess.run(["squeue", "-h", "-t", "all", "-n", f"shipyard-{run_id}", "-o", "%i %T"],
                         env=slurm.env(), capture_output=True, text=True, check=True).stdout
    return out.split("\n")[:-1]


@pytest.mark.usefixtures("repos")
def test_a_run_on_slurm_completes_with_its_metrics_and_output_version(
        stack: Stack, home: Path, admin: Client, cluster: str, loopback_slurm: LoopbackSlurm,
        tmp_path: Path) -> None:
    out = cli(stack, home, "run", "submit", "slurm-1", "--cluster", cluster, "--command",
              f"python3 -c '{TRAIN}'",
              "--dataset", "digits:/mnt/data", "--model-out", "mnist", "--hp", "lr=0.1",
              "--time-limit", "10").stdout
    assert "slurm-1" in out
    run = _wait_ended(admin, "slurm-1")
    assert run.status == pb.RUN_STATUS_COMPLETE, _logs(admin, "slurm-1")
    assert run.metrics["accuracy"] == pytest.approx(0.8) and run.metrics["loss"] == pytest.approx(1 / 3)
    assert any(note.startswith("Slurm job ") and "on cluster hpc" in note for note in run.notes), run.notes
    [job] = _jobs(loopback_slurm, run.id)
    assert job.endswith(" COMPLETED")

    def made() -> bool:
        latest = admin.call(admin.repos.GetVersion, repos_pb2.GetVersionRequest(
            kind=repos_pb2.REPO_KIND_MODEL, repo="mnist"))
        return latest.number == 2

    wait_for(made, 30, "mnist version 2 from the Slurm run")
    version = admin.call(admin.repos.GetVersion, repos_pb2.GetVersionRequest(
        kind=repos_pb2.REPO_KIND_MODEL, repo="mnist", number=2))
    assert version.produced_by_run == run.id
    transfer.pull(admin, transfer.read_manifest(admin, version.manifest_digest), tmp_path)
    assert (tmp_path / "model.txt").read_text() == f"rows=3 lr=0.1 job={job.split()[0]}"
    logs = cli(stack, home, "run", "logs", "slurm-1").stdout
    assert "epoch 2: loss=0.3333333333333333" in logs
    assert "secrets seen: []" in logs  # none of the platform's variables reach the job
    # The job directory left the cluster; the log stayed home.
    # The scheduler removes it after recording the run's end, so it may still be going.
    wait_for(lambda: not (loopback_slurm.work_dir / "runs" / run.id).exists(), 30, "the job directory to go")
    shown = cli(stack, home, "run", "get", "slurm-1").stdout
    assert "hpc (time limit 10)" in shown
    pinned = admin.call(admin.clusters.GetCluster, cpb.GetClusterRequest(name=cluster))
    assert pinned.ssh_host_key == loopback_slurm.host_public_key


def test_a_failing_command_fails_with_its_exit_code(admin: Client, cluster: str) -> None:
    admin.call(admin.runs.SubmitRun, pb.SubmitRunRequest(run=pb.Run(
        name="slurm-fails", command="echo preparing; echo broke >&2; exit 3", cluster=cluster)))
    run = _wait_ended(admin, "slurm-fails")
    assert (run.status, run.exit_code) == (pb.RUN_STATUS_FAILED, 3), run.status_reason
    assert "exited with code 3" in run.status_reason
    logs = admin.call(admin.runs.ReadRunLogs, pb.ReadRunLogsRequest(name="slurm-fails"))
    assert sorted(logs.data.splitlines()) == [b"broke", b"preparing"]


def test_stopping_a_run_cancels_its_job(admin: Client, cluster: str, loopback_slurm: LoopbackSlurm) -> None:
    admin.call(admin.runs.SubmitRun, pb.SubmitRunRequest(run=pb.Run(
        name="slurm-stop", command="echo started; sleep 600", cluster=cluster)))
    wait_for(lambda: b"started" in admin.call(admin.runs.ReadRunLogs, pb.ReadRunLogsRequest(
        name="slurm-stop")).data, 60, "the job to start")
    admin.call(admin.runs.StopRun, pb.StopRunRequest(name="slurm-stop"))
    run = _wait_ended(admin, "slurm-stop")
    assert run.status == pb.RUN_STATUS_STOPPED, run.status_reason
    [job] = _jobs(loopback_slurm, run.id)
    assert job.endswith(" CANCELLED")


def test_a_run_past_its_time_limit_fails_saying_so(admin: Client, cluster: str) -> None:
    admin.call(admin.runs.SubmitRun, pb.SubmitRunRequest(run=pb.Run(
        name="slurm-timeout", command="sleep 600", cluster=cluster, time_limit="1")))
    run = _wait_ended(admin, "slurm-timeout", timeout=240)  # Slurm's limits are whole minutes
    assert run.status == pb.RUN_STATUS_FAILED
    assert "time limit" in run.status_reason and "TIMEOUT" in run.status_reason


def test_a_run_survives_kill_9_of_run_svc_and_is_submitted_once(
        stack: Stack, admin: Client, cluster: str, loopback_slurm: LoopbackSlurm) -> None:
    admin.call(admin.runs.SubmitRun, pb.SubmitRunRequest(run=pb.Run(
        name="slurm-survives", command="echo begun; sleep 4; echo done=1", cluster=cluster)))
    wait_for(lambda: b"begun" in admin.call(admin.runs.ReadRunLogs, pb.ReadRunLogsRequest(
        name="slurm-survives")).data, 60, "the job to start")
    old = stack.kill("run-svc")
    stack.wait_restarted("run-svc", old)
    run = _wait_ended(admin, "slurm-survives")
    assert run.status == pb.RUN_STATUS_COMPLETE, run.status_reason
    assert run.metrics["done"] == 1.0
    assert len(_jobs(loopback_slurm, run.id)) == 1


def test_bad_input_is_refused_naming_the_field(admin: Client, cluster: str) -> None:
    def refused(**fields: object) -> ClientError:
        with pytest.raises(ClientError) as caught:
            admin.call(admin.runs.SubmitRun, pb.SubmitRunRequest(run=pb.Run(
                name="slurm-bad", command="true", **fields)))  # type: ignore[arg-type]
        return caught.value

    assert refused(cluster="nowhere").code == "NOT_FOUND"
    too_many = refused(cluster=cluster, gpus=3)
    assert (too_many.code, too_many.field) == ("FAILED_PRECONDITION", "run.gpus")
    assert "offers 2" in too_many.message
    bad_time = refused(cluster=cluster, time_limit="2:75:00")
    assert (bad_time.code, bad_time.field) == ("INVALID_ARGUMENT", "run.time_limit")
    local_time = refused(time_limit="10")
    assert (local_time.code, local_time.field) == ("FAILED_PRECONDITION", "run.time_limit")
    runs = admin.call(admin.runs.ListRuns, pb.ListRunsRequest()).runs
    assert "slurm-bad" not in [r.name for r in runs]


@pytest.mark.usefixtures("cluster")  # its operator's key is stored
def test_an_unreachable_login_node_errs_the_run_and_leaves_nothing(
        admin: Client, loopback_slurm: LoopbackSlurm) -> None:
    admin.call(admin.clusters.AddCluster, cpb.AddClusterRequest(cluster=cpb.Cluster(
        name="hpc-down", kind=cpb.CLUSTER_KIND_SLURM, host="127.0.0.1", ssh_port=_closed_port(),
        ssh_user=loopback_slurm.ssh_user, credential="hpc-key", work_dir=str(loopback_slurm.work_dir))))
    admin.call(admin.runs.SubmitRun, pb.SubmitRunRequest(run=pb.Run(
        name="slurm-unreachable", command="true", cluster="hpc-down")))
    run = _wait_ended(admin, "slurm-unreachable")
    assert run.status == pb.RUN_STATUS_ERROR
    assert "could not be reached" in run.status_reason


def cli_as(stack: Stack, token: str, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    """The shipyard command as the token's user runs it (SHIPYARD_SERVER and SHIPYARD_TOKEN)."""
    env = {**os.environ, "SHIPYARD_SERVER": stack.grpc_address, "SHIPYARD_TOKEN": token,
           "COLUMNS": "200"}
    done = subprocess.run([sys.executable, "-m", "shipyard", *args], env=env, capture_output=True, text=True,
                          timeout=60, check=False)
    if check and done.returncode != 0:
        raise AssertionError(f"shipyard {' '.join(args)} failed:\n{done.stdout}\n{done.stderr}")
    return done


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_where_each_user_signs_in_a_run_goes_under_their_own_account(
        stack: Stack, admin: Client, cluster: str, loopback_slurm: LoopbackSlurm, tmp_path: Path) -> None:
    admin.call(admin.clusters.AddCluster, cpb.AddClusterRequest(cluster=cpb.Cluster(
        name="hpc-own", kind=cpb.CLUSTER_KIND_SLURM, host=loopback_slurm.host,
        ssh_port=loopback_slurm.ssh_port, ssh_user=loopback_slurm.ssh_user, credential=f"{cluster}-key",
        work_dir=str(loopback_slurm.shared_work_dir), login_required=True,
        ssh_host_key=loopback_slurm.host_public_key)))
    ana = new_user(admin, "ana")
    signed = cli_as(stack, ana, "run", "submit", "mine-0", "--cluster", "hpc-own", "--command", "id -un",
                    check=False)
    assert signed.returncode != 0 and "shipyard cluster login hpc-own" in signed.stderr
    key = tmp_path / "ana_ed25519"
    key.write_text(loopback_slurm.private_keys[OWN_ACCOUNT])
    cli_as(stack, ana, "cluster", "login", "hpc-own", "--user", OWN_ACCOUNT, "--key-file", str(key))
    cli_as(stack, ana, "run", "submit", "mine-1", "--cluster", "hpc-own", "--command", "id -un")
    run = _wait_ended(admin, "mine-1")
    assert run.status == pb.RUN_STATUS_COMPLETE, _logs(admin, "mine-1")
    assert _logs(admin, "mine-1").splitlines()[0] == OWN_ACCOUNT  # her account, not the cluster's own
    assert any(f"as {OWN_ACCOUNT}@" in note for note in run.notes)
    # Another user's login is never used for someone else: bob has none, so his run is refused.
    bob = signed_in(stack, admin, "bob")
    with pytest.raises(ClientError) as refused:
        bob.call(bob.runs.SubmitRun, pb.SubmitRunRequest(run=pb.Run(
            name="bobs", command="id -un", cluster="hpc-own")))
    assert (refused.value.code, refused.value.field) == ("FAILED_PRECONDITION", "run.cluster")


def test_gpu_distribution_reaches_sbatch(stack: Stack, home: Path, admin: Client, cluster: str,
                                         loopback_slurm: LoopbackSlurm) -> None:
    # One node here: a master and one worker, each on its node, is more than the partition has. Slurm
    # queues such a job for ever (PartitionNodeLimit): the run ends saying so, and the job is cancelled.
    cli(stack, home, "run", "submit", "spread-1", "--cluster", cluster, "--command", "true",
        "--distributed", "manual", "--workers", "1")
    run = _wait_ended(admin, "spread-1")
    assert run.status == pb.RUN_STATUS_FAILED
    assert run.status_reason.startswith("Slurm will not run job")  # its reason: PartitionNodeLimit or -Config
    assert "(PartitionNodeLimit)" in run.status_reason or "(PartitionConfig)" in run.status_reason
    wait_for(lambda: _jobs(loopback_slurm, run.id)[0].endswith(" CANCELLED"), 30, "its job to be cancelled")
    shown = cli(stack, home, "run", "get", "spread-1").stdout
    assert "distributed: master + 1 worker" in shown
    cli(stack, home, "run", "submit", "spread-2", "--cluster", cluster, "--distributed", "automatic",
        "--command", 'echo "$SHIPYARD_DISTRIBUTION $SLURM_NTASKS"')
    run = _wait_ended(admin, "spread-2")
    assert run.status == pb.RUN_STATUS_COMPLETE, _logs(admin, "spread-2")
    assert _logs(admin, "spread-2").splitlines()[-1] == "automatic 1"
