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
    expect(page.locator("#images tbody tr")).to_have_count(3)  # tensorflow-2.21, -2.17 and -2.16
    expect(page.locator("tr[data-image='churn-env']")).to_have_count(0)


def test_an_image_is_added_and_a_build_refused_from_the_images_page(
        stack: Stack, admin: Client, signed_in: Page, screenshot: Callable[[str], Path]) -> None:
    page = signed_in
    page.goto(f"{stack.http_url}/images")
    form = page.locator("#add-image-form")
    form.locator("[name='image.name']").fill("xgb-web")
    form.locator("[name='image.url']").fill("https://registry.example.org/team/xgb:1")
    form.locator("[name='image.requirements']").fill("xgboost==2.1.*\npandas")
    form.locator("button[type=submit]").click()
    expect(page.locator("#form-error")).to_contain_text("image.url")
    expect(page.locator("#f-image\\.url")).to_have_attribute("aria-invalid", "true")
    expect(form.locator("[name='image.requirements']")).to_have_value("xgboost==2.1.*\npandas")

    form.locator("[name='image.url']").fill("registry.example.org/team/xgb:1")
    form.locator("button[type=submit]").click()
    mine = page.locator("tr[data-image='xgb-web']")
    expect(mine).to_contain_text("registry.example.org/team/xgb:1")
    assert list(admin.call(admin.images.GetImage, pb.GetImageRequest(name="xgb-web")).requirements) == [
        "xgboost==2.1.*", "pandas"]

    build = page.locator("#build-form")
    build.locator("[name='build.name']").fill("from-nowhere")
    build.locator("[name='build.code']").fill("no-such-code")
    build.locator("button[type=submit]").click()
    expect(page.locator("#form-error")).to_contain_text("no-such-code")
    expect(page.locator("#no-builds")).to_be_visible()
    screenshot("images-forms")
