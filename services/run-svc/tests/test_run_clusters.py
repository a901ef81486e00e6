"""Clusters, against fakes: operators add and delete them, everyone sees them, what each kind needs is
checked naming the field, and a run that names a cluster is never quietly run on this machine."""

from __future__ import annotations

import asyncio

import pytest
from run_fakes import World, a_spec, fake_world
from shipyard_run.app.ports import JobState, JobStatus
from shipyard_run.domain.clusters import Cluster, ClusterKind
from shipyard_run.domain.runs import Distribution, RunStatus

from shipyard.contracts.events.v1 import events_pb2
from shipyard.kit.errors import AlreadyExists, FailedPrecondition, InvalidArgument, NotFound, PermissionDenied
from shipyard.kit.testing import ALICE, OPERATOR_CALLER

HPC = Cluster("hpc", ClusterKind.SLURM, host="login.hpc.example", ssh_user="svc", credential="hpc-key",
              partition="gpu", work_dir="/scratch/shipyard", login_required=True, gpus=8)
K8S = Cluster("k8s-prod", ClusterKind.KUBERNETES, kubeconfig_credential="kube-cred")


async def test_an_operator_adds_clusters_everyone_lists_them_and_only_an_operator_deletes() -> None:
    world = await fake_world()
    clusters = world.service.clusters
    added = await clusters.add(OPERATOR_CALLER, HPC)
    assert (added.owner, added.ssh_port, added.create_time is not None) == (OPERATOR_CALLER.user, 22, True)
    kube = await clusters.add(OPERATOR_CALLER, K8S)
    assert kube.namespace == "default"
    served = await clusters.add(OPERATOR_CALLER, Cluster("k8s-serve", ClusterKind.KUBERNETES,
                                                         kubeconfig_credential="kube-cred",
                                                         service_account="kserve-s3"))
    assert (await clusters.get(served.name)).service_account == "kserve-s3"
    await clusters.delete(OPERATOR_CALLER, served.name)
    assert [c.name for c in await clusters.list()] == ["hpc", "k8s-prod"]
    assert (await clusters.get("hpc")).partition == "gpu"
    with pytest.raises(PermissionDenied, match="only an operator"):
        await clusters.add(ALICE, Cluster("mine", ClusterKind.LSF, host="h", ssh_user="u", work_dir="/w"))
    with pytest.raises(PermissionDenied):
        await clusters.delete(ALICE, "hpc")
    with pytest.raises(AlreadyExists):
        await clusters.add(OPERATOR_CALLER, HPC)
    await clusters.delete(OPERATOR_CALLER, "hpc")
    with pytest.raises(NotFound, match="shipyard cluster list"):
        await clusters.get("hpc")


@pytest.mark.parametrize(("cluster", "field"), [
    (Cluster("local", ClusterKind.SLURM, host="h", ssh_user="u", work_dir="/w"), "cluster.name"),
    (Cluster("a", ClusterKind.SLURM, ssh_user="u", work_dir="/w"), "cluster.host"),
    (Cluster("a", ClusterKind.SLURM, host="bad host", ssh_user="u", work_dir="/w"), "cluster.host"),
    (Cluster("a", ClusterKind.LSF, host="h", work_dir="/w"), "cluster.ssh_user"),
    (Cluster("a", ClusterKind.SLURM, host="h", ssh_user="u"), "cluster.work_dir"),
    (Cluster("a", ClusterKind.SLURM, host="h", ssh_user="u", work_dir="scratch"), "cluster.work_dir"),
    (Cluster("a", ClusterKind.SLURM, host="h", ssh_user="u", work_dir="/w", ssh_port=70000),
     "cluster.ssh_port"),
    (Cluster("a", ClusterKind.SLURM, host="h", ssh_user="u", work_dir="/w", gpus=-1), "cluster.gpus"),
    (Cluster("a", ClusterKind.KUBERNETES), "cluster.kubeconfig_credential"),
    (Cluster("a", ClusterKind.KUBERNETES, kubeconfig_credential="k", namespace="Bad_NS"),
     "cluster.namespace"),
    (Cluster("a", ClusterKind.KUBERNETES, kubeconfig_credential="k", host="h"), "cluster.host"),
    (Cluster("a", ClusterKind.KUBERNETES, kubeconfig_credential="k", login_required=True),
     "cluster.login_required"),
    (Cluster("a", ClusterKind.SLURM, host="h", ssh_user="u", work_dir="/w", ssh_host_key="not a key"),
     "cluster.ssh_host_key"),
    (Cluster("a", ClusterKind.LSF, host="h", ssh_user="u", work_dir="/w", container_runtime="pyxis"),
     "cluster.container_runtime"),
    (Cluster("a", ClusterKind.SLURM, host="h", ssh_user="u", work_dir="/w", container_runtime="docker"),
     "cluster.container_runtime"),
    (Cluster("a", ClusterKind.KUBERNETES, kubeconfig_credential="k", service_account="Not_An_Account"),
     "cluster.service_account"),
    (Cluster("a", ClusterKind.SLURM, host="h", ssh_user="u", work_dir="/w", service_account="kserve-s3"),
     "cluster.service_account"),
])
async def test_a_cluster_that_could_never_take_a_run_is_refused_naming_the_field(cluster: Cluster,
                                                                                  field: str) -> None:
    world = await fake_world()
    with pytest.raises(InvalidArgument) as refused:
        await world.service.clusters.add(OPERATOR_CALLER, cluster)
    assert refused.value.field == field
    assert await world.service.clusters.list() == []


