"""Test inferences: the spec's rules and the use cases, on fakes and the real store adapters."""

from __future__ import annotations

import pytest
from serving_fakes import FakeServers, World, fake_world
from shipyard_serving.domain.serving import (
    ModelPin,
    Observation,
    ReplicaState,
    ServingSpec,
    ServingStatus,
    Transformer,
)

from shipyard.contracts.events.v1 import events_pb2
from shipyard.kit.errors import AlreadyExists, FailedPrecondition, InvalidArgument, NotFound, PermissionDenied
from shipyard.kit.testing import ALICE, BOB, OPERATOR_CALLER


@pytest.fixture
async def world() -> World:
    return await fake_world()


async def test_create_pins_the_latest_version_and_starts_its_servers(world: World) -> None:
    inferences, servers = world.inferences, world.servers
    made = await inferences.create(
        ALICE, "mnist-test", ModelPin("mnist"), ServingSpec(max_concurrency=8), project="vision"
    )
    assert (made.model.version, made.model.manifest_digest, made.status) == (
        3,
        "sha256:mnist-3",
        ServingStatus.QUEUED,
    )
    assert made.spec.min_replicas == made.spec.max_replicas == 1
    assert servers.running["mnist-test"].model.version == 3
    assert world.event_names() == ["InferenceCreated"]
    event = world.uow.published[0].data
    assert isinstance(event, events_pb2.InferenceCreated)
    assert (event.inference.model.version, event.actor.user) == (3, "alice")


async def test_status_follows_the_servers_ready_lost_and_failed(world: World) -> None:
    inferences, servers = world.inferences, world.servers
    await inferences.create(ALICE, "t", ModelPin("mnist", 2), ServingSpec(min_replicas=2))
    one = ReplicaState("127.0.0.1:9001", True)
    await servers.report("t", Observation(ready=1, replicas=[one]))
    assert (await inferences.get("t")).status is ServingStatus.STARTING
    both = [one, ReplicaState("127.0.0.1:9002", True)]
    await servers.report("t", Observation(ready=2, replicas=both))
    running = await inferences.get("t")
    assert running.status is ServingStatus.RUNNING and running.endpoint == "/serving/t/v2/models/mnist"
    lost = [one, ReplicaState("127.0.0.1:9002", False, restarts=1, last_exit="killed by signal 9")]
    await servers.report("t", Observation(ready=1, replicas=lost))
    again = await inferences.get("t")
    assert again.status is ServingStatus.STARTING and "killed by signal 9" in again.status_reason
    await servers.report("t", Observation(ready=0, failure="the model server could not start: bad pickle"))
    failed = await inferences.get("t")
    assert (failed.status, failed.status_reason) == (
        ServingStatus.FAILED,
        "the model server could not start: bad pickle",
    )
    assert world.event_names() == ["InferenceCreated"] + ["InferenceUpdated"] * 4
    await servers.report("t", Observation(ready=2, replicas=both))  # a failed one stays failed
    assert (await inferences.get("t")).status is ServingStatus.FAILED


@pytest.mark.parametrize(
    ("spec", "field"),
    [
        (ServingSpec(framework="tensorflow"), "spec.framework"),
        (ServingSpec(framework="custom"), "spec.predictor"),
        (ServingSpec(predictor="m:C"), "spec.predictor"),
        (ServingSpec(cpu="lots"), "spec.cpu"),
        (ServingSpec(memory="2 GB"), "spec.memory"),
        (ServingSpec(min_replicas=21), "spec.min_replicas"),
        (ServingSpec(min_replicas=3, max_replicas=2), "spec.max_replicas"),
        (ServingSpec(max_concurrency=-1), "spec.max_concurrency"),
        (ServingSpec(gpus=99), "spec.gpus"),
        (
            ServingSpec(transformer=Transformer(code="prep", script="../etc/passwd.py")),
            "spec.transformer.script",
        ),
        (ServingSpec(transformer=Transformer(script="t.py")), "spec.transformer.code"),
    ],
)
async def test_bad_specs_name_the_field_and_create_nothing(
    world: World, spec: ServingSpec, field: str
) -> None:
    inferences, servers = world.inferences, world.servers
    with pytest.raises(InvalidArgument) as caught:
        await inferences.create(ALICE, "bad", ModelPin("mnist"), spec)
    assert caught.value.field == field
    assert await world.stored_inferences() == [] and servers.running == {} and world.uow.published == []


