"""``shipyard cluster edit`` against canned replies: only the options given go in the update mask (an
empty string and --no-… included), the updated record is printed, and nothing given is a usage error."""

from __future__ import annotations

from typing import Any

from google.protobuf.field_mask_pb2 import FieldMask
from google.protobuf.message import Message
from typer.testing import CliRunner

from shipyard.cli.main import app
from shipyard.client.connection import ClientError
from shipyard.contracts.run.v1 import clusters_pb2 as pb

from .conftest import Replies

HPC = pb.Cluster(name="hpc", kind=pb.CLUSTER_KIND_SLURM, host="login.hpc.example", ssh_port=22,
                 ssh_user="svc", credential="hpc-key", partition="gpu", work_dir="/scratch/shipyard",
                 login_required=True, gpus=8, owner="ops")


def invoke(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, ["cluster", "edit", *args])
    return result.exit_code, result.output


def updated(request: Message) -> pb.Cluster:
    assert isinstance(request, pb.UpdateClusterRequest)
    cluster = pb.Cluster()
    cluster.CopyFrom(HPC)
    request.update_mask.MergeMessage(request.cluster, cluster, replace_message_field=True,
                                     replace_repeated_field=True)
    return cluster


def test_only_the_options_given_are_in_the_mask_and_the_new_record_is_shown(replies: dict[str, Any]) -> None:
    replies["UpdateCluster"] = updated
    code, out = invoke("hpc", "--partition", "a100", "--work-dir", "/data/shipyard", "--no-login-required",
                       "--host-key", "")
    assert code == 0, out
    assert [request for _, request in Replies.calls] == [pb.UpdateClusterRequest(
        name="hpc", cluster=pb.Cluster(partition="a100", work_dir="/data/shipyard"),
        update_mask=FieldMask(paths=["login_required", "partition", "ssh_host_key", "work_dir"]))]
    assert "Changed cluster hpc (login_required, partition, ssh_host_key, work_dir)" in out
    assert "a100" in out and "/data/shipyard" in out


def test_nothing_to_change_is_a_usage_error_and_nothing_is_sent(replies: dict[str, Any]) -> None:
    code, out = invoke("hpc")
    assert code == 2
    assert "give at least one option to change" in out
    assert Replies.calls == []


def test_a_refusal_naming_the_runs_in_flight_is_printed(replies: dict[str, Any]) -> None:
    def refuse(_: Message) -> Message:
        raise ClientError("FAILED_PRECONDITION", "cluster 'hpc' has 1 runs not ended (t1): stop them, or let "
                          "them end, then change its work_dir")

    replies["UpdateCluster"] = refuse
    code, out = invoke("hpc", "--work-dir", "/data")
    assert code != 0
    assert "1 runs not ended (t1)" in out
