"""MLflow's artifact proxy (``/api/2.0/mlflow-artifacts/artifacts``) over the blob store.

A file uploaded is spooled, stored as a blob (content-addressed, like versions' files; the store hashes
it) and recorded by run-svc as the run's (or its logged model's) artifact at that path; nothing is
recorded for an upload that failed. Paths are ``<experiment>/<run id>/artifacts/<path>`` for a run,
``<experiment>/models/<model id>/artifacts/<path>`` for a logged model and
``_registry/<model>/<version>/<path>`` for a registered model version's files (read-only). The caller
must be allowed to write the run before a byte of the body is read.
"""

from __future__ import annotations

import os
import posixpath
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aiohttp import web

from shipyard.contracts.repo.v1 import repos_pb2
from shipyard.contracts.run.v1 import tracking_pb2 as tpb
from shipyard.kit.blob.port import BlobNotFound, BlobStore
from shipyard_gateway.entrypoints.mlflow.wire import (
    MlflowError,
    Platform,
    invalid,
    not_found,
    not_implemented,
)

TRACKING = "/shipyard.run.v1.TrackingService"
REPOS = "/shipyard.repo.v1.RepoService"
REGISTRY = "_registry"
CHUNK = 1 << 20


@dataclass(frozen=True)
class Location:
    """Where a proxy path points: a run's or logged model's artifacts, or a model version's files."""

    owner: tpb.ArtifactOwner | None  # None: a registered model version
    path: str  # under the root
    repo: str = ""
    version: int = 0


def safe(path: str) -> str:
    """``path`` as it is; INVALID_PARAMETER_VALUE for one that is absolute, climbs out ('..') or is not
    in its plain form (empty or '.' segments: a path names one file one way)."""
    if path and ("\\" in path or "\x00" in path or any(s in ("", ".", "..") for s in path.split("/"))):
        raise invalid(
            f"Invalid path {path[:200]!r}: artifact paths are relative, '/'-separated, without "
            "'.', '..' or empty parts"
        )
    return path


def locate(path: str) -> Location:
    """The location of a proxy path; RESOURCE_DOES_NOT_EXIST for one that names nothing."""
    parts = safe(path).split("/") if path else []
    if len(parts) >= 3 and parts[0] == REGISTRY:
        try:
            version = int(parts[2])
        except ValueError:
            raise not_found(f"no model version at {path!r}") from None
        return Location(None, "/".join(parts[3:]), parts[1], version)
    if len(parts) >= 4 and parts[1] == "models" and parts[3] == "artifacts":
        return Location(tpb.ArtifactOwner(model_id=parts[2]), "/".join(parts[4:]))
    if len(parts) >= 3 and parts[2] == "artifacts":
        return Location(tpb.ArtifactOwner(run_id=parts[1]), "/".join(parts[3:]))
    raise not_found(f"{path!r} is not a run's, a logged model's or a model version's artifact path")


