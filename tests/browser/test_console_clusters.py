"""The console's clusters: the Clusters page (operators add and delete them, everyone sees them and signs
in where a cluster needs their own login), the run form's Target Cluster with its per-kind fields, and
the login popup. The login nodes are made up (``.invalid`` never resolves): no cluster runs here, and a
run sent to one may fail to reach it; the tests look only at what the console did."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from playwright.sync_api import Browser, Page, expect

from shipyard.client.connection import Client, ClientError
from shipyard.contracts.gateway.v1 import gateway_pb2
from shipyard.contracts.repo.v1 import credentials_pb2 as cpb
from shipyard.contracts.run.v1 import clusters_pb2 as pb
from shipyard.contracts.run.v1 import runs_pb2
from shipyard.local.harness import Stack

pytestmark = pytest.mark.browser

HOST = "login.hpc.invalid"


def _private_key() -> str:
    key = Ed25519PrivateKey.generate()
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH,
                             serialization.NoEncryption()).decode()


@pytest.fixture(scope="module")
def scientist(stack: Stack, admin: Client) -> Iterator[Client]:
    """A data scientist's client (their token signs them in to the console too)."""
    made = admin.call(admin.identity.CreateUser, gateway_pb2.CreateUserRequest(user=gateway_pb2.User(
        name="dana", roles=[gateway_pb2.ROLE_DATA_SCIENTIST])))
    client = stack.client(made.token)
    yield client
    client.close()


@pytest.fixture(scope="module")
def shared_cluster(admin: Client) -> pb.Cluster:
    """A Slurm cluster where each user signs in, added through the API."""
    return admin.call(admin.clusters.AddCluster, pb.AddClusterRequest(cluster=pb.Cluster(
        name="hpc-shared", kind=pb.CLUSTER_KIND_SLURM, host=HOST, ssh_port=22, ssh_user="svc",
        work_dir="/scratch/shipyard", partition="gpu", login_required=True, gpus=4)))


def _signed_out(client: Client, cluster: str) -> None:
    """The client's user has no login to ``cluster`` (whatever an earlier test left)."""
    try:
        client.call(client.saved_credentials.DeleteCredential,
                    cpb.DeleteCredentialRequest(name=f"cluster-{cluster}"))
    except ClientError as exc:
        if exc.code != "NOT_FOUND":
            raise


def _sign_in(stack: Stack, page: Page, client: Client) -> Page:
    page.goto(f"{stack.http_url}/login")
    page.locator("#token").fill(client.credentials.token)
    page.locator("#login button[type=submit]").click()
    expect(page.locator("#who")).to_be_visible()
    return page


