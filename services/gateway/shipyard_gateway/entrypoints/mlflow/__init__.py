"""MLflow's REST API on the gateway, under ``/mlflow``: ``MLFLOW_TRACKING_URI=http://<gateway>/mlflow``
with ``MLFLOW_TRACKING_TOKEN=<a Shipyard token>`` makes MLflow's client log into Shipyard.

Every request is authenticated with the bearer token MLflow's client sends and authorized method by
method exactly as on Shipyard's own API (the calls go through the same table). An endpoint Shipyard
does not provide answers MLflow's ``ENDPOINT_NOT_FOUND`` (or ``NOT_IMPLEMENTED`` for an option it
refuses), never a silent success.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from shipyard.kit.blob.port import BlobStore
from shipyard_gateway.entrypoints.api import PublicApi
from shipyard_gateway.entrypoints.mlflow.artifacts import Artifacts
from shipyard_gateway.entrypoints.mlflow.logged_models import LoggedModels
from shipyard_gateway.entrypoints.mlflow.registry import Registry
from shipyard_gateway.entrypoints.mlflow.tracking import Tracking
from shipyard_gateway.entrypoints.mlflow.wire import MlflowError, Params, Platform, mlflow_json

PREFIX = "/mlflow"
API = f"{PREFIX}/api/2.0/mlflow"
ARTIFACTS = f"{PREFIX}/api/2.0/mlflow-artifacts/artifacts"
Handler = Callable[[Params], Awaitable[dict[str, Any]]]


def _table(t: Tracking, r: Registry) -> dict[tuple[str, str], Handler]:
    """(HTTP method, path under /api/2.0/mlflow) → handler."""
    return {
        ("GET", "experiments/get"): t.get_experiment,
        ("GET", "experiments/get-by-name"): t.get_experiment_by_name,
        ("POST", "experiments/create"): t.create_experiment,
        ("POST", "experiments/search"): t.search_experiments,
        ("GET", "experiments/search"): t.search_experiments,
        ("POST", "experiments/update"): t.update_experiment,
        ("POST", "experiments/delete"): t.delete_experiment,
        ("POST", "runs/create"): t.create_run,
        ("GET", "runs/get"): t.get_run,
        ("POST", "runs/update"): t.update_run,
        ("POST", "runs/delete"): t.delete_run,
        ("POST", "runs/log-metric"): t.log_metric,
        ("POST", "runs/log-parameter"): t.log_param,
        ("POST", "runs/set-tag"): t.set_tag,
        ("POST", "runs/delete-tag"): t.delete_tag,
        ("POST", "runs/log-batch"): t.log_batch,
        ("POST", "runs/log-inputs"): t.log_inputs,
        ("POST", "runs/outputs"): t.log_outputs,
        ("POST", "runs/search"): t.search_runs,
        ("GET", "metrics/get-history"): t.metric_history,
        ("POST", "registered-models/create"): r.create_model,
        ("GET", "registered-models/get"): r.get_model,
        ("GET", "registered-models/search"): r.search_models,
        ("PATCH", "registered-models/update"): r.update_model,
        ("POST", "registered-models/rename"): r.rename_model,
        ("DELETE", "registered-models/delete"): r.delete_model,
        ("POST", "registered-models/set-tag"): r.set_model_tag,
        ("DELETE", "registered-models/delete-tag"): r.delete_model_tag,
        ("POST", "registered-models/alias"): r.set_alias,
        ("DELETE", "registered-models/alias"): r.delete_alias,
        ("GET", "registered-models/alias"): r.version_by_alias,
        ("POST", "registered-models/get-latest-versions"): r.latest_versions,
        ("GET", "registered-models/get-latest-versions"): r.latest_versions,
        ("POST", "model-versions/create"): r.create_version,
        ("GET", "model-versions/get"): r.get_version,
        ("GET", "model-versions/get-download-uri"): r.download_uri,
        ("GET", "model-versions/search"): r.search_versions,
        ("DELETE", "model-versions/delete"): r.delete_version,
        ("POST", "model-versions/set-tag"): r.set_version_tag,
        ("DELETE", "model-versions/delete-tag"): r.delete_version_tag,
    }


class MlflowEdge:
    """The ``/mlflow`` routes of the gateway's HTTP application."""

    def __init__(self, api: PublicApi, blobs: BlobStore, artifact_max_bytes: int) -> None:
        self._api = api
        self._blobs = blobs
        self._artifact_max_bytes = artifact_max_bytes

    def add_routes(self, app: web.Application) -> None:
        """Register the routes."""
        app.router.add_get(f"{PREFIX}/health", self.health)
        app.router.add_get(f"{PREFIX}/api/3.0/mlflow/server-info", self.server_info)
        app.router.add_get(ARTIFACTS, self.list_artifacts)
        app.router.add_route("*", ARTIFACTS + "/{path:.*}", self.artifact)
        app.router.add_route("*", API + "/{path:.*}", self.call)
        app.router.add_route("*", PREFIX + "/{path:.*}", self.unknown)

    async def health(self, _: web.Request) -> web.Response:
        return web.Response(text="OK")

    async def server_info(self, _: web.Request) -> web.Response:
        """What MLflow's client asks before large transfers: no multipart uploads or downloads."""
        return mlflow_json(
            {
                "store_type": "shipyard",
                "multipart_uploads_enabled": False,
                "multipart_downloads_enabled": False,
                "workspaces_enabled": False,
            }
        )

    async def unknown(self, request: web.Request) -> web.Response:
        return MlflowError(
            "ENDPOINT_NOT_FOUND", f"{request.method} {request.path}: no such MLflow endpoint in Shipyard", 404
        ).response()

    def _platform(self, request: web.Request) -> Platform:
        return Platform(self._api, request.headers.get("Authorization"))

    async def call(self, request: web.Request) -> web.Response:
        platform = self._platform(request)
        path = request.match_info["path"].strip("/")
        try:
            answer = await self._dispatch(request, platform, path)
        except MlflowError as exc:
            return exc.response()
        return mlflow_json(answer)

    async def _dispatch(self, request: web.Request, platform: Platform, path: str) -> dict[str, Any]:
        if path.startswith("logged-models"):
            return await self._logged_models(request, LoggedModels(platform), path)
        handler = _table(Tracking(platform), Registry(platform)).get((request.method, path))
        if handler is None:
            raise MlflowError(
                "ENDPOINT_NOT_FOUND",
                f"{request.method} /api/2.0/mlflow/{path}: Shipyard does not provide this MLflow endpoint",
                404,
            )
        return await handler(await Params.of(request))

    async def _logged_models(self, request: web.Request, models: LoggedModels, path: str) -> dict[str, Any]:
        parts = path.split("/")
        params = await Params.of(request)
        match request.method, parts[1:]:
            case "POST", []:
                return await models.create(params)
            case "POST", ["search"]:
                return await models.search(params)
            case "GET", [model_id]:
                return await models.get(model_id)
            case "PATCH", [model_id]:
                return await models.finalize(model_id, params)
            case "PATCH", [model_id, "tags"]:
                return await models.set_tags(model_id, params)
        raise MlflowError(
            "ENDPOINT_NOT_FOUND",
            f"{request.method} /api/2.0/mlflow/{path}: Shipyard does not provide this MLflow endpoint",
            404,
        )

    def _artifacts(self, request: web.Request) -> Artifacts:
        return Artifacts(self._platform(request), self._blobs, self._artifact_max_bytes)

    async def list_artifacts(self, request: web.Request) -> web.Response:
        try:
            return mlflow_json(await self._artifacts(request).listing(request.query.get("path", "")))
        except MlflowError as exc:
            return exc.response()

    async def artifact(self, request: web.Request) -> web.StreamResponse:
        artifacts = self._artifacts(request)
        path = request.match_info["path"]
        try:
            if request.method == "PUT":
                return mlflow_json(await artifacts.upload(request, path))
            if request.method == "GET":
                return await artifacts.download(request, path)
            if request.method == "DELETE":
                return mlflow_json(await artifacts.delete(path))
        except MlflowError as exc:
            return exc.response()
        return MlflowError(
            "ENDPOINT_NOT_FOUND", f"{request.method} on an artifact is not an MLflow endpoint", 404
        ).response()
