"""Editing a study's limits in the console: its owner's "Edit limits" on a Succeeded study whose
resumePolicy is LongRunning shows the resume hint, more parallel trials than maxTrialCount are refused by
the field, and raising it resumes the study, which ends with the new number of trials."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml
from playwright.sync_api import Page, expect

from shipyard.client.connection import Client
from shipyard.contracts.run.v1 import runs_pb2 as rpb
from shipyard.contracts.run.v1 import studies_pb2 as pb
from shipyard.local.harness import Stack, wait_for

pytestmark = pytest.mark.browser

TRAIN = "import sys\nprint(f\"accuracy={1 - float(sys.argv[1].split('=')[1])}\")\n"
TUNING = yaml.safe_dump({
    "objective": {"type": "maximize", "objectiveMetricName": "accuracy"},
    "algorithm": {"algorithmName": "random"}, "parallelTrialCount": 1, "maxTrialCount": 1,
    "resumePolicy": "LongRunning",
    "parameters": [{"name": "lr", "parameterType": "double", "feasibleSpace": {"min": "0.1", "max": "0.5"}}],
}).encode()


def _study(admin: Client) -> pb.Study:
    return admin.call(admin.studies.GetStudy, pb.GetStudyRequest(name="edit-me"))


def test_the_owner_resumes_a_succeeded_study_from_its_page(
        stack: Stack, admin: Client, signed_in: Page, screenshot: Callable[[str], Path]) -> None:
    admin.call(admin.runs.SubmitRun, rpb.SubmitRunRequest(
        run=rpb.Run(name="edit-me", command='python "$SHIPYARD_CONFIG"', config_file_name="train.py"),
        config_file=TRAIN.encode(), tuning=TUNING))
    wait_for(lambda: _study(admin).status == pb.STUDY_STATUS_SUCCEEDED, 120, "the study to succeed")
    page = signed_in
    page.goto(f"{stack.http_url}/studies/edit-me")
    page.locator("#edit-limits").click()
    expect(page).to_have_url(re.compile(r"/studies/edit-me/limits$"))
    expect(page.locator("#resume-hint")).to_contain_text("resumePolicy is LongRunning")
    form = page.locator("#study-limits-form")
    expect(form.locator("[name='max_trial_count']")).to_have_value("1")

    form.locator("[name='max_trial_count']").fill("3")
    form.locator("[name='parallel_trial_count']").fill("5")  # more than maxTrialCount
    form.locator("button[type=submit]").click()
    expect(page.locator("#f-parallel_trial_count")).to_have_attribute("aria-invalid", "true")
    expect(page.locator("#f-parallel_trial_count-error")).to_contain_text("must not exceed maxTrialCount")
    screenshot("study-limits-error")

    page.locator("[name='parallel_trial_count']").fill("1")
    page.locator("[name='max_trial_count']").fill("2")
    page.locator("#study-limits-form button[type=submit]").click()
    expect(page).to_have_url(re.compile(r"/studies/edit-me$"))
    wait_for(lambda: (s := _study(admin)).status == pb.STUDY_STATUS_SUCCEEDED and s.trials == 2, 120,
             "the resumed study to end with 2 trials")
