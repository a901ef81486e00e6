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

from shipyard.local.harness import Stack

pytestmark = pytest.mark.browser

# Each trial sleeps long enough for refreshes that find nothing changed, then prints its accuracy.
SLOW_TRAIN = textwrap.dedent("""
    import sys, time
    time.sleep(8)
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


def test_a_live_study_page_keeps_what_it_shows_until_a_trial_ends_then_shows_it(
        stack: Stack, signed_in: Page, tmp_path: Path) -> None:
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

    expect(page.locator('#study-counts [data-count="succeeded"]')).to_have_text("1 succeeded", timeout=60_000)
    expect(page.locator("#trials-graph")).to_have_attribute("data-points", "1")
    expect(page.locator("#parallel-coordinates svg polyline")).to_have_count(1)
    expect(page.locator("#best-trials tbody tr[data-trial]")).to_have_count(1)
    expect(page.locator('#trials tr[data-trial="tune-live-t001"]')).to_contain_text("Succeeded")

    expect(page.locator("#study-status")).to_have_text("Succeeded", timeout=60_000)
    expect(page.locator("#trials-graph")).to_have_attribute("data-points", "2")
    expect(page.locator("#best-trials tbody tr[data-trial]")).to_have_count(2)
