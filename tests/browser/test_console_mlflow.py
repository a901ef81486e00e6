"""Runs logged from a laptop with the real MLflow client, then read in the console (params, tags, the
external badge, artifacts and their downloads, the compare view) and with ``shipyard run``."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect

from shipyard.local.harness import Stack

pytestmark = pytest.mark.browser

# What a data scientist's script does; argv: experiment, run name, lr, a directory of files to log,
# whether to log a model too.
SCRIPT = """
import pathlib, sys
import mlflow

experiment, name, lr, files, with_model = sys.argv[1:6]
mlflow.set_experiment(experiment)
with mlflow.start_run(run_name=name) as run:
    mlflow.log_param("lr", lr)
    mlflow.log_param("optimizer", "adam")
    mlflow.log_metric("loss", 0.5, step=0)
    mlflow.log_metric("loss", 0.3, step=1)
    mlflow.set_tag("team", "vision")
    mlflow.log_artifact(str(pathlib.Path(files) / "report.html"))
    mlflow.log_artifact(str(pathlib.Path(files) / "curve.csv"), artifact_path="plots")
    if with_model == "yes":
        from sklearn.linear_model import LinearRegression
        fitted = LinearRegression().fit([[0.0], [1.0]], [0.0, 1.0])
        mlflow.sklearn.log_model(fitted, name="regressor", pip_requirements=["scikit-learn"])
print(run.info.run_id)
"""
REPORT = b"<html><script>document.title = 'ran'</script>report</html>"
CURVE = b"step,loss\n0,0.5\n1,0.3\n"


def log_with_mlflow(stack: Stack, tmp_path: Path, name: str, lr: str, with_model: bool = False) -> str:
    """Run the script as a laptop would (MLflow's environment variables only); the MLflow run id."""
    files = tmp_path / name
    files.mkdir()
    (files / "report.html").write_bytes(REPORT)
    (files / "curve.csv").write_bytes(CURVE)
    env = {**os.environ, "MLFLOW_TRACKING_URI": f"{stack.http_url}/mlflow",
           "MLFLOW_TRACKING_TOKEN": stack.admin_token(), "MLFLOW_DISABLE_TELEMETRY": "true"}
    done = subprocess.run([sys.executable, "-c", SCRIPT, "vision", name, lr, str(files),
                           "yes" if with_model else "no"], env=env,
                          capture_output=True, text=True, timeout=180, check=False)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip().splitlines()[-1]


def shipyard(stack: Stack, *args: str) -> tuple[int, str]:
    """The installed command, in its own process (Playwright's event loop runs in this one)."""
    env = {**os.environ, "SHIPYARD_SERVER": stack.grpc_address, "SHIPYARD_TOKEN": stack.admin_token()}
    command = [str(Path(sys.executable).parent / "shipyard"), *args]
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120, check=False)
    return done.returncode, done.stdout + done.stderr


