"""``shipyard cluster add|list|get|delete`` against canned replies: the request each command sends, the
table and fields shown, JSON, a refused --kind and a refusal from the service."""

from __future__ import annotations

import json
from typing import Any

from google.protobuf.message import Message
from google.protobuf.timestamp_pb2 import Timestamp
from typer.testing import CliRunner

from shipyard.cli.main import app
from shipyard.client.connection import ClientError
from shipyard.contracts.run.v1 import clusters_pb2 as pb

from .conftest import Replies

HPC = pb.Cluster(name="hpc", kind=pb.CLUSTER_KIND_SLURM, host="login.hpc.example", ssh_port=2222,
                 ssh_user="svc", credential="hpc-key", partition="gpu", work_dir="/scratch/shipyard",
                 login_required=True, gpus=8, max_workers=4, owner="ops",
                 create_time=Timestamp(seconds=1_780_000_000))
K8S = pb.Cluster(name="k8s-prod", kind=pb.CLUSTER_KIND_KUBERNETES, namespace="ml",
                 kubeconfig_credential="kube-cred", gpus=4, owner="ops")
LSF = pb.Cluster(name="lsf1", kind=pb.CLUSTER_KIND_LSF, host="lsf-login.example", ssh_port=22,
                 ssh_user="svc", queue="normal", work_dir="/scratch")


def invoke(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, ["cluster", *args])
    return result.exit_code, result.output


def echo(request: Message) -> pb.Cluster:
    assert isinstance(request, pb.AddClusterRequest)
    return request.cluster


def sent() -> list[Message]:
    return [request for _, request in Replies.calls]


def test_add_slurm_sends_every_option(replies: dict[str, Any]) -> None:
    replies["AddCluster"] = echo
    code, out = invoke("add", "hpc", "--kind", "slurm", "--host", "login.hpc.example", "--ssh-port", "2222",
                       "--ssh-user", "svc", "--credential", "hpc-key", "--partition", "gpu", "--work-dir",
                       "/scratch/shipyard", "--login-required", "--gpus", "8", "--max-workers", "4",
                       "--description", "the HPC centre")
    assert code == 0, out
    assert "Added slurm cluster hpc (login.hpc.example:2222)" in out
    assert sent() == [pb.AddClusterRequest(cluster=pb.Cluster(
        name="hpc", kind=pb.CLUSTER_KIND_SLURM, host="login.hpc.example", ssh_port=2222, ssh_user="svc",
        credential="hpc-key", partition="gpu", work_dir="/scratch/shipyard", login_required=True, gpus=8,
        max_workers=4, description="the HPC centre"))]


def test_add_over_ssh_defaults_the_port_to_22(replies: dict[str, Any]) -> None:
    replies["AddCluster"] = echo
    code, out = invoke("add", "lsf1", "--kind", "lsf", "--host", "lsf-login.example", "--ssh-user", "svc",
                       "--queue", "normal", "--work-dir", "/scratch")
    assert code == 0, out
    assert sent() == [pb.AddClusterRequest(cluster=pb.Cluster(
        name="lsf1", kind=pb.CLUSTER_KIND_LSF, host="lsf-login.example", ssh_port=22, ssh_user="svc",
        queue="normal", work_dir="/scratch"))]


def test_add_kubernetes_sends_no_ssh_port(replies: dict[str, Any]) -> None:
    replies["AddCluster"] = echo
    code, out = invoke("add", "k8s-prod", "--kind", "kubernetes", "--kubeconfig-credential", "kube-cred",
                       "--namespace", "ml")
    assert code == 0, out
    assert "Added kubernetes cluster k8s-prod (namespace ml)" in out
    assert sent() == [pb.AddClusterRequest(cluster=pb.Cluster(
        name="k8s-prod", kind=pb.CLUSTER_KIND_KUBERNETES, namespace="ml", kubeconfig_credential="kube-cred"))]


def test_an_unknown_kind_is_refused_naming_the_kinds_and_nothing_is_sent(replies: dict[str, Any]) -> None:
    code, out = invoke("add", "pbs1", "--kind", "pbs", "--host", "pbs.example")
    assert code == 2, out
    said = " ".join(out.replace("│", " ").split())  # the error box wraps the message
    assert "'pbs' is not one of 'slurm', 'kubernetes', 'lsf'" in said, out
    assert sent() == []


