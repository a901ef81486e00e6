"""A Kubernetes cluster that serves test inferences or deployments (serving-svc's KServe) is not deleted:
run-svc asks serving-svc first and refuses, naming them, as it refuses a cluster with runs not ended."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest
from run_fakes import fake_world
from shipyard_run.app.clusters import Clusters
from shipyard_run.domain.clusters import Cluster, ClusterKind

from shipyard.kit.caller import Caller
from shipyard.kit.clients.serving import ClusterEndpoints
from shipyard.kit.errors import FailedPrecondition, Unavailable
from shipyard.kit.testing import OPERATOR_CALLER

K8S = Cluster("k8s-prod", ClusterKind.KUBERNETES, kubeconfig_credential="kube-cred")
HPC = Cluster("hpc", ClusterKind.SLURM, host="login.hpc.example", ssh_user="svc", credential="hpc-key",
              partition="gpu", work_dir="/scratch/shipyard")


@dataclass
class FakeServing:
    """serving-svc's ListClusterEndpoints: what each cluster serves; ``asked`` keeps (user, cluster)."""

    served: dict[str, ClusterEndpoints] = field(default_factory=dict)
    down: bool = False
    asked: list[tuple[str, str]] = field(default_factory=list)

    async def endpoints_on(self, caller: Caller, cluster: str) -> ClusterEndpoints:
        self.asked.append((caller.user, cluster))
        if self.down:
            raise Unavailable("the endpoints on cluster k8s-prod: UNAVAILABLE connection refused")
        return self.served.get(cluster, ClusterEndpoints([], []))


async def clusters_with(serving: FakeServing) -> Clusters:
    world = await fake_world()
    clusters = Clusters(world.uow, clock=world.clock, served=serving)
    await clusters.add(OPERATOR_CALLER, K8S)
    await clusters.add(OPERATOR_CALLER, HPC)
    return clusters


async def test_a_cluster_serving_endpoints_is_not_deleted_and_the_refusal_names_them() -> None:
    serving = FakeServing({"k8s-prod": ClusterEndpoints(["mnist-test"], ["live"])})
    clusters = await clusters_with(serving)
    refusal = (r"cluster 'k8s-prod' serves 2 test inferences and deployments "
               r"\(test inference mnist-test, deployment live\): delete them, then delete it")
    with pytest.raises(FailedPrecondition, match=refusal):
        await clusters.delete(OPERATOR_CALLER, "k8s-prod")
    assert serving.asked == [("olga", "k8s-prod")]
    assert [c.name for c in await clusters.list()] == ["hpc", "k8s-prod"]
    serving.served.clear()  # they were deleted
    await clusters.delete(OPERATOR_CALLER, "k8s-prod")
    assert [c.name for c in await clusters.list()] == ["hpc"]


async def test_serving_svc_out_of_reach_keeps_a_kubernetes_cluster_and_other_kinds_are_not_asked() -> None:
    serving = FakeServing(down=True)
    clusters = await clusters_with(serving)
    with pytest.raises(Unavailable, match="k8s-prod"):
        await clusters.delete(OPERATOR_CALLER, "k8s-prod")
    await clusters.delete(OPERATOR_CALLER, "hpc")  # only a Kubernetes cluster serves models
    assert serving.asked == [("olga", "k8s-prod")]
    assert [c.name for c in await clusters.list()] == ["k8s-prod"]
