"""Attacks on a cluster whose login node run-svc itself runs on (``--on-login-node``; the real loopback
Slurm): no such cluster runs its jobs as root; a run's command, as the cluster's account, reads nothing of
the platform's (its data directory, run-svc's environment), is sandboxed as SSH-submitted runs are where
the node has bubblewrap, and cannot make run-svc (root here) fetch a file of the platform's as its output."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from shipyard.client.connection import Client, ClientError
from shipyard.contracts.repo.v1 import repos_pb2
from shipyard.contracts.run.v1 import clusters_pb2 as cpb
from shipyard.contracts.run.v1 import runs_pb2 as pb
from shipyard.local.harness import Stack, wait_for
from shipyard.local.slurm import LoopbackSlurm
from tests.support.users import signed_in

ENDED = (pb.RUN_STATUS_COMPLETE, pb.RUN_STATUS_FAILED, pb.RUN_STATUS_STOPPED, pb.RUN_STATUS_ERROR)


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory, loopback_slurm: LoopbackSlurm) -> Iterator[Stack]:
    """The stack (as root) with SLURM_CONF in its services' environment, as on the cluster's login node."""
    running = Stack(tmp_path_factory.mktemp("stack") / "data", env={
        "SHIPYARD_PATH_IMPORT_ROOTS": "", "SLURM_CONF": str(loopback_slurm.slurm_conf)}).start()
    try:
        yield running
    finally:
        running.stop()


@pytest.fixture(scope="module")
def cluster(admin: Client, loopback_slurm: LoopbackSlurm) -> str:
    admin.call(admin.clusters.AddCluster, cpb.AddClusterRequest(cluster=cpb.Cluster(
        name="here", kind=cpb.CLUSTER_KIND_SLURM, on_login_node=True, ssh_user=loopback_slurm.ssh_user,
        work_dir=str(loopback_slurm.work_dir), partition=loopback_slurm.partition)))
    return "here"


def _logs(client: Client, name: str) -> str:
    return client.call(client.runs.ReadRunLogs, pb.ReadRunLogsRequest(name=name)).data.decode()


def _ended(client: Client, name: str) -> pb.Run:
    wait_for(lambda: client.call(client.runs.GetRun, pb.GetRunRequest(name=name)).status in ENDED, 90,
             f"run {name} to end")
    return client.call(client.runs.GetRun, pb.GetRunRequest(name=name))


@pytest.mark.parametrize("user", ["root", ""])
def test_a_cluster_on_the_login_node_never_runs_jobs_as_root(admin: Client, loopback_slurm: LoopbackSlurm,
                                                              user: str) -> None:
    with pytest.raises(ClientError) as refused:
        admin.call(admin.clusters.AddCluster, cpb.AddClusterRequest(cluster=cpb.Cluster(
            name="as-root", kind=cpb.CLUSTER_KIND_SLURM, on_login_node=True, ssh_user=user,
            work_dir=str(loopback_slurm.work_dir))))
    assert (refused.value.code, refused.value.field) == ("INVALID_ARGUMENT", "cluster.ssh_user")
    names = [c.name for c in admin.call(admin.clusters.ListClusters, cpb.ListClustersRequest()).clusters]
    assert "as-root" not in names


def test_a_run_reads_nothing_of_the_platform_and_is_sandboxed(
        stack: Stack, admin: Client, cluster: str, loopback_slurm: LoopbackSlurm) -> None:
    mallory = signed_in(stack, admin, "mallory")
    runs_dir, run_svc = loopback_slurm.work_dir / "runs", stack.pid("run-svc")
    mallory.call(mallory.runs.SubmitRun, pb.SubmitRunRequest(run=pb.Run(
        name="thief", cluster=cluster, command=(
            "echo user: $(id -un); "
            f"echo listed: $(ls {runs_dir}); "
            f"echo platform: $(ls {stack.data_dir} 2>&1); "
            f"echo token: $(cat {stack.data.admin_token} 2>&1); "
            f"echo run-svc: $(tr '\\0' '\\n' < /proc/{run_svc}/environ 2>&1 | grep -c SHIPYARD); "
            "echo home: $(ls -a ~ 2>&1); "
            "echo env: $(env | grep -ci -e nats -e secret_key -e s3_ -e SHIPYARD_DATA_DIR); true"))))
    thief = _ended(mallory, "thief")
    log = _logs(mallory, "thief")
    assert thief.status == pb.RUN_STATUS_COMPLETE, log
    assert f"user: {loopback_slurm.ssh_user}\n" in log  # the cluster's account, never root
    assert "not isolated" not in log  # bubblewrap is here: the sandbox of SSH-submitted runs applies
    assert f"listed: {thief.id}\n" in log  # only its own job directory
    assert "home: . ..\n" in log  # the account's home is an empty tmpfs
    assert stack.admin_token() not in log
    for line in ("platform: ", "token: "):  # hidden (bubblewrap's own /tmp) or refused
        said = next(said for said in log.splitlines() if said.startswith(line))
        assert "No such file" in said or "Permission denied" in said, log
    assert "run-svc: 0\n" in log
    assert "env: 0\n" in log


def test_a_run_cannot_make_run_svc_fetch_the_platforms_files_as_its_output(
        stack: Stack, admin: Client, cluster: str) -> None:
    admin.call(admin.repos.CreateRepo, repos_pb2.CreateRepoRequest(repo=repos_pb2.Repo(
        kind=repos_pb2.REPO_KIND_MODEL, name="loot", versioning=repos_pb2.VERSIONING_DVS,
        source=repos_pb2.Source(none=repos_pb2.NoSource()))))
    before = _repo(admin, "loot").latest_version
    admin.call(admin.runs.SubmitRun, pb.SubmitRunRequest(run=pb.Run(
        name="linker", cluster=cluster,
        command=f'ln -s {stack.data.admin_token} "$SHIPYARD_OUTPUT/token"',
        outputs=[pb.RunOutputTarget(repo_kind="model", repo="loot")])))
    run = _ended(admin, "linker")
    # run-svc fetches the outputs as the account, which cannot read the token: the run ends saying so.
    assert run.status == pb.RUN_STATUS_ERROR, run.status_reason
    assert "outputs could not be stored" in run.status_reason and "Permission denied" in run.status_reason
    assert _repo(admin, "loot").latest_version == before  # no version made of it


def _repo(admin: Client, name: str) -> repos_pb2.Repo:
    return admin.call(admin.repos.GetRepo, repos_pb2.GetRepoRequest(kind=repos_pb2.REPO_KIND_MODEL,
                                                                     name=name))
