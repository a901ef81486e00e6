"""``shipyard cluster add --on-login-node`` and ``cluster get|list`` of such a cluster: run-svc on the
login node itself submits there with no SSH, as the local account --ssh-user."""

from __future__ import annotations

from typing import Any

from google.protobuf.message import Message
from typer.testing import CliRunner

from shipyard.cli.main import app
from shipyard.contracts.run.v1 import clusters_pb2 as pb

from .conftest import Replies

ON_NODE = pb.Cluster(name="hpc", kind=pb.CLUSTER_KIND_SLURM, on_login_node=True, ssh_user="svc",
                     partition="gpu", work_dir="/scratch/shipyard", owner="ops")


def invoke(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, ["cluster", *args])
    return result.exit_code, result.output


def echo(request: Message) -> pb.Cluster:
    assert isinstance(request, pb.AddClusterRequest)
    return request.cluster


def test_add_on_the_login_node_sends_no_host_nor_ssh_port(replies: dict[str, Any]) -> None:
    replies["AddCluster"] = echo
    code, out = invoke("add", "hpc", "--kind", "slurm", "--on-login-node", "--ssh-user", "svc",
                       "--work-dir", "/scratch/shipyard", "--partition", "gpu")
    assert code == 0, out
    assert "Added slurm cluster hpc (run-svc's own login node, no SSH)" in " ".join(out.split())
    assert [request for _, request in Replies.calls] == [pb.AddClusterRequest(cluster=pb.Cluster(
        name="hpc", kind=pb.CLUSTER_KIND_SLURM, on_login_node=True, ssh_user="svc", partition="gpu",
        work_dir="/scratch/shipyard"))]


def test_get_shows_the_account_and_nothing_of_ssh(replies: dict[str, Any]) -> None:
    replies["GetCluster"] = ON_NODE
    code, out = invoke("get", "hpc")
    assert code == 0, out
    lines = {line.split("  ")[0].strip(): line.split("  ", 1)[1].strip()
             for line in out.splitlines() if "  " in line}
    assert lines["login node"] == "run-svc's own login node, no SSH", out
    assert lines["account"] == "svc (jobs run as it)" and lines["partition"] == "gpu", out
    assert "credential" not in lines and "host key" not in lines and "ssh user" not in lines, out


def test_list_says_where(replies: dict[str, Any]) -> None:
    replies["ListClusters"] = pb.ListClustersResponse(clusters=[ON_NODE])
    code, out = invoke("list")
    assert code == 0, out
    assert "run-svc's own login node" in out


def test_help_names_the_option() -> None:
    code, out = invoke("add", "--help")
    assert code == 0 and "--on-login-node" in out
