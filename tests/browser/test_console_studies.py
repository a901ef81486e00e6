"""The console's hyperparameter studies on a real stack: a study submitted through "+ Run" with a tuning
file (random search, 6 trials, 2 at a time, a local script printing its accuracy) runs to Succeeded on its
page — the trials graph, the parallel-coordinates view, the best trials, the CSV download —, the runs list
marks it and hides its trials; a refused tuning file is named at its upload."""

from __future__ import annotations

import csv
import io
import re
import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml
from playwright.sync_api import Dialog, Page, expect

from shipyard.local.harness import Stack

pytestmark = pytest.mark.browser

TRAIN = textwrap.dedent("""
    import sys
    args = dict(arg[2:].split("=", 1) for arg in sys.argv[1:])
    lr, optimizer = float(args["lr"]), args["optimizer"]
    print(f"accuracy={1 - abs(lr - 0.05) - (0.01 if optimizer == 'sgd' else 0)}", flush=True)
""")
TRIALS = 6


def tuning(low: str = "0.01") -> dict[str, object]:
    return {
        "objective": {"type": "maximize", "objectiveMetricName": "accuracy"},
        "algorithm": {"algorithmName": "random"},
        "parallelTrialCount": 2, "maxTrialCount": TRIALS,
        "parameters": [
            {"name": "lr", "parameterType": "double", "feasibleSpace": {"min": low, "max": "0.1"}},
            {"name": "optimizer", "parameterType": "categorical", "feasibleSpace": {"list": ["sgd", "adam"]}},
        ],
    }


def _submit(stack: Stack, page: Page, tmp_path: Path, name: str, spec: dict[str, object],
            script: str = TRAIN) -> None:
    (tmp_path / "train.py").write_text(script)
    (tmp_path / "tuning.yaml").write_text(yaml.safe_dump(spec))
    page.goto(f"{stack.http_url}/runs/new")
    page.locator("#f-name").fill(name)
    page.locator("#f-command").fill('python "$SHIPYARD_CONFIG"')
    page.locator("#tab-configuration").click()
    page.locator("#f-config").set_input_files(tmp_path / "train.py")
    page.locator("#f-tuning_file").set_input_files(tmp_path / "tuning.yaml")
    page.locator("#run-form button[type=submit]").click()


def test_a_study_from_the_run_form_shows_its_trials_graph_best_trials_and_download(
        stack: Stack, signed_in: Page, tmp_path: Path, screenshot: Callable[[str], Path]) -> None:
    page = signed_in
    _submit(stack, page, tmp_path, "tune-b", tuning())
    expect(page).to_have_url(f"{stack.http_url}/runs/tune-b")
    page.locator("#study-link").click()
    expect(page).to_have_url(f"{stack.http_url}/studies/tune-b")
    expect(page.locator("#study-status")).to_have_text("Succeeded", timeout=240_000)  # it refreshes itself
    expect(page.locator("#study-reason")).to_have_text("ExperimentMaxTrialsReached")
    expect(page.locator("#stop-study")).to_have_count(0)  # gone once it ended
    expect(page.locator("#trials-graph")).to_have_attribute("data-points", str(TRIALS))
    expect(page.locator("#trials-graph canvas")).to_have_count(1)
    expect(page.locator("#parallel-coordinates svg polyline")).to_have_count(TRIALS)
    expect(page.locator("#parallel-coordinates [data-axis]")).to_have_count(3)
    expect(page.locator("#trials tbody tr")).to_have_count(TRIALS)
    best = page.locator("#best-trials tbody tr")
    expect(best).to_have_count(5)
    values = [float(v) for v in page.locator("#best-trials tbody tr td:nth-child(3)").all_inner_texts()]
    assert values == sorted(values, reverse=True)
    screenshot("study-succeeded")

    with page.expect_download() as fetched:
        page.locator("#download-csv").click()
    rows = list(csv.DictReader(io.StringIO(Path(fetched.value.path()).read_text())))
    assert [int(r["number"]) for r in rows] == list(range(1, TRIALS + 1))
    assert {r["state"] for r in rows} == {"Succeeded"} and all(r["objective"] for r in rows)
    assert {"lr", "optimizer", "accuracy.latest", "accuracy.min", "accuracy.max"} <= set(rows[0])
    assert f"{max(float(r['objective']) for r in rows):.6g}" == f"{values[0]:.6g}"

    page.goto(f"{stack.http_url}/runs")
    study_row = page.locator('tr[data-run="tune-b"]')
    expect(study_row.locator('a.study-icon svg[aria-label="hyperparameter study"]')).to_have_count(1)
    expect(page.locator('tr[data-run^="tune-b-t"]')).to_have_count(0)
    screenshot("runs-with-a-study")
    page.locator("#show-trials").check()
    page.locator("form.filters button[type=submit]").click()
    expect(page.locator('tr[data-run^="tune-b-t"]')).to_have_count(TRIALS)
    study_row.locator("a.study-icon").click()
    expect(page).to_have_url(f"{stack.http_url}/studies/tune-b")

    page.goto(f"{stack.http_url}/runs/tune-b-t001")
    expect(page.locator("#study-link")).to_have_attribute("href", "/studies/tune-b")
    page.goto(f"{stack.http_url}/studies")
    expect(page.locator('#studies tr[data-study="tune-b"] td.trials')).to_have_text(f"{TRIALS} / {TRIALS}")


def test_a_refused_tuning_file_is_named_at_its_upload_and_nothing_starts(
        stack: Stack, signed_in: Page, tmp_path: Path, screenshot: Callable[[str], Path]) -> None:
    page = signed_in
    _submit(stack, page, tmp_path, "tune-bad", tuning(low="0.5"))  # min > max
    error = page.locator("#f-tuning_file-error")
    expect(error).to_contain_text(re.compile(r"feasibleSpace|min"))
    expect(error).to_contain_text("tuning.yaml")
    expect(page.locator("#f-tuning_file")).to_have_attribute("aria-invalid", "true")
    expect(page.locator("#f-tuning_file")).to_be_visible()  # its tab is opened
    screenshot("run-form-refused-tuning-file")
    page.goto(f"{stack.http_url}/runs/tune-bad")
    expect(page.locator("main")).to_contain_text("no run named")


def test_stop_study_asks_first_then_kills_the_running_trials(stack: Stack, signed_in: Page,
                                                             tmp_path: Path) -> None:
    page = signed_in
    _submit(stack, page, tmp_path, "tune-stop", tuning(), script="import time\ntime.sleep(120)\n")
    page.goto(f"{stack.http_url}/studies/tune-stop")
    expect(page.locator('#study-counts [data-count="running"]')).to_have_text("2 running", timeout=60_000)
    asked: list[str] = []

    def refuse(dialog: Dialog) -> None:
        asked.append(dialog.message)
        dialog.dismiss()

    page.once("dialog", refuse)
    page.locator("#stop-study").click()
    expect(page.locator("#study-status")).to_have_text("Running")
    assert asked and asked[0].startswith("Stop study tune-stop?")
    page.once("dialog", lambda dialog: dialog.accept())
    page.locator("#stop-study").click()
    expect(page.locator("#study-status")).to_have_text("Stopped", timeout=60_000)
    expect(page.locator('#study-counts [data-count="killed"]')).to_have_text("2 killed", timeout=60_000)