def test_the_service_refusal_is_printed_with_its_field(replies: dict[str, Any]) -> None:
    def refuse(_: Message) -> Message:
        raise ClientError("INVALID_ARGUMENT", "bad", field="cluster.work_dir",
                          problem="a slurm cluster needs the directory runs' files are staged in")

    replies["AddCluster"] = refuse
    code, out = invoke("add", "hpc", "--kind", "slurm", "--host", "h", "--ssh-user", "svc")
    assert code == 1, out
    assert "INVALID_ARGUMENT: cluster.work_dir: a slurm cluster needs the directory" in out


def test_the_list_shows_kind_where_login_and_gpus(replies: dict[str, Any]) -> None:
    replies["ListClusters"] = pb.ListClustersResponse(clusters=[HPC, K8S, LSF])
    code, out = invoke("list")
    assert code == 0, out
    assert sent() == [pb.ListClustersRequest()]
    rows = {name: next(line for line in out.splitlines() if f" {name} " in line)
            for name in ("hpc", "k8s-prod", "lsf1")}
    for name, cells in {"hpc": ("slurm", "login.hpc.example:2222", "yes", " 8 "),
                        "k8s-prod": ("kubernetes", "namespace ml", "no", " 4 "),
                        "lsf1": ("lsf", "lsf-login.example ", "no", " 0 ")}.items():
        for cell in cells:
            assert cell in rows[name], out


def test_an_empty_list_says_runs_go_to_the_local_machine(replies: dict[str, Any]) -> None:
    replies["ListClusters"] = pb.ListClustersResponse()
    code, out = invoke("list")
    assert code == 0, out
    assert "No clusters" in out


def test_list_as_json_is_the_clusters(replies: dict[str, Any]) -> None:
    replies["ListClusters"] = pb.ListClustersResponse(clusters=[HPC, K8S])
    code, out = invoke("list", "-o", "json")
    assert code == 0, out
    listed = json.loads(out)
    assert [(c["name"], c["kind"]) for c in listed] == [("hpc", "CLUSTER_KIND_SLURM"),
                                                        ("k8s-prod", "CLUSTER_KIND_KUBERNETES")]
    assert listed[0]["login_required"] is True and listed[0]["gpus"] == 8


def test_get_shows_the_fields_of_its_kind(replies: dict[str, Any]) -> None:
    replies["GetCluster"] = HPC
    code, out = invoke("get", "hpc")
    assert code == 0, out
    assert sent() == [pb.GetClusterRequest(name="hpc")]
    lines = {line.split("  ")[0].strip(): line.split("  ", 1)[1].strip()
             for line in out.splitlines() if "  " in line}
    assert lines["kind"] == "slurm" and lines["login node"] == "login.hpc.example:2222", out
    assert lines["ssh user"] == "svc" and lines["credential"] == "hpc-key", out
    assert lines["partition"] == "gpu", out
    assert lines["work dir"] == "/scratch/shipyard" and lines["login required"] == "yes", out
    assert lines["gpus"] == "8" and lines["max workers"] == "4" and lines["owner"] == "ops", out
    assert lines["created"].startswith("2026-05-28T"), out
    assert "namespace" not in lines


def test_get_kubernetes_shows_namespace_and_kubeconfig_not_ssh(replies: dict[str, Any]) -> None:
    replies["GetCluster"] = K8S
    code, out = invoke("get", "k8s-prod")
    assert code == 0, out
    assert "namespace" in out and "ml" in out and "kube-cred" in out
    assert "ssh user" not in out and "work dir" not in out


def test_get_as_json_is_the_cluster(replies: dict[str, Any]) -> None:
    replies["GetCluster"] = K8S
    code, out = invoke("get", "k8s-prod", "-o", "json")
    assert code == 0, out
    got = json.loads(out)
    assert got["namespace"] == "ml" and got["kubeconfig_credential"] == "kube-cred" and got["host"] == ""


def test_get_of_an_unknown_cluster_says_so(replies: dict[str, Any]) -> None:
    def missing(_: Message) -> Message:
        raise ClientError("NOT_FOUND", "no cluster 'nope'")

    replies["GetCluster"] = missing
    code, out = invoke("get", "nope")
    assert code == 1, out
    assert "NOT_FOUND: no cluster 'nope'" in out


def test_delete_sends_the_name(replies: dict[str, Any]) -> None:
    replies["DeleteCluster"] = pb.DeleteClusterResponse()
    code, out = invoke("delete", "hpc")
    assert code == 0, out
    assert sent() == [pb.DeleteClusterRequest(name="hpc")]
    assert "Deleted cluster hpc" in out
