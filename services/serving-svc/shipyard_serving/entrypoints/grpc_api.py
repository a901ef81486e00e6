"""ServingService over gRPC (test inferences so far; the catalog and deployments are next)."""

from __future__ import annotations

import zlib
from collections.abc import Callable

import grpc
from google.protobuf import field_mask_pb2

from shipyard.contracts.serving.v1 import serving_pb2 as pb
from shipyard.contracts.serving.v1 import serving_pb2_grpc
from shipyard.kit.caller import OPERATOR
from shipyard.kit.errors import InvalidArgument, NotFound, PermissionDenied
from shipyard.kit.grpcio import caller_of
from shipyard_serving.adapters.kserve import inference_service, served_model, to_yaml
from shipyard_serving.app.deployments import Catalog, Deployments
from shipyard_serving.app.endpoints import Placement, served_on
from shipyard_serving.app.inferences import Inferences
from shipyard_serving.app.messages import (
    deployment_to_proto,
    entry_to_proto,
    inference_to_proto,
    spec_from_proto,
)
from shipyard_serving.domain.serving import Deployment, Inference, ModelPin

IMAGE = "shipyard:0.1.0"  # the image deploy/ builds; it holds the built-in model server
CATALOG_ROLES = frozenset({OPERATOR, "ml-engineer", "production-engineer"})


def given_fields(spec: pb.ServingSpec) -> frozenset[str]:
    """The spec fields a request set (proto3 scalars have no presence: the non-default ones)."""
    return frozenset(field.name for field, _ in spec.ListFields())


def masked_fields(mask: field_mask_pb2.FieldMask) -> frozenset[str]:
    """``spec.min_replicas`` → ``min_replicas``; InvalidArgument for paths outside the spec."""
    fields = set()
    for path in mask.paths:
        head, _, rest = path.partition(".")
        if head != "spec" or not rest or "." in rest:
            raise InvalidArgument("update_mask", f"{path!r}: only spec.<field> paths can be updated")
        fields.add(rest)
    return frozenset(fields)


