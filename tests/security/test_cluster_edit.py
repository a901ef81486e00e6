"""Attack: a cluster's record says where runs go and as whom, so only an operator changes it. A data
scientist's UpdateCluster (pointing a cluster's work dir or login node somewhere of their choosing) is
refused at the gateway, and refused by run-svc itself when it reaches run-svc with a user's signed
caller (run-svc checks too, as for AddCluster and DeleteCluster)."""

from __future__ import annotations

import grpc
import pytest
from google.protobuf.field_mask_pb2 import FieldMask

from shipyard.client.connection import Client, ClientError
from shipyard.contracts.run.v1 import clusters_pb2 as cpb
from shipyard.contracts.run.v1 import clusters_pb2_grpc
from shipyard.kit.assertions import CallerAssertions, load_internal_key
from shipyard.kit.caller import Caller
from shipyard.local.harness import Stack
from tests.support.users import signed_in

HPC = cpb.Cluster(name="hpc-edit", kind=cpb.CLUSTER_KIND_SLURM, host="login.hpc.example", ssh_user="svc",
                  work_dir="/scratch/shipyard", partition="gpu")
HIJACK = cpb.UpdateClusterRequest(name="hpc-edit", cluster=cpb.Cluster(host="attacker.example",
                                                                       work_dir="/tmp/mine"),
                                  update_mask=FieldMask(paths=["host", "work_dir"]))


def test_only_an_operator_changes_a_cluster_at_the_gateway_and_at_run_svc(stack: Stack,
                                                                          admin: Client) -> None:
    admin.call(admin.clusters.AddCluster, cpb.AddClusterRequest(cluster=HPC))
    dora = signed_in(stack, admin, "dora")
    with pytest.raises(ClientError) as at_gateway:
        dora.call(dora.clusters.UpdateCluster, HIJACK)
    assert at_gateway.value.code == "PERMISSION_DENIED"

    state = stack.data.read_state()
    assert state is not None
    signed = CallerAssertions(load_internal_key("", stack.data.internal_key), "gateway").metadata(
        Caller("dora", frozenset({"data-scientist"})), "run-svc")
    with (grpc.insecure_channel(state["processes"]["run-svc"]["address"]) as channel,
          pytest.raises(grpc.RpcError) as at_run_svc):
        clusters_pb2_grpc.ClusterServiceStub(channel).UpdateCluster(HIJACK, metadata=signed, timeout=10)
    assert at_run_svc.value.code() is grpc.StatusCode.PERMISSION_DENIED
    assert "only an operator may change clusters" in (at_run_svc.value.details() or "")

    kept = admin.call(admin.clusters.GetCluster, cpb.GetClusterRequest(name="hpc-edit"))
    assert (kept.host, kept.work_dir) == ("login.hpc.example", "/scratch/shipyard")
    changed = admin.call(admin.clusters.UpdateCluster, cpb.UpdateClusterRequest(
        name="hpc-edit", cluster=cpb.Cluster(partition="a100"), update_mask=FieldMask(paths=["partition"])))
    assert (changed.partition, changed.host) == ("a100", "login.hpc.example")
    admin.call(admin.clusters.DeleteCluster, cpb.DeleteClusterRequest(name="hpc-edit"))
