""" "+ Code", "+ Dataset", "+ FeatureSet", "+ Model": the form whose fields follow the chosen
source, and uploads from the workstation (files, a folder, or an archive extracted on request)
as the next version of a repo.

The source fields come from the contract itself (each source message's fields, in order), so the
form offers exactly what the API takes. An upload is spooled to a temporary directory, checked
(names, archive entries: nothing outside the version, no links), stored in the blob store and
made a version with the public CreateVersion call; a bad upload creates nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import tempfile
from pathlib import Path
from typing import Any

import grpc
from aiohttp import BodyPartReader, web
from google.protobuf.descriptor import FieldDescriptor

from shipyard.contracts.repo.v1 import repos_pb2 as pb
from shipyard.kit.archive import ArchiveError, archive_kind, extract
from shipyard.kit.blob.port import BlobStore
from shipyard.kit.blob.tree import BlobTree
from shipyard.kit.manifest import validate_path
from shipyard_gateway.entrypoints.console.calls import ConsoleError, selected_project
from shipyard_gateway.entrypoints.console.edge import Console
from shipyard_gateway.entrypoints.console.projects import field_of
from shipyard_gateway.entrypoints.console.repos import KINDS, SERVICE

UPLOAD_MAX_BYTES = 50 << 30
SOURCES_BY_KIND = {
    "code": ("git",),
    "datasets": (
        "upload",
        "git",
        "s3",
        "gcs",
        "volume",
        "nfs",
        "hostpath",
        "redshift",
        "sql",
        "fsx",
        "url",
        "none",
    ),
    "featuresets": ("none", "upload"),
    "models": ("none", "upload", "git", "s3", "gcs", "volume", "nfs", "hostpath", "url"),
}
SOURCE_LABELS = {
    "git": "Git",
    "s3": "AWS S3 / MinIO",
    "gcs": "Google Cloud Storage",
    "volume": "Kubernetes volume",
    "nfs": "NFS",
    "hostpath": "Host path",
    "redshift": "Redshift",
    "sql": "SQL database (MySQL, MSSQL, Oracle)",
    "fsx": "Amazon FSx",
    "url": "Public URL",
    "upload": "Upload from this computer",
    "none": "None (a run writes it)",
}


def source_fields(source: str) -> list[dict[str, str]]:
    """The fields of a source, from its message: name, label and input type."""
    message = pb.Source.DESCRIPTOR.fields_by_name[source].message_type
    assert message is not None  # every source is a message
    fields = []
    for field in message.fields:
        if source == "upload" and field.name == "filename":
            continue  # the uploaded file names it
        kind = (
            "checkbox"
            if field.type == FieldDescriptor.TYPE_BOOL
            else "number"
            if field.type in (FieldDescriptor.TYPE_INT32, FieldDescriptor.TYPE_INT64)
            else "text"
        )
        fields.append({"name": field.name, "label": field.name.replace("_", " ").capitalize(), "type": kind})
    return fields


def source_from(source: str, values: dict[str, str], filename: str) -> pb.Source:
    """The Source message of the chosen source from the form's ``<source>.<field>`` values."""
    message = pb.Source()
    chosen = getattr(message, source)
    chosen.SetInParent()
    for field in chosen.DESCRIPTOR.fields:
        raw = values.get(f"{source}.{field.name}", "").strip()
        if field.type == FieldDescriptor.TYPE_BOOL:
            setattr(chosen, field.name, raw == "on")
        elif field.type in (FieldDescriptor.TYPE_INT32, FieldDescriptor.TYPE_INT64):
            try:
                setattr(chosen, field.name, int(raw or "0"))
            except ValueError:
                raise ConsoleError(
                    grpc.StatusCode.INVALID_ARGUMENT,
                    f"repo.source.{source}.{field.name}: must be a whole number",
                ) from None
        elif field.type == FieldDescriptor.TYPE_STRING:
            setattr(chosen, field.name, raw)
    if source == "upload":
        chosen.filename = filename
    return message


def _invalid(field: str, problem: str) -> ConsoleError:
    return ConsoleError(grpc.StatusCode.INVALID_ARGUMENT, f"{field}: {problem}")


class Upload:
    """The files of one multipart request, spooled under a temporary directory."""

    def __init__(self) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="shipyard-console-upload-"))
        self.files = self.root / "files"
        self.files.mkdir()
        self.names: list[str] = []
        self.size = 0

    def close(self) -> None:
        shutil.rmtree(self.root, ignore_errors=True)

    async def add(self, part: BodyPartReader, path: str) -> None:
        """Write one file part to ``path`` (a version path: relative, no '..')."""
        try:
            clean = validate_path(path)
        except ValueError as exc:
            raise _invalid("files", str(exc)) from None
        target = self.files / clean
        if target.exists():
            raise _invalid("files", f"{clean!r} is uploaded twice")
        target.parent.mkdir(parents=True, exist_ok=True)
        with target.open("wb") as out:
            while chunk := await part.read_chunk(1 << 20):
                self.size += len(chunk)
                if self.size > UPLOAD_MAX_BYTES:
                    raise _invalid("files", f"the upload is over {UPLOAD_MAX_BYTES >> 30} GiB; use the CLI")
                await asyncio.to_thread(out.write, chunk)
        self.names.append(clean)

    async def content(self, extract_archive: bool) -> Path:
        """The directory whose files become the version (an archive extracted when asked)."""
        if not extract_archive:
            return self.files
        if len(self.names) != 1 or archive_kind(self.names[0]) is None:
            raise _invalid("extract", "upload one .tar, .tar.gz, .tgz or .zip file to extract it")
        into = self.root / "extracted"
        try:
            await asyncio.to_thread(extract, self.files / self.names[0], into)
        except ArchiveError as exc:
            raise _invalid("files", f"{exc}; nothing was created") from None
        return into


