"""A version's files out of the console: the whole version as a .tar.gz (what ``shipyard dataset
export`` writes), and a feature set's specification in (SetFeatureSpec)."""

from __future__ import annotations

import asyncio
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

from aiohttp import web

from shipyard.contracts.repo.v1 import repos_pb2 as pb
from shipyard.kit.archive import ArchiveEntry, write_tar_gz
from shipyard.kit.blob.checkout import check_out, read_manifest
from shipyard.kit.blob.port import BlobStore
from shipyard.kit.manifest import Manifest
from shipyard_gateway.entrypoints.console.calls import ConsoleError
from shipyard_gateway.entrypoints.console.edge import Console
from shipyard_gateway.entrypoints.console.repos import KINDS, SERVICE

CHUNK = 1 << 20
SPEC_MAX_BYTES = 1 << 20


def _file_chunks(path: Path) -> Callable[[], Iterator[bytes]]:
    def read() -> Iterator[bytes]:
        with path.open("rb") as source:
            while chunk := source.read(CHUNK):
                yield chunk

    return read


def write_archive(manifest: Manifest, files: Path, out: Path) -> None:
    """The version's files (laid out under ``files``) as a .tar.gz at ``out``. Blocking."""
    entries = [ArchiveEntry(e.path, e.size, e.mode, _file_chunks(files / e.path)) for e in manifest.entries]
    with out.open("wb") as handle:
        write_tar_gz(entries, handle)


class RepoFilePages:
    """``/repos/<kind>/<name>/versions/<n>/export`` and ``/repos/featuresets/<name>/spec``."""

    def __init__(self, console: Console, blobs: BlobStore) -> None:
        self._console = console
        self._blobs = blobs

    def add_routes(self, app: web.Application) -> None:
        guarded = self._console.guarded
        base = "/repos/{kind:code|datasets|featuresets|models}/{name}"
        app.router.add_get(base + "/versions/{number:\\d+}/export", guarded(self.export))
        app.router.add_post("/repos/featuresets/{name}/spec", guarded(self.spec))

    async def export(self, request: web.Request) -> web.StreamResponse:
        """The version as ``<repo>-v<n>.tar.gz``, after GetVersion allowed this user to see it."""
        kind = KINDS[request.match_info["kind"]][0]
        name, number = request.match_info["name"], int(request.match_info["number"])
        version = await self._console.call(
            request,
            f"{SERVICE}/GetVersion",
            pb.GetVersionRequest(kind=kind, repo=name, number=number),
            pb.Version,
        )
        empty = Manifest(entries=())
        manifest = (
            empty
            if version.manifest_digest == empty.digest
            else await read_manifest(self._blobs, version.manifest_digest)
        )
        work = Path(tempfile.mkdtemp(prefix="shipyard-console-export-"))
        try:
            await check_out(self._blobs, manifest, work / "files")
            archive = work / "version.tar.gz"
            await asyncio.to_thread(write_archive, manifest, work / "files", archive)
            response = web.StreamResponse(
                headers={
                    "Content-Type": "application/gzip",
                    "Content-Disposition": f'attachment; filename="{name}-v{version.number}.tar.gz"',
                }
            )
            response.content_length = archive.stat().st_size
            await response.prepare(request)
            with archive.open("rb") as source:
                while chunk := await asyncio.to_thread(source.read, CHUNK):
                    await response.write(chunk)
            await response.write_eof()
            return response
        finally:
            await asyncio.to_thread(shutil.rmtree, work, True)

    async def spec(self, request: web.Request) -> web.Response:
        """A feature specification (YAML, typed or a file) as the feature set's next version."""
        name = request.match_info["name"]
        form = await request.post()
        upload = form.get("spec_file")
        text = str(form.get("spec_yaml", ""))
        if isinstance(upload, web.FileField) and upload.filename:
            data = upload.file.read(SPEC_MAX_BYTES + 1)
            if len(data) > SPEC_MAX_BYTES:
                raise web.HTTPRequestEntityTooLarge(max_size=SPEC_MAX_BYTES, actual_size=len(data))
            text = data.decode("utf-8", errors="replace")
        try:
            version = await self._console.call(
                request,
                f"{SERVICE}/SetFeatureSpec",
                pb.SetFeatureSpecRequest(featureset=name, spec_yaml=text),
                pb.Version,
            )
        except ConsoleError as exc:
            if exc.signed_out:
                raise
            return await self._console.error_page(request, exc)
        raise web.HTTPSeeOther(f"/repos/featuresets/{name}/versions/{version.number}")
