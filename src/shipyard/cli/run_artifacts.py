"""``shipyard run artifacts``: the files a run logged (MLflow's ``log_artifact``, ``log_model``), listed
or downloaded."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.progress import BarColumn, DownloadColumn, Progress, TransferSpeedColumn

from shipyard.cli import output
from shipyard.cli.context import client, console
from shipyard.cli.output import Format, OutputOpt
from shipyard.client.connection import Client, ClientError, TransferError
from shipyard.contracts.run.v1 import runs_pb2 as pb
from shipyard.contracts.run.v1 import tracking_pb2 as tpb
from shipyard.kit.manifest import MODE_FILE, ManifestEntry
from shipyard.kit.units import human_size

DIGEST_SHOWN = 12  # hex characters of a digest in the table
DownloadOpt = Annotated[Path | None, typer.Option(
    "--download", metavar="DIR", file_okay=False,
    help="Download the files into DIR, at their paths in the run's (or the model's) artifacts.")]
ModelOpt = Annotated[str, typer.Option(
    metavar="NAME", help="A model the run logged (MLflow's log_model; its name or id): its files rather than "
                         "the run's.")]


def find_run(c: Client, run: str) -> pb.Run:
    """The run named ``run``, or else the run with that id (what MLflow shows as the run ID); the
    NOT_FOUND of the name when neither exists."""
    try:
        return c.call(c.runs.GetRun, pb.GetRunRequest(name=run))
    except ClientError as by_name:
        if by_name.code != "NOT_FOUND":
            raise
        try:
            return c.call(c.tracking.GetRunById, tpb.GetRunByIdRequest(run_id=run))
        except ClientError as by_id:
            if by_id.code != "NOT_FOUND":
                raise
            raise by_name from None


def logged_models(c: Client, run: pb.Run) -> list[tpb.LoggedModel]:
    """The models the run logged (MLflow's ``log_model``), newest first."""
    return list(c.call(c.tracking.SearchLoggedModels, tpb.SearchLoggedModelsRequest(run_id=run.id)).models)


def owner_of(c: Client, run: pb.Run, model: str) -> tpb.ArtifactOwner:
    """Whose files: the run's, or (``model``: a name or an id) a model it logged (the newest of that
    name). NOT_FOUND, naming both, when the run logged no such model."""
    if not model:
        return tpb.ArtifactOwner(run_id=run.id)
    models = logged_models(c, run)
    found = next((m for m in models if model in (m.id, m.name)), None)
    if found is None:
        logged = ", ".join(sorted({m.name for m in models})) or "none"
        raise ClientError("NOT_FOUND", f"run {run.name!r} logged no model named {model!r} "
                                       f"(it logged: {logged})")
    return tpb.ArtifactOwner(run_id=run.id, model_id=found.id)


def artifact_files(c: Client, owner: tpb.ArtifactOwner, path: str) -> list[tpb.ArtifactFile]:
    """Every file of the owner's artifacts under ``path`` (a directory, or one file); none when
    there are none. NOT_FOUND when ``path`` names neither a file nor a directory of them."""
    request = tpb.ListArtifactsRequest(owner=owner, path=path, recursive=True)
    listed = c.call(c.tracking.ListArtifacts, request)
    files = [f for f in listed.files if not f.is_dir]
    if files or not path:
        return files
    return [c.call(c.tracking.GetArtifact, tpb.GetArtifactRequest(owner=owner, path=path))]


def manifest_entries(files: list[tpb.ArtifactFile]) -> list[ManifestEntry]:
    """The files as the transfer client downloads them; a path that could not be written safely (or a
    malformed digest) is a TransferError naming it."""
    try:
        return [ManifestEntry(f.path, f.size_bytes, f.digest, MODE_FILE) for f in files]
    except ValueError as exc:
        raise TransferError(f"the gateway listed an artifact that cannot be downloaded: {exc}") from None


def _bar() -> Progress:
    return Progress("[progress.description]{task.description}", BarColumn(), DownloadColumn(),
                    TransferSpeedColumn(), console=console, transient=False)


def artifacts(
    run: Annotated[str, typer.Argument(help="The run's name, or its id (MLflow's run ID).")],
    path: Annotated[str, typer.Argument(help="Only this directory of the artifacts, or this one file.")] = "",
    download: DownloadOpt = None,
    model: ModelOpt = "",
    fmt: OutputOpt = Format.table,
) -> None:
    """List the files a run logged as artifacts (path, size, digest), or download them."""
    with client() as c:
        found = find_run(c, run)
        files = artifact_files(c, owner_of(c, found, model), path)
        if download is not None and files:
            _download(c, found, files, download)
            return
        if output.emit(files, fmt):
            return
        models = [] if model else logged_models(c, found)
    if files:
        table = output.table("Path", "Size", "Digest")
        for f in files:
            table.add_row(escape(f.path), human_size(f.size_bytes), f.digest[:DIGEST_SHOWN])
        console.print(table)
    else:
        whose = f"model {escape(model)} of run" if model else "run"
        console.print(f"[dim]No artifacts for {whose} {escape(found.name)}.[/]")
    for m in models:
        console.print(f"Logged model [bold]{escape(m.name)}[/] ({m.id}): its files with "
                      f"[bold]--model {escape(m.name)}[/]")


def _download(c: Client, run: pb.Run, files: list[tpb.ArtifactFile], dest: Path) -> None:
    from shipyard.client import transfer  # the HTTP client: only to move content

    entries = manifest_entries(files)
    with _bar() as bar:
        task = bar.add_task(f"artifacts of {escape(run.name)}", total=sum(e.size for e in entries))
        got = transfer.download(c, entries, dest, lambda n: bar.advance(task, n))
    console.print(f"[green]Downloaded[/] {output.count(len(entries), 'file')} ({human_size(got)}) "
                  f"into {escape(str(dest))}")
