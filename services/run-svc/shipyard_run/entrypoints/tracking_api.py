"""The TrackingService gRPC servicer: MLflow's tracking calls, as the gateway relays them."""

from __future__ import annotations

from typing import TypeAlias

import grpc

from shipyard.contracts.repo.v1 import repos_pb2
from shipyard.contracts.run.v1 import runs_pb2, tracking_pb2_grpc
from shipyard.contracts.run.v1 import tracking_pb2 as pb
from shipyard.kit.grpcio import caller_of
from shipyard.kit.timestamps import timestamp
from shipyard_run.app.messages import run_to_proto
from shipyard_run.app.tracking import ArtifactOwner, TrackedData, Tracking
from shipyard_run.domain.tracking import (
    LoggedModel,
    LoggedModelStatus,
    LoggedValue,
    TrackedStatus,
    timestamp_ms,
)

Context: TypeAlias = grpc.aio.ServicerContext
STATUS_FROM = {
    pb.TRACKED_RUN_STATUS_RUNNING: TrackedStatus.RUNNING,
    pb.TRACKED_RUN_STATUS_FINISHED: TrackedStatus.FINISHED,
    pb.TRACKED_RUN_STATUS_FAILED: TrackedStatus.FAILED,
    pb.TRACKED_RUN_STATUS_KILLED: TrackedStatus.KILLED,
}
MODEL_STATUS_FROM = {
    pb.LOGGED_MODEL_STATUS_PENDING: LoggedModelStatus.PENDING,
    pb.LOGGED_MODEL_STATUS_READY: LoggedModelStatus.READY,
    pb.LOGGED_MODEL_STATUS_FAILED: LoggedModelStatus.FAILED,
}
MODEL_STATUS_TO = {v: k for k, v in MODEL_STATUS_FROM.items()}


def _owner(owner: pb.ArtifactOwner) -> ArtifactOwner:
    return ArtifactOwner(owner.run_id, owner.model_id)


def model_to_proto(model: LoggedModel) -> pb.LoggedModel:
    """The API's view of a logged model."""
    return pb.LoggedModel(
        id=model.id,
        name=model.name,
        run_id=model.run_id,
        project=model.project,
        status=MODEL_STATUS_TO[model.status],
        tags=model.tags,
        params=model.params,
        model_type=model.model_type,
        owner=model.owner,
        create_time=timestamp(model.create_time),
        update_time=timestamp(model.update_time),
    )


