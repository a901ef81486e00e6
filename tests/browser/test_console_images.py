"""The console's Images page: the standard images and users' own, filtered by framework."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from shipyard.client.connection import Client
from shipyard.contracts.repo.v1 import images_pb2 as pb
from shipyard.local.harness import Stack

pytestmark = pytest.mark.browser


def test_the_images_page_lists_the_catalog_and_filters_by_framework(
        stack: Stack, admin: Client, signed_in: Page, screenshot: Callable[[str], Path]) -> None:
    admin.call(admin.images.AddImage, pb.AddImageRequest(image=pb.Image(
        name="churn-env", url="registry.example.org/ml/churn:2", description="Churn <b>packages</b>",
        framework="sklearn", framework_version="1.5",
        requirements=["pandas[parquet]", "scikit-learn==1.5.*"])))
    page = signed_in
    page.locator("nav a", has_text="Images").click()
    expect(page).to_have_url(re.compile(r"/images$"))
    rows = page.locator("#images tbody tr")
    expect(rows.first).to_have_attribute("data-image", "python")
    expect(page.locator("tr[data-image='tensorflow-2.17']")).to_contain_text("tensorflow/tensorflow:2.17.0")
    mine = page.locator("tr[data-image='churn-env']")
    expect(mine).to_contain_text("registry")
    expect(mine).to_contain_text("Churn <b>packages</b>")  # text, not markup
    mine.locator("summary").click()
    expect(mine.locator("li")).to_have_text(["pandas[parquet]", "scikit-learn==1.5.*"])
    screenshot("images")

    page.locator("#framework").select_option("tensorflow")
    expect(page).to_have_url(re.compile(r"/images\?framework=tensorflow"))
    expect(page.locator("#images tbody tr")).to_have_count(2)
    expect(page.locator("tr[data-image='churn-env']")).to_have_count(0)
