"""What a new user met in the console in the first hour (issue 16): runs and versions by name with
links, the version a run made, the run's notes, the dashboard's tiles by role, the lineage graph's
legend and colours, and wording."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from shipyard.client.connection import Client
from shipyard.contracts.gateway.v1 import gateway_pb2
from shipyard.contracts.repo.v1 import repos_pb2
from shipyard.contracts.run.v1 import runs_pb2
from shipyard.local.harness import Stack, wait_for

pytestmark = pytest.mark.browser

Shot = Callable[[str], Path]
MODEL = "named-model"


def _ended(client: Client, name: str) -> runs_pb2.Run:
    ended = (runs_pb2.RUN_STATUS_COMPLETE, runs_pb2.RUN_STATUS_FAILED, runs_pb2.RUN_STATUS_STOPPED)
    return wait_for(lambda: (run := client.call(client.runs.GetRun, runs_pb2.GetRunRequest(name=name))).status
                    in ended and run, 60, f"{name} to end")


def _version(client: Client, number: int) -> repos_pb2.Version:
    return client.call(client.repos.GetVersion, repos_pb2.GetVersionRequest(
        kind=repos_pb2.REPO_KIND_MODEL, repo=MODEL, number=number))


@pytest.fixture(scope="module")
def made(admin: Client) -> tuple[runs_pb2.Run, runs_pb2.Run]:
    """Run ``maker`` wrote version 2 of the model, run ``reader`` read it."""
    admin.call(admin.repos.CreateRepo, repos_pb2.CreateRepoRequest(repo=repos_pb2.Repo(
        kind=repos_pb2.REPO_KIND_MODEL, name=MODEL, versioning=repos_pb2.VERSIONING_DVS,
        source=repos_pb2.Source(none=repos_pb2.NoSource()))))
    admin.call(admin.runs.SubmitRun, runs_pb2.SubmitRunRequest(run=runs_pb2.Run(
        name="maker", command='echo weights > "$SHIPYARD_OUTPUT/model.txt"', kind=runs_pb2.RUN_KIND_TRAINING,
        outputs=[runs_pb2.RunOutputTarget(repo_kind="model", repo=MODEL)])))
    maker = _ended(admin, "maker")
    assert maker.status == runs_pb2.RUN_STATUS_COMPLETE, maker.status_reason
    wait_for(lambda: _version(admin, 2), 30, "the version the run made")
    admin.call(admin.runs.SubmitRun, runs_pb2.SubmitRunRequest(run=runs_pb2.Run(
        name="reader", command="true", kind=runs_pb2.RUN_KIND_TRAINING,
        inputs=[runs_pb2.RunInput(repo_kind="model", repo=MODEL, version=2, mount_path="/mnt/model")])))
    reader = _ended(admin, "reader")
    wait_for(lambda: _version(admin, 2).used_by_runs, 30, "the version to record its reader")
    return maker, reader


def test_a_finished_run_links_the_version_it_made_and_shows_its_notes(
        stack: Stack, made: tuple[runs_pb2.Run, runs_pb2.Run], signed_in: Page, screenshot: Shot) -> None:
    page = signed_in
    page.goto(f"{stack.http_url}/runs/maker")
    output = page.locator("#run-repos tr", has_text=f"model {MODEL}")
    expect(output).not_to_contain_text("next")
    expect(output.locator("a")).to_have_text(f"{MODEL}@2")
    expect(output.locator("a")).to_have_attribute("href", f"/repos/models/{MODEL}/versions/2")
    expect(page.locator("#run-notes")).to_contain_text("isolated")  # how its inputs and outputs were mounted
    screenshot("run-made-version")


def test_a_version_names_and_links_the_runs_that_made_and_read_it(
        stack: Stack, made: tuple[runs_pb2.Run, runs_pb2.Run], signed_in: Page) -> None:
    maker, reader = made
    page = signed_in
    page.goto(f"{stack.http_url}/repos/models/{MODEL}/versions/2")
    expect(page.locator("#made-by a")).to_have_text("maker")
    expect(page.locator("#made-by a")).to_have_attribute("href", "/runs/maker")
    expect(page.locator("#used-by a")).to_have_text("reader")
    assert maker.id not in page.content() and reader.id not in page.content()
    page.goto(f"{stack.http_url}/repos/models/{MODEL}")
    expect(page.locator('#versions tr[data-version="2"] a', has_text="maker")).to_have_attribute(
        "href", "/runs/maker")
    assert maker.id not in page.content()


def test_a_refused_delete_names_the_runs_that_read_the_repo(
        stack: Stack, made: tuple[runs_pb2.Run, runs_pb2.Run], signed_in: Page) -> None:
    _, reader = made
    page = signed_in
    page.on("dialog", lambda dialog: dialog.accept())
    page.goto(f"{stack.http_url}/repos/models/{MODEL}")
    page.locator("#confirm").fill(MODEL)
    page.locator("#delete-form button[type=submit]").click()
    expect(page.locator("#form-error")).to_contain_text("read by run reader")
    expect(page.locator("#read-by a")).to_have_attribute("href", "/runs/reader")
    assert reader.id not in page.locator("#form-error").inner_text()


def test_a_stopped_run_says_stopped_once(stack: Stack, admin: Client, signed_in: Page) -> None:
    admin.call(admin.runs.SubmitRun, runs_pb2.SubmitRunRequest(run=runs_pb2.Run(
        name="halted", command="sleep 120", kind=runs_pb2.RUN_KIND_TRAINING)))
    wait_for(lambda: admin.call(admin.runs.GetRun, runs_pb2.GetRunRequest(name="halted")).status
             == runs_pb2.RUN_STATUS_RUNNING, 60, "halted to run")
    admin.call(admin.runs.StopRun, runs_pb2.StopRunRequest(name="halted"))
    assert _ended(admin, "halted").status == runs_pb2.RUN_STATUS_STOPPED
    page = signed_in
    page.goto(f"{stack.http_url}/runs/halted")
    expect(page.locator("#run-status")).to_have_text("stopped")
    expect(page.locator("#run-summary dd").first).to_have_text("stopped")


def test_an_uploaded_dataset_says_where_it_came_from_once(stack: Stack, admin: Client,
                                                          signed_in: Page) -> None:
    admin.call(admin.repos.CreateRepo, repos_pb2.CreateRepoRequest(repo=repos_pb2.Repo(
        kind=repos_pb2.REPO_KIND_DATASET, name="uploaded-data", versioning=repos_pb2.VERSIONING_DVS,
        source=repos_pb2.Source(upload=repos_pb2.UploadSource(filename="d")))))
    page = signed_in
    page.goto(f"{stack.http_url}/repos/datasets/uploaded-data")
    expect(page.locator("#repo-facts dd").first).to_have_text("upload")


def test_the_dashboard_shows_a_data_scientist_no_catalog_tiles(stack: Stack, admin: Client, page: Page,
                                                              screenshot: Shot) -> None:
    dora = admin.call(admin.identity.CreateUser, gateway_pb2.CreateUserRequest(user=gateway_pb2.User(
        name="dashboard-dora", roles=[gateway_pb2.ROLE_DATA_SCIENTIST])))
    page.goto(f"{stack.http_url}/login")
    page.locator("#token").fill(dora.token)
    page.locator("#login button[type=submit]").click()
    expect(page.locator('[data-count="complete"]')).to_be_visible()
    expect(page.locator('[data-count="deployments"]')).to_have_count(0)
    expect(page.locator('[data-count="published"]')).to_have_count(0)
    screenshot("dashboard-data-scientist")


def test_the_dashboard_shows_an_operator_the_catalog_tiles(stack: Stack, signed_in: Page) -> None:
    expect(signed_in.locator('[data-count="deployments"]')).to_be_visible()
    expect(signed_in.locator('[data-count="published"]')).to_be_visible()


def test_the_lineage_graph_has_a_legend_and_draws_deployments_in_no_alarm_colour(
        stack: Stack, made: tuple[runs_pb2.Run, runs_pb2.Run], signed_in: Page, screenshot: Shot) -> None:
    page = signed_in
    page.goto(f"{stack.http_url}/lineage/run/maker")
    expect(page.locator("#lineage-graph")).to_have_attribute("data-ready", "true")
    legend = page.locator("#lineage-legend")
    expect(legend.locator('[data-kind="run"]')).to_have_text("run")
    expect(legend.locator('[data-kind="model"]')).to_have_text("model")
    screenshot("lineage-legend")
    # A deployment's swatch (the colour the graph reads) is no red: red means failed elsewhere.
    colour = page.evaluate("""() => {
        const swatch = document.createElement("span");
        swatch.className = "swatch k-deployment";
        document.getElementById("lineage-legend").appendChild(swatch);
        return getComputedStyle(swatch).backgroundColor; }""")
    red, green, blue = (int(c) for c in re.findall(r"\d+", colour)[:3])
    assert not (red > 150 and red > 2 * max(green, blue)), colour


def test_compare_shows_run_names_as_they_are_spelt(stack: Stack, admin: Client, signed_in: Page) -> None:
    for name in ("spelt-a", "spelt-b"):
        admin.call(admin.runs.SubmitRun, runs_pb2.SubmitRunRequest(run=runs_pb2.Run(
            name=name, command="echo loss=0.5", kind=runs_pb2.RUN_KIND_TRAINING)))
    for name in ("spelt-a", "spelt-b"):
        _ended(admin, name)
    page = signed_in
    page.goto(f"{stack.http_url}/runs/compare?name=spelt-a&name=spelt-b")
    heads = page.locator("#run-compare thead th a")
    expect(heads).to_have_text(["spelt-a", "spelt-b"], use_inner_text=True)  # as rendered, not in capitals
    legend = page.locator('#compare-charts figure[data-metric="loss"] .u-legend')
    expect(legend).to_contain_text("spelt-a", use_inner_text=True)
