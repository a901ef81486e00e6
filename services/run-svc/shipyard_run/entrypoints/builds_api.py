"""The ImageBuildService gRPC servicer."""

from __future__ import annotations

import grpc

from shipyard.contracts.run.v1 import builds_pb2 as pb
from shipyard.contracts.run.v1 import builds_pb2_grpc
from shipyard.kit.grpcio import caller_of
from shipyard_run.app.build_messages import build_to_proto, request_from_proto
from shipyard_run.app.image_builds import ImageBuilds


class ImageBuildServicer(builds_pb2_grpc.ImageBuildServiceServicer):
    """Image builds over gRPC (every call authenticated; anyone signed in may build and read builds)."""

    def __init__(self, builds: ImageBuilds) -> None:
        self._builds = builds

    async def BuildImage(self, request: pb.BuildImageRequest,
                         context: grpc.aio.ServicerContext) -> pb.ImageBuild:
        build = await self._builds.build(caller_of(context), request_from_proto(request.build),
                                         request.request_id)
        return build_to_proto(build)

    async def GetImageBuild(self, request: pb.GetImageBuildRequest,
                            context: grpc.aio.ServicerContext) -> pb.ImageBuild:
        caller_of(context)
        return build_to_proto(await self._builds.get(request.name))

    async def ListImageBuilds(self, request: pb.ListImageBuildsRequest,
                              context: grpc.aio.ServicerContext) -> pb.ListImageBuildsResponse:
        caller_of(context)
        builds = await self._builds.list(request.name)
        return pb.ListImageBuildsResponse(builds=[build_to_proto(b) for b in builds])

    async def ReadImageBuildLog(self, request: pb.ReadImageBuildLogRequest,
                                context: grpc.aio.ServicerContext) -> pb.ReadImageBuildLogResponse:
        caller_of(context)
        data, next_offset, finished = await self._builds.read_log(request.name, request.offset,
                                                                  request.max_bytes)
        return pb.ReadImageBuildLogResponse(data=data, next_offset=next_offset, finished=finished)
