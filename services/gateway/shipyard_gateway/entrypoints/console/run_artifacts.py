"""A run's artifacts in the console (what MLflow's ``log_artifact`` and ``log_model`` logged): their
listing on the run's page, and each file's download, as the signed-in user (the MLflow API's own
download takes a bearer token, which a browser's link does not send)."""

from __future__ import annotations

import posixpath
from urllib.parse import quote

import grpc
from aiohttp import web

from shipyard.contracts.run.v1 import runs_pb2 as pb
from shipyard.contracts.run.v1 import tracking_pb2 as tpb
from shipyard.kit.blob.port import BlobNotFound, BlobStore
from shipyard_gateway.entrypoints.console.calls import ConsoleError
from shipyard_gateway.entrypoints.console.edge import Console

RUNS = "/shipyard.run.v1.RunService"
TRACKING = "/shipyard.run.v1.TrackingService"
LISTED_MOST = 500  # files on the run's page; the CLI lists them all


async def artifact_files(console: Console, request: web.Request, run: pb.Run) -> list[tpb.ArtifactFile]:
    """Every file of the run's artifacts, sorted by path (none asked for when it logged none)."""
    if not run.artifact_count:
        return []
    listed = await console.call(
        request,
        f"{TRACKING}/ListArtifacts",
        tpb.ListArtifactsRequest(owner=tpb.ArtifactOwner(run_id=run.id), recursive=True),
        tpb.ListArtifactsResponse,
    )
    return [f for f in listed.files if not f.is_dir]


async def logged_models(
    console: Console, request: web.Request, run: pb.Run
) -> list[tuple[tpb.LoggedModel, list[tpb.ArtifactFile]]]:
    """The models the run logged (MLflow's ``log_model``), newest first, each with its files."""
    found = await console.call(
        request,
        f"{TRACKING}/SearchLoggedModels",
        tpb.SearchLoggedModelsRequest(run_id=run.id),
        tpb.SearchLoggedModelsResponse,
    )
    models = []
    for model in found.models:
        owner = tpb.ArtifactOwner(run_id=run.id, model_id=model.id)
        listed = await console.call(
            request,
            f"{TRACKING}/ListArtifacts",
            tpb.ListArtifactsRequest(owner=owner, recursive=True),
            tpb.ListArtifactsResponse,
        )
        models.append((model, [f for f in listed.files if not f.is_dir][:LISTED_MOST]))
    return models


def attachment(path: str) -> str:
    """The Content-Disposition of a download saved under the artifact's file name (RFC 6266)."""
    return f"attachment; filename*=UTF-8''{quote(posixpath.basename(path), safe='')}"


class RunArtifactPages:
    """``/runs/<name>/artifacts/<path>`` and ``/runs/<name>/models/<model id>/artifacts/<path>``: one
    file of the run's artifacts, or of a model it logged."""

    def __init__(self, console: Console, blobs: BlobStore) -> None:
        self._console = console
        self._blobs = blobs

    def add_routes(self, app: web.Application) -> None:
        guarded = self._console.guarded
        app.router.add_get("/runs/{name}/artifacts/{path:.+}", guarded(self.download))
        app.router.add_get("/runs/{name}/models/{model_id}/artifacts/{path:.+}", guarded(self.download))

    async def download(self, request: web.Request) -> web.StreamResponse:
        """The file, after GetRun and GetArtifact allowed this user to see it. Always a download, never
        shown inline: an artifact is whatever a run wrote, and the console's origin must not render it."""
        run = await self._console.call(
            request, f"{RUNS}/GetRun", pb.GetRunRequest(name=request.match_info["name"]), pb.Run
        )
        path = request.match_info["path"]
        owner = tpb.ArtifactOwner(run_id=run.id, model_id=request.match_info.get("model_id", ""))
        wanted = tpb.GetArtifactRequest(owner=owner, path=path)
        found = await self._console.call(request, f"{TRACKING}/GetArtifact", wanted, tpb.ArtifactFile)
        try:
            size = await self._blobs.size(found.digest)
        except BlobNotFound:
            message = f"the content of artifact {path!r} (blob {found.digest}) is missing from the blob store"
            raise ConsoleError(grpc.StatusCode.NOT_FOUND, message) from None
        response = web.StreamResponse(
            headers={
                "Content-Type": "application/octet-stream",
                "Content-Disposition": attachment(path),
                "X-Content-Type-Options": "nosniff",
                "Content-Security-Policy": "sandbox",
            }
        )
        response.content_length = size
        await response.prepare(request)
        async for chunk in self._blobs.get(found.digest):
            await response.write(chunk)
        await response.write_eof()
        return response