async def test_bad_names_unknown_models_and_duplicates_create_nothing(world: World) -> None:
    inferences = world.inferences
    with pytest.raises(InvalidArgument, match=r"inference\.name"):
        await inferences.create(ALICE, "no spaces allowed", ModelPin("mnist"), ServingSpec())
    with pytest.raises(NotFound, match="model 'mnist' has no version 9"):
        await inferences.create(ALICE, "t", ModelPin("mnist", 9), ServingSpec())
    with pytest.raises(NotFound, match="iris"):
        await inferences.create(ALICE, "t", ModelPin("iris"), ServingSpec())
    await inferences.create(ALICE, "t", ModelPin("mnist"), ServingSpec())
    with pytest.raises(AlreadyExists, match="'t'"):
        await inferences.create(BOB, "t", ModelPin("mnist"), ServingSpec())
    assert await world.stored_inferences() == ["t"] and world.event_names() == ["InferenceCreated"]


async def test_a_retried_create_returns_the_first(world: World) -> None:
    inferences = world.inferences
    first = await inferences.create(ALICE, "t", ModelPin("mnist"), ServingSpec(), request_id="r1")
    again = await inferences.create(ALICE, "t", ModelPin("mnist"), ServingSpec(), request_id="r1")
    assert again.id == first.id and world.event_names() == ["InferenceCreated"]


async def test_the_transformer_is_pinned_to_a_commit(world: World) -> None:
    inferences, servers = world.inferences, world.servers
    spec = ServingSpec(transformer=Transformer(code="prep", script="transform.py"))
    made = await inferences.create(ALICE, "t", ModelPin("mnist"), spec)
    assert made.spec.transformer.commit and made.spec.transformer.manifest_digest == "sha256:code-prep"
    assert servers.running["t"].spec.transformer.script == "transform.py"


async def test_only_the_owner_or_an_operator_deletes(world: World) -> None:
    inferences, servers = world.inferences, world.servers
    await inferences.create(ALICE, "t", ModelPin("mnist"), ServingSpec())
    with pytest.raises(PermissionDenied, match="alice"):
        await inferences.delete(BOB, "t")
    await inferences.delete(OPERATOR_CALLER, "t")
    assert servers.removed == ["t"] and await world.stored_inferences() == []
    assert world.event_names() == ["InferenceCreated", "InferenceDeleted"]
    with pytest.raises(NotFound):
        await inferences.delete(ALICE, "t")


async def test_recover_starts_the_live_ones_again(world: World) -> None:
    inferences, servers = world.inferences, world.servers
    await inferences.create(ALICE, "a", ModelPin("mnist"), ServingSpec())
    await inferences.create(ALICE, "b", ModelPin("mnist", 1), ServingSpec())
    await servers.report("b", Observation(ready=0, failure="cannot load"))
    restarted = FakeServers()
    await world.restarted(restarted).inferences.recover()
    assert list(restarted.running) == ["a"]  # a failed one is not retried by itself


async def test_list_pages_by_name(world: World) -> None:
    inferences = world.inferences
    for name in ("c", "a", "b"):
        await inferences.create(ALICE, name, ModelPin("mnist"), ServingSpec(), project="vision")
    first, token = await inferences.list_page("vision", 2, "")
    rest, end = await inferences.list_page("vision", 2, token)
    assert [i.name for i in first + rest] == ["a", "b", "c"] and end == ""
    with pytest.raises(InvalidArgument, match="page_token"):
        await inferences.list_page("", 0, "%%%")


class _Unisolated(FakeServers):
    def isolation_missing(self) -> str:
        return "bubblewrap is not installed"


async def test_where_servers_cannot_be_isolated_only_an_operators_inference_starts() -> None:
    servers = _Unisolated()
    inferences = (await fake_world(servers)).inferences
    with pytest.raises(FailedPrecondition, match=r"cannot be isolated.*bubblewrap is not installed"):
        await inferences.create(ALICE, "alice-test", ModelPin("mnist"), ServingSpec())
    assert servers.running == {}
    await inferences.create(OPERATOR_CALLER, "root-test", ModelPin("mnist"), ServingSpec())
    single_user = (await fake_world(servers, single_user=True)).inferences
    await single_user.create(ALICE, "alice-test", ModelPin("mnist"), ServingSpec())
    assert sorted(servers.running) == ["alice-test", "root-test"]
