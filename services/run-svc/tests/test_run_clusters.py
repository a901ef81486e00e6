"""Clusters, against fakes: operators add and delete them, everyone sees them, what each kind needs is
checked naming the field, and a run that names a cluster is never quietly run on this machine."""

from __future__ import annotations

import pytest
from run_fakes import a_spec, fake_world
from shipyard_run.domain.clusters import Cluster, ClusterKind

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
])
async def test_a_cluster_that_could_never_take_a_run_is_refused_naming_the_field(cluster: Cluster,
                                                                                  field: str) -> None:
    world = await fake_world()
    with pytest.raises(InvalidArgument) as refused:
        await world.service.clusters.add(OPERATOR_CALLER, cluster)
    assert refused.value.field == field
    assert await world.service.clusters.list() == []


async def test_a_run_naming_a_cluster_is_refused_rather_than_run_here() -> None:
    world = await fake_world()
    await world.service.clusters.add(OPERATOR_CALLER, HPC)
    with pytest.raises(NotFound, match="no cluster named 'nowhere'"):
        await world.runs.submit(ALICE, a_spec("t0", cluster="nowhere"))
    with pytest.raises(FailedPrecondition, match="not sent to slurm clusters yet") as refused:
        await world.runs.submit(ALICE, a_spec("t1", cluster="hpc"))
    assert refused.value.field == "run.cluster"
    assert await world.stored_runs() == []
    await world.runs.submit(ALICE, a_spec("t2", cluster="local"))
    assert [r.name for r in await world.stored_runs()] == ["t2"]
