"""The StudyService gRPC servicer."""

from __future__ import annotations

from typing import TypeAlias

import grpc

from shipyard.contracts.run.v1 import studies_pb2 as pb
from shipyard.contracts.run.v1 import studies_pb2_grpc
from shipyard.kit.grpcio import caller_of
from shipyard_run.app.studies import Studies
from shipyard_run.app.study_messages import study_to_proto, trial_to_proto

Context: TypeAlias = grpc.aio.ServicerContext


class StudyServicer(studies_pb2_grpc.StudyServiceServicer):
    """Hyperparameter studies over gRPC."""

    def __init__(self, studies: Studies) -> None:
        self._studies = studies

    async def GetStudy(self, request: pb.GetStudyRequest, context: Context) -> pb.Study:
        return study_to_proto(await self._studies.get(request.name))

    async def ListStudies(self, request: pb.ListStudiesRequest, context: Context) -> pb.ListStudiesResponse:
        states, token = await self._studies.list_page(request.project or None, request.page_size,
                                                      request.page_token)
        return pb.ListStudiesResponse(studies=[study_to_proto(s) for s in states], next_page_token=token)

    async def ListTrials(self, request: pb.ListTrialsRequest, context: Context) -> pb.ListTrialsResponse:
        _, trials, token = await self._studies.trials(request.study, request.order_by, request.descending,
                                                      request.page_size, request.page_token)
        return pb.ListTrialsResponse(trials=[trial_to_proto(t) for t in trials], next_page_token=token)

    async def StopStudy(self, request: pb.StopStudyRequest, context: Context) -> pb.Study:
        return study_to_proto(await self._studies.stop(caller_of(context), request.name))

    async def UpdateStudy(self, request: pb.UpdateStudyRequest, context: Context) -> pb.Study:
        # Every path is passed on, so one that names no limit is refused by its name.
        changes = {path: getattr(request, path, 0) for path in request.update_mask.paths}
        return study_to_proto(await self._studies.update(caller_of(context), request.name, changes))
