"""The main journey in the browser, as a data scientist and then a production engineer would walk
it: a project, a dataset uploaded as an archive (extracted), a training run submitted from the
form and watched to completion, the new model version and its lineage graph, publish, deploy,
a test request, a second run and the swap of the model behind the endpoint. Every screen is
saved as a screenshot among the test artifacts."""

from __future__ import annotations

import io
import json
import re
import zipfile
from collections.abc import Callable
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect
from sklearn.datasets import load_iris

from shipyard.client.connection import Client
from shipyard.contracts.repo.v1 import repos_pb2
from shipyard.local.harness import Stack, wait_for

pytestmark = pytest.mark.browser

Shot = Callable[[str], Path]
RUN_MS = 90_000
TRAIN = """\
import csv, os
import joblib
from sklearn.linear_model import LogisticRegression

rows = list(csv.reader(open("/mnt/data/iris.csv")))
features = [[float(v) for v in row[:4]] for row in rows]
labels = [int(row[4]) for row in rows]
model = LogisticRegression(max_iter=500, C=float(os.environ.get("C", "1.0"))).fit(features, labels)
joblib.dump(model, os.path.join(os.environ["SHIPYARD_OUTPUT"], "model.joblib"))
print(f"accuracy={model.score(features, labels):.4f}")
"""


@pytest.fixture(scope="module")
def dataset_zip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """iris.csv and train.py in a zip, as a user would upload them."""
    iris = load_iris()
    csv_text = "\n".join(",".join([*(f"{v:.1f}" for v in x), str(y)]) for x, y in zip(iris.data, iris.target,
                                                                                        strict=True))
    target = tmp_path_factory.mktemp("upload") / "flowers.zip"
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("iris.csv", csv_text + "\n")
        archive.writestr("train.py", TRAIN)
    target.write_bytes(buffer.getvalue())
    return target


def _submit_training(page: Page, stack: Stack, name: str, c: str) -> None:
    page.goto(f"{stack.http_url}/runs/new")
    page.locator("#f-name").fill(name)
    page.locator("#f-command").fill("python /mnt/data/train.py")
    page.locator("#f-framework").select_option("sklearn")  # the script imports scikit-learn and joblib
    page.locator("#tab-repos").click()
    page.locator("[id='f-input0.repo']").fill("flowers")
    page.locator("[id='f-input0.mount_path']").fill("/mnt/data")
    page.locator("[id='f-output0.repo']").fill("flower-model")
    page.locator("#tab-configuration").click()
    page.locator("#f-hyperparameters").fill(f"C={c}")
    page.locator("#run-form button[type=submit]").click()
    expect(page).to_have_url(f"{stack.http_url}/runs/{name}")
    expect(page.locator("#run-status")).to_have_text("complete", timeout=RUN_MS)


def _model_version(admin: Client, version: int) -> None:
    """Wait for flower-model@version: repo-svc makes a run's output version when it consumes
    RunCompleted, so just after the run shows complete it may be a moment away."""
    wait_for(lambda: admin.call(admin.repos.GetRepo, repos_pb2.GetRepoRequest(
        kind=repos_pb2.REPO_KIND_MODEL, name="flower-model")).latest_version >= version, 30,
        f"flower-model@{version}")


def _publish(page: Page, stack: Stack, admin: Client, version: int, entry: str) -> None:
    _model_version(admin, version)
    page.goto(f"{stack.http_url}/repos/models/flower-model/versions/{version}")
    page.locator("a.button", has_text="Publish").click()
    expect(page.locator("#f-model")).to_have_value(f"flower-model@{version}")
    page.locator("#f-name").fill(entry)
    page.locator("#f-max_concurrency").fill("8")
    page.locator("#publish-form button[type=submit]").click()
    expect(page).to_have_url(f"{stack.http_url}/catalog/{entry}")


def _ask(page: Page) -> dict[str, object]:
    rows = [[5.1, 3.5, 1.4, 0.2], [6.7, 3.0, 5.2, 2.3]]
    tensor = {"name": "input-0", "shape": [2, 4], "datatype": "FP32", "data": rows}
    page.locator("#try-body").fill(json.dumps({"inputs": [tensor]}))
    page.locator("#try-form button[type=submit]").click()
    expect(page.locator("#try-status")).to_have_text("HTTP 200", timeout=30_000)
    answer: dict[str, object] = json.loads(page.locator("#try-answer").inner_text())
    return answer


