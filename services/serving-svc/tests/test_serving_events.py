"""The translation of serving-svc's domain events into the contract's events: message, subject,
project and actor, as the bus carries them."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from google.protobuf.message import Message
from shipyard_serving.app.events import translate
from shipyard_serving.app.messages import deployment_to_proto, inference_to_proto
from shipyard_serving.domain import events
from shipyard_serving.domain.serving import (
    CatalogEntry,
    Deployment,
    Inference,
    ModelPin,
    Observation,
    ReplicaState,
    ServingSpec,
    ServingStatus,
)

from shipyard.contracts.common.v1 import common_pb2
from shipyard.contracts.events.v1 import events_pb2
from shipyard.contracts.serving.v1 import serving_pb2
from shipyard.kit.testing import ALICE, Emitted

NOW = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)
MNIST = ModelPin("mnist", 3, "id-mnist", "sha256:mnist-3")
INFERENCE = Inference("i1", "mnist-test", "vision", MNIST, ServingSpec(), "alice", NOW, NOW,
                      status=ServingStatus.RUNNING)
ENTRY = CatalogEntry("e1", "mnist-v3", MNIST, ServingSpec(), "alice", NOW, project="vision")
DEPLOYMENT = Deployment("d1", "mnist-live", "mnist-v3", MNIST, ServingSpec(), "alice", NOW, NOW,
                        project="vision")


ACTOR = common_pb2.Actor(user="alice", roles=["data-scientist"])


@pytest.mark.parametrize(("event", "message", "subject"), [
    (events.InferenceCreated(INFERENCE, ALICE),
     events_pb2.InferenceCreated(inference=inference_to_proto(INFERENCE), actor=ACTOR),
     "inferences/mnist-test"),
    (events.InferenceDeleted(INFERENCE, ALICE),
     events_pb2.InferenceDeleted(inference_id="i1", name="mnist-test", project="vision", actor=ACTOR),
     "inferences/mnist-test"),
    (events.ModelPublished(ENTRY, ALICE),
     events_pb2.ModelPublished(model="mnist", version=3, catalog_name="mnist-v3", project="vision",
                               actor=ACTOR, model_id="id-mnist"), "catalog/mnist-v3"),
    (events.ModelUnpublished(ENTRY, ALICE),
     events_pb2.ModelUnpublished(catalog_name="mnist-v3", model="mnist", version=3, project="vision",
                                 actor=ACTOR, model_id="id-mnist"), "catalog/mnist-v3"),
    (events.DeploymentCreated(DEPLOYMENT, ALICE),
     events_pb2.DeploymentCreated(deployment=deployment_to_proto(DEPLOYMENT), actor=ACTOR),
     "deployments/mnist-live"),
    (events.DeploymentUpdated(DEPLOYMENT, ("model", "spec"), ALICE),
     events_pb2.DeploymentUpdated(deployment=deployment_to_proto(DEPLOYMENT),
                                  changed_fields=["model", "spec"], actor=ACTOR), "deployments/mnist-live"),
    (events.DeploymentDeleted(DEPLOYMENT, ALICE),
     events_pb2.DeploymentDeleted(deployment_id="d1", name="mnist-live", project="vision", actor=ACTOR),
     "deployments/mnist-live"),
])
def test_each_event_is_its_contract_message_with_subject_and_project(
    event: events.ServingEvent, message: Message, subject: str
) -> None:
    assert translate(event) == Emitted(message, subject, "vision")


def test_an_update_by_serving_svc_carries_the_replicas_it_saw() -> None:
    seen = Observation(ready=1, replicas=[ReplicaState("127.0.0.1:9001", True, model="mnist@3")],
                       serving="mnist@3")
    emitted = translate(events.InferenceUpdated(INFERENCE, ("status",), events.SYSTEM, seen))
    data = emitted.data
    assert isinstance(data, events_pb2.InferenceUpdated)
    assert list(data.changed_fields) == ["status"]
    assert (data.actor.user, list(data.actor.roles)) == ("serving-svc", [])
    assert data.inference.status == serving_pb2.SERVING_STATUS_RUNNING
    replicas = [(r.address, r.ready, r.model) for r in data.inference.replicas]
    assert replicas == [("127.0.0.1:9001", True, "mnist@3")]


def test_an_event_it_does_not_know_is_refused() -> None:
    with pytest.raises(TypeError, match="no event for str"):
        translate("ModelDeleted")
