"""The RunService gRPC servicer."""

from __future__ import annotations

from collections import defaultdict

import grpc

from shipyard.contracts.run.v1 import runs_pb2 as pb
from shipyard.contracts.run.v1 import runs_pb2_grpc
from shipyard.kit.grpcio import caller_of
from shipyard.kit.timestamps import timestamp
from shipyard_run.app.messages import (
    kind_from_proto,
    run_to_proto,
    spec_from_proto,
    status_from_proto,
    template_to_proto,
)
from shipyard_run.app.ports import RunFilter
from shipyard_run.app.run_tokens import RunTokens
from shipyard_run.app.runs import Runs
from shipyard_run.app.templates import Templates
from shipyard_run.domain.runs import Run


class RunServicer(runs_pb2_grpc.RunServiceServicer):
    """Runs over gRPC."""

    def __init__(self, runs: Runs, templates: Templates, tokens: RunTokens) -> None:
        self._runs = runs
        self._templates = templates
        self._tokens = tokens

    async def SubmitRun(self, request: pb.SubmitRunRequest, context: grpc.aio.ServicerContext) -> pb.Run:
        caller = caller_of(context)
        if request.template:
            run = await self._templates.submit(caller, request.template, request.run, request.config_file,
                                               request.request_id, request.tuning, request.keep_trial_outputs)
        else:
            run = await self._runs.submit(caller, spec_from_proto(request.run), request.config_file,
                                          request.request_id, request.tuning, request.keep_trial_outputs)
        return run_to_proto(run)

    async def CloneRun(self, request: pb.CloneRunRequest, context: grpc.aio.ServicerContext) -> pb.Run:
        run = await self._templates.clone(caller_of(context), request.name, request.new_name,
                                          dict(request.hyperparameters), request.request_id)
        return run_to_proto(run)

    async def CreateTemplate(
        self, request: pb.CreateTemplateRequest, context: grpc.aio.ServicerContext
    ) -> pb.RunTemplate:
        template = await self._templates.create(caller_of(context), request.name, request.from_run,
                                                request.description)
        return template_to_proto(*await self._templates.get(template.name))

    async def GetTemplate(
        self, request: pb.GetTemplateRequest, context: grpc.aio.ServicerContext
    ) -> pb.RunTemplate:
        return template_to_proto(*await self._templates.get(request.name))

    async def ListTemplates(
        self, request: pb.ListTemplatesRequest, context: grpc.aio.ServicerContext
    ) -> pb.ListTemplatesResponse:
        listed = [template_to_proto(t, has_config) for t, has_config in await self._templates.list()]
        return pb.ListTemplatesResponse(templates=listed)

    async def DeleteTemplate(
        self, request: pb.DeleteTemplateRequest, context: grpc.aio.ServicerContext
    ) -> pb.DeleteTemplateResponse:
        await self._templates.delete(caller_of(context), request.name)
        return pb.DeleteTemplateResponse()

    async def GetRun(self, request: pb.GetRunRequest, context: grpc.aio.ServicerContext) -> pb.Run:
        return run_to_proto(await self._runs.get(request.name))

    async def ListRuns(
        self, request: pb.ListRunsRequest, context: grpc.aio.ServicerContext
    ) -> pb.ListRunsResponse:
        where = RunFilter(project=request.project or None, status=status_from_proto(request.status),
                          kind=kind_from_proto(request.kind, required=False), name_prefix=request.name_prefix,
                          tag=request.tag, study=request.study, exclude_trials=request.exclude_trials)
        runs, token = await self._runs.list_page(where, request.page_size, request.page_token)
        return pb.ListRunsResponse(runs=[run_to_proto(r) for r in runs], next_page_token=token)

    async def StopRun(self, request: pb.StopRunRequest, context: grpc.aio.ServicerContext) -> pb.Run:
        return run_to_proto(await self._runs.stop(caller_of(context), request.name))

    async def DeleteRun(
        self, request: pb.DeleteRunRequest, context: grpc.aio.ServicerContext
    ) -> pb.DeleteRunResponse:
        await self._runs.delete(caller_of(context), request.name)
        return pb.DeleteRunResponse()

    async def ReadRunLogs(
        self, request: pb.ReadRunLogsRequest, context: grpc.aio.ServicerContext
    ) -> pb.ReadRunLogsResponse:
        data, offset, finished = await self._runs.read_logs(request.name, request.offset, request.max_bytes)
        return pb.ReadRunLogsResponse(data=data, next_offset=offset, finished=finished)

    async def StartTensorBoard(
        self, request: pb.TensorBoardRequest, context: grpc.aio.ServicerContext
    ) -> pb.TensorBoard:
        return _board(*await self._runs.start_tensorboard(caller_of(context), request.name))

    async def StopTensorBoard(
        self, request: pb.TensorBoardRequest, context: grpc.aio.ServicerContext
    ) -> pb.TensorBoard:
        return _board(await self._runs.stop_tensorboard(caller_of(context), request.name), None)

    async def GetTensorBoard(
        self, request: pb.TensorBoardRequest, context: grpc.aio.ServicerContext
    ) -> pb.TensorBoard:
        return _board(*await self._runs.tensorboard(request.name))

    async def GetRunMetrics(
        self, request: pb.GetRunMetricsRequest, context: grpc.aio.ServicerContext
    ) -> pb.GetRunMetricsResponse:
        series: dict[str, list[pb.MetricPoint]] = defaultdict(list)
        for point in await self._runs.metrics(request.name):
            series[point.name].append(pb.MetricPoint(step=point.step, value=point.value,
                                                     time=timestamp(point.time)))
        return pb.GetRunMetricsResponse(series=[pb.MetricSeries(name=n, points=p) for n, p in series.items()])

    async def VerifyRunToken(
        self, request: pb.VerifyRunTokenRequest, context: grpc.aio.ServicerContext
    ) -> pb.VerifyRunTokenResponse:
        # Internal: the gateway asks, with its signed caller assertion (the public edge has no route
        # for it). The token is the credential; the assertion says the platform is asking.
        caller_of(context)
        run = await self._tokens.verify(request.token)
        return pb.VerifyRunTokenResponse(user=run.owner, roles=list(run.owner_roles), run=run.name)


def _board(run: Run, address: str | None) -> pb.TensorBoard:
    state = pb.TENSORBOARD_STATE_RUNNING if address else pb.TENSORBOARD_STATE_STOPPED
    return pb.TensorBoard(run=run.name, state=state, path=f"/tensorboard/{run.name}/",
                          backend_address=address or "")
