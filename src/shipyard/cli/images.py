"""``shipyard image …``: the image catalog, the environments runs execute in."""

from __future__ import annotations

import sys
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.markup import escape

from shipyard.cli import output
from shipyard.cli.context import client, console
from shipyard.cli.logs import LogChunk, copy_log
from shipyard.cli.output import Format, OutputOpt
from shipyard.contracts.repo.v1 import images_pb2 as pb
from shipyard.contracts.run.v1 import builds_pb2

if TYPE_CHECKING:
    from google.protobuf.timestamp_pb2 import Timestamp

    from shipyard.client.connection import Client

app = typer.Typer(help="Images: the environments runs execute in (standard ones per framework, and yours).",
                  no_args_is_help=True)
SOURCES = {pb.IMAGE_SOURCE_STANDARD: "standard", pb.IMAGE_SOURCE_REGISTRY: "registry",
           pb.IMAGE_SOURCE_CODE_REPO: "code repo"}
STATUSES = {pb.IMAGE_STATUS_READY: "ready", pb.IMAGE_STATUS_BUILDING: "building",
            pb.IMAGE_STATUS_FAILED: "failed"}


def _requirements(lines: list[str], file: Path | None) -> list[str]:
    """The --requirement lines, then the lines of --requirements FILE (the service checks each)."""
    from_file = file.read_text().splitlines() if file is not None else []
    return [*lines, *from_file]


def _framework(image: pb.Image) -> str:
    return " ".join(part for part in (image.framework, image.framework_version) if part)


def _show(image: pb.Image) -> None:
    stamp = image.create_time
    created = stamp.ToDatetime().isoformat(timespec="seconds") if stamp.seconds else ""
    reason = f": {image.status_reason}" if image.status_reason else ""
    rows = [
        ("name", image.name), ("url", image.url), ("description", image.description),
        ("framework", _framework(image)), ("source", SOURCES.get(image.source, "?")),
        ("status", STATUSES.get(image.status, "?") + reason),
        ("private", f"yes (credential {image.credential})" if image.private else "no"),
        ("python", image.python or "the platform's"), ("requirements", "\n".join(image.requirements)),
        ("owner", image.owner or "(the platform)"), ("created", created), ("digest", image.digest),
    ]
    if image.code:
        rows.append(("built from", f"{image.code} {image.commit} ({image.build_file})".strip()))
    console.print(output.fields((label, escape(value)) for label, value in rows))


@app.command()
def add(
    name: str,
    url: Annotated[str, typer.Option(help="The container image: registry[:port]/path[:tag].")],
    description: Annotated[str, typer.Option()] = "",
    private: Annotated[bool, typer.Option("--private", help="Pulling it needs --credential.")] = False,
    credential: Annotated[str, typer.Option(help="Your stored credential that pulls a private image.")] = "",
    framework: Annotated[str, typer.Option(help="tensorflow, pytorch, sklearn, xgboost or custom.")] = "",
    framework_version: Annotated[str, typer.Option(help="e.g. 2.17")] = "",
    python: Annotated[str, typer.Option(help="The local environment's Python, e.g. 3.11 "
                                             "(default: the platform's).")] = "",
    requirement: Annotated[list[str] | None, typer.Option(
        help="A package of the local environment, as pip reads it (repeat it).")] = None,
    requirements: Annotated[Path | None, typer.Option(
        help="A requirements.txt: the local environment's packages.", exists=True, dir_okay=False)] = None,
    fmt: OutputOpt = Format.table,
) -> None:
    """Add an image of yours to the catalog: runs name it with --image."""
    image = pb.Image(name=name, url=url, description=description, private=private, credential=credential,
                     framework=framework, framework_version=framework_version, python=python,
                     requirements=_requirements(requirement or [], requirements))
    with client() as c:
        added = c.call(c.images.AddImage, pb.AddImageRequest(image=image))
    if output.emit(added, fmt):
        return
    console.print(f"[green]Added image[/] [bold]{escape(added.name)}[/] ({escape(added.url)})")


@app.command("list")
def list_(
    framework: Annotated[str, typer.Option(help="Only this framework's images.")] = "",
    fmt: OutputOpt = Format.table,
) -> None:
    """The catalog: the standard images first, then everyone's by name."""
    with client() as c:
        reply = c.call(c.images.ListImages, pb.ListImagesRequest(framework=framework))
    if output.emit(list(reply.images), fmt):
        return
    table = output.table("Name", "Framework", "Source", "Status", "URL", "Requirements")
    for image in reply.images:
        table.add_row(escape(image.name), escape(_framework(image)), SOURCES.get(image.source, "?"),
                      STATUSES.get(image.status, "?"), escape(image.url), str(len(image.requirements)))
    console.print(table if table.row_count else "[dim]No images.[/]")


