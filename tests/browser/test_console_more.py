"""More of the console in the browser: a version exported as an archive, a feature set's
specification, webhooks, publishing with bad input, activity."""

from __future__ import annotations

import re
import tarfile
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from shipyard.client import transfer
from shipyard.client.connection import Client
from shipyard.contracts.gateway.v1 import gateway_pb2
from shipyard.contracts.repo.v1 import repos_pb2
from shipyard.local.harness import Stack

pytestmark = pytest.mark.browser

Shot = Callable[[str], Path]
SPEC = """features:
  - name: age
    type: int64
  - name: income
    type: float64
    selected: false
"""


def _read(archive: tarfile.TarFile, member: tarfile.TarInfo) -> bytes:
    handle = archive.extractfile(member)
    assert handle is not None
    return handle.read()


def test_a_version_exports_as_a_tar_gz_of_its_files(stack: Stack, admin: Client, signed_in: Page,
                                                     tmp_path: Path) -> None:
    admin.call(admin.repos.CreateRepo, repos_pb2.CreateRepoRequest(repo=repos_pb2.Repo(
        kind=repos_pb2.REPO_KIND_DATASET, name="exported", versioning=repos_pb2.VERSIONING_DVS,
        source=repos_pb2.Source(upload=repos_pb2.UploadSource(filename="d")))))
    (tmp_path / "d" / "sub").mkdir(parents=True)
    (tmp_path / "d" / "a.csv").write_text("x,y\n1,2\n")
    (tmp_path / "d" / "sub" / "b.txt").write_text("hello\n")
    # Pushed as the CLI pushes (its own event loop: a thread of its own, beside Playwright's).
    with ThreadPoolExecutor(1) as thread:
        thread.submit(transfer.push, admin, repos_pb2.REPO_KIND_DATASET, "exported", tmp_path / "d",
                      transfer.scan_tree(tmp_path / "d")).result()
    page = signed_in
    page.goto(f"{stack.http_url}/repos/datasets/exported/versions/1")
    with page.expect_download() as download_info:
        page.locator("#export").click()
    download = download_info.value
    assert download.suggested_filename == "exported-v1.tar.gz"
    saved = tmp_path / "exported.tar.gz"
    download.save_as(saved)
    with tarfile.open(saved) as archive:
        files = {m.name: _read(archive, m) for m in archive.getmembers() if m.isfile()}
    assert files == {"a.csv": b"x,y\n1,2\n", "sub/b.txt": b"hello\n"}


def test_a_feature_sets_specification_becomes_its_next_version(stack: Stack, signed_in: Page,
                                                                screenshot: Shot) -> None:
    page = signed_in
    page.goto(f"{stack.http_url}/repos/featuresets/new")
    page.locator("#f-name").fill("customer-features")
    page.locator("#f-source").select_option("none")
    page.locator("#repo-form button[type=submit]").click()
    expect(page).to_have_url(f"{stack.http_url}/repos/featuresets/customer-features")
    page.locator("#spec-yaml").fill("features: [not, a, list of features")
    page.locator("#spec-form button[type=submit]").click()
    expect(page.locator("#page-error")).to_be_visible()
    page.goto(f"{stack.http_url}/repos/featuresets/customer-features")
    page.locator("#spec-yaml").fill(SPEC)
    page.locator("#spec-form button[type=submit]").click()
    expect(page).to_have_url(re.compile(r"/repos/featuresets/customer-features/versions/2$"))
    expect(page.locator("#files")).to_contain_text("featurespec.yaml")
    screenshot("featureset-version")


def test_webhooks_are_added_with_inline_errors_and_listed(stack: Stack, signed_in: Page,
                                                          screenshot: Shot) -> None:
    page = signed_in
    page.goto(f"{stack.http_url}/webhooks")
    expect(page.locator(".empty")).to_contain_text("No webhooks")
    page.locator("#f-name").fill("ci-hook")
    page.locator("#f-url").fill("ftp://example.com/hook")
    page.locator("#f-secret").fill("a-secret-of-enough-length")
    page.locator("#webhook-form button[type=submit]").click()
    expect(page.locator("#form-error")).to_contain_text("url")
    expect(page.locator("#f-secret")).to_have_value("")  # a secret is never sent back
    page.locator("#f-url").fill("http://127.0.0.1:9/hook")
    page.locator("#f-types").fill("io.shipyard.run.>")
    page.locator("#f-secret").fill("a-secret-of-enough-length")
    page.locator("#webhook-form button[type=submit]").click()
    expect(page).to_have_url(f"{stack.http_url}/webhooks/ci-hook")
    expect(page.locator("#webhook-facts")).to_contain_text("io.shipyard.run.>")
    screenshot("webhook")
    page.once("dialog", lambda dialog: dialog.accept())
    page.locator("button", has_text="Delete").click()
    expect(page).to_have_url(f"{stack.http_url}/webhooks")
    expect(page.locator('#webhooks tr[data-webhook="ci-hook"]')).to_have_count(0)


def test_publishing_a_version_that_does_not_exist_is_refused_inline(stack: Stack, signed_in: Page) -> None:
    page = signed_in
    page.goto(f"{stack.http_url}/catalog/publish?model=no-such-model@1")
    page.locator("#f-name").fill("nothing")
    page.locator("#publish-form button[type=submit]").click()
    expect(page.locator("#form-error")).to_contain_text("no-such-model")
    expect(page.locator("#f-model")).to_have_value("no-such-model@1")


def test_activity_lists_what_happened_and_filters_by_kind(stack: Stack, signed_in: Page,
                                                          screenshot: Shot) -> None:
    page = signed_in
    page.goto(f"{stack.http_url}/activity")
    expect(page.locator("#activity-rows tr").first).to_be_visible()
    page.locator("#type").select_option("repo")
    expect(page).to_have_url(re.compile(r"/activity\?type=repo"))
    expect(page.locator("#activity-rows")).to_contain_text("io.shipyard.repo.")
    screenshot("activity")


def test_a_data_scientist_sees_no_catalog_and_is_refused_it(stack: Stack, admin: Client, page: Page) -> None:
    dana = admin.call(admin.identity.CreateUser, gateway_pb2.CreateUserRequest(user=gateway_pb2.User(
        name="console-dana", roles=[gateway_pb2.ROLE_DATA_SCIENTIST])))
    page.goto(f"{stack.http_url}/login")
    page.locator("#token").fill(dana.token)
    page.locator("#login button[type=submit]").click()
    expect(page.locator("#who")).to_contain_text("console-dana")
    expect(page.locator("nav a", has_text="Runs")).to_be_visible()
    expect(page.locator("nav a", has_text="Model Catalog")).to_have_count(0)
    expect(page.locator("nav a", has_text="Deployments")).to_have_count(0)
    answer = page.goto(f"{stack.http_url}/catalog")
    assert answer is not None and answer.status == 403
    expect(page.locator("#page-error")).to_contain_text("ListCatalog needs one of the roles")