def test_a_laptop_run_shows_its_params_tags_and_artifacts(
        stack: Stack, signed_in: Page, browser: Browser, tmp_path: Path,
        screenshot: Callable[[str], Path]) -> None:
    log_with_mlflow(stack, tmp_path, "laptop-a", "0.1", with_model=True)
    page = signed_in
    page.goto(f"{stack.http_url}/runs/laptop-a")
    expect(page.locator("#run-external")).to_have_text("external")
    expect(page.locator("#run-status")).to_have_text("complete")
    expect(page.locator("#run-params tr[data-param='lr'] td")).to_have_text("0.1")
    expect(page.locator("#run-params tr[data-param='optimizer'] td")).to_have_text("adam")
    expect(page.locator("#run-tags tr[data-tag='team'] td")).to_have_text("vision")
    expect(page.locator("#run-tags")).not_to_contain_text("mlflow.")  # MLflow's own tags, as its UI
    rows = page.locator("#run-artifacts tbody tr")
    expect(rows).to_have_count(2)
    expect(rows.nth(0)).to_have_attribute("data-artifact", "plots/curve.csv")
    expect(rows.nth(1)).to_have_attribute("data-artifact", "report.html")
    model = page.locator("table.model-artifacts[data-model='regressor']")
    expect(model.locator("tr[data-artifact='MLmodel']")).to_have_count(1)
    screenshot("run-mlflow")

    with page.expect_download() as caught:
        model.locator("tr[data-artifact='MLmodel'] a").click()
    assert caught.value.suggested_filename == "MLmodel"
    assert "sklearn" in Path(caught.value.path()).read_text()

    with page.expect_download() as caught:
        page.locator("tr[data-artifact='plots/curve.csv'] a").click()
    download = caught.value
    assert download.suggested_filename == "curve.csv"
    assert Path(download.path()).read_bytes() == CURVE

    # A run's file is never rendered on the console's origin: always a download, sniffing off.
    served = page.request.get(f"{stack.http_url}/runs/laptop-a/artifacts/report.html")
    assert served.status == 200 and served.body() == REPORT
    assert served.headers["content-type"] == "application/octet-stream"
    assert served.headers["content-disposition"].startswith("attachment;")
    assert served.headers["x-content-type-options"] == "nosniff"

    missing = page.request.get(f"{stack.http_url}/runs/laptop-a/artifacts/plots/nothing.csv")
    assert missing.status == 404
    assert "has no artifact" in missing.text() and "plots/nothing.csv" in missing.text()

    stranger = browser.new_context()  # no session: sent to sign in, nothing served
    try:
        refused = stranger.request.get(f"{stack.http_url}/runs/laptop-a/artifacts/report.html",
                                       max_redirects=0)
        assert refused.status == 303 and "/login" in refused.headers["location"]
    finally:
        stranger.close()


def test_the_compare_view_shows_params(stack: Stack, signed_in: Page, tmp_path: Path) -> None:
    log_with_mlflow(stack, tmp_path, "laptop-b", "0.2")
    page = signed_in
    page.goto(f"{stack.http_url}/runs/compare?name=laptop-a&name=laptop-b")
    expect(page.locator("#run-compare tr[data-param='lr'] td")).to_have_text(["0.1", "0.2"])
    expect(page.locator("#run-compare tr[data-param='optimizer'] td")).to_have_text(["adam", "adam"])


def test_the_cli_lists_and_downloads_a_laptop_runs_artifacts(
        stack: Stack, tmp_path: Path) -> None:
    run_id = log_with_mlflow(stack, tmp_path, "laptop-c", "0.3", with_model=True)

    code, out = shipyard(stack, "run", "artifacts", "laptop-c", "-o", "json")
    assert code == 0, out
    assert [(f["path"], int(f["size_bytes"])) for f in json.loads(out)] == [
        ("plots/curve.csv", len(CURVE)), ("report.html", len(REPORT))]

    dest = tmp_path / "downloaded"
    code, out = shipyard(stack, "run", "artifacts", run_id, "plots", "--download", str(dest))
    assert code == 0, out
    assert [p.relative_to(dest).as_posix() for p in dest.rglob("*") if p.is_file()] == ["plots/curve.csv"]
    assert (dest / "plots" / "curve.csv").read_bytes() == CURVE

    code, out = shipyard(stack, "run", "artifacts", "laptop-c")
    assert code == 0, out
    assert "Logged model regressor" in out and "--model regressor" in out

    code, out = shipyard(stack, "run", "artifacts", "laptop-c", "--model", "regressor", "--download",
                         str(tmp_path / "model"))
    assert code == 0, out
    assert "sklearn" in (tmp_path / "model" / "MLmodel").read_text()

    code, out = shipyard(stack, "run", "artifacts", "laptop-c", "plots/nothing.csv")
    assert code == 1 and "has no artifact 'plots/nothing.csv'" in out

    code, out = shipyard(stack, "run", "get", "laptop-c")
    assert code == 0, out
    assert "lr=0.3 optimizer=adam" in out and "team=vision" in out and "external" in out
    assert "2 files" in out
