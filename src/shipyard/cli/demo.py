"""``shipyard demo``: the whole loop on a running Shipyard, for a newcomer after ``make up``.

Makes a dataset with a preprocessing run (scikit-learn's bundled digits, nothing downloaded),
trains a model on it with a training run whose output becomes a model version, and shows the
logs, metrics and versions on the way; then serves the model as a test inference, publishes it
to the catalog, deploys it (or swaps it into the demo's deployment), sends it a digit through
the gateway and prints a ``curl`` line to send another. Uses the example project in
``examples/digits``.
"""

from __future__ import annotations

import importlib.util
import json
import time
import urllib.request
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from shipyard.cli.context import client, console, errors
from shipyard.cli.example_request import curl_lines, example_body, gateway_base, model_metadata
from shipyard.client.connection import Client, ClientError
from shipyard.contracts.repo.v1 import repos_pb2
from shipyard.contracts.run.v1 import runs_pb2
from shipyard.contracts.serving.v1 import serving_pb2
from shipyard.local.datadir import DataDir

EXAMPLE = Path(__file__).resolve().parents[3] / "examples" / "digits"
ENDED = (
    runs_pb2.RUN_STATUS_COMPLETE,
    runs_pb2.RUN_STATUS_FAILED,
    runs_pb2.RUN_STATUS_STOPPED,
    runs_pb2.RUN_STATUS_ERROR,
)
POLL_S = 0.5
DEPLOYMENT = "digits-live"
TEST_INFERENCE = "digits-test"  # one per user: each demo replaces the one the last demo left
MADE_BY = "made by shipyard demo"
# The example's scripts travel as the runs' config files: a run sees only its own files.
SCRIPT = 'python "$SHIPYARD_CONFIG"'


def demo(
    epochs: Annotated[int, typer.Option(min=1, max=100, help="Training epochs.")] = 8,
    lr: Annotated[float, typer.Option(help="Learning rate.")] = 0.05,
) -> None:
    """Prepare a dataset, train a model on it and show what came out (needs `make up` running)."""
    if not (EXAMPLE / "train.py").exists():
        errors.print(
            f"[bold red]The example project is not here[/] ({EXAMPLE}): run the demo from a "
            "checkout of Shipyard."
        )
        raise typer.Exit(1)
    if importlib.util.find_spec("sklearn") is None:  # the platform's core does not need it
        errors.print(
            "[bold red]The demo needs scikit-learn[/] (its digits are the example's data): "
            + escape("pip install 'shipyard[examples]'")
        )
        raise typer.Exit(1)
    suffix = uuid.uuid4().hex[:6]
    with client() as c:
        _ensure_repo(c, repos_pb2.REPO_KIND_DATASET, "digits")
        _ensure_repo(c, repos_pb2.REPO_KIND_MODEL, "digits-model")
        prep = _run(
            c,
            runs_pb2.Run(
                name=f"digits-prep-{suffix}",
                kind=runs_pb2.RUN_KIND_PREPROCESSING,
                framework="sklearn",
                command=SCRIPT,
                config_file_name="prep.py",
                outputs=[runs_pb2.RunOutputTarget(repo_kind="dataset", repo="digits")],
            ),
            EXAMPLE / "prep.py",
        )
        # The version prep made (repo-svc makes it from RunCompleted, a moment later): train reads that
        # one, not whatever is latest when it is submitted.
        prepared = _version_by(c, repos_pb2.REPO_KIND_DATASET, "digits", prep.id)
        if not prepared.isdigit():
            errors.print(f"[bold red]The dataset prep made is not there[/]: digits@{escape(prepared)}")
            raise typer.Exit(1)
        train = _run(
            c,
            runs_pb2.Run(
                name=f"digits-train-{suffix}",
                kind=runs_pb2.RUN_KIND_TRAINING,
                framework="sklearn",
                command=SCRIPT,
                config_file_name="train.py",
                inputs=[runs_pb2.RunInput(repo_kind="dataset", repo="digits", version=int(prepared),
                                          mount_path="/mnt/data")],
                outputs=[runs_pb2.RunOutputTarget(repo_kind="model", repo="digits-model")],
                hyperparameters={"epochs": str(epochs), "lr": str(lr)},
            ),
            EXAMPLE / "train.py",
        )
        model = _summary(c, prep, train)
        if model.isdigit():
            _serve(c, int(model), suffix)


