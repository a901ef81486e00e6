"""Attack: clusters are the operators'. A data scientist sees them but cannot add one (pointing runs at
a login node of their choosing) nor delete one; a run naming a cluster is never run on this machine
instead."""

from __future__ import annotations

import pytest

from shipyard.client.connection import Client, ClientError
from shipyard.contracts.run.v1 import clusters_pb2 as cpb
from shipyard.contracts.run.v1 import runs_pb2 as pb
from shipyard.local.harness import Stack
from tests.support.users import signed_in

HPC = cpb.Cluster(name="hpc", kind=cpb.CLUSTER_KIND_LSF, host="login.hpc.example", ssh_user="svc",
                  work_dir="/scratch/shipyard", login_required=True)


def test_only_operators_add_and_delete_clusters_and_everyone_sees_them(stack: Stack, admin: Client) -> None:
    dora = signed_in(stack, admin, "dora")
    with pytest.raises(ClientError) as refused:
        dora.call(dora.clusters.AddCluster, cpb.AddClusterRequest(cluster=cpb.Cluster(
            name="mine", kind=cpb.CLUSTER_KIND_SLURM, host="attacker.example", ssh_user="me",
            work_dir="/tmp/x")))
    assert refused.value.code == "PERMISSION_DENIED"
    admin.call(admin.clusters.AddCluster, cpb.AddClusterRequest(cluster=HPC))
    listed = dora.call(dora.clusters.ListClusters, cpb.ListClustersRequest()).clusters
    assert [(c.name, c.login_required) for c in listed] == [("hpc", True)]
    with pytest.raises(ClientError) as not_hers:
        dora.call(dora.clusters.DeleteCluster, cpb.DeleteClusterRequest(name="hpc"))
    assert not_hers.value.code == "PERMISSION_DENIED"

    with pytest.raises(ClientError) as elsewhere:
        dora.call(dora.runs.SubmitRun, pb.SubmitRunRequest(run=pb.Run(
            name="sent-away", kind=pb.RUN_KIND_TRAINING, command="true", cluster="hpc")))
    assert (elsewhere.value.code, elsewhere.value.field) == ("FAILED_PRECONDITION", "run.cluster")
    with pytest.raises(ClientError) as unknown:
        dora.call(dora.runs.SubmitRun, pb.SubmitRunRequest(run=pb.Run(
            name="sent-nowhere", kind=pb.RUN_KIND_TRAINING, command="true", cluster="nowhere")))
    assert unknown.value.code == "NOT_FOUND" and "nowhere" in unknown.value.message
    assert not admin.call(admin.runs.ListRuns, pb.ListRunsRequest()).runs