class Artifacts:
    """The proxy's handlers."""

    def __init__(self, platform: Platform, blobs: BlobStore, max_bytes: int) -> None:
        self.p = platform
        self.blobs = blobs
        self.max_bytes = max_bytes  # one artifact file (SHIPYARD_UPLOAD_MAX_BYTES)

    async def upload(self, request: web.Request, path: str) -> dict[str, Any]:
        """PUT: store the body as the artifact at ``path``."""
        where = locate(path)
        if where.owner is None:
            raise invalid("a registered model version's files cannot be written")
        if not where.path:
            raise invalid("an artifact upload needs a file name")
        record = tpb.RecordArtifactsRequest(owner=where.owner)
        await self.p.call(f"{TRACKING}/RecordArtifacts", record, tpb.RecordArtifactsResponse)  # may they?
        digest, size = await self._store(request)
        record.files.append(tpb.ArtifactFile(path=where.path, digest=digest, size_bytes=size))
        await self.p.call(f"{TRACKING}/RecordArtifacts", record, tpb.RecordArtifactsResponse)
        return {}

    async def _store(self, request: web.Request) -> tuple[str, int]:
        """The body, spooled to a temporary file, then put in the blob store (which hashes it); a body
        over the limit is refused, before it is read when it says its length, and nothing is kept."""
        if (request.content_length or 0) > self.max_bytes:
            raise self._too_large()
        fd, name = tempfile.mkstemp(prefix="shipyard-artifact-")
        try:
            read = 0
            with os.fdopen(fd, "wb") as spool:
                async for chunk in request.content.iter_chunked(CHUNK):
                    read += len(chunk)
                    if read > self.max_bytes:
                        raise self._too_large()
                    spool.write(chunk)
            digest, size = await self.blobs.put_file(Path(name))
            await self.blobs.sync()
            return digest, size
        finally:
            os.unlink(name)

    def _too_large(self) -> MlflowError:
        return MlflowError("REQUEST_LIMIT_EXCEEDED", f"an artifact file may have at most {self.max_bytes} "
                           "bytes (the platform's SHIPYARD_UPLOAD_MAX_BYTES)", 413)

    async def listing(self, path: str) -> dict[str, Any]:
        """GET with ?path=: the entries of a directory, by their base names (as MLflow's server)."""
        where = locate(path)
        if where.owner is None:
            files = await self._version_files(where)
            entries = _version_entries(files, where.path)
        else:
            found = await self.p.call(
                f"{TRACKING}/ListArtifacts",
                tpb.ListArtifactsRequest(owner=where.owner, path=where.path),
                tpb.ListArtifactsResponse,
            )
            entries = [(f.path, f.is_dir, f.size_bytes) for f in found.files]
        return {"files": [_entry(name, is_dir, size) for name, is_dir, size in entries]}

    async def download(self, request: web.Request, path: str) -> web.StreamResponse:
        """GET: the artifact's bytes."""
        where = locate(path)
        if where.owner is None:
            files = await self._version_files(where)
            digest = next((f.sha256 for f in files if f.path == where.path), "")
            if not digest:
                raise not_found(f"model {where.repo!r} version {where.version} has no file {where.path!r}")
        else:
            found = await self.p.call(
                f"{TRACKING}/GetArtifact",
                tpb.GetArtifactRequest(owner=where.owner, path=where.path),
                tpb.ArtifactFile,
            )
            digest = found.digest
        return await self._send(request, digest)

    async def _send(self, request: web.Request, digest: str) -> web.StreamResponse:
        try:
            size = await self.blobs.size(digest)
        except BlobNotFound:
            raise MlflowError(
                "INTERNAL_ERROR", f"the artifact's content (blob {digest}) is missing", 500
            ) from None
        response = web.StreamResponse(
            headers={"Content-Type": "application/octet-stream", "Content-Length": str(size)}
        )
        await response.prepare(request)
        async for chunk in self.blobs.get(digest):
            await response.write(chunk)
        await response.write_eof()
        return response

    async def _version_files(self, where: Location) -> list[repos_pb2.FileEntry]:
        files: list[repos_pb2.FileEntry] = []
        token = ""
        while True:
            request = repos_pb2.ListVersionFilesRequest(
                kind=repos_pb2.REPO_KIND_MODEL,
                repo=where.repo,
                number=where.version,
                page_size=10_000,
                page_token=token,
            )
            page = await self.p.call(f"{REPOS}/ListVersionFiles", request, repos_pb2.ListVersionFilesResponse)
            files += page.files
            token = page.next_page_token
            if not token:
                return files

    async def delete(self, path: str) -> dict[str, Any]:
        """DELETE: not offered (an artifact stays while its run exists)."""
        raise not_implemented("deleting artifacts")


def _entry(path: str, is_dir: bool, size: int) -> dict[str, Any]:
    entry: dict[str, Any] = {"path": posixpath.basename(path), "is_dir": is_dir}
    if not is_dir:
        entry["file_size"] = size
    return entry


def _version_entries(files: list[repos_pb2.FileEntry], directory: str) -> list[tuple[str, bool, int]]:
    prefix = f"{directory}/" if directory else ""
    entries: dict[str, tuple[str, bool, int]] = {}
    for item in files:
        if item.path == directory:  # a file, listed: MLflow's client expects its own entry back
            entries[item.path] = (item.path, False, item.size)
        if not item.path.startswith(prefix):
            continue
        head, slash, _ = item.path[len(prefix) :].partition("/")
        entries.setdefault(prefix + head, (prefix + head, bool(slash), 0 if slash else item.size))
    return [entries[k] for k in sorted(entries)]
