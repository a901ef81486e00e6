"""The web console against a running stack: health, sign-in, projects, live refresh."""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from shipyard.client.connection import Client
from shipyard.contracts.gateway.v1 import gateway_pb2
from shipyard.contracts.repo.v1 import projects_pb2
from shipyard.local.harness import Stack

pytestmark = pytest.mark.browser

SERVICES = ("nats", "repo-svc", "run-svc", "serving-svc", "lineage-svc")
REFRESH_TIMEOUT_MS = 15_000  # the page refreshes projects every 5 s


def create_project(client: Client, name: str, description: str, leaderboard: bool) -> None:
    """Create a project through the gRPC API."""
    client.call(client.projects.CreateProject, projects_pb2.CreateProjectRequest(
        project=projects_pb2.Project(name=name, description=description, leaderboard=leaderboard)))


def sign_in(page: Page, token: str) -> None:
    """Type a token into the sign-in form and submit it."""
    page.locator("#token").fill(token)
    page.locator("#login button[type=submit]").click()


def expect_project_row(page: Page, name: str, description: str, leaderboard: bool,
                       timeout: float | None = None) -> None:
    """The projects table shows the project with its description and leaderboard flag."""
    row = page.locator(f'#projects tr[data-project="{name}"]')
    expect(row).to_be_visible(timeout=timeout)
    cells = row.locator("td")
    expect(cells.nth(1)).to_have_text(name)
    expect(cells.nth(2)).to_have_text(description)
    expect(cells.nth(3)).to_have_text("yes" if leaderboard else "no")


def test_page_shows_every_part_healthy(stack: Stack, page: Page) -> None:
    page.goto(stack.http_url)
    expect(page).to_have_title("Shipyard")
    for name in SERVICES:
        row = page.locator(f'#health tr[data-service="{name}"]')
        expect(row).to_be_visible()
        expect(row.locator("td").nth(1)).to_have_text("healthy")
    expect(page.locator("#overall")).to_have_text(re.compile("all healthy"))


def test_wrong_token_is_refused(stack: Stack, admin: Client, page: Page) -> None:
    create_project(admin, "fraud-detector", "Flags suspicious payments", leaderboard=False)
    page.goto(stack.http_url)
    sign_in(page, "not-a-real-token")
    expect(page.locator("#login-error")).to_contain_text("UNAUTHENTICATED")
    expect(page.locator("#who")).to_have_text("not signed in")
    expect(page.locator("#login-section")).to_be_visible()
    expect(page.locator("#projects tr[data-project]")).to_have_count(0)
    expect(page.locator("#projects-error")).to_have_text("Sign in to see projects.")


def test_admin_sees_projects_created_beforehand(stack: Stack, admin: Client, page: Page) -> None:
    create_project(admin, "churn-model", "Predicts which customers leave", leaderboard=True)
    create_project(admin, "image-tagger", "Tags product photos", leaderboard=False)
    me = admin.call(admin.identity.WhoAmI, gateway_pb2.WhoAmIRequest())

    page.goto(stack.http_url)
    sign_in(page, stack.admin_token())

    expect(page.locator("#who")).to_contain_text(me.name)
    expect(page.locator("#login-section")).to_be_hidden()
    expect(page.locator("#login-error")).to_have_text("")
    expect_project_row(page, "churn-model", "Predicts which customers leave", leaderboard=True)
    expect_project_row(page, "image-tagger", "Tags product photos", leaderboard=False)
    expect(page.locator("#projects-error")).to_have_text("")


def test_project_created_after_sign_in_appears_without_reload(
        stack: Stack, admin: Client, page: Page) -> None:
    page.goto(stack.http_url)
    sign_in(page, stack.admin_token())
    expect(page.locator("#login-section")).to_be_hidden()
    expect(page.locator("#projects tbody tr").first).to_be_visible()
    page.evaluate("window.__notReloaded = true")

    create_project(admin, "late-arrival", "Created while the page was open", leaderboard=True)

    expect_project_row(page, "late-arrival", "Created while the page was open", leaderboard=True,
                       timeout=REFRESH_TIMEOUT_MS)
    assert page.evaluate("window.__notReloaded") is True, "the page reloaded instead of refreshing"


def test_full_page_screenshot(stack: Stack, admin: Client, page: Page, tmp_path: Path) -> None:
    create_project(admin, "screenshot-demo", "Shown in the console screenshot", leaderboard=True)
    page.goto(stack.http_url)
    sign_in(page, stack.admin_token())
    for name in SERVICES:
        expect(page.locator(f'#health tr[data-service="{name}"] td').nth(1)).to_have_text("healthy")
    expect(page.locator('#projects tr[data-project="screenshot-demo"]')).to_be_visible()

    shot = tmp_path / "console.png"
    page.screenshot(path=str(shot), full_page=True)
    assert shot.stat().st_size > 0
    if target := os.environ.get("SHIPYARD_SCREENSHOT_DIR"):
        Path(target).mkdir(parents=True, exist_ok=True)
        shutil.copy(shot, Path(target) / "console.png")