def test_an_operator_adds_a_slurm_cluster_with_the_kinds_own_fields(
        stack: Stack, admin: Client, signed_in: Page, screenshot: Callable[[str], Path]) -> None:
    key = cpb.Credential(name="hpc-key", type=cpb.CREDENTIAL_TYPE_SSH_KEY, host=HOST, username="svc")
    admin.call(admin.saved_credentials.SaveCredential,
               cpb.SaveCredentialRequest(credential=key, secret=_private_key()))
    page = signed_in
    page.locator("nav a", has_text="Clusters").click()
    expect(page).to_have_url(re.compile(r"/clusters$"))
    expect(page.locator("#no-clusters")).to_be_visible()
    page.locator("#add-cluster").click()
    form = page.locator("#cluster-form")
    expect(form.locator("#kubernetes")).to_be_hidden()
    expect(form.locator("[name='cluster.queue']")).to_be_hidden()
    # The fields' own attributes are attributes, not text (they were escaped into the tag once).
    expect(form.locator("[name='cluster.ssh_port']")).to_have_attribute("max", "65535")
    form.locator("[name='cluster.name']").fill("hpc")
    form.locator("[name='cluster.description']").fill("The <b>GPU</b> partition")
    form.locator("[name='cluster.host']").fill(HOST)
    form.locator("[name='cluster.ssh_user']").fill("svc")
    form.locator("[name='cluster.credential']").select_option("hpc-key")
    form.locator("[name='cluster.partition']").fill("gpu")
    form.locator("[name='cluster.work_dir']").fill("scratch/shipyard")
    form.locator("[name='cluster.login_required']").check()
    form.locator("[name='cluster.gpus']").fill("4")
    form.locator("button[type=submit]").click()

    work_dir = page.locator("#f-cluster\\.work_dir")
    expect(work_dir).to_have_attribute("aria-invalid", "true")
    expect(page.locator("#f-cluster\\.work_dir-error")).to_contain_text("cluster.work_dir")
    expect(form.locator("[name='cluster.partition']")).to_have_value("gpu")  # what was typed is kept
    expect(form.locator("[name='cluster.credential']")).to_have_value("hpc-key")
    screenshot("cluster-form-error")
    with pytest.raises(ClientError):
        admin.call(admin.clusters.GetCluster, pb.GetClusterRequest(name="hpc"))

    work_dir.fill("/scratch/shipyard")
    form.locator("button[type=submit]").click()
    expect(page).to_have_url(re.compile(r"/clusters/hpc$"))
    facts = page.locator("#cluster-facts")
    expect(facts).to_contain_text(HOST)
    expect(facts).to_contain_text("The <b>GPU</b> partition")  # text, not markup
    expect(page.locator("#host-key")).to_contain_text("not pinned yet")
    added = admin.call(admin.clusters.GetCluster, pb.GetClusterRequest(name="hpc"))
    assert (added.kind, added.host, added.ssh_port, added.ssh_user, added.credential, added.partition,
            added.work_dir, added.login_required, added.gpus) == (
        pb.CLUSTER_KIND_SLURM, HOST, 22, "svc", "hpc-key", "gpu", "/scratch/shipyard", True, 4)
    screenshot("cluster")

    page.goto(f"{stack.http_url}/clusters/new")
    form.locator("[name='cluster.kind']").select_option("kubernetes")
    expect(form.locator("#kubernetes")).to_be_visible()
    expect(form.locator("#login-node")).to_be_hidden()
    form.locator("[name='cluster.name']").fill("k8s-prod")
    form.locator("[name='cluster.namespace']").fill("ml")
    form.locator("button[type=submit]").click()
    expect(page.locator("#f-cluster\\.kubeconfig_credential")).to_have_attribute("aria-invalid", "true")
    expect(page.locator("#f-cluster\\.kubeconfig_credential-error")).to_contain_text("kubeconfig")
    page.wait_for_load_state()
    expect(form.locator("#login-node")).to_be_hidden()  # the kind chosen is kept, with its fields
    screenshot("cluster-form-kubernetes")
    form.locator("[name='cluster.kind']").select_option("lsf")
    expect(form.locator("[name='cluster.queue']")).to_be_visible()
    expect(form.locator("[name='cluster.partition']")).to_be_hidden()

    page.goto(f"{stack.http_url}/clusters")
    row = page.locator("tr[data-cluster='hpc']")
    expect(row).to_contain_text("slurm")
    expect(row).to_contain_text("yes")
    expect(row.locator("a[data-cluster-login]")).to_have_text("Sign in")
    screenshot("clusters")


def test_deleting_a_cluster_asks_and_removes_it(stack: Stack, admin: Client, signed_in: Page) -> None:
    admin.call(admin.clusters.AddCluster, pb.AddClusterRequest(cluster=pb.Cluster(
        name="old-lsf", kind=pb.CLUSTER_KIND_LSF, host=HOST, ssh_port=22, ssh_user="svc",
        work_dir="/scratch", queue="normal")))
    page = signed_in
    page.goto(f"{stack.http_url}/clusters/old-lsf")
    expect(page.locator("#cluster-facts")).to_contain_text("normal")
    page.once("dialog", lambda dialog: dialog.accept())
    page.locator("#delete-cluster button").click()
    expect(page).to_have_url(re.compile(r"/clusters$"))
    expect(page.locator("tr[data-cluster='old-lsf']")).to_have_count(0)


