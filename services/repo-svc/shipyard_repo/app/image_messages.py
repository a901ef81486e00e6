"""Images as contract messages and back (for events and the API)."""

from __future__ import annotations

from shipyard.contracts.repo.v1 import images_pb2 as pb
from shipyard.kit.timestamps import timestamp
from shipyard_repo.domain.images import Image, ImageSource, ImageStatus

SOURCE_TO_PROTO = {
    ImageSource.STANDARD: pb.IMAGE_SOURCE_STANDARD,
    ImageSource.REGISTRY: pb.IMAGE_SOURCE_REGISTRY,
    ImageSource.CODE_REPO: pb.IMAGE_SOURCE_CODE_REPO,
}
STATUS_TO_PROTO = {
    ImageStatus.READY: pb.IMAGE_STATUS_READY,
    ImageStatus.BUILDING: pb.IMAGE_STATUS_BUILDING,
    ImageStatus.FAILED: pb.IMAGE_STATUS_FAILED,
}


def image_to_proto(image: Image) -> pb.Image:
    """The contract form of an image (its digest included)."""
    return pb.Image(
        name=image.name, url=image.url, description=image.description, private=image.private,
        credential=image.credential, framework=image.framework, framework_version=image.framework_version,
        python=image.python, requirements=list(image.requirements),
        source=SOURCE_TO_PROTO[image.source],  # type: ignore[arg-type]
        status=STATUS_TO_PROTO[image.status],  # type: ignore[arg-type]
        status_reason=image.status_reason, owner=image.owner, create_time=timestamp(image.create_time),
        code=image.code, commit=image.commit, build_file=image.build_file, digest=image.digest)


def image_from_proto(given: pb.Image) -> Image:
    """What a user gives when adding an image (the output-only fields are the service's)."""
    return Image(
        name=given.name, url=given.url, description=given.description, private=given.private,
        credential=given.credential, framework=given.framework, framework_version=given.framework_version,
        python=given.python, requirements=tuple(given.requirements))
