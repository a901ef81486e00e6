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
from shipyard.kit.archive import ArchiveError, ArchiveTooLarge, archive_kind, extract
from shipyard.kit.blob.port import BlobStore
from shipyard.kit.blob.tree import BlobTree
from shipyard.kit.errors import ResourceExhausted
from shipyard.kit.manifest import validate_path
from shipyard_gateway.entrypoints.blobs_http import STORAGE_FULL
from shipyard_gateway.entrypoints.console.calls import CALLER, ConsoleError, selected_project
from shipyard_gateway.entrypoints.console.edge import Console
from shipyard_gateway.entrypoints.console.projects import field_of
from shipyard_gateway.entrypoints.console.repos import KINDS, SERVICE
from shipyard_gateway.entrypoints.console.spools import Spools
from shipyard_gateway.entrypoints.limits import EdgeLimits

TEXT_MAX_BYTES = 1 << 20
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
                raise _invalid(f"repo.source.{source}.{field.name}", "must be a whole number") from None
        elif field.type == FieldDescriptor.TYPE_STRING:
            setattr(chosen, field.name, raw)
    if source == "upload":
        chosen.filename = filename
    return message


def _invalid(field: str, problem: str) -> ConsoleError:
    return ConsoleError.invalid(field, problem)


class Upload:
    """The files of one multipart request of ``user``, spooled under a temporary directory, within
    what ``spools`` allows the user; ``close`` deletes them and gives the allowance back."""

    def __init__(self, user: str, spools: Spools, extract_max_ratio: float) -> None:
        spools.begin(user)
        self.user = user
        self._spools = spools
        self._extract_max_ratio = extract_max_ratio
        self.root = Path(tempfile.mkdtemp(prefix="shipyard-console-upload-"))
        self.files = self.root / "files"
        self.files.mkdir()
        self.names: list[str] = []
        self.size = 0  # bytes on disk: the files, then what an archive expanded to

    async def close(self) -> None:
        await asyncio.to_thread(shutil.rmtree, self.root, True)
        self._spools.end(self.user, self.size)

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
        try:
            with target.open("wb") as out:
                while chunk := await part.read_chunk(1 << 20):
                    self._spend(len(chunk))
                    await asyncio.to_thread(out.write, chunk)
        except OSError as exc:
            if exc.errno not in STORAGE_FULL:
                raise
            raise _storage_full() from None
        self.names.append(clean)

    def _spend(self, count: int) -> None:
        try:
            self._spools.spend(self.user, count)
        except ResourceExhausted as exc:
            raise _too_large(exc.message) from None
        self.size += count

    async def content(self, extract_archive: bool) -> Path:
        """The directory whose files become the version (an archive extracted when asked)."""
        if not extract_archive:
            return self.files
        if len(self.names) != 1 or archive_kind(self.names[0]) is None:
            raise _invalid("extract", "upload one .tar, .tar.gz, .tgz or .zip file to extract it")
        into = self.root / "extracted"
        budget = self._spools.left(self.user)
        try:
            files = await asyncio.to_thread(extract, self.files / self.names[0], into, max_bytes=budget,
                                            max_ratio=self._extract_max_ratio)
        except ArchiveTooLarge as exc:
            limits = (f"SHIPYARD_EXTRACT_MAX_RATIO={self._extract_max_ratio:g}, "
                      f"SHIPYARD_UPLOAD_MAX_BYTES={self._spools.max_bytes}")
            raise _too_large(f"{exc} ({limits}); nothing was created") from None
        except ArchiveError as exc:
            raise _invalid("files", f"{exc}; nothing was created") from None
        self._spend(sum((into / f).stat().st_size for f in files))
        return into


def _storage_full() -> ConsoleError:
    # 507 Insufficient Storage (RFC 4918): the platform cannot store it; the request was fine.
    return ConsoleError(grpc.StatusCode.RESOURCE_EXHAUSTED,
                        "files: no space left on device on the platform; nothing was created",
                        http_status=507)


def _too_large(message: str) -> ConsoleError:
    return ConsoleError(grpc.StatusCode.RESOURCE_EXHAUSTED, f"files: {message}", http_status=413)


async def _text(part: BodyPartReader) -> str:
    """A text field, refused past TEXT_MAX_BYTES (a form's fields are short; files come as files)."""
    data = bytearray()
    while chunk := await part.read_chunk(1 << 16):
        data += chunk
        if len(data) > TEXT_MAX_BYTES:
            raise _invalid(part.name or "form", f"must be at most {TEXT_MAX_BYTES} bytes")
    return data.decode(part.get_charset(default="utf-8"), errors="replace")


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
            text = await _text(part)
            if part.name == "path":
                paths.append(text)
            else:
                values[part.name or ""] = text
        elif part.filename:
            await upload.add(part, paths.pop(0) if paths else part.filename)
    return values


class RepoFormPages:
    """``/repos/<kind>/new`` and ``/repos/<kind>/<name>/upload``."""

    def __init__(self, console: Console, blobs: BlobStore, limits: EdgeLimits) -> None:
        self._console = console
        self._tree = BlobTree(blobs)
        self._spools = Spools(limits.upload_max_bytes, limits.uploads_per_user)
        self._extract_max_ratio = limits.extract_max_ratio

    def _upload(self, request: web.Request) -> Upload:
        """A spool for the signed-in user's upload (``guarded`` resolved them before any body byte)."""
        try:
            return Upload(request[CALLER].user, self._spools, self._extract_max_ratio)
        except ResourceExhausted as exc:
            raise ConsoleError(grpc.StatusCode.RESOURCE_EXHAUSTED, exc.message, http_status=429) from None

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
        upload = self._upload(request)
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
            await upload.close()
        raise web.HTTPSeeOther(f"/repos/{segment}/{made.name}")

    async def upload(self, request: web.Request) -> web.Response:
        segment, name = request.match_info["kind"], request.match_info["name"]
        kind = KINDS[segment][0]
        upload = self._upload(request)
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
            await upload.close()
        raise web.HTTPSeeOther(f"/repos/{segment}/{name}/versions/{version.number}")

    async def _version(
        self, request: web.Request, repo: pb.Repo, content: Path, message: str, undo: bool = False
    ) -> pb.Version:
        """Store ``content`` and make it the repo's next version; with ``undo``, a failure deletes the
        repo just created, so nothing is left half-made."""
        try:
            try:
                manifest = await self._tree.store_tree(content)
            except OSError as exc:
                raise _storage_full() if exc.errno in STORAGE_FULL else _invalid("files", str(exc)) from None
            except ValueError as exc:
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
            status=(error.http_status or 400) if error else 200,
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
