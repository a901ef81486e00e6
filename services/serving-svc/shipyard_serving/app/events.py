"""serving-svc's one translation of its domain events into the contract's events: the message, its
CloudEvent subject (``inferences/mnist-test``, ``catalog/mnist-v3``, ``deployments/mnist``) and its
project."""

from __future__ import annotations

from typing import Any

from google.protobuf.message import Message

from shipyard.contracts.events.v1 import events_pb2
from shipyard.kit.events import caller_actor
from shipyard.kit.store.unit_of_work import Emitted
from shipyard_serving.app.messages import deployment_to_proto, inference_to_proto
from shipyard_serving.domain import events
from shipyard_serving.domain.serving import CatalogEntry, Deployment, Inference


def inference_subject(inference: Inference) -> str:
    """The CloudEvent subject of a test inference's events."""
    return f"inferences/{inference.name}"


def entry_subject(entry: CatalogEntry) -> str:
    """The CloudEvent subject of a catalog entry's events."""
    return f"catalog/{entry.name}"


def deployment_subject(deployment: Deployment) -> str:
    """The CloudEvent subject of a deployment's events."""
    return f"deployments/{deployment.name}"


def translate(event: Any) -> Emitted:
    """The contract's event for the domain event ``event``."""
    match event:
        case events.InferenceCreated() | events.InferenceUpdated() | events.InferenceDeleted():
            return Emitted(_inference_message(event), inference_subject(event.inference),
                           event.inference.project)
        case events.ModelPublished() | events.ModelUnpublished():
            return Emitted(_catalog_message(event), entry_subject(event.entry), event.entry.project)
        case events.DeploymentCreated() | events.DeploymentUpdated() | events.DeploymentDeleted():
            return Emitted(_deployment_message(event), deployment_subject(event.deployment),
                           event.deployment.project)
    raise TypeError(f"serving-svc has no event for {type(event).__name__}")


def _inference_message(
    event: events.InferenceCreated | events.InferenceUpdated | events.InferenceDeleted,
) -> Message:
    match event:
        case events.InferenceCreated(inference=inference, actor=by):
            return events_pb2.InferenceCreated(inference=inference_to_proto(inference),
                                               actor=caller_actor(by))
        case events.InferenceUpdated(inference=inference, changed_fields=changed, actor=by, seen=seen):
            return events_pb2.InferenceUpdated(inference=inference_to_proto(inference, seen),
                                               changed_fields=changed, actor=caller_actor(by))
        case events.InferenceDeleted(inference=inference, actor=by):
            return events_pb2.InferenceDeleted(inference_id=inference.id, name=inference.name,
                                               project=inference.project, actor=caller_actor(by))


def _catalog_message(event: events.ModelPublished | events.ModelUnpublished) -> Message:
    entry, model = event.entry, event.entry.model
    if isinstance(event, events.ModelPublished):
        return events_pb2.ModelPublished(model=model.model, version=model.version, catalog_name=entry.name,
                                         project=entry.project, actor=caller_actor(event.actor),
                                         model_id=model.model_id)
    return events_pb2.ModelUnpublished(catalog_name=entry.name, model=model.model, version=model.version,
                                       project=entry.project, actor=caller_actor(event.actor),
                                       model_id=model.model_id)


def _deployment_message(
    event: events.DeploymentCreated | events.DeploymentUpdated | events.DeploymentDeleted,
) -> Message:
    match event:
        case events.DeploymentCreated(deployment=d, actor=by):
            return events_pb2.DeploymentCreated(deployment=deployment_to_proto(d), actor=caller_actor(by))
        case events.DeploymentUpdated(deployment=d, changed_fields=changed, actor=by, seen=seen):
            return events_pb2.DeploymentUpdated(deployment=deployment_to_proto(d, seen),
                                                changed_fields=changed, actor=caller_actor(by))
        case events.DeploymentDeleted(deployment=d, actor=by):
            return events_pb2.DeploymentDeleted(deployment_id=d.id, name=d.name, project=d.project,
                                                actor=caller_actor(by))