@app.command()
def get(name: str, fmt: OutputOpt = Format.table) -> None:
    """One image: its URL, framework, status and the packages of its local environment."""
    with client() as c:
        image = c.call(c.images.GetImage, pb.GetImageRequest(name=name))
    if output.emit(image, fmt):
        return
    _show(image)


@app.command()
def delete(name: str) -> None:
    """Delete an image of yours (standard images stay)."""
    with client() as c:
        c.call(c.images.DeleteImage, pb.DeleteImageRequest(name=name))
    console.print(f"[green]Deleted image[/] [bold]{escape(name)}[/]")


BUILD_STATUSES = {builds_pb2.IMAGE_BUILD_STATUS_BUILDING: "building",
                  builds_pb2.IMAGE_BUILD_STATUS_COMPLETE: "complete",
                  builds_pb2.IMAGE_BUILD_STATUS_FAILED: "failed"}
LOG_CHUNK = 256 << 10


@app.command()
def build(
    name: str,
    code: Annotated[str, typer.Option(help="The code repo whose build file (.shipyard-ci.yml or "
                                           ".dkube-ci.yml) or requirements define the image.")],
    commit: Annotated[str, typer.Option(help="Its commit (default: the latest).")] = "",
    folder: Annotated[str, typer.Option(help="The folder of the repo holding the build file.")] = "",
    description: Annotated[str, typer.Option()] = "",
    follow: Annotated[bool, typer.Option("--follow", "-f",
                                         help="Print the build's log until it ends.")] = False,
    fmt: OutputOpt = Format.table,
) -> None:
    """Build an image from a code repo: it enters the catalog once its environment is built."""
    request = builds_pb2.BuildImageRequest(
        build=builds_pb2.ImageBuild(name=name, code=code, commit=commit, folder=folder,
                                    description=description),
        request_id=str(uuid.uuid4()))
    with client() as c:
        with console.status(f"cloning {escape(code)} and reading its build file…"):
            started = c.call(c.builds.BuildImage, request, timeout=600)
        if output.emit(started, fmt):
            return
        console.print(f"[green]Building image[/] [bold]{escape(started.name)}[/] from "
                      f"{escape(started.code)}@{started.commit[:12]} ({escape(started.build_file)}): "
                      f"{len(started.requirements)} requirements")
        for note in started.notes:
            console.print(f"[dim]{escape(note)}[/]")
        if follow:
            _copy_log(c, name, follow=True)
            ended = c.call(c.builds.GetImageBuild, builds_pb2.GetImageBuildRequest(name=name))
            _say_end(ended)


@app.command()
def builds(
    name: Annotated[str, typer.Argument(help="Only this image's builds.")] = "",
    fmt: OutputOpt = Format.table,
) -> None:
    """Image builds, newest first: building → complete or failed."""
    with client() as c:
        reply = c.call(c.builds.ListImageBuilds, builds_pb2.ListImageBuildsRequest(name=name))
    if output.emit(list(reply.builds), fmt):
        return
    table = output.table("Image", "Status", "Code", "Commit", "Build file", "Owner", "Created", "Reason")
    for item in reply.builds:
        status = BUILD_STATUSES.get(item.status, "?") + (" (reused)" if item.reused else "")
        table.add_row(escape(item.name), status, escape(item.code), item.commit[:12], escape(item.build_file),
                      escape(item.owner), _when(item.create_time), escape(item.status_reason))
    console.print(table if table.row_count else "[dim]No image builds.[/]")


@app.command()
def logs(
    name: str,
    follow: Annotated[bool, typer.Option("--follow", "-f",
                                         help="Keep reading until the build ends.")] = False,
) -> None:
    """Print what the latest build of an image printed (its installer); with -f, until it ends."""
    with client() as c:
        try:
            _copy_log(c, name, follow)
        except KeyboardInterrupt:
            raise typer.Exit(130) from None


def _copy_log(c: Client, name: str, follow: bool) -> None:
    def read(offset: int) -> LogChunk:
        request = builds_pb2.ReadImageBuildLogRequest(name=name, offset=offset, max_bytes=LOG_CHUNK)
        reply = c.call(c.builds.ReadImageBuildLog, request)
        return reply.data, reply.next_offset, reply.finished

    copy_log(read, follow, sys.stdout)


def _say_end(ended: builds_pb2.ImageBuild) -> None:
    if ended.status == builds_pb2.IMAGE_BUILD_STATUS_COMPLETE:
        reused = " (its environment existed: nothing was rebuilt)" if ended.reused else ""
        console.print(f"[green]Built[/] [bold]{escape(ended.name)}[/]{reused}: runs name it with --image "
                      f"{escape(ended.name)}")
        return
    console.print(f"[red]The build of {escape(ended.name)} failed:[/] {escape(ended.status_reason)}")
    raise typer.Exit(1)


def _when(stamp: Timestamp) -> str:
    return stamp.ToDatetime().isoformat(timespec="seconds") if stamp.seconds else ""
