"""A live study's page on a real stack: while nothing changes its refresh answers 204 and the page keeps what
it shows (the graph stays drawn); when a trial ends, the next refresh shows it — counts, graph, parallel
coordinates and best trials — without reloading the page."""

from __future__ import annotations

import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml
from playwright.sync_api import Page, Response, expect

from shipyard.client.connection import Client
from shipyard.contracts.run.v1 import runs_pb2
from shipyard.local.harness import Stack, wait_for

pytestmark = pytest.mark.browser

# Each trial runs until the test lets it go (a file in its home), so refreshes find nothing changed
# meanwhile, then prints its accuracy.
SLOW_TRAIN = textwrap.dedent("""
    import os, sys, time
    deadline = time.monotonic() + 120
    while not os.path.exists(os.path.join(os.environ["HOME"], "go")) and time.monotonic() < deadline:
        time.sleep(0.1)
    args = dict(arg[2:].split("=", 1) for arg in sys.argv[1:])
    print(f"accuracy={1 - abs(float(args['lr']) - 0.05)}", flush=True)
""")
TUNING = {
    "objective": {"type": "maximize", "objectiveMetricName": "accuracy"},
    "algorithm": {"algorithmName": "random"},
    "parallelTrialCount": 1, "maxTrialCount": 2,
    "parameters": [{"name": "lr", "parameterType": "double", "feasibleSpace": {"min": "0.01", "max": "0.1"}}],
}


def _submit(stack: Stack, page: Page, tmp_path: Path, name: str) -> None:
    (tmp_path / "train.py").write_text(SLOW_TRAIN)
    (tmp_path / "tuning.yaml").write_text(yaml.safe_dump(TUNING))
    page.goto(f"{stack.http_url}/runs/new")
    page.locator("#f-name").fill(name)
    page.locator("#f-command").fill('python "$SHIPYARD_CONFIG"')
    page.locator("#tab-configuration").click()
    page.locator("#f-config").set_input_files(tmp_path / "train.py")
    page.locator("#f-tuning_file").set_input_files(tmp_path / "tuning.yaml")
    page.locator("#run-form button[type=submit]").click()


def _refresh(answered: int) -> Callable[[Response], bool]:
    def matches(response: Response) -> bool:
        return "fragment=body" in response.url and response.status == answered
    return matches


def _let_go(stack: Stack, admin: Client, trial: str) -> None:
    """Let the trial end: the file it waits for, in its home (its workspace's, seen from the host)."""
    def home() -> Path | None:
        found = admin.call(admin.runs.ListRuns, runs_pb2.ListRunsRequest(name_prefix=trial)).runs
        folder = stack.data_dir / "run-svc" / "workspaces" / found[0].id / "home" if found else None
        return folder if folder is not None and folder.is_dir() else None
    folder = wait_for(home, 60, f"{trial}'s home")
    (folder / "go").touch()


def test_a_live_study_page_keeps_what_it_shows_until_a_trial_ends_then_shows_it(
        stack: Stack, admin: Client, signed_in: Page, tmp_path: Path) -> None:
    page = signed_in
    _submit(stack, page, tmp_path, "tune-live")
    expect(page).to_have_url(f"{stack.http_url}/runs/tune-live")
    page.goto(f"{stack.http_url}/studies/tune-live")
    expect(page.locator('#study-counts [data-count="running"]')).to_have_text("1 running", timeout=60_000)
    with page.expect_response(_refresh(204), timeout=30_000):  # the trial sleeps: nothing changed
        pass
    expect(page.locator("#study-counts")).to_contain_text("1 running")  # kept, not emptied
    expect(page.locator("#trials-graph canvas")).to_have_count(1)
    expect(page.locator("#no-parallel")).to_be_visible()

    _let_go(stack, admin, "tune-live-t001")

    expect(page.locator('#study-counts [data-count="succeeded"]')).to_have_text("1 succeeded", timeout=60_000)
    expect(page.locator("#trials-graph")).to_have_attribute("data-points", "1")
    expect(page.locator("#parallel-coordinates svg polyline")).to_have_count(1)
    expect(page.locator("#best-trials tbody tr[data-trial]")).to_have_count(1)
    expect(page.locator('#trials tr[data-trial="tune-live-t001"]')).to_contain_text("Succeeded")

    _let_go(stack, admin, "tune-live-t002")

    expect(page.locator("#study-status")).to_have_text("Succeeded", timeout=60_000)
    expect(page.locator("#trials-graph")).to_have_attribute("data-points", "2")
    expect(page.locator("#best-trials tbody tr[data-trial]")).to_have_count(2)