async def _add_hpc(world: World) -> None:
    """HPC added, and alice signed in to it (each user does there)."""
    await world.service.clusters.add(OPERATOR_CALLER, HPC)
    world.clusters.logins.add(("hpc", ALICE.user))


async def test_a_run_naming_a_cluster_goes_to_that_clusters_executor_never_here() -> None:
    world = await fake_world(slots=1)
    await _add_hpc(world)
    with pytest.raises(NotFound, match="no cluster named 'nowhere'"):
        await world.runs.submit(ALICE, a_spec("t0", cluster="nowhere"))
    await world.runs.submit(ALICE, a_spec("busy"))  # fills the one local slot
    await world.runs.submit(ALICE, a_spec("t1", cluster="hpc", gpus=2, time_limit="1:00:00", account="ml"))
    await world.scheduler.tick()
    hpc = world.clusters.opened["hpc"]
    assert world.executor.submitted_names() == ["busy"]
    assert hpc.submitted_names() == ["t1"]  # the cluster queues its own runs: no local slot needed
    job = hpc.submitted[0]
    assert (job.gpu_count, job.time_limit, job.account, job.gpus) == (2, "1:00:00", "ml", ())
    assert await world.status("t1") is RunStatus.RUNNING
    [started] = world.events(events_pb2.RunStarted, "t1")
    assert started.executor == "slurm:hpc"
    hpc.exit((await world.run("t1")).id, 0)
    await world.scheduler.tick()
    assert await world.status("t1") is RunStatus.COMPLETE


async def test_a_cluster_run_asking_for_what_the_cluster_lacks_is_refused_naming_the_field() -> None:
    world = await fake_world()
    await world.service.clusters.add(OPERATOR_CALLER, HPC)
    with pytest.raises(FailedPrecondition, match="alice has not signed in to hpc") as no_login:
        await world.runs.submit(ALICE, a_spec("t0", cluster="hpc"))
    assert no_login.value.field == "run.cluster"
    world.clusters.logins.add(("hpc", ALICE.user))
    await world.service.clusters.add(OPERATOR_CALLER, K8S)
    with pytest.raises(FailedPrecondition, match="offers 8") as gpus:
        await world.runs.submit(ALICE, a_spec("t1", cluster="hpc", gpus=9))
    assert gpus.value.field == "run.gpus"
    with pytest.raises(FailedPrecondition, match="no kubernetes executor here") as kind:
        await world.runs.submit(ALICE, a_spec("t2", cluster="k8s-prod"))
    assert kind.value.field == "run.cluster"
    with pytest.raises(FailedPrecondition, match="Slurm or LSF") as local_limit:
        await world.runs.submit(ALICE, a_spec("t3", time_limit="10"))
    assert local_limit.value.field == "run.time_limit"
    with pytest.raises(FailedPrecondition, match="offers 8") as spread:  # 4 GPUs on each of 3 nodes
        await world.runs.submit(ALICE, a_spec("t5", cluster="hpc", gpus=4, distribution=Distribution.MANUAL,
                                              workers=2))
    assert spread.value.field == "run.gpus"
    assert "12 GPUs asked for (4 on each of 3 nodes)" in spread.value.message
    manual = Distribution.MANUAL
    with pytest.raises(FailedPrecondition, match="allows 1") as workers:
        await world.runs.submit(ALICE, a_spec("t6", cluster="hpc", distribution=manual, workers=2))
    assert workers.value.field == "run.workers"
    with pytest.raises(InvalidArgument) as no_workers:
        await world.runs.submit(ALICE, a_spec("t7", cluster="hpc", distribution=Distribution.MANUAL))
    assert no_workers.value.field == "run.workers"
    with pytest.raises(FailedPrecondition) as local_spread:
        await world.runs.submit(ALICE, a_spec("t8", distribution=Distribution.AUTOMATIC))
    assert local_spread.value.field == "run.distribution"
    with pytest.raises(InvalidArgument) as bad_limit:
        await world.runs.submit(ALICE, a_spec("t4", cluster="hpc", time_limit="1:75"))
    assert bad_limit.value.field == "run.time_limit"
    assert await world.stored_runs() == []