class TrackingServicer(tracking_pb2_grpc.TrackingServiceServicer):
    """Tracking over gRPC."""

    def __init__(self, tracking: Tracking) -> None:
        self._tracking = tracking

    async def CreateTrackedRun(self, request: pb.CreateTrackedRunRequest, context: Context) -> runs_pb2.Run:
        run = await self._tracking.create_run(
            caller_of(context), request.name, request.project, dict(request.tags), request.start_time_ms
        )
        return run_to_proto(run)

    async def UpdateTrackedRun(self, request: pb.UpdateTrackedRunRequest, context: Context) -> runs_pb2.Run:
        run = await self._tracking.update_run(
            caller_of(context), request.run_id, STATUS_FROM.get(request.status), request.end_time_ms
        )
        return run_to_proto(run)

    async def GetRunById(self, request: pb.GetRunByIdRequest, context: Context) -> runs_pb2.Run:
        return run_to_proto(await self._tracking.get(request.run_id))

    async def LogRunData(self, request: pb.LogRunDataRequest, context: Context) -> pb.LogRunDataResponse:
        metrics = tuple(
            LoggedValue(m.key, m.value, m.step, m.timestamp_ms, m.model_id) for m in request.metrics
        )
        await self._tracking.log(
            caller_of(context), request.run_id, TrackedData(metrics, dict(request.params), dict(request.tags))
        )
        return pb.LogRunDataResponse()

    async def DeleteRunTag(
        self, request: pb.DeleteRunTagRequest, context: Context
    ) -> pb.DeleteRunTagResponse:
        await self._tracking.delete_tag(caller_of(context), request.run_id, request.key)
        return pb.DeleteRunTagResponse()

    async def GetMetricHistory(
        self, request: pb.GetMetricHistoryRequest, context: Context
    ) -> pb.GetMetricHistoryResponse:
        points = await self._tracking.history(request.run_id, request.key)
        return pb.GetMetricHistoryResponse(
            metrics=[
                pb.LoggedMetric(key=p.name, value=p.value, step=p.step, timestamp_ms=timestamp_ms(p.time))
                for p in points
            ]
        )

    async def SearchRuns(self, request: pb.SearchRunsRequest, context: Context) -> pb.SearchRunsResponse:
        runs, token = await self._tracking.search(
            list(request.projects),
            request.filter,
            list(request.order_by),
            request.page_size,
            request.page_token,
        )
        return pb.SearchRunsResponse(runs=[run_to_proto(r) for r in runs], next_page_token=token)

    async def RecordArtifacts(
        self, request: pb.RecordArtifactsRequest, context: Context
    ) -> pb.RecordArtifactsResponse:
        files = [(f.path, f.digest, f.size_bytes) for f in request.files]
        await self._tracking.record_artifacts(caller_of(context), _owner(request.owner), files)
        return pb.RecordArtifactsResponse()

    async def ListArtifacts(
        self, request: pb.ListArtifactsRequest, context: Context
    ) -> pb.ListArtifactsResponse:
        entries = await self._tracking.list_artifacts(_owner(request.owner), request.path, request.recursive)
        return pb.ListArtifactsResponse(
            files=[
                pb.ArtifactFile(path=e.path, digest=e.digest, size_bytes=e.size, is_dir=e.is_dir)
                for e in entries
            ]
        )

    async def GetArtifact(self, request: pb.GetArtifactRequest, context: Context) -> pb.ArtifactFile:
        found = await self._tracking.artifact(_owner(request.owner), request.path)
        return pb.ArtifactFile(path=found.path, digest=found.digest, size_bytes=found.size)

    async def CreateLoggedModel(
        self, request: pb.CreateLoggedModelRequest, context: Context
    ) -> pb.LoggedModel:
        model = await self._tracking.create_model(
            caller_of(context),
            request.run_id,
            request.name,
            dict(request.tags),
            dict(request.params),
            request.model_type,
        )
        return model_to_proto(model)

    async def GetLoggedModel(self, request: pb.GetLoggedModelRequest, context: Context) -> pb.LoggedModel:
        return model_to_proto(await self._tracking.model(request.model_id))

    async def FinalizeLoggedModel(
        self, request: pb.FinalizeLoggedModelRequest, context: Context
    ) -> pb.LoggedModel:
        model = await self._tracking.update_model(
            caller_of(context), request.model_id, status=MODEL_STATUS_FROM.get(request.status)
        )
        return model_to_proto(model)

    async def SetLoggedModelTags(
        self, request: pb.SetLoggedModelTagsRequest, context: Context
    ) -> pb.LoggedModel:
        model = await self._tracking.update_model(
            caller_of(context), request.model_id, tags=dict(request.tags)
        )
        return model_to_proto(model)

    async def SearchLoggedModels(
        self, request: pb.SearchLoggedModelsRequest, context: Context
    ) -> pb.SearchLoggedModelsResponse:
        models = await self._tracking.search_models(list(request.projects), request.run_id, request.name)
        return pb.SearchLoggedModelsResponse(models=[model_to_proto(m) for m in models])

    async def RegisterModelVersion(
        self, request: pb.RegisterModelVersionRequest, context: Context
    ) -> repos_pb2.Version:
        return await self._tracking.register(
            caller_of(context),
            _owner(request.source),
            request.path,
            request.repo,
            request.message,
            request.request_id,
        )
