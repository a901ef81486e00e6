"""The web console in headless Chromium against a real stack: sign-in, the project picker, the
dashboard, projects, runs (live status, logs, metric charts), repos, lineage. Each screen is
saved as a screenshot among the test artifacts."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from shipyard.client.connection import Client, ClientError
from shipyard.contracts.gateway.v1 import gateway_pb2
from shipyard.contracts.repo.v1 import projects_pb2
from shipyard.contracts.run.v1 import runs_pb2
from shipyard.local.harness import Stack, wait_for

pytestmark = pytest.mark.browser

SERVICES = ("nats", "repo-svc", "run-svc", "serving-svc", "lineage-svc")
LIVE_MS = 30_000
Shot = Callable[[str], Path]
METRICS_COMMAND = (
    "for i in 1 2 3 4 5; do echo \"epoch $i: loss=0.$((9 - i)) accuracy=0.$((5 + i))\"; done; echo done"
)


def _project(client: Client, name: str, description: str, leaderboard: bool) -> None:
    client.call(client.projects.CreateProject, projects_pb2.CreateProjectRequest(
        project=projects_pb2.Project(name=name, description=description, leaderboard=leaderboard)))


def _run(client: Client, name: str, command: str, project: str = "") -> None:
    client.call(client.runs.SubmitRun, runs_pb2.SubmitRunRequest(run=runs_pb2.Run(
        name=name, command=command, project=project, kind=runs_pb2.RUN_KIND_TRAINING,
        hyperparameters={"lr": "0.1"})))


def _ended(client: Client, name: str) -> runs_pb2.Run:
    def done() -> bool:
        run = client.call(client.runs.GetRun, runs_pb2.GetRunRequest(name=name))
        return run.status in (runs_pb2.RUN_STATUS_COMPLETE, runs_pb2.RUN_STATUS_FAILED)
    wait_for(done, 60, f"{name} to end")
    return client.call(client.runs.GetRun, runs_pb2.GetRunRequest(name=name))


def test_sign_in_page_says_healthy_and_not_where_anything_is(stack: Stack, page: Page,
                                                            screenshot: Shot) -> None:
    page.goto(stack.http_url)
    expect(page).to_have_title(re.compile("Sign in"))
    expect(page.locator("#overall")).to_have_text("all healthy")
    for name in SERVICES:  # which services run, and where, is for signed-in users
        expect(page.locator(f'#health tr[data-service="{name}"]')).to_have_count(0)
    assert "127.0.0.1:" not in page.content() and "nats://" not in page.content()
    screenshot("sign-in")


def test_a_wrong_token_is_refused_inline_and_nothing_is_shown(stack: Stack, page: Page) -> None:
    page.goto(f"{stack.http_url}/projects")
    expect(page).to_have_url(re.compile(r"/login\?next="))
    page.locator("#token").fill("not-a-real-token")
    page.locator("#login button[type=submit]").click()
    expect(page.locator("#token-error")).to_contain_text("token:")
    expect(page.locator("#token")).to_have_attribute("aria-invalid", "true")
    assert all(c["name"] != "shipyard_token" for c in page.context.cookies())


def test_sign_in_returns_to_the_page_asked_for(stack: Stack, page: Page) -> None:
    page.goto(f"{stack.http_url}/projects")
    page.locator("#token").fill(stack.admin_token())
    page.locator("#login button[type=submit]").click()
    expect(page).to_have_url(f"{stack.http_url}/projects")
    cookie = next(c for c in page.context.cookies() if c["name"] == "shipyard_token")
    assert cookie["httpOnly"] and cookie["sameSite"] == "Strict"
    page.locator("header form[action='/logout'] button").click()
    expect(page).to_have_url(re.compile("/login"))
    page.goto(f"{stack.http_url}/")
    expect(page).to_have_url(re.compile("/login"))


def test_create_a_project_with_bad_input_then_good(stack: Stack, admin: Client, signed_in: Page,
                                                   screenshot: Shot) -> None:
    page = signed_in
    page.locator("nav a", has_text="Projects").click()
    page.locator("a.button", has_text="+ Project").click()
    page.locator("#f-name").fill("bad name!")
    page.locator("#f-description").fill("Images")
    page.locator("#project-form button[type=submit]").click()
    expect(page.locator("#f-name-error")).to_contain_text("project.name")
    expect(page.locator("#f-name")).to_have_attribute("aria-invalid", "true")
    expect(page.locator("#f-description")).to_have_value("Images")  # what was typed is kept
    screenshot("project-form-error")
    listed = admin.call(admin.projects.ListProjects, projects_pb2.ListProjectsRequest())
    names = [p.name for p in listed.projects]
    assert "bad name!" not in names
    page.locator("#f-name").fill("vision")
    page.locator("#f-thumbnail_url").fill("https://example.com/vision.png")
    page.locator("#f-leaderboard").check()
    page.locator("#project-form button[type=submit]").click()
    expect(page).to_have_url(f"{stack.http_url}/projects/vision")
    expect(page.locator("#project-facts")).to_contain_text("enabled")
    screenshot("project-detail")
    page.locator("a.button", has_text="Edit").click()
    page.locator("#f-description").fill("Image models")
    page.locator("#project-form button[type=submit]").click()
    expect(page.locator("#project-facts")).to_contain_text("Image models")
    found = admin.call(admin.projects.GetProject, projects_pb2.GetProjectRequest(name="vision"))
    assert (found.description, found.leaderboard) == ("Image models", True)


def test_the_project_picker_filters_every_list(stack: Stack, admin: Client, signed_in: Page) -> None:
    _project(admin, "picker-a", "", False)
    _project(admin, "picker-b", "", False)
    _run(admin, "in-a", "true", project="picker-a")
    _run(admin, "in-b", "true", project="picker-b")
    page = signed_in
    page.goto(f"{stack.http_url}/runs")
    expect(page.locator('#runs tr[data-run="in-a"]')).to_be_visible()
    expect(page.locator('#runs tr[data-run="in-b"]')).to_be_visible()
    page.locator("#project-picker").select_option("picker-a")
    expect(page.locator("#project-picker")).to_have_value("picker-a")
    expect(page.locator('#runs tr[data-run="in-a"]')).to_be_visible()
    expect(page.locator('#runs tr[data-run="in-b"]')).to_have_count(0)
    page.locator("nav a", has_text="Dashboard").click()
    expect(page.locator("h1")).to_contain_text("picker-a")
    page.locator("#project-picker").select_option("")
    expect(page.locator("h1")).to_contain_text("All Projects")


def test_a_run_turns_complete_in_the_list_without_a_reload(stack: Stack, admin: Client, signed_in: Page,
                                                           screenshot: Shot) -> None:
    page = signed_in
    page.goto(f"{stack.http_url}/runs")
    page.evaluate("window.__notReloaded = true")
    _run(admin, "live-1", "sleep 2; echo finished")
    row = page.locator('#runs tr[data-run="live-1"]')
    expect(row).to_be_visible(timeout=LIVE_MS)
    expect(row.locator(".status")).to_have_text("complete", timeout=LIVE_MS)
    assert page.evaluate("window.__notReloaded") is True, "the page reloaded instead of refreshing"
    screenshot("runs")


def test_a_runs_details_show_its_metric_charts_and_log(stack: Stack, admin: Client, signed_in: Page,
                                                       screenshot: Shot) -> None:
    _run(admin, "charted-1", METRICS_COMMAND)
    _ended(admin, "charted-1")
    page = signed_in
    page.goto(f"{stack.http_url}/runs")
    page.locator('#runs tr[data-run="charted-1"] a').click()
    expect(page.locator("#run-status")).to_have_text("complete")
    expect(page.locator('#charts figure[data-metric="loss"] canvas')).to_be_visible()
    expect(page.locator('#charts figure[data-metric="accuracy"] canvas')).to_be_visible()
    expect(page.locator("#logs")).to_contain_text("epoch 5: loss=0.4 accuracy=0.10")
    expect(page.locator("#run-hyperparameters")).to_contain_text("lr")
    screenshot("run-detail")


def test_a_running_runs_log_and_status_follow_it(stack: Stack, admin: Client, signed_in: Page) -> None:
    _run(admin, "tail-1", "echo first; sleep 3; echo second; sleep 1")
    page = signed_in
    page.goto(f"{stack.http_url}/runs/tail-1")
    expect(page.locator("#logs")).to_contain_text("first", timeout=LIVE_MS)
    expect(page.locator("#logs")).to_contain_text("second", timeout=LIVE_MS)
    expect(page.locator("#run-status")).to_have_text("complete", timeout=LIVE_MS)


def test_stop_asks_first_then_stops_the_run(stack: Stack, admin: Client, signed_in: Page) -> None:
    _run(admin, "long-1", "sleep 120")
    wait_for(lambda: admin.call(admin.runs.GetRun, runs_pb2.GetRunRequest(name="long-1")).status
             == runs_pb2.RUN_STATUS_RUNNING, 30, "long-1 to run")
    page = signed_in
    page.goto(f"{stack.http_url}/runs/long-1")
    page.once("dialog", lambda dialog: dialog.dismiss())
    page.locator("button", has_text="Stop").click()
    assert admin.call(admin.runs.GetRun, runs_pb2.GetRunRequest(name="long-1")).status \
        == runs_pb2.RUN_STATUS_RUNNING
    page.once("dialog", lambda dialog: dialog.accept())
    page.locator("button", has_text="Stop").click()
    expect(page.locator("#run-status")).to_have_text(re.compile("stopping|stopped"), timeout=LIVE_MS)


def test_a_run_filter_that_matches_nothing_says_so(stack: Stack, signed_in: Page) -> None:
    page = signed_in
    page.goto(f"{stack.http_url}/runs?q=zz-no-such-run")
    expect(page.locator(".empty")).to_contain_text("No run matches")


def test_repos_versions_and_lineage_graph(stack: Stack, admin: Client, signed_in: Page,
                                          screenshot: Shot) -> None:
    """A model version written by a run: the models list, its versions, the run that made it,
    the lineage graph drawn by Cytoscape.js."""
    from shipyard.contracts.repo.v1 import repos_pb2

    admin.call(admin.repos.CreateRepo, repos_pb2.CreateRepoRequest(repo=repos_pb2.Repo(
        kind=repos_pb2.REPO_KIND_MODEL, name="tiny-model", versioning=repos_pb2.VERSIONING_DVS,
        source=repos_pb2.Source(none=repos_pb2.NoSource()))))
    admin.call(admin.runs.SubmitRun, runs_pb2.SubmitRunRequest(run=runs_pb2.Run(
        name="makes-model", command='echo weights > "$SHIPYARD_OUTPUT/model.txt"; echo loss=0.5',
        kind=runs_pb2.RUN_KIND_TRAINING,
        outputs=[runs_pb2.RunOutputTarget(repo_kind="model", repo="tiny-model")])))
    _ended(admin, "makes-model")
    wait_for(lambda: admin.call(admin.repos.GetRepo, repos_pb2.GetRepoRequest(
        kind=repos_pb2.REPO_KIND_MODEL, name="tiny-model")).latest_version == 2, 30, "the model version")
    wait_for(lambda: _in_lineage(admin, "model", "tiny-model@2"), 30, "lineage-svc to record the version")
    page = signed_in
    page.locator("nav a", has_text="Models").click()
    page.locator('#repos tr[data-repo="tiny-model"] a').click()
    expect(page.locator('#versions tr[data-version="2"] td').nth(1)).to_have_text("1")  # one file
    screenshot("model-detail")
    page.locator('#versions tr[data-version="2"] a').first.click()
    expect(page.locator("#files")).to_contain_text("model.txt")
    screenshot("model-version")
    page.locator("a.button", has_text="Lineage").click()
    expect(page.locator("#lineage-graph")).to_have_attribute("data-ready", "true")
    expect(page.locator("#lineage-graph canvas").first).to_be_visible()
    expect(page.locator("#lineage-edges")).to_contain_text("makes-model")
    screenshot("lineage")


def test_the_dashboard_counts_and_links(stack: Stack, admin: Client, signed_in: Page,
                                        screenshot: Shot) -> None:
    me = admin.call(admin.identity.WhoAmI, gateway_pb2.WhoAmIRequest())
    page = signed_in
    expect(page.locator("#who")).to_contain_text(me.name)
    # Runs of the tests above completed: lineage-svc counts them.
    expect(page.locator('[data-count="complete"] .big')).not_to_have_text("0")
    expect(page.locator("#recent-jobs a").first).to_be_visible()
    screenshot("dashboard")
    page.locator("#recent-jobs a").first.click()
    expect(page).to_have_url(re.compile("/runs/"))


def test_compare_selected_runs_side_by_side_with_overlaid_curves(stack: Stack, admin: Client, signed_in: Page,
                                                                 screenshot: Shot) -> None:
    for name in ("cmp-a", "cmp-b"):
        _run(admin, name, METRICS_COMMAND)
    for name in ("cmp-a", "cmp-b"):
        _ended(admin, name)
    page = signed_in
    page.goto(f"{stack.http_url}/runs?q=cmp-")
    page.locator("#pick-cmp-a").check()
    page.locator("#pick-cmp-b").check()
    page.locator("#compare-button").click()
    expect(page).to_have_url(re.compile(r"/runs/compare\?name=cmp-"))
    expect(page.locator('#run-compare tr[data-hyperparameter="lr"]')).to_contain_text("0.1")
    expect(page.locator('#run-compare tr[data-metric="loss"]')).to_contain_text("0.4")
    chart = page.locator('#compare-charts figure[data-metric="loss"]')
    expect(chart.locator("canvas")).to_be_visible()
    expect(chart).to_contain_text("cmp-a")
    expect(chart).to_contain_text("cmp-b")
    screenshot("runs-compare")
    page.goto(f"{stack.http_url}/runs/compare?name=cmp-a")
    expect(page.locator("#page-error")).to_contain_text("pick 2 to 8 runs")


def test_tensorboard_starts_and_stops_from_a_runs_page(stack: Stack, admin: Client, signed_in: Page) -> None:
    _run(admin, "boarded-1", METRICS_COMMAND)
    _ended(admin, "boarded-1")
    page = signed_in
    page.goto(f"{stack.http_url}/runs/boarded-1")
    page.locator("button", has_text="Start TensorBoard").click()
    link = page.locator("#tensorboard a")
    expect(link).to_have_attribute("href", "/tensorboard/boarded-1/")
    # Just started, it may answer 503 (starting) for a few seconds; then TensorBoard's own page.
    wait_for(lambda: page.request.get(f"{stack.http_url}/tensorboard/boarded-1/").ok, 60,
             "TensorBoard to answer through the gateway")
    page.locator("button", has_text="Stop TensorBoard").click()
    expect(page.locator("#tensorboard")).to_contain_text("Not running")


def _in_lineage(client: Client, kind: str, name: str) -> bool:
    """Whether lineage-svc has recorded ``name`` (it reads the events a moment after they happen)."""
    from shipyard.contracts.lineage.v1 import lineage_pb2

    try:
        client.call(client.lineage.GetLineage, lineage_pb2.GetLineageRequest(kind=kind, name=name))
    except ClientError as exc:
        if exc.code == "NOT_FOUND":
            return False
        raise
    return True