async def test_a_job_the_cluster_killed_at_a_limit_fails_the_run_saying_why() -> None:
    world = await fake_world()
    await _add_hpc(world)
    run = await world.runs.submit(ALICE, a_spec("t1", cluster="hpc", time_limit="5"))
    await world.scheduler.tick()
    hpc = world.clusters.opened["hpc"]
    hpc.states[run.id] = JobStatus(JobState.KILLED, 143, "it ran past its time limit (Slurm: TIMEOUT)")
    await world.scheduler.tick()
    ended = await world.run("t1")
    assert (ended.status, ended.exit_code) == (RunStatus.FAILED, 143)
    assert ended.status_reason == "it ran past its time limit (Slurm: TIMEOUT)"


async def test_after_a_restart_cluster_runs_are_found_on_their_cluster() -> None:
    world = await fake_world()
    await _add_hpc(world)
    run = await world.runs.submit(ALICE, a_spec("t1", cluster="hpc"))
    await world.scheduler.tick()
    service = world.restarted()
    await service.scheduler.recover()
    await service.scheduler.tick()
    assert world.clusters.opened["hpc"].submitted_names() == ["t1"]  # not submitted again
    world.clusters.opened["hpc"].exit(run.id, 3)
    await service.scheduler.tick()
    assert (await world.run("t1")).status is RunStatus.FAILED


async def test_a_cluster_with_runs_not_ended_cannot_be_deleted() -> None:
    world = await fake_world()
    await _add_hpc(world)
    run = await world.runs.submit(ALICE, a_spec("t1", cluster="hpc"))
    with pytest.raises(FailedPrecondition, match="1 runs not ended \\(t1\\)"):
        await world.service.clusters.delete(OPERATOR_CALLER, "hpc")
    await world.scheduler.tick()
    world.clusters.opened["hpc"].exit(run.id, 0)
    await world.scheduler.tick()
    await world.service.clusters.delete(OPERATOR_CALLER, "hpc")
    assert await world.service.clusters.list() == []


async def test_a_cluster_slow_to_answer_holds_up_no_local_run() -> None:
    world = await fake_world()
    await _add_hpc(world)
    far = await world.runs.submit(ALICE, a_spec("far", cluster="hpc"))
    near = await world.runs.submit(ALICE, a_spec("near"))
    await world.scheduler.tick()
    hpc = world.clusters.opened["hpc"]
    answer = asyncio.Event()

    async def out_of_reach(run_id: str) -> None:
        await answer.wait()

    hpc.on_status = out_of_reach
    world.executor.exit(near.id, 0)
    await asyncio.wait_for(world.scheduler.tick(), 30)  # the cluster's watch goes on in its own task
    assert await world.status("near") is RunStatus.COMPLETE
    assert await world.status("far") is RunStatus.RUNNING
    hpc.exit(far.id, 0)
    answer.set()
    for _ in range(100):
        await world.scheduler.tick()
        if await world.status("far") is RunStatus.COMPLETE:
            break
    assert await world.status("far") is RunStatus.COMPLETE