def _ensure_repo(c: Client, kind: repos_pb2.RepoKind, name: str) -> None:
    repo = repos_pb2.Repo(
        kind=kind,
        name=name,
        versioning=repos_pb2.VERSIONING_DVS,
        source=repos_pb2.Source(none=repos_pb2.NoSource()),
        description=MADE_BY,
    )
    try:
        c.call(c.repos.CreateRepo, repos_pb2.CreateRepoRequest(repo=repo))
        kind_name = repos_pb2.RepoKind.Name(kind).removeprefix("REPO_KIND_").lower()
        console.print(f"Created {kind_name} [bold]{name}[/]")
    except ClientError as exc:
        if exc.code != "ALREADY_EXISTS":
            raise


def _run(c: Client, run: runs_pb2.Run, script: Path) -> runs_pb2.Run:
    """Submit with ``script`` as the run's config file, stream its log, wait for the end; the ended
    run (exit 1 unless complete)."""
    c.call(c.runs.SubmitRun, runs_pb2.SubmitRunRequest(run=run, config_file=script.read_bytes(),
                                                       request_id=str(uuid.uuid4())))
    console.print(f"[bold]── run {run.name} ──[/]")
    offset = 0
    while True:
        current = c.call(c.runs.GetRun, runs_pb2.GetRunRequest(name=run.name))
        logs = c.call(c.runs.ReadRunLogs, runs_pb2.ReadRunLogsRequest(name=run.name, offset=offset))
        if logs.data:
            console.out(logs.data.decode(errors="replace"), end="", highlight=False)
        offset = logs.next_offset
        if current.status in ENDED and logs.finished:
            break
        time.sleep(POLL_S)
    if current.status != runs_pb2.RUN_STATUS_COMPLETE:
        errors.print(
            f"[bold red]run {run.name} {runs_pb2.RunStatus.Name(current.status)}[/]: {current.status_reason}"
        )
        raise typer.Exit(1)
    return current


def _summary(c: Client, prep: runs_pb2.Run, train: runs_pb2.Run) -> str:
    model = _version_by(c, repos_pb2.REPO_KIND_MODEL, "digits-model", train.id)
    dataset = _version_by(c, repos_pb2.REPO_KIND_DATASET, "digits", prep.id)
    table = Table("what", "result", title="shipyard demo", title_justify="left")
    table.add_row("dataset", f"digits@{dataset} (made by {prep.name})")
    table.add_row("model", f"digits-model@{model} (made by {train.name})")
    table.add_row("metrics", "  ".join(f"{k}={v:.4f}" for k, v in sorted(train.metrics.items())))
    console.print(table)
    console.print(
        f"Next: [bold]shipyard run metrics {train.name}[/], [bold]shipyard model versions "
        f"digits-model[/], [bold]shipyard run get {train.name}[/]"
    )
    return model