def test_a_data_scientist_signs_in_to_a_cluster_from_its_page(
        stack: Stack, scientist: Client, shared_cluster: pb.Cluster, page: Page,
        screenshot: Callable[[str], Path]) -> None:
    _signed_out(scientist, shared_cluster.name)
    _sign_in(stack, page, scientist)
    page.locator("nav a", has_text="Clusters").click()
    page.wait_for_load_state()  # the popup's script is in: a click before it opens the login page
    expect(page.locator("#add-cluster")).to_have_count(0)
    row = page.locator(f"tr[data-cluster='{shared_cluster.name}']")
    expect(row).to_contain_text(HOST)
    row.locator("a[data-cluster-login]").click()
    popup = page.locator("#cluster-login")
    expect(popup).to_be_visible()
    expect(popup.locator("[data-cluster-name]")).to_have_text(shared_cluster.name)
    popup.locator("[name='credential.username']").fill("dana-hpc")
    popup.locator("[name='secret']").fill("not a key")
    popup.locator("button[type=submit]").click()
    expect(popup.locator("#f-secret")).to_have_attribute("aria-invalid", "true")
    expect(popup.locator("#f-secret-error")).to_contain_text("private key")
    expect(popup.locator("[name='secret']")).to_have_value("")  # a secret is never sent back
    screenshot("cluster-login-popup-error")

    popup.locator("[name='secret']").fill(_private_key())
    popup.locator("button[type=submit]").click()
    expect(row.locator(".signed-in")).to_contain_text("signed in as dana-hpc")
    saved = scientist.call(scientist.saved_credentials.ListCredentials, cpb.ListCredentialsRequest())
    login = next(c for c in saved.credentials if c.name == f"cluster-{shared_cluster.name}")
    assert (login.type, login.host, login.username) == (cpb.CREDENTIAL_TYPE_SSH_KEY, HOST, "dana-hpc")

    row.locator("button", has_text="Sign out").click()
    expect(row.locator("a[data-cluster-login]")).to_be_visible()
    saved = scientist.call(scientist.saved_credentials.ListCredentials, cpb.ListCredentialsRequest())
    assert f"cluster-{shared_cluster.name}" not in [c.name for c in saved.credentials]


def test_a_run_goes_to_a_cluster_after_the_login_popup(
        stack: Stack, scientist: Client, shared_cluster: pb.Cluster, page: Page,
        screenshot: Callable[[str], Path]) -> None:
    name = shared_cluster.name
    _signed_out(scientist, shared_cluster.name)
    _sign_in(stack, page, scientist)
    page.goto(f"{stack.http_url}/runs/new")
    form = page.locator("#run-form")
    form.locator("[name=name]").fill("on-the-cluster")
    form.locator("[name=command]").fill("python3 -c 'print(1)'")
    expect(form.locator("[name=image]")).to_have_attribute("list", "image-names")
    page.locator("#tab-configuration").click()
    expect(form.locator("[name=time_limit]")).to_be_hidden()  # local: no time limit nor account
    form.locator("[name=cluster]").select_option(name)
    popup = page.locator("#cluster-login")
    expect(popup).to_be_visible()  # not signed in: the popup asks
    popup.locator("button", has_text="Cancel").click()
    expect(popup).to_be_hidden()
    expect(page.locator("#cluster-note")).to_contain_text("needs your own login")
    form.locator("[name=time_limit]").fill("2:00:00")
    form.locator("[name=account]").fill("ml")
    form.locator("button[type=submit]").click()
    # Refused by run-svc, beside the field it names, with what was typed kept.
    expect(page.locator("#f-cluster")).to_have_attribute("aria-invalid", "true")
    expect(page.locator("#f-cluster-error")).to_contain_text("has not signed in")
    expect(form.locator("[name=time_limit]")).to_have_value("2:00:00")

    page.wait_for_load_state()
    page.locator("#cluster-sign-in").click()
    expect(popup).to_be_visible()
    popup.locator("[name='credential.username']").fill("dana-hpc")
    popup.locator("[name='secret']").fill(_private_key())
    screenshot("run-form-login-popup")
    popup.locator("button[type=submit]").click()
    expect(popup).to_be_hidden()
    expect(page.locator("#cluster-note")).to_contain_text("signed in as dana-hpc")
    expect(page.locator("#f-cluster-error")).to_have_count(0)  # the refusal no longer holds
    expect(form.locator("[name=account]")).to_have_value("ml")  # the form goes on where it was
    screenshot("run-form-cluster")
    form.locator("button[type=submit]").click()
    expect(page).to_have_url(re.compile(r"/runs/on-the-cluster$"))
    expect(page.locator("#run-cluster")).to_contain_text(f"{name} · time limit 2:00:00 · account ml")
    run = scientist.call(scientist.runs.GetRun, runs_pb2.GetRunRequest(name="on-the-cluster"))
    assert (run.cluster, run.time_limit, run.account) == (name, "2:00:00", "ml")


