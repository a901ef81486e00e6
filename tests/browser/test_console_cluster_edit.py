"""Editing a cluster in the console: an operator's "Edit" on a cluster's page opens the form prefilled
with its values (its name and kind fixed, the kind's own fields shown), a refused value is shown by its
field, and a saved change shows on the page; a data scientist has no Edit. The login node is made up
(``.invalid`` never resolves): no run goes there."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from shipyard.client.connection import Client
from shipyard.contracts.gateway.v1 import gateway_pb2
from shipyard.contracts.run.v1 import clusters_pb2 as pb
from shipyard.local.harness import Stack

pytestmark = pytest.mark.browser

HOST = "login.hpc.invalid"


def test_an_operator_edits_a_cluster_from_its_page_and_sees_a_refusal_by_its_field(
        stack: Stack, admin: Client, signed_in: Page, screenshot: Callable[[str], Path]) -> None:
    admin.call(admin.clusters.AddCluster, pb.AddClusterRequest(cluster=pb.Cluster(
        name="hpc-edit", kind=pb.CLUSTER_KIND_SLURM, host=HOST, ssh_port=22, ssh_user="svc",
        work_dir="/scratch/shipyard", partition="gpu", gpus=4)))
    page = signed_in
    page.goto(f"{stack.http_url}/clusters/hpc-edit")
    page.locator("#edit-cluster").click()
    expect(page).to_have_url(re.compile(r"/clusters/hpc-edit/edit$"))
    form = page.locator("#cluster-form")
    expect(form.locator("[name='cluster.name']")).to_have_value("hpc-edit")
    expect(form.locator("[name='cluster.name']")).to_have_attribute("readonly", "")
    expect(form.locator("[name='cluster.kind'] option")).to_have_count(1)  # its kind alone
    expect(form.locator("[name='cluster.partition']")).to_have_value("gpu")
    expect(form.locator("[name='cluster.host']")).to_have_value(HOST)
    expect(form.locator("[name='cluster.gpus']")).to_have_value("4")
    expect(form.locator("[name='cluster.namespace']")).to_be_hidden()  # Kubernetes' fields are not shown

    form.locator("[name='cluster.partition']").fill("a100")
    form.locator("[name='cluster.work_dir']").fill("scratch")
    form.locator("button[type=submit]").click()
    expect(page.locator("#f-cluster\\.work_dir")).to_have_attribute("aria-invalid", "true")
    expect(page.locator("#f-cluster\\.work_dir-error")).to_contain_text("absolute")
    expect(page.locator("[name='cluster.partition']")).to_have_value("a100")  # what was typed stays
    screenshot("cluster-edit-error")

    page.locator("[name='cluster.work_dir']").fill("/data/shipyard")
    page.locator("#cluster-form button[type=submit]").click()
    expect(page).to_have_url(re.compile(r"/clusters/hpc-edit$"))
    facts = page.locator("#cluster-facts")
    expect(facts).to_contain_text("a100")
    expect(facts).to_contain_text("/data/shipyard")
    stored = admin.call(admin.clusters.GetCluster, pb.GetClusterRequest(name="hpc-edit"))
    assert (stored.partition, stored.work_dir, stored.host, stored.gpus) == (
        "a100", "/data/shipyard", HOST, 4)


def test_a_data_scientist_has_no_edit(stack: Stack, admin: Client, page: Page) -> None:
    admin.call(admin.clusters.AddCluster, pb.AddClusterRequest(cluster=pb.Cluster(
        name="hpc-seen", kind=pb.CLUSTER_KIND_LSF, host=HOST, ssh_port=22, ssh_user="svc",
        work_dir="/scratch", queue="normal")))
    made = admin.call(admin.identity.CreateUser, gateway_pb2.CreateUserRequest(user=gateway_pb2.User(
        name="erin", roles=[gateway_pb2.ROLE_DATA_SCIENTIST])))
    page.goto(f"{stack.http_url}/login")
    page.locator("#token").fill(made.token)
    page.locator("#login button[type=submit]").click()
    expect(page.locator("#who")).to_be_visible()
    page.goto(f"{stack.http_url}/clusters/hpc-seen")
    expect(page.locator("#cluster-facts")).to_contain_text("normal")
    expect(page.locator("#edit-cluster")).to_have_count(0)
    response = page.goto(f"{stack.http_url}/clusters/hpc-seen/edit")
    assert response is not None and response.status == 403