def _serve(c: Client, version: int, suffix: str) -> None:
    """Test inference, catalog entry and deployment of the new model version, and one request."""
    model = serving_pb2.ModelRef(model="digits-model", version=version)
    test = replace_test_inference(c, model)
    _until_running(lambda: c.call(c.serving.GetInference, serving_pb2.GetInferenceRequest(name=test.name)))
    console.print(f"Test inference [bold]{test.name}[/] is running")
    entry = c.call(
        c.serving.PublishModel,
        serving_pb2.PublishModelRequest(
            entry=serving_pb2.CatalogEntry(
                name=f"digits-{suffix}", model=model, description=MADE_BY
            )
        ),
    )
    console.print(f"Published digits-model@{version} to the catalog as [bold]{entry.name}[/]")
    try:
        c.call(
            c.serving.CreateDeployment,
            serving_pb2.CreateDeploymentRequest(
                deployment=serving_pb2.Deployment(
                    name=DEPLOYMENT, catalog_entry=entry.name, description=MADE_BY
                )
            ),
        )
        console.print(f"Deploying it as [bold]{DEPLOYMENT}[/]")
    except ClientError as exc:
        if exc.code != "ALREADY_EXISTS":
            raise
        c.call(
            c.serving.UpdateDeployment,
            serving_pb2.UpdateDeploymentRequest(name=DEPLOYMENT, catalog_entry=entry.name),
        )
        console.print(f"Swapping it into [bold]{DEPLOYMENT}[/] (no request dropped)")
    live = _until_running(
        lambda: c.call(c.serving.GetDeployment, serving_pb2.GetDeploymentRequest(name=DEPLOYMENT))
    )
    from sklearn.datasets import load_digits  # checked at the start: the examples extra

    digits = load_digits()
    base = gateway_base(c)
    metadata = model_metadata(c, live.endpoint)
    if metadata is None:
        errors.print(f"[yellow]Could not read the model's metadata at {live.endpoint}[/]; ask it yourself:")
        for line in curl_lines(base, live.endpoint, None):
            console.print(f"  {escape(line)}", highlight=False, soft_wrap=True)
        return
    body = json.dumps(example_body(metadata, [float(x) for x in digits.data[0]]))
    request = urllib.request.Request(
        f"{base}{live.endpoint}/infer",
        data=body.encode(),
        headers={"Authorization": f"Bearer {c.credentials.token}", "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=30) as reply:
        answer = json.loads(reply.read())
    predicted = answer["outputs"][0]["data"][0]
    console.print(
        f"[green]{DEPLOYMENT} says the first digit of the dataset is a {predicted}[/] "
        f"(it is a {digits.target[0]}). Send your own:"
    )
    admin_token = DataDir(Path(".shipyard")).admin_token
    how = f"$(cat {admin_token.resolve()})" if admin_token.exists() else "<your token>"
    console.print(f"  export SHIPYARD_TOKEN={how}", highlight=False, soft_wrap=True)
    console.print(f"  {escape(curl_lines(base, live.endpoint, metadata, digits.data[0].tolist())[0])}",
                  highlight=False, soft_wrap=True)


def replace_test_inference(c: Client, model: serving_pb2.ModelRef) -> serving_pb2.Inference:
    """The demo's test inference of ``model``: the previous demos' ones are removed first (each
    keeps a model server running), and the output says so."""
    listed = c.call(c.serving.ListInferences, serving_pb2.ListInferencesRequest(page_size=1000))
    for old in listed.inferences:
        if old.description == MADE_BY and old.name.startswith(TEST_INFERENCE):
            c.call(c.serving.DeleteInference, serving_pb2.DeleteInferenceRequest(name=old.name))
            console.print(f"Removed the previous demo's test inference [bold]{old.name}[/] "
                          f"({old.model.model}@{old.model.version}): {TEST_INFERENCE} replaces it")
    return c.call(
        c.serving.CreateInference,
        serving_pb2.CreateInferenceRequest(
            inference=serving_pb2.Inference(name=TEST_INFERENCE, model=model, description=MADE_BY)
        ),
    )


def _until_running(get: Callable[[], Any]) -> Any:
    deadline = time.monotonic() + 120
    found = get()
    while found.status != serving_pb2.SERVING_STATUS_RUNNING and time.monotonic() < deadline:
        if found.status in (serving_pb2.SERVING_STATUS_FAILED, serving_pb2.SERVING_STATUS_ERROR):
            errors.print(f"[bold red]{found.name} failed[/]: {found.status_reason}")
            raise typer.Exit(1)
        time.sleep(POLL_S)
        found = get()
    return found


def _version_by(c: Client, kind: repos_pb2.RepoKind, repo: str, run_id: str) -> str:
    """The version the run produced (repo-svc makes it from RunCompleted, a moment later)."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        request = repos_pb2.ListVersionsRequest(kind=kind, repo=repo, page_size=20)
        listed = c.call(c.repos.ListVersions, request)
        for version in listed.versions:
            if version.produced_by_run == run_id:
                return str(version.number)
        time.sleep(POLL_S)
    return "? (not made yet: see `shipyard run get`)"