def test_choosing_local_sends_no_time_limit_and_a_local_run_stays_local(
        stack: Stack, admin: Client, shared_cluster: pb.Cluster, signed_in: Page) -> None:
    page = signed_in
    page.goto(f"{stack.http_url}/runs/new?cluster={shared_cluster.name}")
    form = page.locator("#run-form")
    form.locator("[name=name]").fill("stays-local")
    form.locator("[name=command]").fill("true")
    page.locator("#tab-configuration").click()
    expect(form.locator("[name=cluster]")).to_have_value(shared_cluster.name)
    form.locator("[name=time_limit]").fill("10")
    form.locator("[name=cluster]").select_option("")
    expect(form.locator("[name=time_limit]")).to_be_hidden()
    form.locator("button[type=submit]").click()
    expect(page).to_have_url(re.compile(r"/runs/stays-local$"))
    run = admin.call(admin.runs.GetRun, runs_pb2.GetRunRequest(name="stays-local"))
    assert (run.cluster, run.time_limit) == ("", "")


def test_without_javascript_the_login_is_a_page_that_goes_back_to_the_run_form(
        stack: Stack, scientist: Client, shared_cluster: pb.Cluster, browser: Browser) -> None:
    name = shared_cluster.name
    context = browser.new_context(java_script_enabled=False)
    try:
        _signed_out(scientist, name)
        page = _sign_in(stack, context.new_page(), scientist)
        page.goto(f"{stack.http_url}/runs/new?cluster={name}")
        expect(page.locator("[name=time_limit]")).to_be_visible()  # every field shows; the server checks
        page.locator("#cluster-sign-in").click()
        expect(page).to_have_url(re.compile(rf"/clusters/{name}/login\?next="))
        form = page.locator("#cluster-login-form")
        form.locator("[name='credential.username']").fill("dana-nojs")
        form.locator("[name='secret']").fill(_private_key())
        form.locator("button[type=submit]").click()
        expect(page).to_have_url(re.compile(rf"/runs/new\?cluster={name}$"))
        expect(page.locator("[name=cluster]")).to_have_value(name)
        expect(page.locator("#cluster-note")).to_contain_text("signed in as dana-nojs")
        page.goto(f"{stack.http_url}/clusters/{name}")
        page.locator("#cluster-facts button", has_text="Sign out").click()
        expect(page.locator("#cluster-facts a[data-cluster-login]")).to_be_visible()
    finally:
        context.close()


def test_an_operator_adds_a_cluster_on_its_login_node_without_the_ssh_fields(
        stack: Stack, admin: Client, signed_in: Page, screenshot: Callable[[str], Path]) -> None:
    page = signed_in
    page.goto(f"{stack.http_url}/clusters/new")
    form = page.locator("#cluster-form")
    expect(form.locator("[name='cluster.host']")).to_be_visible()
    form.locator("[name='cluster.on_login_node']").check()
    for name in ("host", "ssh_port", "credential", "ssh_host_key", "login_required"):
        expect(form.locator(f"[name='cluster.{name}']")).to_be_hidden()
    form.locator("[name='cluster.name']").fill("here")
    form.locator("[name='cluster.ssh_user']").fill("svc")
    form.locator("[name='cluster.work_dir']").fill("/scratch/shipyard")
    screenshot("cluster-form-on-login-node")
    form.locator("button[type=submit]").click()
    expect(page).to_have_url(re.compile(r"/clusters/here$"))
    expect(page.locator("#on-login-node")).to_contain_text("no SSH")
    expect(page.locator("#cluster-facts")).to_contain_text("svc")
    expect(page.locator("#host-key")).to_have_count(0)
    added = admin.call(admin.clusters.GetCluster, pb.GetClusterRequest(name="here"))
    assert (added.on_login_node, added.host, added.ssh_port, added.ssh_user) == (True, "", 0, "svc")
    page.goto(f"{stack.http_url}/clusters")
    expect(page.locator("tr[data-cluster='here']")).to_contain_text("run-svc's own login node")
    page.goto(f"{stack.http_url}/clusters/new")
    form.locator("[name='cluster.on_login_node']").check()
    form.locator("[name='cluster.on_login_node']").uncheck()  # back to SSH: its fields again
    expect(form.locator("[name='cluster.host']")).to_be_visible()
    expect(form.locator("[name='cluster.host']")).to_be_enabled()


REST_URL = "https://slurm.hpc.invalid:6820"


@pytest.fixture(scope="module")
def rest_cluster(admin: Client) -> pb.Cluster:
    """A Slurm cluster reached through slurmrestd where each user signs in with a JWT (added through the
    API)."""
    return admin.call(admin.clusters.AddCluster, pb.AddClusterRequest(cluster=pb.Cluster(
        name="hpc-jwt", kind=pb.CLUSTER_KIND_SLURM, slurmrestd_url=REST_URL, ssh_user="svc",
        work_dir="/scratch/shipyard", login_required=True)))


