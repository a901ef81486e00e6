"""Serving on a Kubernetes cluster from the CLI, against canned replies: ``inference create --cluster``,
``deploy --cluster``, where ``get`` says they are served, and ``cluster add --service-account``."""

from __future__ import annotations

from typing import Any

from google.protobuf.message import Message
from typer.testing import CliRunner

from shipyard.cli.main import app
from shipyard.contracts.run.v1 import clusters_pb2 as cpb
from shipyard.contracts.serving.v1 import serving_pb2 as pb

from .conftest import Replies


def invoke(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, list(args))
    return result.exit_code, result.output


def sent(method: str) -> list[Message]:
    return [request for name, request in Replies.calls if name == method]


def test_inference_create_names_the_cluster_and_get_shows_it(replies: dict[str, Any]) -> None:
    replies["CreateInference"] = lambda request: request.inference
    code, out = invoke("inference", "create", "mnist-test", "--model", "mnist@3", "--cluster", "k8s-prod",
                       "--no-wait")
    assert code == 0, out
    assert "serving mnist@3 on cluster k8s-prod" in out
    [request] = sent("CreateInference")
    assert isinstance(request, pb.CreateInferenceRequest) and request.inference.cluster == "k8s-prod"
    replies["GetInference"] = pb.Inference(name="mnist-test", model=pb.ModelRef(model="mnist", version=3),
                                           cluster="k8s-prod")
    code, out = invoke("inference", "get", "mnist-test")
    assert code == 0, out
    assert "served on cluster k8s-prod (KServe)" in " ".join(out.split())
    replies["GetInference"] = pb.Inference(name="here-test", model=pb.ModelRef(model="mnist", version=3))
    code, out = invoke("inference", "get", "here-test")
    assert "served here" in out


def test_deploy_names_the_cluster_and_get_shows_it(replies: dict[str, Any]) -> None:
    replies["CreateDeployment"] = lambda request: request.deployment
    code, out = invoke("deploy", "live", "--from-catalog", "mnist-v3", "--cluster", "k8s-prod", "--no-wait")
    assert code == 0, out
    assert "as live on cluster k8s-prod" in out
    [request] = sent("CreateDeployment")
    assert isinstance(request, pb.CreateDeploymentRequest) and request.deployment.cluster == "k8s-prod"
    assert not request.deployment.spec.ListFields()  # --cluster is no spec field
    replies["GetDeployment"] = pb.Deployment(name="live", model=pb.ModelRef(model="mnist", version=3),
                                             cluster="k8s-prod")
    code, out = invoke("deployment", "get", "live")
    assert code == 0, out
    assert "served on cluster k8s-prod (KServe)" in out


def test_cluster_add_sends_the_model_servers_account_and_get_shows_it(replies: dict[str, Any]) -> None:
    replies["AddCluster"] = lambda request: request.cluster
    code, out = invoke("cluster", "add", "k8s-prod", "--kind", "kubernetes", "--kubeconfig-credential",
                       "kube", "--namespace", "ml", "--service-account", "kserve-s3")
    assert code == 0, out
    [request] = sent("AddCluster")
    assert isinstance(request, cpb.AddClusterRequest) and request.cluster.service_account == "kserve-s3"
    replies["GetCluster"] = cpb.Cluster(name="k8s-prod", kind=cpb.CLUSTER_KIND_KUBERNETES, namespace="ml",
                                        kubeconfig_credential="kube", service_account="kserve-s3")
    code, out = invoke("cluster", "get", "k8s-prod")
    assert code == 0, out
    assert "kserve-s3" in out
