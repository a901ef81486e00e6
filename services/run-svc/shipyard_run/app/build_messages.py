"""Image builds as protobuf: the API's ImageBuild (also the payload of the build events)."""

from __future__ import annotations

from shipyard.contracts.run.v1 import builds_pb2 as pb
from shipyard.kit.timestamps import timestamp
from shipyard_run.domain.image_builds import BuildRequest, BuildStatus, ImageBuild

STATUSES = {BuildStatus.BUILDING: pb.IMAGE_BUILD_STATUS_BUILDING,
            BuildStatus.COMPLETE: pb.IMAGE_BUILD_STATUS_COMPLETE,
            BuildStatus.FAILED: pb.IMAGE_BUILD_STATUS_FAILED}


def request_from_proto(build: pb.ImageBuild) -> BuildRequest:
    """What the user asked to build, unchecked."""
    return BuildRequest(name=build.name, code=build.code, commit=build.commit, folder=build.folder,
                        description=build.description)


def build_to_proto(build: ImageBuild) -> pb.ImageBuild:
    """The API's view of a build."""
    request = build.request
    return pb.ImageBuild(
        id=build.id, name=request.name, code=request.code, commit=request.commit, folder=request.folder,
        description=request.description, status=STATUSES[build.status], status_reason=build.status_reason,
        build_file=build.build_file, python=build.python, requirements=build.requirements,
        base_image=build.base_image, digest=build.digest, reused=build.reused, notes=build.notes,
        owner=build.owner, create_time=timestamp(build.create_time), end_time=timestamp(build.end_time),
    )