def test_from_an_uploaded_dataset_to_a_swapped_deployment(stack: Stack, admin: Client, signed_in: Page,
                                                           dataset_zip: Path, screenshot: Shot) -> None:
    page = signed_in
    # A project, picked at the top of the screen.
    page.goto(f"{stack.http_url}/projects/new")
    page.locator("#f-name").fill("flowers-project")
    page.locator("#project-form button[type=submit]").click()
    page.locator("#project-picker").select_option("flowers-project")
    expect(page.locator("#project-picker")).to_have_value("flowers-project")

    # A dataset by upload: an archive, extracted; the upload shows its progress.
    page.locator("nav a", has_text="Datasets").click()
    page.locator("a.button", has_text="+ Dataset").click()
    screenshot("journey-dataset-form")
    page.locator("#f-name").fill("flowers")
    page.locator("#f-source").select_option("upload")
    page.locator("#f-files").set_input_files(str(dataset_zip))
    page.locator("[id='f-upload.extract']").check()
    page.locator("#repo-form button[type=submit]").click()
    expect(page).to_have_url(f"{stack.http_url}/repos/datasets/flowers")
    expect(page.locator('#versions tr[data-version="1"] td').nth(1)).to_have_text("2")
    assert page.evaluate("document.querySelector('#upload-form progress') !== null")
    screenshot("journey-dataset")
    found = admin.call(admin.repos.GetRepo, repos_pb2.GetRepoRequest(kind=repos_pb2.REPO_KIND_DATASET,
                                                                     name="flowers"))
    assert found.project == "flowers-project"

    # A model repo for the run's output, then the run from the form, watched until complete.
    page.goto(f"{stack.http_url}/repos/models/new")
    page.locator("#f-name").fill("flower-model")
    page.locator("#f-source").select_option("none")
    page.locator("#repo-form button[type=submit]").click()
    expect(page).to_have_url(f"{stack.http_url}/repos/models/flower-model")
    _submit_training(page, stack, "train-1", "1.0")
    expect(page.locator("#logs")).to_contain_text("accuracy=")
    screenshot("journey-run")

    # The new model version, and where it came from.
    _model_version(admin, 2)
    page.goto(f"{stack.http_url}/repos/models/flower-model")
    expect(page.locator('#versions tr[data-version="2"] td').nth(1)).to_have_text("1")  # model.joblib
    page.goto(f"{stack.http_url}/lineage/model/flower-model@2")
    expect(page.locator("#lineage-graph")).to_have_attribute("data-ready", "true")
    expect(page.locator("#lineage-edges")).to_contain_text("dataset flowers@1")
    expect(page.locator("#lineage-edges")).to_contain_text("run train-1")
    screenshot("journey-lineage")

    # Publish, deploy, and a test request through the gateway.
    _publish(page, stack, admin, 2, "flower-v2")
    page.locator("a.button", has_text="Deploy").click()
    page.locator("#f-name").fill("flower-live")
    page.locator("#deploy-form button[type=submit]").click()
    expect(page).to_have_url(f"{stack.http_url}/deployments/flower-live")
    expect(page.locator("#serving-status")).to_have_text("running", timeout=RUN_MS)
    answer = _ask(page)
    assert answer["model_name"] == "flower-model"
    screenshot("journey-deployment")

    # A second run with another C, published; the deployment swaps to it.
    _submit_training(page, stack, "train-2", "0.05")
    _publish(page, stack, admin, 3, "flower-v3")
    page.goto(f"{stack.http_url}/deployments/flower-live")
    page.locator("#swap-model").fill("flower-model@3")
    page.locator("#swap-form button[type=submit]").click()
    expect(page.locator("#serves")).to_contain_text("flower-model@3", timeout=RUN_MS)
    expect(page.locator("#serving-status")).to_have_text("running", timeout=RUN_MS)
    expect(page.locator("#serves")).to_contain_text("before: flower-model@2")
    assert _ask(page)["model_version"] == "3"
    screenshot("journey-swapped")


def test_bad_input_in_the_forms_creates_nothing(stack: Stack, admin: Client, signed_in: Page,
                                                tmp_path: Path, screenshot: Shot) -> None:
    page = signed_in
    slip = tmp_path / "slip.zip"
    with zipfile.ZipFile(slip, "w") as archive:
        archive.writestr("../escape.txt", "x")
    page.goto(f"{stack.http_url}/repos/datasets/new")
    page.locator("#f-name").fill("slipped")
    page.locator("#f-source").select_option("upload")
    page.locator("#f-files").set_input_files(str(slip))
    page.locator("[id='f-upload.extract']").check()
    page.locator("#repo-form button[type=submit]").click()
    expect(page.locator("#form-error")).to_contain_text("escapes")
    expect(page.locator("#f-files-error")).to_contain_text("nothing was created")
    screenshot("dataset-form-error")
    page.locator("#f-source").select_option("s3")
    page.locator("[id='f-s3.bucket']").fill("x")
    page.locator("#repo-form button[type=submit]").click()
    expect(page.locator("[id='f-s3.bucket-error']")).to_contain_text("bucket")
    names = [r.name for r in admin.call(admin.repos.ListRepos, repos_pb2.ListReposRequest()).repos]
    assert "slipped" not in names

    page.goto(f"{stack.http_url}/runs/new")
    page.locator("#f-name").fill("no-command")
    page.locator("#tab-configuration").click()
    page.locator("#f-hyperparameters").fill("just words")
    page.locator("#run-form button[type=submit]").click()
    expect(page.locator("#form-error")).to_contain_text(re.compile("hyperparameters|command"))
    expect(page.locator("#f-name")).to_have_value("no-command")

    page.goto(f"{stack.http_url}/deployments/new")
    page.locator("#f-name").fill("nothing-to-deploy")
    page.locator("#deploy-form button[type=submit]").click()
    expect(page.locator("#form-error")).to_be_visible()
    page.goto(f"{stack.http_url}/inferences/new")
    page.locator("#f-name").fill("bad-model")
    page.locator("#f-model").fill("flower-model@x")
    page.locator("#inference-form button[type=submit]").click()
    expect(page.locator("#form-error")).to_contain_text("name@version")