async def read_form(request: web.Request, upload: Upload) -> dict[str, str]:
    """The form's text fields; its files go to ``upload`` (paths from ``path`` fields sent before
    each file, as the page's script sends a folder's relative paths; else the file name)."""
    values: dict[str, str] = {}
    paths: list[str] = []
    reader = await request.multipart()
    while (part := await reader.next()) is not None:
        if not isinstance(part, BodyPartReader):
            continue
        if part.filename is None:
            text = await part.text()
            if part.name == "path":
                paths.append(text)
            else:
                values[part.name or ""] = text
        elif part.filename:
            await upload.add(part, paths.pop(0) if paths else part.filename)
    return values


class RepoFormPages:
    """``/repos/<kind>/new`` and ``/repos/<kind>/<name>/upload``."""

    def __init__(self, console: Console, blobs: BlobStore) -> None:
        self._console = console
        self._tree = BlobTree(blobs)

    def add_routes(self, app: web.Application) -> None:
        guarded = self._console.guarded
        base = "/repos/{kind:code|datasets|featuresets|models}"
        app.router.add_get(base + "/new", guarded(self.new))
        app.router.add_post(base + "/new", guarded(self.create))
        app.router.add_post(base + "/{name}/upload", guarded(self.upload))

    async def new(self, request: web.Request) -> web.Response:
        segment = request.match_info["kind"]
        return await self._form(request, {"source": SOURCES_BY_KIND[segment][0]}, None)

    async def create(self, request: web.Request) -> web.Response:
        segment = request.match_info["kind"]
        kind = KINDS[segment][0]
        upload = Upload()
        values: dict[str, str] = {}
        try:
            values = await read_form(request, upload)
            source = values.get("source", "")
            if source not in SOURCES_BY_KIND[segment]:
                raise _invalid("repo.source", f"choose one of {', '.join(SOURCES_BY_KIND[segment])}")
            content = (
                await upload.content(values.get("upload.extract") == "on") if source == "upload" else None
            )
            if source == "upload" and not upload.names:
                raise _invalid("files", "choose the files, a folder or an archive to upload")
            repo = pb.Repo(
                kind=kind,
                name=values.get("name", "").strip(),
                description=values.get("description", ""),
                tags=[t.strip() for t in values.get("tags", "").split(",") if t.strip()],
                project=selected_project(request),
                versioning=pb.VERSIONING_DVS
                if values.get("versioned") == "on" or source in ("upload", "none")
                else pb.VERSIONING_NONE,
                source=source_from(source, values, upload.names[0] if upload.names else ""),
            )
            made = await self._console.call(
                request, f"{SERVICE}/CreateRepo", pb.CreateRepoRequest(repo=repo), pb.Repo
            )
            if content is not None:
                await self._version(request, made, content, "uploaded from the console", undo=True)
        except ConsoleError as exc:
            if exc.signed_out:
                raise
            return await self._form(request, values, exc)
        finally:
            await asyncio.to_thread(upload.close)
        raise web.HTTPSeeOther(f"/repos/{segment}/{made.name}")

    async def upload(self, request: web.Request) -> web.Response:
        segment, name = request.match_info["kind"], request.match_info["name"]
        kind = KINDS[segment][0]
        upload = Upload()
        try:
            values = await read_form(request, upload)
            if not upload.names:
                raise _invalid("files", "choose the files, a folder or an archive to upload")
            content = await upload.content(values.get("extract") == "on")
            repo = await self._console.call(
                request, f"{SERVICE}/GetRepo", pb.GetRepoRequest(kind=kind, name=name), pb.Repo
            )
            version = await self._version(
                request, repo, content, values.get("message", "") or "uploaded from the console"
            )
        except ConsoleError as exc:
            if exc.signed_out:
                raise
            return await self._console.error_page(request, exc)
        finally:
            await asyncio.to_thread(upload.close)
        raise web.HTTPSeeOther(f"/repos/{segment}/{name}/versions/{version.number}")

    async def _version(
        self, request: web.Request, repo: pb.Repo, content: Path, message: str, undo: bool = False
    ) -> pb.Version:
        """Store ``content`` and make it the repo's next version; with ``undo``, a failure deletes the
        repo just created, so nothing is left half-made."""
        try:
            try:
                manifest = await self._tree.store_tree(content)
            except (ValueError, OSError) as exc:
                raise _invalid("files", str(exc)) from None
            return await self._console.call(
                request,
                f"{SERVICE}/CreateVersion",
                pb.CreateVersionRequest(
                    kind=repo.kind, repo=repo.name, manifest_digest=manifest.digest, message=message
                ),
                pb.Version,
            )
        except ConsoleError:
            if undo:
                with contextlib.suppress(ConsoleError):
                    await self._console.call(
                        request,
                        f"{SERVICE}/DeleteRepo",
                        pb.DeleteRepoRequest(kind=repo.kind, name=repo.name, force=True),
                        pb.DeleteRepoResponse,
                    )
            raise

    async def _form(
        self, request: web.Request, values: dict[str, Any], error: ConsoleError | None
    ) -> web.Response:
        segment = request.match_info["kind"]
        _, singular, plural = KINDS[segment]
        sources = SOURCES_BY_KIND[segment]
        return await self._console.page(
            request,
            "repos/form.html.j2",
            segment,
            status=400 if error else 200,
            values=values,
            segment=segment,
            singular=singular,
            plural=plural,
            sources=sources,
            labels=SOURCE_LABELS,
            fields={s: source_fields(s) for s in sources},
            error=error.message if error else "",
            error_field=field_of(error) if error else "",
        )
