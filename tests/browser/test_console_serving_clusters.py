"""The console's Cluster field on the test-inference and deploy forms: "Here" by default, the Kubernetes
clusters only (their KServe serves models; a Slurm cluster does not), a refusal shown at the field, and a
Kubernetes cluster's model servers' ServiceAccount on the cluster form and page. This stack's blob store is
local files, so a cluster is refused (KServe reads the model files from S3): the tests look only at what
the console does with it."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from shipyard.client.connection import Client
from shipyard.contracts.repo.v1 import credentials_pb2 as cpb
from shipyard.contracts.run.v1 import clusters_pb2 as pb
from shipyard.local.harness import Stack

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def clusters(admin: Client) -> None:
    """A Kubernetes cluster and a Slurm one, added through the API."""
    admin.call(admin.clusters.AddCluster, pb.AddClusterRequest(cluster=pb.Cluster(
        name="k8s-serve", kind=pb.CLUSTER_KIND_KUBERNETES, namespace="ml", kubeconfig_credential="kube")))
    admin.call(admin.clusters.AddCluster, pb.AddClusterRequest(cluster=pb.Cluster(
        name="hpc-serve", kind=pb.CLUSTER_KIND_SLURM, host="login.hpc.invalid", ssh_port=22, ssh_user="svc",
        work_dir="/scratch/shipyard")))


@pytest.mark.parametrize(("path", "form"), [("/inferences/new", "#inference-form"),
                                            ("/deployments/new", "#deploy-form")])
def test_the_cluster_field_offers_here_and_kubernetes_clusters_and_shows_a_refusal(
        stack: Stack, signed_in: Page, clusters: None, screenshot: Callable[[str], Path], path: str,
        form: str) -> None:
    page = signed_in
    page.goto(f"{stack.http_url}{path}")
    select = page.locator(f"{form} #f-cluster")
    expect(select).to_have_value("")  # here, unless chosen
    expect(select.locator("option")).to_have_text(["Here (this machine)",
                                                   "k8s-serve (kubernetes, namespace ml)"])
    page.locator(f"{form} [name=name]").fill("on-cluster")
    if form == "#inference-form":
        page.locator(f"{form} [name=model]").fill("iris@1")
    select.select_option("k8s-serve")
    page.locator(f"{form} button[type=submit]").click()
    expect(page.locator("#f-cluster-error")).to_contain_text(
        "KServe reads the model files from the S3 blob store")
    expect(page.locator("#f-cluster")).to_have_attribute("aria-invalid", "true")
    expect(page.locator("#f-cluster")).to_have_value("k8s-serve")  # what was chosen is kept
    screenshot(f"serving-cluster-refused-{form.strip('#')}")


def test_a_kubernetes_clusters_model_servers_account_is_set_and_shown(
        stack: Stack, admin: Client, signed_in: Page) -> None:
    kubeconfig = ('{"apiVersion": "v1", "kind": "Config", "clusters": [{"name": "c", "cluster": '
                  '{"server": "https://k8s.invalid"}}]}')  # one line of JSON: YAML, as a token credential
    admin.call(admin.saved_credentials.SaveCredential, cpb.SaveCredentialRequest(
        credential=cpb.Credential(name="kube", type=cpb.CREDENTIAL_TYPE_TOKEN, host="k8s.invalid"),
        secret=kubeconfig))
    page = signed_in
    page.goto(f"{stack.http_url}/clusters/new")
    form = page.locator("#cluster-form")
    form.locator("[name='cluster.kind']").select_option("kubernetes")
    form.locator("[name='cluster.name']").fill("k8s-sa")
    form.locator("[name='cluster.namespace']").fill("ml")
    form.locator("[name='cluster.service_account']").fill("kserve-s3")
    form.locator("[name='cluster.kubeconfig_credential']").select_option("kube")
    form.locator("button[type=submit]").click()
    expect(page).to_have_url(re.compile(r"/clusters/k8s-sa$"))
    expect(page.locator("#service-account")).to_have_text("kserve-s3")
    found = admin.call(admin.clusters.GetCluster, pb.GetClusterRequest(name="k8s-sa"))
    assert found.service_account == "kserve-s3"
