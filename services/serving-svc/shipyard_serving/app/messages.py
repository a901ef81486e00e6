"""Between the domain and the wire: the protobuf messages of the API (the events' are made from
these by ``shipyard_serving.app.events``)."""

from __future__ import annotations

from shipyard.contracts.serving.v1 import serving_pb2 as pb
from shipyard.kit.timestamps import timestamp
from shipyard_serving.domain.serving import (
    CatalogEntry,
    Deployment,
    Inference,
    ModelPin,
    Observation,
    ServingSpec,
    ServingStatus,
    Transformer,
)

STATUS_TO_PROTO = {
    ServingStatus.QUEUED: pb.SERVING_STATUS_QUEUED,
    ServingStatus.STARTING: pb.SERVING_STATUS_STARTING,
    ServingStatus.RUNNING: pb.SERVING_STATUS_RUNNING,
    ServingStatus.UPDATING: pb.SERVING_STATUS_UPDATING,
    ServingStatus.FAILED: pb.SERVING_STATUS_FAILED,
    ServingStatus.ERROR: pb.SERVING_STATUS_ERROR,
    ServingStatus.STOPPING: pb.SERVING_STATUS_STOPPING,
    ServingStatus.STOPPED: pb.SERVING_STATUS_STOPPED,
}


def spec_from_proto(spec: pb.ServingSpec) -> ServingSpec:
    """The domain's spec from the request (not yet checked)."""
    t = spec.transformer
    return ServingSpec(
        serving_image=spec.serving_image,
        transformer=Transformer(code=t.code, commit=t.commit, script=t.script, image=t.image),
        framework=spec.framework,
        predictor=spec.predictor,
        cpu=spec.cpu,
        memory=spec.memory,
        gpus=spec.gpus,
        min_replicas=spec.min_replicas,
        max_replicas=spec.max_replicas,
        max_concurrency=spec.max_concurrency,
    )


def spec_to_proto(spec: ServingSpec) -> pb.ServingSpec:
    """The wire form of a spec."""
    t = spec.transformer
    return pb.ServingSpec(
        serving_image=spec.serving_image,
        transformer=pb.Transformer(code=t.code, commit=t.commit, script=t.script, image=t.image),
        framework=spec.framework,
        predictor=spec.predictor,
        cpu=spec.cpu,
        memory=spec.memory,
        gpus=spec.gpus,
        min_replicas=spec.min_replicas,
        max_replicas=spec.max_replicas,
        max_concurrency=spec.max_concurrency,
    )


def model_to_proto(model: ModelPin) -> pb.ModelRef:
    """The wire form of a model version."""
    return pb.ModelRef(model=model.model, version=model.version, model_id=model.model_id)


def inference_to_proto(inference: Inference, seen: Observation | None = None) -> pb.Inference:
    """The wire form of a test inference, with its replicas as they are now when known."""
    running = inference.status in (ServingStatus.RUNNING, ServingStatus.UPDATING)
    replicas = [
        pb.Replica(
            address=r.address, ready=r.ready, restarts=r.restarts, last_exit=r.last_exit, model=r.model
        )
        for r in (seen.replicas if seen else [])
    ]
    return pb.Inference(
        id=inference.id,
        name=inference.name,
        description=inference.description,
        project=inference.project,
        model=model_to_proto(inference.model),
        spec=spec_to_proto(inference.spec),
        status=STATUS_TO_PROTO[inference.status],
        status_reason=inference.status_reason,
        endpoint=inference.endpoint if running else "",
        owner=inference.owner,
        create_time=timestamp(inference.create_time),
        update_time=timestamp(inference.update_time),
        replicas=replicas,
        revision=inference.revision,
        cluster=inference.cluster,
    )


def entry_to_proto(entry: CatalogEntry) -> pb.CatalogEntry:
    """The wire form of a catalog entry."""
    return pb.CatalogEntry(
        id=entry.id,
        name=entry.name,
        description=entry.description,
        model=model_to_proto(entry.model),
        defaults=spec_to_proto(entry.defaults),
        project=entry.project,
        owner=entry.owner,
        create_time=timestamp(entry.create_time),
        metrics=entry.metrics,
    )


def deployment_to_proto(d: Deployment, seen: Observation | None = None) -> pb.Deployment:
    """The wire form of a deployment, with its replicas as they are now when known."""
    serving = d.status in (ServingStatus.RUNNING, ServingStatus.UPDATING) or (
        d.status is ServingStatus.FAILED and seen is not None and seen.ready > 0
    )
    replicas = [
        pb.Replica(
            address=r.address, ready=r.ready, restarts=r.restarts, last_exit=r.last_exit, model=r.model
        )
        for r in (seen.replicas if seen else [])
    ]
    return pb.Deployment(
        id=d.id,
        name=d.name,
        description=d.description,
        project=d.project,
        catalog_entry=d.catalog_entry,
        model=model_to_proto(d.model),
        spec=spec_to_proto(d.spec),
        status=STATUS_TO_PROTO[d.status],
        status_reason=d.status_reason,
        endpoint=d.endpoint if serving else "",
        owner=d.owner,
        create_time=timestamp(d.create_time),
        update_time=timestamp(d.update_time),
        replicas=replicas,
        revision=d.revision,
        previous_model=model_to_proto(d.previous_model) if d.previous_model else None,
        cluster=d.cluster,
    )
