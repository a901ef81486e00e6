"""The ImageService gRPC servicer: the image catalog."""

from __future__ import annotations

import grpc

from shipyard.contracts.repo.v1 import images_pb2 as pb
from shipyard.contracts.repo.v1 import images_pb2_grpc
from shipyard.kit.grpcio import caller_of
from shipyard_repo.app.image_messages import image_from_proto, image_to_proto
from shipyard_repo.app.images import Images


class ImageServicer(images_pb2_grpc.ImageServiceServicer):
    """Images over gRPC; every call has a verified caller (the server's authentication)."""

    def __init__(self, images: Images) -> None:
        self._images = images

    async def AddImage(self, request: pb.AddImageRequest, context: grpc.aio.ServicerContext) -> pb.Image:
        return image_to_proto(await self._images.add(caller_of(context), image_from_proto(request.image)))

    async def GetImage(self, request: pb.GetImageRequest, context: grpc.aio.ServicerContext) -> pb.Image:
        return image_to_proto(await self._images.get(request.name))

    async def ListImages(
        self, request: pb.ListImagesRequest, context: grpc.aio.ServicerContext
    ) -> pb.ListImagesResponse:
        found = await self._images.list(request.framework)
        return pb.ListImagesResponse(images=[image_to_proto(image) for image in found])

    async def DeleteImage(
        self, request: pb.DeleteImageRequest, context: grpc.aio.ServicerContext
    ) -> pb.DeleteImageResponse:
        await self._images.delete(caller_of(context), request.name)
        return pb.DeleteImageResponse()

    async def ResolveImage(
        self, request: pb.ResolveImageRequest, context: grpc.aio.ServicerContext
    ) -> pb.Image:
        found = await self._images.resolve(request.name, request.framework, request.framework_version)
        return image_to_proto(found)