class ServingServicer(serving_pb2_grpc.ServingServiceServicer):
    """Test inferences, the catalog and deployments, and the routes the gateway sends requests by."""

    def __init__(
        self,
        inferences: Inferences,
        catalog: Catalog,
        deployments: Deployments,
        storage_of: Callable[[str], str],
        placement: Placement | None = None,
    ) -> None:
        self._inferences = inferences
        self._catalog = catalog
        self._deployments = deployments
        self._storage_of = storage_of  # manifest digest → where a cluster finds the version's files
        self._placement = placement or Placement()

    async def CreateInference(
        self, request: pb.CreateInferenceRequest, context: grpc.aio.ServicerContext
    ) -> pb.Inference:
        given = request.inference
        made = await self._inferences.create(
            caller_of(context),
            given.name,
            ModelPin(given.model.model, given.model.version),
            spec_from_proto(given.spec),
            project=given.project,
            description=given.description,
            request_id=request.request_id,
            cluster=given.cluster,
        )
        return inference_to_proto(made, self._inferences.observe(made.name))

    async def GetInference(
        self, request: pb.GetInferenceRequest, context: grpc.aio.ServicerContext
    ) -> pb.Inference:
        caller_of(context)
        found = await self._inferences.get(request.name)
        return inference_to_proto(found, self._inferences.observe(found.name))

    async def ListInferences(
        self, request: pb.ListInferencesRequest, context: grpc.aio.ServicerContext
    ) -> pb.ListInferencesResponse:
        caller_of(context)
        found, token = await self._inferences.list_page(
            request.project, request.page_size, request.page_token
        )
        return pb.ListInferencesResponse(
            inferences=[inference_to_proto(i, self._inferences.observe(i.name)) for i in found],
            next_page_token=token,
        )

    async def DeleteInference(
        self, request: pb.DeleteInferenceRequest, context: grpc.aio.ServicerContext
    ) -> pb.DeleteInferenceResponse:
        await self._inferences.delete(caller_of(context), request.name)
        return pb.DeleteInferenceResponse()

    async def PublishModel(
        self, request: pb.PublishModelRequest, context: grpc.aio.ServicerContext
    ) -> pb.CatalogEntry:
        e = request.entry
        made = await self._catalog.publish(
            caller_of(context),
            e.name,
            ModelPin(e.model.model, e.model.version),
            spec_from_proto(e.defaults),
            project=e.project,
            description=e.description,
        )
        return entry_to_proto(made)

    async def GetCatalogEntry(
        self, request: pb.GetCatalogEntryRequest, context: grpc.aio.ServicerContext
    ) -> pb.CatalogEntry:
        caller_of(context)
        return entry_to_proto(await self._catalog.get(request.name))

    async def ListCatalog(
        self, request: pb.ListCatalogRequest, context: grpc.aio.ServicerContext
    ) -> pb.ListCatalogResponse:
        caller_of(context)
        found, token = await self._catalog.list_page(
            request.project, request.model, request.page_size, request.page_token
        )
        return pb.ListCatalogResponse(entries=[entry_to_proto(e) for e in found], next_page_token=token)

    async def DeleteCatalogEntry(
        self, request: pb.DeleteCatalogEntryRequest, context: grpc.aio.ServicerContext
    ) -> pb.DeleteCatalogEntryResponse:
        await self._catalog.unpublish(caller_of(context), request.name)
        return pb.DeleteCatalogEntryResponse()

    async def CreateDeployment(
        self, request: pb.CreateDeploymentRequest, context: grpc.aio.ServicerContext
    ) -> pb.Deployment:
        d = request.deployment
        made = await self._deployments.create(
            caller_of(context),
            d.name,
            d.catalog_entry,
            spec_from_proto(d.spec),
            given_fields(d.spec),
            project=d.project,
            description=d.description,
            cluster=d.cluster,
        )
        return deployment_to_proto(made, self._inferences.observe(made.name))

    async def GetDeployment(
        self, request: pb.GetDeploymentRequest, context: grpc.aio.ServicerContext
    ) -> pb.Deployment:
        caller_of(context)
        found = await self._deployments.get(request.name)
        return deployment_to_proto(found, self._inferences.observe(found.name))

    async def ListDeployments(
        self, request: pb.ListDeploymentsRequest, context: grpc.aio.ServicerContext
    ) -> pb.ListDeploymentsResponse:
        caller_of(context)
        found, token = await self._deployments.list_page(
            request.project, request.page_size, request.page_token
        )
        return pb.ListDeploymentsResponse(
            deployments=[deployment_to_proto(d, self._inferences.observe(d.name)) for d in found],
            next_page_token=token,
        )

    async def UpdateDeployment(
        self, request: pb.UpdateDeploymentRequest, context: grpc.aio.ServicerContext
    ) -> pb.Deployment:
        model = ModelPin(request.model.model, request.model.version) if request.model.model else None
        changed = await self._deployments.update(
            caller_of(context),
            request.name,
            request.catalog_entry,
            model,
            spec_from_proto(request.spec),
            masked_fields(request.update_mask),
            request.revision,
        )
        return deployment_to_proto(changed, self._inferences.observe(changed.name))

    async def DeleteDeployment(
        self, request: pb.DeleteDeploymentRequest, context: grpc.aio.ServicerContext
    ) -> pb.DeleteDeploymentResponse:
        await self._deployments.delete(caller_of(context), request.name)
        return pb.DeleteDeploymentResponse()

    async def GetKubernetesManifest(
        self, request: pb.GetKubernetesManifestRequest, context: grpc.aio.ServicerContext
    ) -> pb.KubernetesManifest:
        caller = caller_of(context)
        if request.kind == "inference":
            found: Inference | Deployment = await self._inferences.get(request.name)
        elif request.kind == "deployment":
            if not caller.roles & CATALOG_ROLES:
                raise PermissionDenied("deployments are for the roles that may see the model catalog")
            found = await self._deployments.get(request.name)
        else:
            raise InvalidArgument("kind", f"must be inference or deployment (got {request.kind!r})")
        # An endpoint on a cluster: as serving-svc applies it there, in that cluster's namespace.
        target = await self._placement.target(caller, found.cluster, request.namespace)
        document = inference_service(
            found.name,
            target.namespace,
            found.model,
            found.spec,
            self._storage_of(found.model.manifest_digest),
            default_image=IMAGE,
            labels={"shipyard.io/kind": request.kind},
            service_account=target.service_account,
        )
        return pb.KubernetesManifest(yaml=to_yaml(document))

    async def GetRoutes(self, request: pb.GetRoutesRequest, context: grpc.aio.ServicerContext) -> pb.Routes:
        found = await self._endpoint(request.name)
        model, concurrency = found.model.model, found.spec.max_concurrency
        seen = self._inferences.observe(request.name)
        if seen.url:  # on a cluster: KServe spreads the requests over its replicas
            upstream = served_model(found.name, found.model, found.spec)
            return pb.Routes(name=request.name, model=model, base_url=seen.url, max_concurrency=concurrency,
                             revision=zlib.crc32(seen.url.encode()),
                             upstream_model=upstream if upstream != model else "")
        addresses = [r.address for r in seen.replicas if r.ready and r.model == seen.serving]
        return pb.Routes(
            name=request.name,
            model=model,
            addresses=addresses,
            max_concurrency=concurrency,
            revision=zlib.crc32(",".join(addresses).encode()),
        )

    async def ListClusterEndpoints(
        self, request: pb.ListClusterEndpointsRequest, context: grpc.aio.ServicerContext
    ) -> pb.ClusterEndpoints:
        found = await served_on(self._inferences.uow, caller_of(context), request.cluster)
        return pb.ClusterEndpoints(inferences=found.inferences, deployments=found.deployments)

    async def _endpoint(self, name: str) -> Inference | Deployment:
        """The test inference or deployment named ``name``; NotFound naming both."""
        try:
            return await self._inferences.get(name)
        except NotFound:
            pass
        try:
            return await self._deployments.get(name)
        except NotFound:
            raise NotFound(f"no test inference or deployment named {name!r}") from None
