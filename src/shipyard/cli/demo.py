"""``shipyard demo``: the whole loop on a running Shipyard, for a newcomer after ``make up``.

Makes a dataset with a preprocessing run (scikit-learn's bundled digits, nothing downloaded),
trains a model on it with a training run whose output becomes a model version, and shows the
logs, metrics and versions on the way. Uses the example project in ``examples/digits``.
"""

from __future__ import annotations

import time
import uuid
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from shipyard.cli.context import client, console, errors
from shipyard.client.connection import Client, ClientError
from shipyard.contracts.repo.v1 import repos_pb2
from shipyard.contracts.run.v1 import runs_pb2

EXAMPLE = Path(__file__).resolve().parents[3] / "examples" / "digits"
ENDED = (runs_pb2.RUN_STATUS_COMPLETE, runs_pb2.RUN_STATUS_FAILED, runs_pb2.RUN_STATUS_STOPPED,
         runs_pb2.RUN_STATUS_ERROR)
POLL_S = 0.5


def demo(
    epochs: Annotated[int, typer.Option(min=1, max=100, help="Training epochs.")] = 8,
    lr: Annotated[float, typer.Option(help="Learning rate.")] = 0.05,
) -> None:
    """Prepare a dataset, train a model on it and show what came out (needs `make up` running)."""
    if not (EXAMPLE / "train.py").exists():
        errors.print(f"[bold red]The example project is not here[/] ({EXAMPLE}): run the demo from a "
                     "checkout of Shipyard.")
        raise typer.Exit(1)
    suffix = uuid.uuid4().hex[:6]
    with client() as c:
        _ensure_repo(c, repos_pb2.REPO_KIND_DATASET, "digits")
        _ensure_repo(c, repos_pb2.REPO_KIND_MODEL, "digits-model")
        prep = _run(c, runs_pb2.Run(
            name=f"digits-prep-{suffix}", kind=runs_pb2.RUN_KIND_PREPROCESSING,
            command=f"python {EXAMPLE / 'prep.py'}",
            outputs=[runs_pb2.RunOutputTarget(repo_kind="dataset", repo="digits")]))
        train = _run(c, runs_pb2.Run(
            name=f"digits-train-{suffix}", kind=runs_pb2.RUN_KIND_TRAINING, framework="sklearn",
            command=f"python {EXAMPLE / 'train.py'}",
            inputs=[runs_pb2.RunInput(repo_kind="dataset", repo="digits", mount_path="/mnt/data")],
            outputs=[runs_pb2.RunOutputTarget(repo_kind="model", repo="digits-model")],
            hyperparameters={"epochs": str(epochs), "lr": str(lr)}))
        _summary(c, prep, train)


def _ensure_repo(c: Client, kind: repos_pb2.RepoKind, name: str) -> None:
    repo = repos_pb2.Repo(kind=kind, name=name, versioning=repos_pb2.VERSIONING_DVS,
                          source=repos_pb2.Source(none=repos_pb2.NoSource()),
                          description="made by shipyard demo")
    try:
        c.call(c.repos.CreateRepo, repos_pb2.CreateRepoRequest(repo=repo))
        kind_name = repos_pb2.RepoKind.Name(kind).removeprefix("REPO_KIND_").lower()
        console.print(f"Created {kind_name} [bold]{name}[/]")
    except ClientError as exc:
        if exc.code != "ALREADY_EXISTS":
            raise


def _run(c: Client, run: runs_pb2.Run) -> runs_pb2.Run:
    """Submit, stream its log, wait for the end; the ended run (exit 1 unless complete)."""
    c.call(c.runs.SubmitRun, runs_pb2.SubmitRunRequest(run=run, request_id=str(uuid.uuid4())))
    console.rule(f"run {run.name}")
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
        errors.print(f"[bold red]run {run.name} {runs_pb2.RunStatus.Name(current.status)}[/]: "
                     f"{current.status_reason}")
        raise typer.Exit(1)
    return current


def _summary(c: Client, prep: runs_pb2.Run, train: runs_pb2.Run) -> None:
    model = _version_by(c, repos_pb2.REPO_KIND_MODEL, "digits-model", train.id)
    dataset = _version_by(c, repos_pb2.REPO_KIND_DATASET, "digits", prep.id)
    table = Table("what", "result", title="shipyard demo", title_justify="left")
    table.add_row("dataset", f"digits@{dataset} (made by {prep.name})")
    table.add_row("model", f"digits-model@{model} (made by {train.name})")
    table.add_row("metrics", "  ".join(f"{k}={v:.4f}" for k, v in sorted(train.metrics.items())))
    console.print(table)
    console.print(f"Next: [bold]shipyard run metrics {train.name}[/], [bold]shipyard model versions "
                  f"digits-model[/], [bold]shipyard run get {train.name}[/]")


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
