"""MLflow 3's logged models (``/api/2.0/mlflow/logged-models``): what ``log_model`` makes. A logged
model belongs to the run that logged it; its files are its artifacts, at
``mlflow-artifacts:/<experiment>/models/<model id>/artifacts``."""

from __future__ import annotations

from typing import Any

from shipyard.contracts.run.v1 import tracking_pb2 as tpb
from shipyard_gateway.entrypoints.mlflow.tracking import NameFilter, experiment_of, millis, project_of
from shipyard_gateway.entrypoints.mlflow.wire import Params, Platform, invalid, pairs

TRACKING = "/shipyard.run.v1.TrackingService"
STATUS = {
    tpb.LOGGED_MODEL_STATUS_PENDING: "LOGGED_MODEL_PENDING",
    tpb.LOGGED_MODEL_STATUS_READY: "LOGGED_MODEL_READY",
    tpb.LOGGED_MODEL_STATUS_FAILED: "LOGGED_MODEL_UPLOAD_FAILED",
}
STATUS_FROM = {v: k for k, v in STATUS.items()}


def logged_model_json(model: tpb.LoggedModel) -> dict[str, Any]:
    """A logged model as MLflow's LoggedModel."""
    experiment = experiment_of(model.project)
    return {
        "info": {
            "model_id": model.id,
            "experiment_id": experiment,
            "name": model.name,
            "artifact_uri": f"mlflow-artifacts:/{experiment}/models/{model.id}/artifacts",
            "creation_timestamp_ms": millis(model.create_time) or 0,
            "last_updated_timestamp_ms": millis(model.update_time) or 0,
            "model_type": model.model_type,
            "source_run_id": model.run_id,
            "status": STATUS.get(model.status, "LOGGED_MODEL_PENDING"),
            "tags": [{"key": k, "value": v} for k, v in sorted(model.tags.items())],
        },
        "data": {"params": [{"key": k, "value": v} for k, v in sorted(model.params.items())], "metrics": []},
    }


class LoggedModels:
    """The logged models' handlers."""

    def __init__(self, platform: Platform) -> None:
        self.p = platform

    async def create(self, params: Params) -> dict[str, Any]:
        run_id = params.string("source_run_id")
        if not run_id:
            raise invalid(
                "Shipyard logs models into runs: 'source_run_id' is required (log it inside "
                "mlflow.start_run())"
            )
        request = tpb.CreateLoggedModelRequest(
            run_id=run_id,
            name=params.string("name"),
            tags=params.key_values("tags"),
            params=params.key_values("params"),
            model_type=params.string("model_type"),
        )
        model = await self.p.call(f"{TRACKING}/CreateLoggedModel", request, tpb.LoggedModel)
        return {"model": logged_model_json(model)}

    async def get(self, model_id: str) -> dict[str, Any]:
        model = await self.p.call(
            f"{TRACKING}/GetLoggedModel", tpb.GetLoggedModelRequest(model_id=model_id), tpb.LoggedModel
        )
        return {"model": logged_model_json(model)}

    async def finalize(self, model_id: str, params: Params) -> dict[str, Any]:
        status = params.string("status", required=True)
        if status not in STATUS_FROM:
            raise invalid(f"Invalid value {status!r} for parameter 'status'")
        request = tpb.FinalizeLoggedModelRequest(model_id=model_id, status=STATUS_FROM[status])
        return {
            "model": logged_model_json(
                await self.p.call(f"{TRACKING}/FinalizeLoggedModel", request, tpb.LoggedModel)
            )
        }

    async def set_tags(self, model_id: str, params: Params) -> dict[str, Any]:
        request = tpb.SetLoggedModelTagsRequest(
            model_id=model_id, tags=dict(pairs("tags", params.objects("tags")))
        )
        return {
            "model": logged_model_json(
                await self.p.call(f"{TRACKING}/SetLoggedModelTags", request, tpb.LoggedModel)
            )
        }

    async def search(self, params: Params) -> dict[str, Any]:
        matcher = NameFilter.parse(params.string("filter"), "logged model", keys=("name", "source_run_id"))
        request = tpb.SearchLoggedModelsRequest(
            projects=[project_of(e) for e in params.strings("experiment_ids")]
        )
        found = await self.p.call(f"{TRACKING}/SearchLoggedModels", request, tpb.SearchLoggedModelsResponse)
        models = [
            logged_model_json(m) for m in found.models if matcher.matches(m.name, source_run_id=m.run_id)
        ]
        return {"models": models[: params.integer("max_results", 1000)]}