def test_an_operator_adds_a_slurmrestd_cluster_without_the_ssh_fields(
        stack: Stack, admin: Client, signed_in: Page, screenshot: Callable[[str], Path]) -> None:
    for name, kind, secret in (("svc-key", cpb.CREDENTIAL_TYPE_SSH_KEY, _private_key()),
                               ("svc-jwt", cpb.CREDENTIAL_TYPE_TOKEN, "eyJ.svc.jwt")):
        admin.call(admin.saved_credentials.SaveCredential, cpb.SaveCredentialRequest(
            credential=cpb.Credential(name=name, type=kind, host=HOST, username="svc"), secret=secret))
    page = signed_in
    page.goto(f"{stack.http_url}/clusters/new")
    form = page.locator("#cluster-form")
    credential = form.locator("[name='cluster.credential']")
    expect(credential.locator("option", has_text="svc-jwt")).to_be_disabled()  # over SSH: SSH keys
    credential.select_option("svc-key")
    form.locator("[name='cluster.slurmrestd_url']").fill(REST_URL)
    for name in ("host", "ssh_port", "ssh_host_key", "on_login_node"):
        expect(form.locator(f"[name='cluster.{name}']")).to_be_hidden()
    expect(form.locator("[name='cluster.login_required']")).to_be_visible()
    expect(credential).to_have_value("")  # the SSH key chosen before no longer applies
    expect(credential.locator("option", has_text="svc-key")).to_be_disabled()
    expect(form.locator("#f-cluster\\.credential-help")).to_contain_text("scontrol token")
    credential.select_option("svc-jwt")
    form.locator("[name='cluster.name']").fill("hpc-rest")
    form.locator("[name='cluster.ssh_user']").fill("svc")
    form.locator("[name='cluster.work_dir']").fill("/scratch/shipyard")
    screenshot("cluster-form-slurmrestd")
    form.locator("button[type=submit]").click()
    expect(page).to_have_url(re.compile(r"/clusters/hpc-rest$"))
    expect(page.locator("#slurmrestd")).to_contain_text(f"slurmrestd at {REST_URL}")
    expect(page.locator("#slurm-user")).to_contain_text("svc")
    expect(page.locator("#host-key")).to_have_count(0)
    added = admin.call(admin.clusters.GetCluster, pb.GetClusterRequest(name="hpc-rest"))
    assert (added.slurmrestd_url, added.host, added.ssh_port) == (REST_URL, "", 0)
    assert added.credential == "svc-jwt"
    page.goto(f"{stack.http_url}/clusters")
    expect(page.locator("tr[data-cluster='hpc-rest']")).to_contain_text(f"slurmrestd {REST_URL}")


def test_a_user_signs_in_to_a_slurmrestd_cluster_with_a_jwt(
        stack: Stack, scientist: Client, rest_cluster: pb.Cluster, page: Page,
        screenshot: Callable[[str], Path]) -> None:
    name = rest_cluster.name
    _signed_out(scientist, name)
    _sign_in(stack, page, scientist)
    page.goto(f"{stack.http_url}/clusters/{name}")
    page.wait_for_load_state()  # the popup's script is in: a click before it opens the login page
    page.locator("#cluster-facts a[data-cluster-login]").click()
    popup = page.locator("#cluster-login")
    expect(popup).to_be_visible()
    expect(popup).to_contain_text(REST_URL)
    expect(popup.locator("label[for='f-secret']")).to_have_text("JWT")
    popup.locator("[name='credential.username']").fill("dana")
    popup.locator("[name='secret']").fill("SLURM_JWT=eyJ.dana.jwt\n")  # as scontrol token prints it
    screenshot("cluster-login-popup-jwt")
    popup.locator("button[type=submit]").click()
    expect(page.locator("#cluster-facts .signed-in")).to_contain_text("signed in as dana")
    saved = scientist.call(scientist.saved_credentials.ListCredentials, cpb.ListCredentialsRequest())
    login = next(c for c in saved.credentials if c.name == f"cluster-{name}")
    assert (login.type, login.host, login.username) == (cpb.CREDENTIAL_TYPE_TOKEN, "slurm.hpc.invalid:6820",
                                                        "dana")
